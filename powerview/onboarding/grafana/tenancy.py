"""Move a company between the two tenancies: `team` (a team in the main organisation) and `org`
(an organisation of its own). Data source, folder, dashboards (same uids, so bookmarks keep
working), users and their own views (data source and dashboard of add_grafana_user_to_team.yml,
made again in the target) move; the InfluxDB bucket, its token and the config API are not touched.

Order, so that a failure half-way loses nothing and a second run finishes the job: everything is
first made in the target (read, compared, written only when missing), then removed from the
source. `--dry-run` reads only and prints what would be done.

The command is `powerview-grafana-tenancy` (powerview.cli.tenancy).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from powerview.core.settings import ConfigError, load_tokens
from powerview.delivery.influx import InfluxRejected, InfluxUnavailable
from powerview.onboarding.influx_tokens import TokenManager, manager_for

from . import settings as grafana_settings
from .client import GrafanaError, seg
from .company import MAIN_ORG_ID, Company, ProvisioningError, Run, check_name, contains
from .config_api import ConfigApiError
from .render import TemplateError

FAILURES = (ConfigError, GrafanaError, ProvisioningError, ConfigApiError, TemplateError)
TokenSource = Callable[[str, bool], dict]


class BucketTokens:
    """The TokenSource of the command: the bucket's read-only token from `TokenManager`, as the
    playbook gets it (`ensure`; `plan` in check mode, which makes nothing and returns no token).
    The InfluxDB settings are read from the same settings file as Grafana's, once."""

    def __init__(self, env_file: Path | None = None):
        self.env_file = env_file
        self._manager: TokenManager | None = None

    def __call__(self, company: str, dry_run: bool) -> dict:
        try:
            if self._manager is None:
                self._manager = manager_for(load_tokens(self.env_file))
            if dry_run:
                return self._manager.plan(company)
            outcome = self._manager.ensure(company)
        except (ConfigError, InfluxUnavailable, InfluxRejected) as exc:
            raise ProvisioningError(f"the InfluxDB token of bucket {company}: {exc}") from None
        return {"bucket": outcome.bucket, "id": outcome.id, "token": outcome.token, "changed": outcome.changed}


def _full_dashboards(company: Company, folder_uid: str) -> list[dict]:
    out = []
    for uid in company.dashboards_in(folder_uid):
        answer = company._read(f"/api/dashboards/uid/{seg(uid)}")
        if answer.found:
            out.append(answer.body["dashboard"])
    return out


def _copy_dashboards(target: Company, dashboards: list[dict], folder_uid: str) -> None:
    """Every dashboard of the folder, as the customer has it (the company's and its users' too:
    they are never re-rendered, issue 15)."""
    for dash in dashboards:
        wanted = {k: v for k, v in dash.items() if k not in ("id", "version")}
        current = target._read(f"/api/dashboards/uid/{seg(dash['uid'])}")
        if (
            current.found
            and current.body["meta"].get("folderUid") == folder_uid
            and contains(current.body["dashboard"], wanted)
        ):
            continue
        target._write(
            f"copy dashboard {dash['uid']} ({dash.get('title', '')})",
            "POST",
            "/api/dashboards/db",
            json={
                "dashboard": wanted,
                "folderUid": folder_uid,
                "overwrite": True,
                "message": "PowerView tenancy migration",
            },
        )


def _server_admin_logins(run: Run) -> set[str]:
    s = run.grafana.settings
    return {s.username} if s.username else set()


def migrate(run: Run, s: grafana_settings.GrafanaSettings, company: str, target: str, tokens: TokenSource) -> dict:
    """Move `company` to tenancy `target` ("org" or "team"). Returns the run's result."""
    check_name("company", company)
    source_mode = "team" if target == "org" else "org"
    src = Company(run, s, company, tenancy=source_mode)
    dst = Company(run, s, company, tenancy=target)
    admins = _server_admin_logins(run)

    # what the source holds
    if source_mode == "org":
        if not src.use_org(create=False):
            run.notes.append(f"{company}: no organisation {company}: nothing to move")
            return run.result(company=company)
        assert src.org_id is not None
        src._refuse_foreign_org(src.org_id)  # before any write: what it holds must all move
        listed = run.read(f"/api/orgs/{src.org_id}/users", admin=True).body or []
        members = [(m["login"], int(m["userId"])) for m in listed if m["login"] not in admins]
    else:
        team_id = src.find_team()
        members = []
        if team_id is not None:
            members = [
                (m["login"], int(m["userId"]))
                for m in src._read(f"/api/teams/{team_id}/members", ok=(200,)).body or []
                if m["login"] not in admins
            ]
    folder_uid = src.find_folder()
    datasource = src.find_datasource()
    user_views = src.user_datasources()
    if folder_uid is None and datasource is None and (source_mode == "org" or src.find_team() is None):
        run.notes.append(f"{company}: nothing of it in {source_mode} tenancy: nothing to move")
        return run.result(company=company)
    dashboards = _full_dashboards(src, folder_uid) if folder_uid else []

    # the same uids in the target: the dashboards' panels and the users' bookmarks keep working
    if folder_uid:
        dst.names["folder_uid"] = folder_uid
    if datasource:
        dst.names["datasource_uid"] = datasource["uid"]
    token = tokens(company, run.check)
    result = dst.present(token=token.get("token"), token_id=token.get("id"), company_steps=True)
    _copy_dashboards(dst, dashboards, result["folder_uid"])
    for login, user_id in members:
        dst.ensure_member(login, user_id, result.get("team_id"))
    for login, _ in user_views:
        user = dst.find_user(login)
        if user is None:
            run.notes.append(f"{company}: user {login} no longer exists: its view is not moved")
            continue
        view = dst.user_view(login, int(user["id"]))
        made = dst.ensure_datasource(token.get("token"), token.get("id"), view)
        dst.ensure_dashboard(result["folder_uid"], made, result.get("team_id"), view)

    # then the source goes
    if source_mode == "org":
        run.write(
            f"delete organisation {company} (moved to team tenancy)",
            "DELETE",
            f"/api/orgs/{src.org_id}",
            admin=True,
            ok=(200, 404),
        )
    else:
        for login, user_datasource in user_views:
            src.remove_user_view(login, user_datasource, dashboard=False)  # the folder's deletion takes it
        src._delete_team_layout()
    return run.result(
        company=company,
        target=target,
        moved_users=[login for login, _ in members],
        moved_dashboards=[d["uid"] for d in dashboards],
    )


def companies_in(run: Run, s: grafana_settings.GrafanaSettings, tenancy: str) -> list[str]:
    """The PowerView companies found in `tenancy`: teams (or organisations) with a datasource
    influxdb_<name> beside them, whose name passes the name rules."""
    found = []
    if tenancy == "team":
        teams = run.read("/api/teams/search", params={"perpage": 1000}).body.get("teams", [])
        candidates = [t["name"] for t in teams]
    else:
        candidates = [
            o["name"]
            for o in run.read("/api/orgs", admin=True, params={"perpage": 1000}).body or []
            if int(o["id"]) != MAIN_ORG_ID
        ]
    for name in candidates:
        try:
            company = Company(run, s, name, tenancy=tenancy)
        except ProvisioningError:
            continue
        if tenancy == "org" and not company.use_org(create=False):
            continue
        if company.find_datasource() is not None:
            found.append(name)
    return sorted(found)
