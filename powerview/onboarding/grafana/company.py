"""A company's Grafana resources: created, brought up to date, deleted; users added.

A company has views: its own (datasource influxdb_<company>, dashboard powerview_<company>, client
id <company>) and one per user added with add_grafana_user_to_team.yml (datasource
influxdb_<company>_<login>, dashboard powerview_<company>_<login> that the user edits, client id
<company>_<login>). Both are made by the same code, given a `View`.

`Company` is the façade the Ansible module (actions.py), the tenancy migration and the token
migration use; each resource reads on its own in its module:
- `scope`        the run (check mode, changes, diffs), the company's names, views and tenancy
- `membership`   organisation (org tenancy), team (team tenancy) and their members
- `folders`, `permissions`, `datasources`, `dashboards`, `client_ids`   one resource each
- `accounts`     users and the company's default user (ownership: `users`)
- `removal`      the company's deletion and its users' views
This module holds the flows: the company present (or checked), a user added.
"""

from __future__ import annotations

from . import render
from .accounts import Accounts, DefaultUser
from .client import seg
from .dashboards import Dashboards
from .datasources import client_id_of, datasource_owner
from .permissions import acl
from .removal import Removal
from .scope import EDIT, MAIN_ORG_ID, ProvisioningError, Run, View, check_name, contains
from .users import Owners

__all__ = [
    "MAIN_ORG_ID",
    "Company",
    "ProvisioningError",
    "Run",
    "View",
    "acl",
    "check_name",
    "contains",
    "datasource_owner",
]


