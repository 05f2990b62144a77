"""A stand-in for the parts of Grafana's HTTP API that the provisioning playbooks use.

Written from Grafana's HTTP API reference (docs/sources/developers/http_api/*.md in grafana/grafana)
and, where the reference gives a status code without a body, from the handlers in pkg/api/*.go:

| endpoint                                             | answers                                               | source                          |
|------------------------------------------------------|-------------------------------------------------------|---------------------------------|
| GET  /api/health                                     | 200 {commit, database, version}, no auth              | other.md                        |
| GET  /api/org, GET /api/user                         | 200 current org / signed-in user                      | org.md, user.md                 |
| GET  /api/teams/search?name=&query=                  | 200 {totalCount, teams, page, perPage};               | team.md                         |
|                                                      | 404 "Team not found" when `name` matches nothing      |                                 |
| POST /api/teams                                      | 200 {message, teamId, uid}; 409 "Team name taken"     | team.md, pkg/api/team.go        |
| GET/DELETE /api/teams/:id                            | 200; 404 "Team not found" / "Failed to delete Team. ID not found" | team.md             |
| GET/POST /api/teams/:id/members, DELETE .../:userId  | 200; 400 "User is already added to this team"; 404    | team.md                         |
| GET  /api/folders, GET/DELETE /api/folders/:uid      | 200; 404 {"status": "not-found", "message": "Folder not found"} | folder.md, apierrors/folder.go |
| POST /api/folders                                    | 200 folder; 409 same uid / same title at the root;    | folder.md, apierrors/folder.go  |
|                                                      | 400 empty title, bad uid                              |                                 |
| GET/POST /api/folders/:uid/permissions               | 200 items / {"message": "Folder permissions updated"}; 404 | folder_permissions.md      |
| GET  /api/datasources, /api/datasources/name/:name,  | 200 (secureJsonFields, never secureJsonData);         | data_source.md,                 |
|      /api/datasources/uid/:uid                       | 404 "Data source not found"                           | pkg/api/datasources.go          |
| POST /api/datasources                                | 200 {datasource, id, message: "Datasource added", name}; | data_source.md,              |
|                                                      | 409 "data source with the same name already exists"   | pkg/api/datasources.go          |
| PUT  /api/datasources/uid/:uid                       | 200 {…, message: "Datasource updated"}; 404; 409;     | data_source.md                  |
|                                                      | secureJsonData not sent keeps the stored secrets      |                                 |
| DELETE /api/datasources/uid/:uid, /name/:name        | 200 {"message": "Data source deleted", id}; 404       | data_source.md                  |
| POST /api/dashboards/db                              | 200 {id, uid, url, status, version, slug}; 400 folder | dashboard.md,                   |
|                                                      | not found; 412 version-mismatch / name-exists         | apierrors/dashboard.go          |
| GET/DELETE /api/dashboards/uid/:uid                  | 200 {dashboard, meta}; 404 "Dashboard not found"      | dashboard.md                    |
| GET/POST /api/dashboards/uid/:uid/permissions        | 200 (folder items listed with "inherited": true); 404 | dashboard_permissions.md        |
| GET  /api/search?type=&folderUIDs=&query=            | 200 list of hits                                      | folder_dashboard_search.md      |
| POST /api/admin/users                                | 200 {id, message: "User created"}; 400 short password;| admin.md, pkg/api/admin_users.go|
|                                                      | 412 "User with email '…' or username '…' already exists" |                              |
| PUT  /api/admin/users/:id/password                   | 200 {"message": "User password updated"}; 400         | admin.md                        |
| DELETE /api/admin/users/:id                          | 200 {"message": "User deleted"}; 404 "user not found" | admin.md                        |
| GET  /api/users/lookup?loginOrEmail=                 | 200 user; 404 "user not found"                        | user.md                         |
| PUT  /api/users/:id                                  | 200 {"message": "User updated"}                       | user.md                         |
| GET/POST /api/orgs, GET /api/orgs/:id, /name/:name   | 200; 404 "Organization not found"; 409 "Organization  | org.md (admin organizations API,|
|                                                      | name taken"; the creator becomes the org's Admin      | basic auth of a server admin)   |
| DELETE /api/orgs/:id                                 | 200 {"message": "Organization deleted"}; memberships go | org.md                        |
| GET/POST /api/orgs/:id/users, PATCH/DELETE .../:uid  | 200; 409 "User is already member of this organization"| org.md                          |
| GET  /api/users/:id/orgs                             | 200 [{orgId, name, role}]                             | user.md                         |
| GET  /api/users/:id/teams                            | 200 [{id, orgId, name, email, avatarUrl, memberCount, | user.md ("Get teams for user"), |
|                                                      | permission}]: teams of the request's organisation;    | pkg/api/user.go GetUserTeams    |
|                                                      | 404 "user not found"                                  |                                 |
| GET  /api/frontend/settings                          | 200 {appUrl, datasources: {name: {uid, type, name, id}}}:| (the boot data of the UI)       |
|                                                      | what a signed-in user gets for its organisation       |                                 |
| POST /api/ds/query                                   | 200 {results: {refId: {status, frames}}}; 404 "Data   | query_and_resource.md           |
|                                                      | source not found" (not in the request's organisation) |                                 |

Organisations: every team, folder, data source and dashboard belongs to one organisation
(`state(org_id)`; the attributes `teams`, `folders`, ... are the main organisation's). A request
acts in the organisation named by `X-Grafana-Org-Id`, else in the user's current one; a user must
be a member of it (401 otherwise: the reference names no status), a service-account token acts in
the main organisation only (401 for another). Writes need the Admin role of that organisation;
every member reads the organisation's data sources (a Viewer too, since Grafana 9) and may query
any of them with `POST /api/ds/query` (OSS has no data source permissions) — the leak that
separate organisations close. New users join the organisation given as `OrgId`, else the main one
(auto_assign_org), as Viewers.

Authentication: basic auth (the admin, or any user created through the API, with its password)
or `Authorization: Bearer <token>` for the service-account tokens given to the constructor;
anything else is 401. The admin and user-management endpoints "only work with Basic
Authentication" and a Grafana server admin (admin.md, user.md): a bearer token or a non-admin
user gets 403 there.

Fault injection: `fail_next(method, path_regex, status, count)` answers the next matching
authenticated requests with `status` and {"message": ...} (a 5xx as Grafana answers a database
error), before they are handled: nothing is changed by them.

State is plain Python data that tests read directly (`teams`, `folders`, `datasources`,
`dashboards`, `users`, ...); the data sources' secrets are kept in `datasource_secrets`, which the
API never returns. Every request is recorded in `requests` (method, path, query, auth kind), so a
test can assert that no API call happened at all, or that nothing was written.
"""

from __future__ import annotations

import base64
import itertools
import json
import re
import threading
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import unquote

from .base import StandIn

_UID = re.compile(r"[A-Za-z0-9_-]*\Z")
PERMISSION_NAMES = {1: "View", 2: "Edit", 4: "Admin"}
MAIN_ORG_ID = 1
ORG_ROLES = ("Viewer", "Editor", "Admin")


