"""A company's deletion (delete_grafana_resources.yml): its organisation (org tenancy), or its
team, folder, dashboards and datasource (team tenancy); its users' views, found by their owner
in jsonData, never by name; a user only when this company may delete it (issue 17); never the
bucket. What is not PowerView's (an organisation made by hand, another company's datasource) is
left alone."""

from __future__ import annotations

from .client import Answer, seg
from .client_ids import ClientIds
from .datasources import Datasources, datasource_owner, describe_owner
from .folders import Folders
from .membership import Membership
from .scope import MAIN_ORG_ID, ProvisioningError, View, check_name
from .users import Owners


class Removal(Folders, Datasources, Membership, ClientIds):
    """Deletion of the company's resources and of its users' views."""

    def remove_user_view(self, login: str, datasource: dict | None = None, dashboard: bool = True) -> None:
        """Delete the dashboard (if in the company's folder; `dashboard=False`: the folder's deletion
        takes it) and the datasource of `login`'s view (only PowerView's own for this company and
        user). Its client id is the caller's business (a migration keeps it)."""
        view = self.user_view(login)
        found = self._read(f"/api/dashboards/uid/{seg(view.dashboard_uid)}") if dashboard else Answer(404, None)
        folder_uid = self.find_folder() if found.found else None
        if found.found and folder_uid and (found.body.get("meta") or {}).get("folderUid") == folder_uid:
            self._delete(f"dashboard {view.dashboard_uid}", f"/api/dashboards/uid/{seg(view.dashboard_uid)}")
        datasource = datasource or self.find_datasource(view)
        if datasource is not None:
            self._delete_datasource(view, datasource)

    def _delete_datasource(self, view: View, datasource: dict) -> None:
        """Delete `datasource`, the one of `view`'s name, when PowerView made it for `view`."""
        owner = datasource_owner(datasource)
        if owner != view.owner:
            self.run.notes.append(
                f"data source {view.datasource_name} belongs to {describe_owner(owner)}, not to {view.label}: left alone"
            )
            return
        self._delete(f"data source {view.datasource_name}", f"/api/datasources/uid/{seg(datasource['uid'])}")

    def _delete(self, what: str, path: str, admin: bool = False) -> None:
        """Delete `what` ("dashboard powerview_acme"): one change, one diff; already gone is done."""
        if admin:
            self.run.write(f"delete {what}", "DELETE", path, admin=True, ok=(200, 404))
        else:
            self._write(f"delete {what}", "DELETE", path, ok=(200, 404))
        self.run.diff(what, "present", "absent")

    def absent(self, user_login: str | None = None) -> dict:
        """Delete the company's Grafana resources, its users' views (datasources found by their
        owner in jsonData, never by name) and `user_login` if given; never the bucket."""
        if user_login:
            check_name("user", user_login, "user_name")
            if not self.s.has_admin:
                raise ProvisioningError(
                    f"Deleting user {user_login} needs Grafana's admin API: set GRAFANA_USERNAME "
                    "and GRAFANA_PASSWORD (a Grafana server admin)."
                )
            # issue 17: the user is deleted only when this company made it (or nobody known did)
            # and no other company holds it; read before any write
            owners = Owners(self)
            standing, deletable = owners.may_delete(user_login)
        views: list[str] = []
        if self.in_org:
            org = self.find_org()
            if org is not None:
                if int(org["id"]) == MAIN_ORG_ID:
                    raise ProvisioningError(
                        f"organisation {self.company} is Grafana's main organisation: refusing to delete it"
                    )
                self._refuse_foreign_org(int(org["id"]))
                views = [login for login, _ in self.user_datasources(int(org["id"]))]
                members = self.run.read(f"/api/orgs/{int(org['id'])}/users", admin=True).body or []
                self.run.write(
                    f"delete organisation {self.company} (its folder, data source, dashboards and "
                    f"{len(members)} memberships)",
                    "DELETE",
                    f"/api/orgs/{int(org['id'])}",
                    admin=True,
                    ok=(200, 404),
                )
                self.run.diff(f"organisation {self.company}", "present", "absent")
        else:
            # the users' dashboards are in the company's folder: _delete_team_layout deletes them
            for login, datasource in self.user_datasources():
                views.append(login)
                self.remove_user_view(login, datasource, dashboard=False)
            if user_login and user_login not in views:
                self.remove_user_view(user_login)  # by name, then by owner: also one made before the markers
            self._delete_team_layout()
        for login in dict.fromkeys(views + ([user_login] if user_login else [])):
            self.unregister_client(self.user_view(login).client_id)
        if user_login:
            user = standing.user if deletable else None  # issue 17
            if not deletable:
                owners.forget(standing)  # its maker leaves: the companies still holding it decide
            if user is not None:
                self._delete(f"user {user_login}", f"/api/admin/users/{int(user['id'])}", admin=True)
                owners.forget(standing)
            password_file = self.s.secrets_dir / f"grafana_{user_login}.password"
            if deletable and password_file.exists():
                self.run.changes.append(f"delete {password_file}")
                if not self.run.check:
                    password_file.unlink()
        self.unregister_client(self.company)
        marker = self.marker()
        if marker.exists():
            self.run.changes.append(f"remove the company marker {marker}")
            if not self.run.check:
                marker.unlink()
        return self.run.result(company=self.company, tenancy=self.tenancy)

    def _refuse_foreign_org(self, org_id: int) -> None:
        """An organisation is deleted only when its data sources are PowerView's own (a same-named
        organisation made by hand for something else is left alone)."""
        answer = self.run.read("/api/datasources", org_id=org_id, ok=(200, 401, 403))
        names = sorted(d.get("name", "") for d in answer.body or []) if answer.found else None
        users = {d.get("name", "") for _, d in self.user_datasources(org_id)} if answer.found else set()
        if names is None or set(names) - {self.names["datasource_name"]} - users:
            what = (
                f"holds data sources PowerView did not make ({', '.join(names)})"
                if names is not None
                else f"cannot be inspected (HTTP {answer.status})"
            )
            raise ProvisioningError(
                f"organisation {self.company} {what}: not deleting it; delete it by hand if it is really this company's"
            )

    def _delete_team_layout(self) -> None:
        folder_uid = self.find_folder()
        doomed = self.dashboards_in(folder_uid) if folder_uid else []
        own = self._read(f"/api/dashboards/uid/{seg(self.names['dashboard_uid'])}")
        if own.found and (own.body.get("meta") or {}).get("folderUid", "") in ("", folder_uid):
            doomed.append(self.names["dashboard_uid"])  # in another folder: another company's
        for uid in dict.fromkeys(doomed):
            self._delete(f"dashboard {uid}", f"/api/dashboards/uid/{seg(uid)}")
        if folder_uid:
            self._delete(f"folder {folder_uid}", f"/api/folders/{seg(folder_uid)}")
        datasource = self.find_datasource()
        if datasource:
            self._delete_datasource(self.own_view(), datasource)
        team_id = self.find_team()
        if team_id is not None:
            self._delete(f"team {self.names['team']}", f"/api/teams/{team_id}")