class Company(Removal, Accounts, Dashboards):
    """The Grafana resources of one company, in the tenancy of the settings (or the one given)."""

    def present(
        self,
        token: str | None = None,
        token_id: str | None = None,
        company_steps: bool = True,
        campaign: str | None = None,
        refresh_dashboard: bool = False,
        default_user: DefaultUser | None = None,
    ) -> dict:
        """Create what is missing, adopt what exists (`refresh_dashboard`: re-render the company's
        dashboard, keeping what the customer added; `default_user`: the deployed playbook's
        company_user_*_override). `company_steps=False` (the marker exists, as the deployed
        playbook left it): read only, write nothing at all; check that the company's resources
        exist."""
        default_user = default_user or DefaultUser()
        if campaign:
            check_name("campaign", campaign)
        render.template_for(self.templates_dir, self.s.datasource_type)  # before any write
        if company_steps and self.s.has_admin:  # issue 17: the default user's login owned by another company
            Owners(self).check_add(default_user.login or self.names["user_login"])
        if self.in_org:
            self.use_org(create=company_steps)
            if self.org_id is None and not self.org_missing:
                raise ProvisioningError(
                    f"{self.marker()} exists but Grafana lacks the organisation: run again "
                    "with -e force_company=true to recreate it."
                )
        if not company_steps:
            return self.check_present(refresh_dashboard)
        self.check_before_writes(self.own_view(), self.find_folder() or self.names["folder_uid"])
        team_id = None if self.in_org else self.ensure_team()
        folder_uid, folder_exists, folder_created = self.ensure_folder()
        datasource = self.ensure_datasource(token, token_id)
        self.ensure_permissions(
            "folder",
            f"/api/folders/{seg(folder_uid)}/permissions",
            self.viewers(team_id),
            folder_uid,
            exists=folder_exists,
            created=folder_created,
        )
        user_id = self.default_user(team_id, default_user, client_id_of(datasource, self.own_view()))
        editor = [{"userId": user_id, "permission": EDIT}] if self.s.has_admin else []
        self.ensure_dashboard(folder_uid, datasource, team_id, refresh=refresh_dashboard, editors=editor)
        self.register_client(client_id_of(datasource, self.own_view()))
        marker = self.marker()
        if marker.parent.is_dir() and not marker.exists():
            self.run.changes.append(f"write the company marker {marker}")
            if not self.run.check:
                marker.write_text(f"Grafana resources of {self.company} provisioned by create_grafana_resources.yml\n")
        return self._provisioned(team_id, folder_uid, datasource, company_steps=True)

    def check_present(self, refresh_dashboard: bool = False) -> dict:
        """The marker exists: the company is provisioned (by us or by the deployed playbook) and
        is the customer's now. Reads only; fails when Grafana lacks what the marker promises."""
        team_id = None if self.in_org else self.find_team()
        folder_uid = self.find_folder() or ""
        datasource = self.find_datasource() or {}
        if datasource:
            self.check_owner(datasource, self.own_view())
        lacks = [
            what
            for what, missing in (
                ("the team", not self.in_org and team_id is None),
                ("the folder", not folder_uid),
                ("the data source", not datasource),
            )
            if missing
        ]
        if lacks:
            raise ProvisioningError(
                f"{self.marker()} exists but Grafana lacks {', '.join(lacks)}: run again "
                "with -e force_company=true to recreate them."
            )
        dashboard = self._read(f"/api/dashboards/uid/{seg(self.names['dashboard_uid'])}")
        if not dashboard.found:
            self.run.notes.append(
                f"dashboard {self.names['dashboard_uid']} is absent: run with -e force_company=true to create it"
            )
        elif refresh_dashboard:  # asked for: the one write a run with the marker makes
            self.check_dashboard_place(dashboard, folder_uid, self.own_view())
            self.refresh_dashboard(dashboard, datasource, self.own_view())
        return self._provisioned(team_id, folder_uid, datasource, company_steps=False)

    def _provisioned(self, team_id: int | None, folder_uid: str, datasource: dict, company_steps: bool) -> dict:
        return self.run.result(
            company=self.company,
            tenancy=self.tenancy,
            org_id=self.org_id,
            team_id=team_id,
            folder_uid=folder_uid,
            datasource_uid=datasource.get("uid", ""),
            dashboard_uid=self.names["dashboard_uid"],
            company_steps=company_steps,
        )

    def check_before_writes(self, view: View, folder_uid: str) -> None:
        """What another company or user owns under `view`'s names (data source, dashboard, client id):
        refused before the first write, so that a collision changes nothing."""
        current = self.find_datasource(view)
        if current is not None:
            self.check_owner(current, view)
        self.check_dashboard_place(self._read(f"/api/dashboards/uid/{seg(view.dashboard_uid)}"), folder_uid, view)
        self.check_client(view.client_id)

    def add_user(
        self,
        login: str,
        email: str,
        name: str = "",
        password: str = "",
        token: str | None = None,
        token_id: str | None = None,
    ) -> dict:
        """add_grafana_user_to_team.yml: a user of the company (team or organisation and folder
        must exist), and the user's view: datasource influxdb_<company>_<login> (the bucket's
        read-only `token`, client id <company>_<login>), dashboard powerview_<company>_<login> in the
        company's folder, viewed by the team (the organisation's Viewers in org tenancy), edited by
        the user."""
        check_name("user", login, "user_login")
        if self.in_org:
            if not self.use_org(create=False):
                raise ProvisioningError(
                    f"Organisation {self.company} not found in Grafana: provision the company "
                    "first (create_grafana_resources.yml)."
                )
            team_id = None
        else:
            team_id = self.find_team()
            if team_id is None:
                raise ProvisioningError(
                    f"Team {self.company} not found in Grafana: provision the company first "
                    "(create_grafana_resources.yml)."
                )
        folder_uid = self.find_folder()
        if folder_uid is None:
            raise ProvisioningError(
                f"Folder {self.names['folder_title']} not found in Grafana: provision the company first "
                "(create_grafana_resources.yml)."
            )
        render.template_for(self.templates_dir, self.s.datasource_type)  # before any write
        view = self.user_view(login)
        self.check_before_writes(view, folder_uid)  # before the user is made
        if self.find_datasource(view) is None and not token and not self.run.check:
            raise ProvisioningError(
                f"no InfluxDB token for data source {view.datasource_name}: give influx_token (the "
                f"playbook gets it with manage_influx_tokens.py --bucket {self.company} --json)"
            )
        password_file = None if password else self.s.secrets_dir / f"grafana_{login}.password"
        user_id, wrote = self.ensure_user(login, name, email, password, password_file)
        self.ensure_member(login, user_id, team_id)
        view = self.user_view(login, user_id)
        datasource = self.ensure_datasource(token, token_id, view)
        self.ensure_dashboard(folder_uid, datasource, team_id, view)
        self.register_client(client_id_of(datasource, view))
        where = f"organisation {self.company}" if self.in_org else f"team {self.company}"
        message = (
            f"{login} is a member of {where}; data source {view.datasource_name} (client id "
            f"{view.client_id}), dashboard {view.dashboard_uid} ({login} Edit)"
            + (f"; its password is in {password_file}" if wrote else "")
        )
        return self.run.result(
            company=self.company,
            tenancy=self.tenancy,
            user_id=user_id,
            datasource_name=view.datasource_name,
            dashboard_uid=view.dashboard_uid,
            client_id=view.client_id,
            message=message,
        )