def deployed_json_data(company: str, client_id: str) -> dict:
    """The jsonData of a data source as the deployed playbooks made it (plugin type, Flux)."""
    return {
        "version": "Flux",
        "organization": "powerview",
        "defaultBucket": company,
        "tlsSkipVerify": True,
        "httpMode": "POST",
        "httpHeaderName1": "Authorization",
        "readOnly": True,
        "channelsList": [],
        "triphasicList": [],
        "virtualSeries": [],
        "seriesConfigApiUrl": "/api/datasources/proxy/25",
        "clientId": client_id,
    }


@dataclass
class OrgData:
    """What belongs to one organisation: teams, folders, data sources, dashboards and their permissions."""

    teams: dict[int, dict] = field(default_factory=dict)
    team_members: dict[int, set[int]] = field(default_factory=dict)
    folders: dict[str, dict] = field(default_factory=dict)
    folder_acl: dict[str, list[dict]] = field(default_factory=dict)
    datasources: dict[int, dict] = field(default_factory=dict)
    datasource_secrets: dict[int, dict] = field(default_factory=dict)
    dashboards: dict[str, dict] = field(default_factory=dict)  # uid -> {"dashboard", "folderUid", "version"}
    dashboard_acl: dict[str, list[dict]] = field(default_factory=dict)


class ApiError(Exception):
    def __init__(self, http_status: int, message: str, **extra):
        super().__init__(message)
        self.status = http_status
        self.body = {"message": message, **extra}


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _slug(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")


class GrafanaStandIn(StandIn):
    """`with GrafanaStandIn() as grafana:` → a Grafana HTTP API on `grafana.url`."""

    name = "grafana-stand-in"

    def __init__(
        self,
        admin_user: str = "admin",
        admin_password: str = "admin-password",
        api_tokens: tuple[str, ...] = ("sa-token",),
        version: str = "11.3.0",
        team_search_404: bool = True,
        app_url: str = "http://powerview.adecwatts.fr/",
    ):
        super().__init__()
        self.version = version
        # root_url as resolved by Grafana: the deployed compose file's %(protocol)s://powerview.adecwatts.fr/
        self.app_url = app_url
        self.api_tokens = set(api_tokens)
        self.team_search_404 = team_search_404  # team.md: 404 when searching by a name that matches nothing
        self.lock = threading.RLock()
        self._ids = itertools.count(1)
        self.requests: list[dict] = []  # {"method", "path", "query", "auth", "org"}
        self.users: dict[int, dict] = {}
        self.passwords: dict[int, str] = {}
        # organisations (org.md): every org-scoped resource lives in one OrgData; org 1 is the main org
        self.orgs: dict[int, dict] = {MAIN_ORG_ID: {"id": MAIN_ORG_ID, "name": "Main Org."}}
        self.org_data: dict[int, OrgData] = {MAIN_ORG_ID: OrgData()}
        self.org_users: dict[int, dict[int, str]] = {MAIN_ORG_ID: {}}  # org id -> {user id: role}
        self.queries: list[dict] = []  # POST /api/ds/query calls that reached a datasource
        self._ctx_org = MAIN_ORG_ID  # the org of the request being handled (under self.lock)
        self._ctx_role: str | None = None
        admin_id = self._new_user(
            admin_user, admin_user, "admin@localhost", admin_password, grafana_admin=True, org_role="Admin"
        )
        self.admin_id = admin_id

    # ---- org-scoped state: the org of the current request, else the main org ---------------
    def state(self, org_id: int = MAIN_ORG_ID) -> OrgData:
        """The resources of one organisation (for tests: `grafana.state(org_id).datasources`)."""
        return self.org_data[org_id]

    teams = property(lambda self: self.org_data[self._ctx_org].teams)
    team_members = property(lambda self: self.org_data[self._ctx_org].team_members)
    folders = property(lambda self: self.org_data[self._ctx_org].folders)
    folder_acl = property(lambda self: self.org_data[self._ctx_org].folder_acl)
    datasources = property(lambda self: self.org_data[self._ctx_org].datasources)
    datasource_secrets = property(lambda self: self.org_data[self._ctx_org].datasource_secrets)
    dashboards = property(lambda self: self.org_data[self._ctx_org].dashboards)
    dashboard_acl = property(lambda self: self.org_data[self._ctx_org].dashboard_acl)

    def org_by_name(self, name: str) -> dict | None:
        return next((o for o in self.orgs.values() if o["name"] == name), None)

    def user_orgs(self, user_id: int) -> dict[int, str]:
        """{org id: role} of a user."""
        return {org_id: members[user_id] for org_id, members in self.org_users.items() if user_id in members}

    # ---- helpers for tests -----------------------------------------------------------------
    def writes(self) -> list[dict]:
        """Every request that could change something (anything but GET/HEAD)."""
        return [r for r in self.requests if r["method"] not in ("GET", "HEAD")]

    def team_by_name(self, name: str) -> dict | None:
        return next((t for t in self.teams.values() if t["name"] == name), None)

    def user_by_login(self, login: str) -> dict | None:
        return next((u for u in self.users.values() if u["login"] == login), None)

    def datasource_by_name(self, name: str) -> dict | None:
        return next((d for d in self.datasources.values() if d["name"] == name), None)

    def check_password(self, login: str, password: str) -> bool:
        user = self.user_by_login(login)
        return bool(user) and self.passwords.get(user["id"]) == password

    # ---- a replica of the deployed state (fheslouin/powerview) --------------------------------
    def seed_deployed_company(
        self,
        company: str,
        data_dir=None,
        token: str = "deployed-rw-token",
        login: str | None = None,
        edited: bool = True,
    ) -> dict:
        """Company `company` as the deployed create_grafana_resources.yml and dashboard.json.j2
        left it (read from the deployed playbooks, then edited by the customer when `edited`):
        team <company>; default user login <company> (or company_user_login_override `login`),
        named "<company> Default", email <company>@example.com, password ChangeMe123!, member of
        the team; folder titled <company> (a uid Grafana chose), Viewer for the team only; data
        source influxdb_<company> of type influxdb-adecwatts-datasource (Flux), clientId
        <company>_<login>, the bucket's token in secureJsonData (token and "Token …" header);
        dashboard uid powerview_<company> titled "Mesures <company>": active power (timeseries,
        id 1), energy (piechart, id 4), a row (id 3) and "Configuration des voies"
        (adecwatts-series-config-panel, id 2, wired to the data source id and the clientId),
        variables campaign and config (the JSON data source), View for the team and Edit for the
        default user; then an extra panel the customer added. With `data_dir`, the marker
        <data_dir>/<company>/.company.created. Made in the model directly: nothing is recorded
        in `requests`. Returns the ids."""
        login = login or company
        client_id = f"{company}_{login}"
        with self.lock:
            org = self.org_data[MAIN_ORG_ID]
            team_id = next(self._ids)
            org.teams[team_id] = {
                "id": team_id,
                "uid": uuid.uuid4().hex[:14],
                "orgId": MAIN_ORG_ID,
                "name": company,
                "email": "",
                "created": _now(),
                "updated": _now(),
            }
            user_id = self._new_user(login, f"{company} Default", f"{company}@example.com", "ChangeMe123!")
            org.team_members[team_id] = {user_id}
            folder_uid = uuid.uuid4().hex[:14]
            org.folders[folder_uid] = {
                "id": next(self._ids),
                "uid": folder_uid,
                "title": company,
                "url": f"/dashboards/f/{folder_uid}/{_slug(company)}",
                "hasAcl": False,
                "canSave": True,
                "canEdit": True,
                "canAdmin": True,
                "canDelete": True,
                "createdBy": "admin",
                "created": _now(),
                "updatedBy": "admin",
                "updated": _now(),
                "version": 1,
            }
            org.folder_acl[folder_uid] = [{"teamId": team_id, "permission": 1}]
            ds_id = next(self._ids)
            ds_uid = uuid.uuid4().hex[:14]
            org.datasources[ds_id] = {
                "id": ds_id,
                "uid": ds_uid,
                "orgId": MAIN_ORG_ID,
                "name": f"influxdb_{company}",
                "type": "influxdb-adecwatts-datasource",
                "access": "proxy",
                "url": "http://influxdb:8086",
                "user": "",
                "database": "",
                "basicAuth": False,
                "basicAuthUser": "",
                "withCredentials": False,
                "isDefault": False,
                "jsonData": deployed_json_data(company, client_id),
                "version": 2,  # created as influxdb, then patched to the plugin's type
                "readOnly": False,
            }
            org.datasource_secrets[ds_id] = {"httpHeaderValue1": f"Token {token}", "token": token}
            ds_ref = {"type": "influxdb-adecwatts-datasource", "uid": ds_uid}
            flux_head = f'// powerview_config=${{config}}\nfrom(bucket:"{company}")\n'
            panels = [
                {
                    "id": 1,
                    "type": "timeseries",
                    "title": "Puissances actives appelées (en W)",
                    "datasource": ds_ref,
                    "gridPos": {"h": 12, "w": 24, "x": 0, "y": 0},
                    "fieldConfig": {"defaults": {"unit": "watt"}, "overrides": []},
                    "targets": [
                        {
                            "refId": "A",
                            "datasource": ds_ref,
                            "query": flux_head + '|> filter(fn: (r) => r.channel in ["__visible"])',
                        }
                    ],
                },
                {
                    "id": 4,
                    "type": "piechart",
                    "title": "Energie sur la période",
                    "datasource": ds_ref,
                    "gridPos": {"h": 12, "w": 24, "x": 0, "y": 12},
                    "fieldConfig": {"defaults": {"unit": "kwatth"}, "overrides": []},
                    "targets": [
                        {
                            "refId": "A",
                            "datasource": ds_ref,
                            "query": flux_head + '|> filter(fn: (r) => r.channel in ["__visible_energy_mean"])',
                        }
                    ],
                },
                {
                    "id": 3,
                    "type": "row",
                    "title": "Settings",
                    "collapsed": False,
                    "panels": [],
                    "gridPos": {"h": 1, "w": 24, "x": 0, "y": 24},
                },
                {
                    "id": 2,
                    "type": "adecwatts-series-config-panel",
                    "title": "Configuration des voies",
                    "datasource": ds_ref,
                    "gridPos": {"h": 19, "w": 24, "x": 0, "y": 25},
                    "options": {
                        "forcedBucket": company,
                        "forcedClientId": client_id,
                        "forcedDatasourceId": ds_id,
                        "forcedMeasurement": "electrical",
                    },
                    "targets": [{"refId": "A"}],
                },
            ]
            if edited:
                panels.append(
                    {
                        "id": 5,
                        "type": "stat",
                        "title": "Talon de consommation (ajouté par le client)",
                        "datasource": ds_ref,
                        "gridPos": {"h": 6, "w": 8, "x": 0, "y": 44},
                        "targets": [{"refId": "A", "datasource": ds_ref, "query": flux_head}],
                    }
                )
            dash_id = next(self._ids)
            dashboard = {
                "id": dash_id,
                "uid": f"powerview_{company}",
                "title": f"Mesures {company}",
                "version": 9 if edited else 1,
                "schemaVersion": 42,
                "editable": True,
                "panels": panels,
                "templating": {
                    "list": [
                        {"name": "campaign", "label": "Campagne", "type": "query", "datasource": ds_ref},
                        {
                            "name": "config",
                            "label": "Config",
                            "type": "query",
                            "datasource": {"type": "marcusolsson-json-datasource", "uid": "PA7B9E713AA879D53"},
                            "query": {
                                "urlPath": f"/clients/{client_id}/series-config/configs?campaign=${{campaign}}",
                                "fields": [{"jsonPath": "$.*"}],
                                "method": "GET",
                            },
                        },
                    ]
                },
                "time": {"from": "now-30d", "to": "now"},
            }
            org.dashboards[dashboard["uid"]] = {
                "dashboard": dashboard,
                "folderUid": folder_uid,
                "version": dashboard["version"],
            }
            org.dashboard_acl[dashboard["uid"]] = [
                {"teamId": team_id, "permission": 1},
                {"userId": user_id, "permission": 2},
            ]
        if data_dir is not None:
            marker = data_dir / company / ".company.created"
            marker.parent.mkdir(parents=True, exist_ok=True)
            marker.touch()
        return {
            "team_id": team_id,
            "user_id": user_id,
            "folder_uid": folder_uid,
            "datasource_id": ds_id,
            "datasource_uid": ds_uid,
            "dashboard_uid": f"powerview_{company}",
            "client_id": client_id,
        }

    def company_snapshot(self, company: str) -> dict:
        """What a company's customers see, for before/after comparisons: its dashboard (title,
        panels, variables), the permissions, the data source (type, clientId, token), the users and
        the team's members."""
        with self.lock:
            team = self.team_by_name(company)
            ds = self.datasource_by_name(f"influxdb_{company}")
            dash = self.dashboards.get(f"powerview_{company}")
            folder = next((f for f in self.folders.values() if f["title"] == company), None)
            return json.loads(
                json.dumps(
                    {
                        "dashboard": dash
                        and {
                            "title": dash["dashboard"]["title"],
                            "panels": dash["dashboard"].get("panels"),
                            "templating": dash["dashboard"].get("templating"),
                            "folderUid": dash["folderUid"],
                        },
                        "dashboard_acl": self.dashboard_acl.get(f"powerview_{company}"),
                        "folder_acl": folder and self.folder_acl.get(folder["uid"]),
                        "datasource": ds
                        and {
                            "type": ds["type"],
                            "url": ds["url"],
                            "jsonData": ds["jsonData"],
                            "secrets": self.datasource_secrets.get(ds["id"]),
                        },
                        "users": sorted(
                            (u["login"], u["name"], u["email"], self.passwords[u["id"]]) for u in self.users.values()
                        ),
                        "team_members": team and sorted(self.team_members.get(team["id"], ())),
                    }
                )
            )

    # ---- model -----------------------------------------------------------------------------
    def _new_user(
        self, login, name, email, password, grafana_admin=False, org_id=MAIN_ORG_ID, org_role="Viewer"
    ) -> int:
        uid = next(self._ids)
        self.users[uid] = {
            "id": uid,
            "uid": uuid.uuid4().hex[:14],
            "login": login,
            "name": name or "",
            "email": email or login,
            "isGrafanaAdmin": grafana_admin,
            "isDisabled": False,
            "orgId": org_id,
            "theme": "",
            "isExternal": False,
            "authLabels": [],
            "createdAt": _now(),
            "updatedAt": _now(),
            "avatarUrl": "",
        }
        self.passwords[uid] = password
        # a new user joins one org: the one asked for (OrgId), else auto_assign_org (the main org), as Viewer
        self.org_users[org_id][uid] = org_role
        return uid

    def _drop_membership(self, org_id: int, user_id: int) -> None:
        self.org_users.get(org_id, {}).pop(user_id, None)
        for members in self.org_data.get(org_id, OrgData()).team_members.values():
            members.discard(user_id)
        user = self.users.get(user_id)
        if user and user["orgId"] == org_id:  # Grafana moves the user's current org to another membership
            user["orgId"] = min(self.user_orgs(user_id), default=0)

    def _team_dto(self, team: dict) -> dict:
        return {
            **team,
            "memberCount": len(self.team_members.get(team["id"], ())),
            "avatarUrl": "/avatar/" + uuid.uuid5(uuid.NAMESPACE_DNS, team["name"]).hex,
        }

    def _datasource_dto(self, ds: dict) -> dict:
        secrets = self.datasource_secrets.get(ds["id"], {})
        return {
            **ds,
            "typeLogoUrl": "public/img/icn-datasource.svg",
            "password": "",
            "basicAuthPassword": "",
            "secureJsonFields": {k: True for k, v in secrets.items() if v},
        }

    def _acl_items(self, items: list[dict], uid: str, is_folder: bool, inherited: bool) -> list[dict]:
        owner = self.folders.get(uid) if is_folder else self.dashboards.get(uid, {}).get("dashboard")
        owner_id = owner["id"] if owner else 0
        out = []
        for n, item in enumerate(items, 1):
            team = self.teams.get(item.get("teamId", 0))
            user = self.users.get(item.get("userId", 0))
            out.append(
                {
                    "id": n,
                    ("folderId" if is_folder else "dashboardId"): -1 if "role" in item else owner_id,
                    "created": _now(),
                    "updated": _now(),
                    "userId": item.get("userId", 0),
                    "userLogin": user["login"] if user else "",
                    "userEmail": user["email"] if user else "",
                    "teamId": item.get("teamId", 0),
                    "team": team["name"] if team else "",
                    **({"role": item["role"]} if "role" in item else {}),
                    "permission": item["permission"],
                    "permissionName": PERMISSION_NAMES[item["permission"]],
                    "uid": uid,
                    "title": "",
                    "slug": "",
                    "isFolder": is_folder,
                    "url": "",
                    "inherited": inherited,
                }
            )
        return out

    def _check_acl_items(self, body) -> list[dict]:
        items = body.get("items") if isinstance(body, dict) else None
        if not isinstance(items, list):
            raise ApiError(400, "bad request data")
        clean = []
        for item in items:
            keys = [k for k in ("teamId", "userId", "role") if item.get(k)]
            if len(keys) != 1 or item.get("permission") not in PERMISSION_NAMES:
                raise ApiError(400, "invalid permission item")
            if "teamId" in keys and item["teamId"] not in self.teams:
                raise ApiError(400, "Team not found")
            if "userId" in keys and item["userId"] not in self.users:
                raise ApiError(400, "user not found")
            if "role" in keys and item["role"] not in ("Viewer", "Editor"):
                raise ApiError(400, "invalid role")
            clean.append({keys[0]: item[keys[0]], "permission": item["permission"]})
        return clean

    # ---- request handling ------------------------------------------------------------------
    def handle(self, method: str, path: str, query: dict, headers, body: bytes):
        try:
            return self._answer(method, path, query, headers, body)
        except ApiError as exc:
            return exc.status, exc.body

    def _answer(self, method: str, path: str, query: dict, headers, body: bytes):
        auth_kind, who = self._authenticate(headers)
        org_header = headers.get("X-Grafana-Org-Id")
        with self.lock:
            self.requests.append({"method": method, "path": path, "query": query, "auth": auth_kind, "org": org_header})
        if path == "/api/health" and method == "GET":
            return 200, {"commit": "stand-in", "database": "ok", "version": self.version}
        if auth_kind is None:
            raise ApiError(401, "Unauthorized")
        if auth_kind == "invalid-basic":
            raise ApiError(401, "Invalid username or password")
        if auth_kind == "invalid-token":
            raise ApiError(401, "Invalid API key")
        injected = self.injected_fault(method, path)
        if injected is not None:
            raise ApiError(injected, "stand-in: injected failure")
        data = None
        if method in ("POST", "PUT", "PATCH") and body:
            try:
                data = json.loads(body)
            except ValueError:
                raise ApiError(400, "bad request data") from None
        with self.lock:
            org_id, role = self._request_org(auth_kind, who, org_header)
            for pattern, methods in _ROUTES:
                match = pattern.fullmatch(path)
                if match and method in methods:
                    handler = getattr(self, methods[method])
                    self._ctx_org, self._ctx_role = org_id, role
                    try:
                        return handler(auth_kind, who, query, data, *[unquote(g) for g in match.groups()])
                    finally:
                        self._ctx_org, self._ctx_role = MAIN_ORG_ID, None
        raise ApiError(404, "Not found")

    def _request_org(self, auth_kind, who, org_header):
        """The organisation a request acts in, and the caller's role there.

        authentication.md: `X-Grafana-Org-Id` names the organisation of the request; without it a
        user acts in its current organisation (`orgId`). A user acts only in an organisation it is a
        member of (a Grafana server admin too: membership is what makes an organisation "its"), and
        a service-account token belongs to one organisation (here the main one). The reference gives
        no status for a foreign organisation: the stand-in answers 401, as Grafana was seen to do for
        a server admin whose org did not match (grafana/grafana#11831).
        """
        if org_header is not None:
            try:
                wanted = int(org_header)
            except ValueError:
                raise ApiError(400, "invalid X-Grafana-Org-Id header") from None
        else:
            wanted = None
        if auth_kind == "bearer":
            if wanted not in (None, MAIN_ORG_ID):
                raise ApiError(401, "Unauthorized: the service account token belongs to another organization")
            return MAIN_ORG_ID, "Admin"
        org_id = wanted if wanted is not None else who["orgId"]
        role = self.org_users.get(org_id, {}).get(who["id"])
        if role is None:
            if wanted is None and who["isGrafanaAdmin"]:
                return org_id, None  # a server admin without an org still reaches the admin API
            raise ApiError(401, "Unauthorized")
        return org_id, role

    def _authenticate(self, headers):
        value = headers.get("Authorization", "")
        if value.startswith("Bearer "):
            token = value[7:].strip()
            return ("bearer", None) if token in self.api_tokens else ("invalid-token", None)
        if value.startswith("Basic "):
            try:
                login, _, password = base64.b64decode(value[6:]).decode("utf-8").partition(":")
            except ValueError:
                return "invalid-basic", None
            user = self.user_by_login(login)
            if user and self.passwords.get(user["id"]) == password:
                return "basic", user
            return "invalid-basic", None
        return None, None

    @staticmethod
    def _require_server_admin(auth_kind, who):
        # admin.md: "does not currently work with an API Token ... you will have to use Basic Auth
        # and the Grafana user must have the Grafana Admin permission"
        if auth_kind != "basic" or not who["isGrafanaAdmin"]:
            raise ApiError(403, "Permission denied")

    def _require_org_admin(self, auth_kind, who):
        # the Admin role in the request's organisation (service-account tokens here are org Admins)
        if self._ctx_role != "Admin":
            raise ApiError(403, "Permission denied")

    def _require_datasource_read(self):
        # Grafana 8 answered 403 to a Viewer listing data sources (grafana/grafana#39011); since 9
        # a Viewer reads the data sources of its organisation (GET /api/datasources, as reported
        # for 11.0 in grafana/grafana#89474): every member of the organisation may read them
        if self._ctx_role is None:
            raise ApiError(403, "Permission denied")

    # ---- org / user ------------------------------------------------------------------------
    def get_org(self, auth_kind, who, query, data):
        org = self.orgs.get(self._ctx_org)
        if not org:
            raise ApiError(404, "Organization not found")
        return 200, {**org, "address": {}}

    def get_signed_in_user(self, auth_kind, who, query, data):
        if auth_kind != "basic":
            return 200, {"id": 0, "login": "service-account", "isGrafanaAdmin": False, "orgId": MAIN_ORG_ID}
        return 200, who

    # ---- organisations (org.md, admin organizations API: basic auth of a server admin) -------
    def _org_record(self, org_id: str) -> dict:
        org = self.orgs.get(int(org_id))
        if not org:
            raise ApiError(404, "Organization not found")
        return org

    def list_orgs(self, auth_kind, who, query, data):
        self._require_server_admin(auth_kind, who)
        return 200, [dict(o) for o in sorted(self.orgs.values(), key=lambda o: o["id"])]

    def get_org_by_id(self, auth_kind, who, query, data, org_id):
        self._require_server_admin(auth_kind, who)
        return 200, {**self._org_record(org_id), "address": {}}

    def get_org_by_name(self, auth_kind, who, query, data, name):
        self._require_server_admin(auth_kind, who)
        org = self.org_by_name(name)
        if not org:
            raise ApiError(404, "Organization not found")
        return 200, {**org, "address": {}}

    def create_org(self, auth_kind, who, query, data):
        self._require_server_admin(auth_kind, who)
        name = (data or {}).get("name")
        if not isinstance(name, str) or not name.strip():
            raise ApiError(400, "bad request data")
        if self.org_by_name(name):
            raise ApiError(409, "Organization name taken")
        org_id = next(self._ids)
        self.orgs[org_id] = {"id": org_id, "name": name}
        self.org_data[org_id] = OrgData()
        self.org_users[org_id] = {who["id"]: "Admin"}  # the creator becomes the org's Admin
        return 200, {"orgId": org_id, "message": "Organization created"}

    def delete_org(self, auth_kind, who, query, data, org_id):
        self._require_server_admin(auth_kind, who)
        org = self.orgs.get(int(org_id))
        if not org:
            raise ApiError(404, "Failed to delete organization. ID not found")
        for user_id in list(self.org_users.get(org["id"], {})):
            self._drop_membership(org["id"], user_id)
        del self.orgs[org["id"]]
        del self.org_data[org["id"]]
        del self.org_users[org["id"]]
        return 200, {"message": "Organization deleted"}

    def get_org_users(self, auth_kind, who, query, data, org_id):
        self._require_server_admin(auth_kind, who)
        org = self._org_record(org_id)
        return 200, [
            {
                "orgId": org["id"],
                "userId": uid,
                "email": self.users[uid]["email"],
                "login": self.users[uid]["login"],
                "role": role,
            }
            for uid, role in sorted(self.org_users[org["id"]].items())
        ]

    def add_org_user(self, auth_kind, who, query, data, org_id):
        self._require_server_admin(auth_kind, who)
        org = self._org_record(org_id)
        data = data or {}
        key, role = data.get("loginOrEmail") or "", data.get("role")
        if role not in ORG_ROLES:
            raise ApiError(400, "bad request data")
        user = next((u for u in self.users.values() if key and key in (u["login"], u["email"])), None)
        if not user:
            raise ApiError(404, "User not found")
        if user["id"] in self.org_users[org["id"]]:
            raise ApiError(409, "User is already member of this organization")
        self.org_users[org["id"]][user["id"]] = role
        if not user["orgId"]:
            user["orgId"] = org["id"]
        return 200, {"message": "User added to organization", "userId": user["id"]}

    def update_org_user(self, auth_kind, who, query, data, org_id, user_id):
        self._require_server_admin(auth_kind, who)
        org = self._org_record(org_id)
        role = (data or {}).get("role")
        if role not in ORG_ROLES:
            raise ApiError(400, "bad request data")
        if int(user_id) not in self.org_users[org["id"]]:
            raise ApiError(404, "User not found")
        self.org_users[org["id"]][int(user_id)] = role
        return 200, {"message": "Organization user updated"}

    def remove_org_user(self, auth_kind, who, query, data, org_id, user_id):
        self._require_server_admin(auth_kind, who)
        org = self._org_record(org_id)
        if int(user_id) not in self.org_users[org["id"]]:
            raise ApiError(404, "User not found")
        self._drop_membership(org["id"], int(user_id))
        return 200, {"message": "User removed from organization"}

    def get_user_teams(self, auth_kind, who, query, data, user_id):
        # user.md: Grafana Admin, basic auth; the teams of the signed-in user's organisation
        self._require_server_admin(auth_kind, who)
        user = self._user(user_id)
        return 200, [
            {**self._team_dto(team), "permission": 0}
            for team_id, team in sorted(self.teams.items())
            if user["id"] in self.team_members.get(team_id, ())
        ]

    def get_user_orgs(self, auth_kind, who, query, data, user_id):
        self._require_server_admin(auth_kind, who)
        user = self._user(user_id)
        return 200, [
            {"orgId": org_id, "name": self.orgs[org_id]["name"], "role": role}
            for org_id, role in sorted(self.user_orgs(user["id"]).items())
        ]

    # ---- what a signed-in Viewer reaches (the point of organisations) ------------------------
    def frontend_settings(self, auth_kind, who, query, data):
        # the boot data every signed-in user gets: every data source of its organisation that it
        # may query, uid included (in OSS: all of them)
        return 200, {
            "appUrl": self.app_url,
            "datasources": {
                d["name"]: {"uid": d["uid"], "type": d["type"], "name": d["name"], "id": d["id"]}
                for d in self.datasources.values()
            },
        }

    def query_datasources(self, auth_kind, who, query, data):
        # query_and_resource.md: POST /api/ds/query {queries: [{refId, datasource: {uid}}], from, to};
        # datasources:query is granted to every role of the organisation in OSS
        queries = (data or {}).get("queries")
        if not isinstance(queries, list) or not queries:
            raise ApiError(400, "No queries found in query")
        results = {}
        for q in queries:
            uid = ((q or {}).get("datasource") or {}).get("uid")
            ds = next((d for d in self.datasources.values() if d["uid"] == uid), None)
            if not ds:
                raise ApiError(404, "Data source not found")
            self.queries.append(
                {
                    "org": self._ctx_org,
                    "datasource": uid,
                    "user": who["login"] if who else None,
                    "token": self.datasource_secrets.get(ds["id"], {}).get("token"),
                }
            )
            results[q.get("refId") or "A"] = {"status": 200, "frames": []}
        return 200, {"results": results}

    # ---- teams -----------------------------------------------------------------------------
    def search_teams(self, auth_kind, who, query, data):
        name = (query.get("name") or [""])[0]
        text = (query.get("query") or [""])[0]
        teams = sorted(self.teams.values(), key=lambda t: t["name"])
        if name:
            teams = [t for t in teams if t["name"] == name]
            if not teams and self.team_search_404:
                raise ApiError(404, "Team not found")
        elif text:
            teams = [t for t in teams if text.lower() in t["name"].lower()]
        return 200, {"totalCount": len(teams), "teams": [self._team_dto(t) for t in teams], "page": 1, "perPage": 1000}

    def create_team(self, auth_kind, who, query, data):
        self._require_org_admin(auth_kind, who)
        name = (data or {}).get("name")
        if not isinstance(name, str) or not name:
            raise ApiError(400, "bad request data")
        if self.team_by_name(name):
            raise ApiError(409, "Team name taken")
        team_id = next(self._ids)
        self.teams[team_id] = {
            "id": team_id,
            "uid": uuid.uuid4().hex[:14],
            "orgId": self._ctx_org,
            "name": name,
            "email": (data or {}).get("email") or "",
            "created": _now(),
            "updated": _now(),
        }
        self.team_members[team_id] = set()
        return 200, {"message": "Team created", "teamId": team_id, "uid": self.teams[team_id]["uid"]}

    def _team(self, team_id: str) -> dict:
        team = self.teams.get(int(team_id))
        if not team:
            raise ApiError(404, "Team not found")
        return team

    def get_team(self, auth_kind, who, query, data, team_id):
        return 200, self._team(team_id)

    def delete_team(self, auth_kind, who, query, data, team_id):
        self._require_org_admin(auth_kind, who)
        if int(team_id) not in self.teams:
            raise ApiError(404, "Failed to delete Team. ID not found")
        del self.teams[int(team_id)]
        self.team_members.pop(int(team_id), None)
        for acl in (*self.folder_acl.values(), *self.dashboard_acl.values()):
            acl[:] = [i for i in acl if i.get("teamId") != int(team_id)]
        return 200, {"message": "Team deleted"}

    def get_team_members(self, auth_kind, who, query, data, team_id):
        team = self._team(team_id)
        out = []
        for user_id in sorted(self.team_members[team["id"]]):
            user = self.users[user_id]
            out.append(
                {
                    "orgId": self._ctx_org,
                    "teamId": team["id"],
                    "userId": user_id,
                    "email": user["email"],
                    "login": user["login"],
                    "avatarUrl": "/avatar/x",
                    "permission": 0,
                }
            )
        return 200, out

    def add_team_member(self, auth_kind, who, query, data, team_id):
        self._require_org_admin(auth_kind, who)
        team = self._team(team_id)
        user_id = (data or {}).get("userId")
        if user_id not in self.users:
            raise ApiError(404, "User not found")
        if user_id in self.team_members[team["id"]]:
            raise ApiError(400, "User is already added to this team")
        self.team_members[team["id"]].add(user_id)
        return 200, {"message": "Member added to Team"}

    def remove_team_member(self, auth_kind, who, query, data, team_id, user_id):
        self._require_org_admin(auth_kind, who)
        team = self._team(team_id)
        if int(user_id) not in self.team_members[team["id"]]:
            raise ApiError(404, "Team member not found")
        self.team_members[team["id"]].discard(int(user_id))
        return 200, {"message": "Team Member removed"}

    # ---- folders ---------------------------------------------------------------------------
    def _folder(self, uid: str) -> dict:
        folder = self.folders.get(uid)
        if not folder:
            raise ApiError(404, "Folder not found", status="not-found")
        return folder

    def list_folders(self, auth_kind, who, query, data):
        return 200, [
            {"id": f["id"], "uid": f["uid"], "title": f["title"]}
            for f in sorted(self.folders.values(), key=lambda f: f["id"])
        ]

    def get_folder(self, auth_kind, who, query, data, uid):
        return 200, self._folder(uid)

    def create_folder(self, auth_kind, who, query, data):
        self._require_org_admin(auth_kind, who)
        data = data or {}
        title = data.get("title")
        uid = data.get("uid") or uuid.uuid4().hex[:14]
        if not isinstance(title, str) or not title.strip():
            raise ApiError(400, "Folder title cannot be empty")
        if not isinstance(uid, str) or not _UID.match(uid):
            raise ApiError(400, "uid contains illegal characters")
        if len(uid) > 40:
            raise ApiError(400, "uid too long, max 40 characters")
        if uid in self.folders or uid in self.dashboards:
            raise ApiError(409, "A folder/dashboard with the same uid already exists")
        if any(f["title"] == title for f in self.folders.values()):
            raise ApiError(409, "A folder or dashboard in the general folder with the same name already exists")
        folder_id = next(self._ids)
        creator = who["login"] if who else "service-account"
        self.folders[uid] = {
            "id": folder_id,
            "uid": uid,
            "title": title,
            "url": f"/dashboards/f/{uid}/{_slug(title)}",
            "hasAcl": False,
            "canSave": True,
            "canEdit": True,
            "canAdmin": True,
            "canDelete": True,
            "createdBy": creator,
            "created": _now(),
            "updatedBy": creator,
            "updated": _now(),
            "version": 1,
        }
        # the defaults of a new folder: Viewer and Editor roles (folder_permissions.md), the creator Admin
        self.folder_acl[uid] = [{"role": "Viewer", "permission": 1}, {"role": "Editor", "permission": 2}]
        if who:
            self.folder_acl[uid].append({"userId": who["id"], "permission": 4})
        return 200, self.folders[uid]

    def delete_folder(self, auth_kind, who, query, data, uid):
        self._require_org_admin(auth_kind, who)
        folder = self._folder(uid)
        for dash_uid in [u for u, d in self.dashboards.items() if d["folderUid"] == uid]:
            del self.dashboards[dash_uid]
            self.dashboard_acl.pop(dash_uid, None)
        del self.folders[uid]
        self.folder_acl.pop(uid, None)
        return 200, {"message": "Folder deleted", "id": folder["id"], "title": folder["title"]}

    def get_folder_permissions(self, auth_kind, who, query, data, uid):
        self._folder(uid)
        return 200, self._acl_items(self.folder_acl[uid], uid, True, False)

    def set_folder_permissions(self, auth_kind, who, query, data, uid):
        self._require_org_admin(auth_kind, who)
        folder = self._folder(uid)
        self.folder_acl[uid] = self._check_acl_items(data)
        return 200, {"message": "Folder permissions updated", "id": folder["id"], "title": folder["title"]}

    # ---- data sources ----------------------------------------------------------------------
    def list_datasources(self, auth_kind, who, query, data):
        self._require_datasource_read()
        return 200, [self._datasource_dto(d) for d in sorted(self.datasources.values(), key=lambda d: d["name"])]

    def _ds_by(self, key: str, value: str) -> dict:
        ds = next((d for d in self.datasources.values() if d[key] == value), None)
        if not ds:
            raise ApiError(404, "Data source not found")
        return ds

    def get_datasource_by_name(self, auth_kind, who, query, data, name):
        self._require_datasource_read()
        return 200, self._datasource_dto(self._ds_by("name", name))

    def get_datasource_by_uid(self, auth_kind, who, query, data, uid):
        self._require_datasource_read()
        return 200, self._datasource_dto(self._ds_by("uid", uid))

    def create_datasource(self, auth_kind, who, query, data):
        self._require_org_admin(auth_kind, who)
        data = data or {}
        name, ds_type = data.get("name"), data.get("type")
        if not isinstance(name, str) or not name or not isinstance(ds_type, str) or not ds_type:
            raise ApiError(400, "bad request data")
        uid = data.get("uid") or uuid.uuid4().hex[:14]
        if not _UID.match(uid) or len(uid) > 40:
            raise ApiError(400, "Failed to add datasource: invalid UID")
        if self.datasource_by_name(name):
            raise ApiError(409, "data source with the same name already exists")
        if any(d["uid"] == uid for d in self.datasources.values()):
            raise ApiError(409, "data source with the same uid already exists")
        ds_id = next(self._ids)
        self.datasources[ds_id] = self._datasource_record(ds_id, uid, data, version=1)
        self.datasource_secrets[ds_id] = dict(data.get("secureJsonData") or {})
        dto = self._datasource_dto(self.datasources[ds_id])
        return 200, {"datasource": dto, "id": ds_id, "message": "Datasource added", "name": name}

    def _datasource_record(self, ds_id, uid, data, version):
        return {
            "id": ds_id,
            "uid": uid,
            "orgId": self._ctx_org,
            "name": data["name"],
            "type": data["type"],
            "access": data.get("access") or "proxy",
            "url": data.get("url") or "",
            "user": data.get("user") or "",
            "database": data.get("database") or "",
            "basicAuth": bool(data.get("basicAuth")),
            "basicAuthUser": data.get("basicAuthUser") or "",
            "withCredentials": bool(data.get("withCredentials")),
            "isDefault": bool(data.get("isDefault")),
            "jsonData": data.get("jsonData") or {},
            "version": version,
            "readOnly": False,
        }

    def update_datasource(self, auth_kind, who, query, data, uid):
        self._require_org_admin(auth_kind, who)
        ds = self._ds_by("uid", uid)
        data = data or {}
        if not data.get("name") or not data.get("type"):
            raise ApiError(400, "bad request data")
        other = self.datasource_by_name(data["name"])
        if other and other["id"] != ds["id"]:
            raise ApiError(409, "Failed to update datasource: data source with the same name already exists")
        if "version" in data and data["version"] is not None and data["version"] < ds["version"]:
            raise ApiError(409, "Datasource has already been updated by someone else. Please reload and try again")
        self.datasources[ds["id"]] = self._datasource_record(
            ds["id"], data.get("uid") or uid, data, version=ds["version"] + 1
        )
        # secrets that the update does not carry are kept (Grafana's UpdateDataSource)
        self.datasource_secrets[ds["id"]].update(data.get("secureJsonData") or {})
        dto = self._datasource_dto(self.datasources[ds["id"]])
        return 200, {"datasource": dto, "id": ds["id"], "message": "Datasource updated", "name": data["name"]}

    def _delete_datasource(self, ds):
        del self.datasources[ds["id"]]
        self.datasource_secrets.pop(ds["id"], None)
        return 200, {"message": "Data source deleted", "id": ds["id"]}

    def delete_datasource_by_uid(self, auth_kind, who, query, data, uid):
        self._require_org_admin(auth_kind, who)
        return self._delete_datasource(self._ds_by("uid", uid))

    def delete_datasource_by_name(self, auth_kind, who, query, data, name):
        self._require_org_admin(auth_kind, who)
        return self._delete_datasource(self._ds_by("name", name))

    # ---- dashboards ------------------------------------------------------------------------
    def save_dashboard(self, auth_kind, who, query, data):
        self._require_org_admin(auth_kind, who)
        data = data or {}
        dashboard = data.get("dashboard")
        if not isinstance(dashboard, dict) or not dashboard.get("title"):
            raise ApiError(400, "Dashboard title cannot be empty")
        folder_uid = data.get("folderUid") or ""
        if folder_uid and folder_uid not in self.folders:
            raise ApiError(400, "folder not found")
        uid = dashboard.get("uid") or uuid.uuid4().hex[:14]
        if not _UID.match(uid):
            raise ApiError(400, "uid contains illegal characters")
        if len(uid) > 40:
            raise ApiError(400, "uid too long, max 40 characters")
        if uid in self.folders:
            raise ApiError(400, "A dashboard with the same uid already exists")
        existing = self.dashboards.get(uid)
        overwrite = bool(data.get("overwrite"))
        if not overwrite:
            if existing and dashboard.get("version") != existing["version"]:
                raise ApiError(412, "The dashboard has been changed by someone else", status="version-mismatch")
            same_title = [
                u
                for u, d in self.dashboards.items()
                if u != uid and d["folderUid"] == folder_uid and d["dashboard"]["title"] == dashboard["title"]
            ]
            if same_title:
                raise ApiError(412, "A dashboard with the same name in the folder already exists", status="name-exists")
        dash_id = existing["dashboard"]["id"] if existing else next(self._ids)
        version = existing["version"] + 1 if existing else 1
        stored = json.loads(json.dumps(dashboard))
        stored.update({"id": dash_id, "uid": uid, "version": version})
        self.dashboards[uid] = {"dashboard": stored, "folderUid": folder_uid, "version": version}
        self.dashboard_acl.setdefault(uid, [])
        slug = _slug(stored["title"])
        return 200, {
            "id": dash_id,
            "uid": uid,
            "url": f"/d/{uid}/{slug}",
            "status": "success",
            "version": version,
            "slug": slug,
        }

    def _dashboard(self, uid: str) -> dict:
        dash = self.dashboards.get(uid)
        if not dash:
            raise ApiError(404, "Dashboard not found")
        return dash

    def get_dashboard(self, auth_kind, who, query, data, uid):
        dash = self._dashboard(uid)
        folder = self.folders.get(dash["folderUid"])
        slug = _slug(dash["dashboard"]["title"])
        meta = {
            "type": "db",
            "canSave": True,
            "canEdit": True,
            "canAdmin": True,
            "canStar": True,
            "slug": slug,
            "url": f"/d/{uid}/{slug}",
            "version": dash["version"],
            "folderId": folder["id"] if folder else 0,
            "folderUid": dash["folderUid"],
            "folderTitle": folder["title"] if folder else "General",
            "folderUrl": folder["url"] if folder else "",
            "provisioned": False,
        }
        return 200, {"dashboard": dash["dashboard"], "meta": meta}

    def delete_dashboard(self, auth_kind, who, query, data, uid):
        self._require_org_admin(auth_kind, who)
        dash = self._dashboard(uid)
        del self.dashboards[uid]
        self.dashboard_acl.pop(uid, None)
        title = dash["dashboard"]["title"]
        return 200, {"title": title, "message": f"Dashboard {title} deleted", "id": dash["dashboard"]["id"]}

    def get_dashboard_permissions(self, auth_kind, who, query, data, uid):
        dash = self._dashboard(uid)
        inherited = self.folder_acl.get(dash["folderUid"], []) if dash["folderUid"] else []
        return 200, (
            self._acl_items(inherited, dash["folderUid"], True, True)
            + self._acl_items(self.dashboard_acl[uid], uid, False, False)
        )

    def set_dashboard_permissions(self, auth_kind, who, query, data, uid):
        self._require_org_admin(auth_kind, who)
        self._dashboard(uid)
        self.dashboard_acl[uid] = self._check_acl_items(data)
        return 200, {"message": "Dashboard permissions updated"}

    def search(self, auth_kind, who, query, data):
        kind = (query.get("type") or [""])[0]
        folder_uids = set(query.get("folderUIDs") or [])
        text = (query.get("query") or [""])[0].lower()
        hits = []
        if kind in ("", "dash-folder") and not folder_uids:
            for f in self.folders.values():
                if text in f["title"].lower():
                    hits.append(
                        {
                            "id": f["id"],
                            "uid": f["uid"],
                            "title": f["title"],
                            "url": f["url"],
                            "type": "dash-folder",
                            "tags": [],
                            "isStarred": False,
                        }
                    )
        if kind in ("", "dash-db"):
            for uid, d in self.dashboards.items():
                if folder_uids and d["folderUid"] not in folder_uids:
                    continue
                if text not in d["dashboard"]["title"].lower():
                    continue
                folder = self.folders.get(d["folderUid"])
                hits.append(
                    {
                        "id": d["dashboard"]["id"],
                        "uid": uid,
                        "title": d["dashboard"]["title"],
                        "url": f"/d/{uid}/{_slug(d['dashboard']['title'])}",
                        "type": "dash-db",
                        "tags": d["dashboard"].get("tags", []),
                        "isStarred": False,
                        "folderId": folder["id"] if folder else 0,
                        "folderUid": d["folderUid"],
                        "folderTitle": folder["title"] if folder else "",
                        "folderUrl": folder["url"] if folder else "",
                    }
                )
        return 200, sorted(hits, key=lambda h: h["title"])

    # ---- users -----------------------------------------------------------------------------
    def admin_create_user(self, auth_kind, who, query, data):
        self._require_server_admin(auth_kind, who)
        data = data or {}
        email = (data.get("email") or "").strip()
        login = (data.get("login") or "").strip() or email
        if not login:
            raise ApiError(400, "Validation error, need specify either username or email")
        password = data.get("password") or ""
        if len(password) < 4:
            raise ApiError(400, "Password is missing or too short")
        if any(u["login"] == login or (email and u["email"] == email) for u in self.users.values()):
            raise ApiError(412, f"User with email '{email}' or username '{login}' already exists")
        org_id = data.get("OrgId") or MAIN_ORG_ID
        if org_id not in self.orgs:
            raise ApiError(400, "organization not found")  # pkg/api/admin_users.go: ErrOrgNotFound
        user_id = self._new_user(login, data.get("name"), email, password, org_id=org_id)
        return 200, {"id": user_id, "uid": self.users[user_id]["uid"], "message": "User created"}

    def _user(self, user_id: str) -> dict:
        user = self.users.get(int(user_id))
        if not user:
            raise ApiError(404, "user not found")
        return user

    def admin_set_password(self, auth_kind, who, query, data, user_id):
        self._require_server_admin(auth_kind, who)
        user = self._user(user_id)
        password = (data or {}).get("password") or ""
        if len(password) < 4:
            raise ApiError(400, "New password too short")
        self.passwords[user["id"]] = password
        return 200, {"message": "User password updated"}

    def admin_delete_user(self, auth_kind, who, query, data, user_id):
        self._require_server_admin(auth_kind, who)
        user = self._user(user_id)
        for org_id in list(self.user_orgs(user["id"])):
            self._drop_membership(org_id, user["id"])
        del self.users[user["id"]]
        self.passwords.pop(user["id"], None)
        return 200, {"message": "User deleted"}

    def lookup_user(self, auth_kind, who, query, data):
        self._require_server_admin(auth_kind, who)
        key = (query.get("loginOrEmail") or [""])[0]
        user = next((u for u in self.users.values() if key and key in (u["login"], u["email"])), None)
        if not user:
            raise ApiError(404, "user not found")
        return 200, user

    def update_user(self, auth_kind, who, query, data, user_id):
        self._require_server_admin(auth_kind, who)
        user = self._user(user_id)
        data = data or {}
        for key in ("login", "email", "name"):
            if data.get(key):
                clash = next((u for u in self.users.values() if u["id"] != user["id"] and u[key] == data[key]), None)
                if clash and key != "name":
                    raise ApiError(409, "User with that email or login already exists")
                user[key] = data[key]
        user["updatedAt"] = _now()
        return 200, {"message": "User updated"}


_R = re.compile
_ROUTES = [
    (_R(r"/api/org/?"), {"GET": "get_org"}),
    (_R(r"/api/orgs/?"), {"GET": "list_orgs", "POST": "create_org"}),
    (_R(r"/api/orgs/name/([^/]+)"), {"GET": "get_org_by_name"}),
    (_R(r"/api/orgs/(\d+)"), {"GET": "get_org_by_id", "DELETE": "delete_org"}),
    (_R(r"/api/orgs/(\d+)/users"), {"GET": "get_org_users", "POST": "add_org_user"}),
    (_R(r"/api/orgs/(\d+)/users/(\d+)"), {"PATCH": "update_org_user", "DELETE": "remove_org_user"}),
    (_R(r"/api/users/(\d+)/orgs"), {"GET": "get_user_orgs"}),
    (_R(r"/api/users/(\d+)/teams"), {"GET": "get_user_teams"}),
    (_R(r"/api/frontend/settings"), {"GET": "frontend_settings"}),
    (_R(r"/api/ds/query"), {"POST": "query_datasources"}),
    (_R(r"/api/user"), {"GET": "get_signed_in_user"}),
    (_R(r"/api/teams/search"), {"GET": "search_teams"}),
    (_R(r"/api/teams"), {"POST": "create_team"}),
    (_R(r"/api/teams/(\d+)"), {"GET": "get_team", "DELETE": "delete_team"}),
    (_R(r"/api/teams/(\d+)/members"), {"GET": "get_team_members", "POST": "add_team_member"}),
    (_R(r"/api/teams/(\d+)/members/(\d+)"), {"DELETE": "remove_team_member"}),
    (_R(r"/api/folders"), {"GET": "list_folders", "POST": "create_folder"}),
    (_R(r"/api/folders/([^/]+)"), {"GET": "get_folder", "DELETE": "delete_folder"}),
    (_R(r"/api/folders/([^/]+)/permissions"), {"GET": "get_folder_permissions", "POST": "set_folder_permissions"}),
    (_R(r"/api/datasources"), {"GET": "list_datasources", "POST": "create_datasource"}),
    (_R(r"/api/datasources/name/([^/]+)"), {"GET": "get_datasource_by_name", "DELETE": "delete_datasource_by_name"}),
    (
        _R(r"/api/datasources/uid/([^/]+)"),
        {"GET": "get_datasource_by_uid", "PUT": "update_datasource", "DELETE": "delete_datasource_by_uid"},
    ),
    (_R(r"/api/dashboards/db"), {"POST": "save_dashboard"}),
    (_R(r"/api/dashboards/uid/([^/]+)"), {"GET": "get_dashboard", "DELETE": "delete_dashboard"}),
    (
        _R(r"/api/dashboards/uid/([^/]+)/permissions"),
        {"GET": "get_dashboard_permissions", "POST": "set_dashboard_permissions"},
    ),
    (_R(r"/api/search/?"), {"GET": "search"}),
    (_R(r"/api/admin/users"), {"POST": "admin_create_user"}),
    (_R(r"/api/admin/users/(\d+)/password"), {"PUT": "admin_set_password"}),
    (_R(r"/api/admin/users/(\d+)"), {"DELETE": "admin_delete_user"}),
    (_R(r"/api/users/lookup"), {"GET": "lookup_user"}),
    (_R(r"/api/users/(\d+)"), {"PUT": "update_user"}),
]
