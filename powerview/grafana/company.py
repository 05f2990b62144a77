"""A company's Grafana resources: created, brought up to date, deleted; users added.

A company has views: its own (datasource influxdb_<company>, dashboard powerview_<company>, client
id <company>) and one per user added with add_grafana_user_to_team.yml (datasource
influxdb_<company>_<login>, dashboard powerview_<company>_<login> that the user edits, client id
<company>_<login>). Both are made by the same code, given a `View`. The datasources PowerView
makes carry their owner in jsonData (powerviewCompany, powerviewUser): the deployed names can
collide (company acme's user x and company acme_x), and a datasource owned by another company or
user is never changed nor deleted.

Every resource is read first and written only when it is missing or differs, so a second run
writes nothing. In check mode nothing is written: each write that would happen is recorded in
`Run.changes` (one line each, e.g. "create team acme") and `Run.diff` (before/after, no secrets).

Two tenancies (GRAFANA_TENANCY):
- `team` (the deployed layout): in the credentials' organisation, a team <company> with the
  company's users; folder, datasource and dashboard readable by that team only.
- `org`: one organisation <company> holding the folder, datasource and dashboard; the company's
  users are its members (Viewer) and are not members of the main organisation. Calls into it use
  basic auth of the server admin and the X-Grafana-Org-Id header.
"""

from __future__ import annotations

import os
import secrets
import string
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..grafana_names import company_names, user_names
from ..names import name_problem
from . import render
from .client import Answer, Grafana, GrafanaError, seg
from .config_api import ConfigApi
from .settings import GrafanaSettings

MAIN_ORG_ID = 1  # Grafana's first organisation, where auto_assign_org puts new users
VIEW = 1  # folder/dashboard permission "View"
EDIT = 2  # dashboard permission "Edit"
PERMISSION_NAMES = {VIEW: "View", EDIT: "Edit", 4: "Admin"}
SECRET_JSON_KEYS = ("token", "httpHeaderValue1")
# what a datasource update carries back (GET /api/datasources/name/:name → PUT .../uid/:uid)
DATASOURCE_FIELDS = (
    "name",
    "type",
    "access",
    "url",
    "user",
    "database",
    "basicAuth",
    "basicAuthUser",
    "withCredentials",
    "isDefault",
    "version",
)
# lists the production plugin lets users edit: set when missing, never reset
PLUGIN_EDITABLE = ("channelsList", "triphasicList", "virtualSeries")


class ProvisioningError(Exception):
    """Something the operator must fix; the message says what, never a secret."""


def check_name(kind: str, value: Any, label: str | None = None) -> str:
    if not isinstance(value, str):
        raise ProvisioningError(f"{label or kind + '_name'} must be a string")
    problem = name_problem(kind, value)
    if problem:
        raise ProvisioningError(problem)
    return value


def contains(actual: Any, desired: Any) -> bool:
    """Every key of `desired` is in `actual` with an equal value (recursively for mappings)."""
    if isinstance(desired, dict):
        return isinstance(actual, dict) and all(k in actual and contains(actual[k], v) for k, v in desired.items())
    return actual == desired


def acl(items: Any) -> list:
    """Permission items (as listed or as posted) → a comparable sorted list; inherited ones left out."""
    out = []
    for item in items or []:
        if item.get("inherited"):
            continue
        if item.get("teamId"):
            out.append(("team", str(int(item["teamId"])), int(item["permission"])))
        elif item.get("userId"):
            out.append(("user", str(int(item["userId"])), int(item["permission"])))
        elif item.get("role"):
            out.append(("role", str(item["role"]), int(item["permission"])))
    return sorted(out)


def _acl_item(entry: tuple[str, str, int]) -> dict:
    """A listed permission (as `acl` gives it) → the item that posts it back."""
    kind, who, permission = entry
    key = {"team": "teamId", "user": "userId", "role": "role"}[kind]
    return {key: who if kind == "role" else int(who), "permission": permission}


@dataclass(frozen=True)
class View:
    """One dashboard and the datasource it reads: the company's own (`login` empty) or a user's."""

    company: str
    datasource_name: str
    datasource_uid: str
    dashboard_uid: str
    dashboard_title: str
    client_id: str
    login: str = ""
    editor_id: int | None = None  # the user who may edit the dashboard (a user view)

    @property
    def owner(self) -> tuple[str, str]:
        return self.company, self.login

    @property
    def label(self) -> str:
        return f"user {self.login} of company {self.company}" if self.login else f"company {self.company}"

    def editors(self) -> list[dict]:
        """The dashboard's extra permission items: the user of a user view edits it."""
        return [{"userId": self.editor_id, "permission": EDIT}] if self.login else []


def client_id_of(datasource: dict, view: View) -> str:
    """The config-API client id a dashboard of `view` uses: the datasource's own when it has one
    (the deployed ones say <company>_<login>), else PowerView's name for `view`."""
    client_id = (datasource.get("jsonData") or {}).get("clientId")
    return client_id if isinstance(client_id, str) and client_id else view.client_id


def describe_owner(owner: tuple[str, str] | None) -> str:
    if owner is None:
        return "nobody PowerView knows (made by hand, or by another tool)"
    company, login = owner
    return f"user {login} of company {company}" if login else f"company {company} (its own data source)"


def datasource_owner(datasource: dict) -> tuple[str, str] | None:
    """(company, user login or "") that PowerView made `datasource` for; None when not PowerView's.

    Read from the jsonData markers powerviewCompany/powerviewUser; a datasource made before them
    (the deployed playbooks, an older PowerView) is recognised by its bucket and client id:
    influxdb_<bucket> is the company's own, influxdb_<clientId> with clientId <bucket>_<login> the
    user's. Never by the name alone."""
    json_data = datasource.get("jsonData") or {}
    company = json_data.get("powerviewCompany")
    if isinstance(company, str) and company:
        login = json_data.get("powerviewUser")
        return company, login if isinstance(login, str) else ""
    bucket = json_data.get("defaultBucket") or json_data.get("dbName")
    if not isinstance(bucket, str) or not bucket:
        return None
    name = datasource.get("name")
    if name == f"influxdb_{bucket}":
        return bucket, ""
    client_id = json_data.get("clientId")
    if isinstance(client_id, str) and client_id.startswith(bucket + "_") and name == f"influxdb_{client_id}":
        return bucket, client_id[len(bucket) + 1 :]
    return None


@dataclass
class Run:
    """One provisioning run: the calls, check mode, and what was (or would be) changed."""

    grafana: Grafana
    check: bool = False
    changes: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    before: dict[str, Any] = field(default_factory=dict)
    after: dict[str, Any] = field(default_factory=dict)

    def read(self, path: str, **kwargs) -> Answer:
        return self.grafana.call("GET", path, **kwargs)

    def write(self, change: str, method: str, path: str, **kwargs) -> Answer | None:
        """Record `change`; call Grafana unless in check mode (then None)."""
        self.changes.append(change)
        if self.check:
            return None
        return self.grafana.call(method, path, **kwargs)

    def diff(self, what: str, before: Any, after: Any) -> None:
        self.before[what] = before
        self.after[what] = after

    @property
    def changed(self) -> bool:
        return bool(self.changes)

    def result(self, **facts) -> dict:
        return {
            "changed": self.changed,
            "changes": list(self.changes),
            "notes": list(self.notes),
            "diff": {"before": self.before, "after": self.after},
            **facts,
        }


def _write_secret_file(path: Path, content: str) -> None:
    """Write `content` to a new file, mode 0600, in a 0700 folder; never overwrite."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(content + "\n")


def new_password() -> str:
    alphabet = string.ascii_letters + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(32))


class Company:
    """The Grafana resources of one company, in the tenancy of the settings (or the one given)."""

    def __init__(
        self,
        run: Run,
        settings: GrafanaSettings,
        company: str,
        tenancy: str | None = None,
        templates_dir: Path | None = None,
    ):
        self.run = run
        self.g = run.grafana
        self.s = settings
        self.company = check_name("company", company)
        self.names = company_names(company)
        self.tenancy = tenancy or settings.tenancy
        self.templates_dir = Path(templates_dir or settings.templates_dir)
        # the organisation of the company's resources: None = the credentials' own (team tenancy)
        self.org_id: int | None = None
        self.org_missing = False  # org tenancy, check mode: the organisation is not there yet

    # ---- views ------------------------------------------------------------------------------
    def _view(self, n: dict[str, str], login: str = "", editor_id: int | None = None) -> View:
        return View(
            self.company,
            n["datasource_name"],
            n["datasource_uid"],
            n["dashboard_uid"],
            n["dashboard_title"],
            n["client_id"],
            login=login,
            editor_id=editor_id,
        )

    def own_view(self) -> View:
        return self._view(self.names)

    def user_view(self, login: str, user_id: int | None = None) -> View:
        return self._view(user_names(self.company, check_name("user", login, "user_login")), login, user_id)

    # ---- scope ------------------------------------------------------------------------------
    @property
    def in_org(self) -> bool:
        return self.tenancy == "org"

    def _org_kw(self) -> dict:
        return {"org_id": self.org_id} if self.org_id is not None else {}

    def _read(self, path: str, ok=(200, 404), **kwargs) -> Answer:
        """An org-scoped read; in a not-yet-created organisation, everything is absent."""
        if self.org_missing:
            return Answer(404, None)
        return self.run.read(path, ok=ok, **self._org_kw(), **kwargs)

    def _write(self, change: str, method: str, path: str, **kwargs) -> Answer | None:
        if self.org_missing:
            self.run.changes.append(change)
            return None
        return self.run.write(change, method, path, **self._org_kw(), **kwargs)

    # ---- organisation (org tenancy) -----------------------------------------------------------
    def find_org(self) -> dict | None:
        answer = self.run.read(f"/api/orgs/name/{seg(self.company)}", admin=True, ok=(200, 404))
        return answer.body if answer.found else None

    def use_org(self, create: bool) -> bool:
        """Point the calls at the company's organisation; create it when asked. False: it is absent."""
        org = self.find_org()
        if org is None:
            if not create:
                return False
            answer = self.run.write(
                f"create organisation {self.company}",
                "POST",
                "/api/orgs",
                admin=True,
                json={"name": self.company},
                ok=(200, 409),
            )
            self.run.diff(f"organisation {self.company}", "absent", "present")
            if answer is None:
                self.org_missing = True
                return True
            org = {"id": int(answer.body["orgId"])} if answer.status == 200 else self.find_org()
            if org is None:
                raise ProvisioningError(f"organisation {self.company} was reported taken but cannot be found")
        if int(org["id"]) == MAIN_ORG_ID:
            raise ProvisioningError(f"organisation {self.company} is Grafana's main organisation: refusing to use it")
        self.org_id = int(org["id"])
        self._ensure_admin_member()
        return True

    def _ensure_admin_member(self) -> None:
        """The server admin acts in the organisation only as a member (Admin role)."""
        members = self.run.read(f"/api/orgs/{self.org_id}/users", admin=True).body or []
        mine = next((m for m in members if m.get("login") == self.s.username), None)
        if mine is None:
            self.run.write(
                f"add {self.s.username} to organisation {self.company} as Admin",
                "POST",
                f"/api/orgs/{self.org_id}/users",
                admin=True,
                json={"loginOrEmail": self.s.username, "role": "Admin"},
            )
        elif mine.get("role") != "Admin":
            self.run.write(
                f"make {self.s.username} Admin of organisation {self.company}",
                "PATCH",
                f"/api/orgs/{self.org_id}/users/{mine['userId']}",
                admin=True,
                json={"role": "Admin"},
            )

    # ---- team (team tenancy) ------------------------------------------------------------------
    def find_team(self) -> int | None:
        answer = self._read("/api/teams/search", params={"name": self.names["team"]})
        teams = (answer.body or {}).get("teams", []) if answer.found else []
        return next((int(t["id"]) for t in teams if t.get("name") == self.names["team"]), None)

    def ensure_team(self) -> int | None:
        team_id = self.find_team()
        if team_id is not None:
            return team_id
        answer = self._write(
            f"create team {self.names['team']}", "POST", "/api/teams", json={"name": self.names["team"]}, ok=(200, 409)
        )  # 409: made meanwhile
        self.run.diff(f"team {self.names['team']}", "absent", "present")
        if answer is None:
            return None
        return int(answer.body["teamId"]) if answer.status == 200 else self.find_team()

    # ---- folder -------------------------------------------------------------------------------
    def find_folder(self) -> str | None:
        if self._read(f"/api/folders/{seg(self.names['folder_uid'])}").found:
            return self.names["folder_uid"]
        listing = self._read("/api/folders", ok=(200,), params={"limit": 1000})  # made by hand or an old version
        if not listing.found:
            return None
        return next((f["uid"] for f in listing.body or [] if f.get("title") == self.names["folder_title"]), None)

    def ensure_folder(self) -> tuple[str, bool, bool]:
        """(uid, whether it exists now: in check mode a folder to be created does not, whether this
        run creates it)."""
        uid = self.find_folder()
        if uid:
            return uid, True, False
        answer = self._write(
            f"create folder {self.names['folder_title']}",
            "POST",
            "/api/folders",
            json={"uid": self.names["folder_uid"], "title": self.names["folder_title"]},
            ok=(200, 409),
        )  # 409: made meanwhile (same uid or same title)
        self.run.diff(f"folder {self.names['folder_uid']}", "absent", "present")
        if answer is None:
            return self.names["folder_uid"], False, True
        uid = answer.body["uid"] if answer.status == 200 else self.find_folder()
        if not uid:
            raise ProvisioningError(
                f"folder {self.names['folder_title']}: Grafana answered 409 "
                f"({answer.body.get('message', '')}) but no such folder can be found"
            )
        return uid, True, answer.status == 200

    def viewers(self, team_id: int | None) -> list[dict]:
        """Who views the folder and the dashboard: the team (team tenancy), the org's Viewers (org)."""
        if self.in_org:
            return [{"role": "Viewer", "permission": VIEW}]
        return [{"teamId": team_id, "permission": VIEW}]

    def ensure_permissions(
        self,
        kind: str,
        path: str,
        items: list[dict],
        label: str,
        exists: bool,
        view: View | None = None,
        created: bool = False,
    ) -> None:
        """`items` on the folder or dashboard at `path` (`exists`: it can be read now). On one this
        run creates (`created`), exactly `items` (Grafana's defaults for a new folder go). On one
        that was there, only the missing principals are added: an existing permission (the
        customer's, the deployed playbook's) is never removed nor lowered. An item whose user is
        not created yet (check mode) makes the write certain."""
        known = all(item.get("userId", 0) is not None for item in items)
        before: list = []
        body = items
        if exists:
            current = acl(self._read(path, ok=(200,)).body)
            before = [list(i) for i in current]
            if created:
                if known and current == acl(items):
                    return
            else:
                have = {(k, i) for k, i, _ in current}
                missing = [item for item in items if not known or acl([item])[0][:2] not in have]
                if not missing:
                    return
                body = [_acl_item(entry) for entry in current] + missing
        who = "the organisation's Viewers" if self.in_org else f"team {self.names['team']}"
        whom = f"{who} View" + (f", {view.login} Edit" if view is not None and view.login else "")
        verb = "set" if created or not exists else "add missing"
        self._write(f"{verb} {kind} permissions of {label} ({whom})", "POST", path, json={"items": body})
        self.run.diff(f"{kind} permissions {label}", before, [list(i) for i in acl(body)] if known else "set")

    # ---- datasource ---------------------------------------------------------------------------
    def desired_datasource(self, token_id: str | None, view: View | None = None) -> dict:
        """The datasource of `view` (default: the company's own) as PowerView wants it (no secret).
        jsonData: what the production plugin reads (as the deployed playbooks set it), or Grafana's
        InfluxDB datasource in InfluxQL; and the owner markers (not secrets)."""
        view = view or self.own_view()
        bucket = self.names["bucket"]
        if render.is_influxql(self.s.datasource_type):
            json_data: dict[str, Any] = {
                "version": "InfluxQL",
                "dbName": bucket,
                "httpMode": "POST",
                "httpHeaderName1": "Authorization",
            }
        else:
            json_data = {
                "version": "Flux",
                "organization": self.s.influx_org,
                "defaultBucket": bucket,
                "httpMode": "POST",
                "httpHeaderName1": "Authorization",
                "readOnly": True,
                "clientId": view.client_id,
                "seriesConfigApiUrl": self.s.series_config_api_url,
            }
        # not a secret: the InfluxDB authorization id, to see when the token has changed
        json_data["powerviewTokenId"] = token_id or ""
        json_data["powerviewCompany"] = view.company
        json_data["powerviewUser"] = view.login
        return {
            "name": view.datasource_name,
            "type": self.s.datasource_type,
            "access": "proxy",
            "url": self.s.influx_url_for_grafana,
            "isDefault": False,
            "jsonData": json_data,
        }

    def secure_json(self, token: str) -> dict:
        secure = {"httpHeaderValue1": f"Token {token}"}
        if not render.is_influxql(self.s.datasource_type):
            secure["token"] = token
        return secure

    def find_datasource(self, view: View | None = None) -> dict | None:
        name = (view or self.own_view()).datasource_name
        answer = self._read(f"/api/datasources/name/{seg(name)}")
        return answer.body if answer.found else None

    def check_owner(self, datasource: dict, view: View) -> None:
        """Refuse a datasource of `view`'s name that PowerView did not make for `view`."""
        owner = datasource_owner(datasource)
        if owner != view.owner:
            raise ProvisioningError(
                f"data source {view.datasource_name} belongs to {describe_owner(owner)}, not to "
                f"{view.label}: not touching it (the names influxdb_<company> and "
                "influxdb_<company>_<login> collide; rename the user or the company, or remove that "
                "data source by hand if it is really unused)"
            )

    def ensure_datasource(self, token: str | None, token_id: str | None, view: View | None = None) -> dict:
        view = view or self.own_view()
        desired = self.desired_datasource(token_id, view)
        current = self.find_datasource(view)
        name = view.datasource_name
        if current is not None:
            self.check_owner(current, view)
        if current is None:
            if not token and not self.run.check:
                raise ProvisioningError(f"no InfluxDB token for data source {name}")
            json_data = {
                **desired["jsonData"],
                **({} if render.is_influxql(self.s.datasource_type) else {k: [] for k in PLUGIN_EDITABLE}),
            }
            body = {
                **desired,
                "jsonData": json_data,
                "uid": view.datasource_uid,
                "secureJsonData": self.secure_json(token or ""),
            }
            answer = self._write(
                f"create data source {name}", "POST", "/api/datasources", json=body, ok=(200, 409)
            )  # 409: made meanwhile
            self.run.diff(f"data source {name}", "absent", desired)
            if answer is None:
                return {**desired, "uid": view.datasource_uid}
            if answer.status == 200:
                return answer.body["datasource"]
            made = self.find_datasource(view) or {}
            self.check_owner(made, view)
            return made
        return self.adopt_datasource(current, desired, token, view)

    def adopt_datasource(self, current: dict, desired: dict, token: str | None, view: View) -> dict:
        """A datasource that exists is the customer's: its type, URL, clientId, token and every
        jsonData value are kept. Only what is missing is added: a jsonData key PowerView needs
        (the owner markers are not needed: `datasource_owner` knows a deployed one by its names),
        the plugin's lists, a secret it lacks (from `token`)."""
        name = view.datasource_name
        if current.get("type") != desired["type"]:
            self.run.notes.append(
                f"data source {name} is of type {current.get('type')}, not {desired['type']} "
                "(GRAFANA_DATASOURCE_TYPE): kept as it is"
            )
            return current
        influxql = render.is_influxql(self.s.datasource_type)
        current_json = current.get("jsonData") or {}
        wanted = {
            **{k: v for k, v in desired["jsonData"].items() if not k.startswith("powerview")},
            **({} if influxql else {k: [] for k in PLUGIN_EDITABLE}),
        }
        missing_json = {k: v for k, v in wanted.items() if k not in current_json}
        wanted_secrets = SECRET_JSON_KEYS if not influxql else ("httpHeaderValue1",)
        missing_secrets = [k for k in wanted_secrets if not (current.get("secureJsonFields") or {}).get(k)]
        if not missing_json and not missing_secrets:
            return current
        if missing_secrets and not token and not self.run.check:
            raise ProvisioningError(
                f"data source {name} has no token and none was given: run with -e force_company=true"
            )
        body = {k: current[k] for k in DATASOURCE_FIELDS if k in current}
        body["jsonData"] = {**missing_json, **current_json}
        if missing_secrets:
            body["secureJsonData"] = {k: v for k, v in self.secure_json(token or "").items() if k in missing_secrets}
        what = sorted(missing_json) + [f"secret {k}" for k in missing_secrets]
        self._write(
            f"add to data source {name} what it lacks ({', '.join(what)})",
            "PUT",
            f"/api/datasources/uid/{seg(current['uid'])}",
            json=body,
        )
        self.run.diff(f"data source {name}", {"lacks": what}, {"added": what})
        return {**current, "jsonData": body["jsonData"]}

    # ---- dashboard ----------------------------------------------------------------------------
    def render_dashboard(self, datasource: dict, view: View | None = None) -> dict:
        """The dashboard of `view` from its template, wired to `datasource` (its uid, id, type and
        clientId: an adopted datasource's own, e.g. the deployed <company>_<login>)."""
        view = view or self.own_view()
        datasource_type = datasource.get("type") or self.s.datasource_type
        return render.render_dashboard(
            self.templates_dir,
            datasource_type,
            {
                "company_name": self.company,
                "bucket": self.names["bucket"],
                "dashboard_uid": view.dashboard_uid,
                "dashboard_title": view.dashboard_title,
                "datasource_uid": datasource.get("uid") or view.datasource_uid,
                "datasource_id": int(datasource.get("id") or 0),
                "datasource_name": view.datasource_name,
                "datasource_type": datasource_type,
                "client_id": client_id_of(datasource, view),
                "config_datasource_uid": self.s.config_datasource_uid,
            },
        )

    def ensure_dashboard(
        self,
        folder_uid: str,
        datasource: dict,
        team_id: int | None,
        view: View | None = None,
        refresh: bool = False,
        editors: list[dict] | None = None,
    ) -> None:
        """The dashboard of `view` (default: the company's own) in the company's folder, made once.
        One that exists is the customer's: never re-rendered, never moved, unless `refresh`, which
        re-renders it keeping its title, folder, permissions and what the customer added
        (`render.merge_dashboard`). One in another company's folder is refused (the deployed uids
        collide like the datasource names). Its permissions: the missing ones are added."""
        view = view or self.own_view()
        uid = view.dashboard_uid
        current = self._read(f"/api/dashboards/uid/{seg(uid)}")
        self.check_dashboard_place(current, folder_uid, view)
        if not current.found:
            desired = self.render_dashboard(datasource, view)
            self._save_dashboard(uid, desired, folder_uid)
            self.run.diff(f"dashboard {uid}", "absent", "rendered from template")
        elif refresh:
            self.refresh_dashboard(current, datasource, view)
        elif (current.body.get("meta") or {}).get("folderUid", "") != folder_uid:
            self.run.notes.append(f"dashboard {uid} is in the General folder, not in {folder_uid}: left there")
        self.ensure_permissions(
            "dashboard",
            f"/api/dashboards/uid/{seg(uid)}/permissions",
            self.viewers(team_id) + view.editors() + (editors or []),
            uid,
            exists=current.found or not self.run.check,
            view=view,
            created=not current.found,
        )

    def refresh_dashboard(self, current: Answer, datasource: dict, view: View) -> None:
        """Re-render the existing dashboard `current` (asked for: -e refresh_dashboard=true), in its
        folder, keeping its title and what the customer added; its permissions are not touched
        (saving a dashboard leaves them as they are)."""
        existing = current.body.get("dashboard") or {}
        desired = render.merge_dashboard(existing, self.render_dashboard(datasource, view))
        if desired != existing:
            self._save_dashboard(view.dashboard_uid, desired, (current.body.get("meta") or {}).get("folderUid", ""))
            self.run.diff(f"dashboard {view.dashboard_uid}", "as it was", "re-rendered, its other panels kept")

    def _save_dashboard(self, uid: str, dashboard: dict, folder_uid: str) -> None:
        self._write(
            f"save dashboard {uid}",
            "POST",
            "/api/dashboards/db",
            json={
                "dashboard": dashboard,
                "folderUid": folder_uid,
                "overwrite": True,
                "message": "PowerView provisioning",
            },
        )

    def check_dashboard_place(self, current: Answer, folder_uid: str, view: View) -> None:
        """Refuse the dashboard of `view`'s uid when it is in another folder than the company's."""
        meta = (current.body.get("meta") or {}) if current.found else {}
        where = meta.get("folderUid", "")
        if where and where != folder_uid:
            raise ProvisioningError(
                f"dashboard {view.dashboard_uid} is in folder {meta.get('folderTitle') or where} ({where}), "
                f"not in the folder of company {self.company} ({folder_uid}): it is not the dashboard "
                f"of {view.label}; not touching it"
            )

    def check_before_writes(self, view: View, folder_uid: str) -> None:
        """What another company or user owns under `view`'s names (data source, dashboard, client id):
        refused before the first write, so that a collision changes nothing."""
        current = self.find_datasource(view)
        if current is not None:
            self.check_owner(current, view)
        self.check_dashboard_place(self._read(f"/api/dashboards/uid/{seg(view.dashboard_uid)}"), folder_uid, view)
        self.check_client(view.client_id)

    # ---- users ----------------------------------------------------------------------------------
    def find_user(self, login: str) -> dict | None:
        answer = self.run.read("/api/users/lookup", admin=True, params={"loginOrEmail": login}, ok=(200, 404))
        return answer.body if answer.found else None

    def ensure_user(
        self, login: str, name: str, email: str = "", password: str = "", password_file: Path | None = None
    ) -> tuple[int | None, bool]:
        """The user, created or brought up to date. Returns (user id or None in check mode, whether a
        password file was written).

        Issue 17: refused, before any write, when another company owns or holds the login; the
        password, name and email of an existing user change only when this company owns it; the
        owner is recorded (powerview/grafana/users.py)."""
        from .users import Owners  # lazy: users.py reads this module's errors

        owners = Owners(self)
        standing, own = owners.check_add(login)
        user = standing.user
        wrote_file = False
        if user is None:
            if not password and password_file is not None:
                if password_file.is_file():
                    password = password_file.read_text().strip()
                else:
                    password = new_password()
                    self.run.changes.append(f"write the password of {login} to {password_file}")
                    if not self.run.check:
                        _write_secret_file(password_file, password)
                        wrote_file = True
            elif not password:
                password = new_password()
            body: dict[str, Any] = {"login": login, "name": name or login, "password": password}
            if email:
                body["email"] = email
            if self.in_org and self.org_id is not None:
                body["OrgId"] = self.org_id  # created straight into the company's organisation
            answer = self.run.write(
                f"create user {login}", "POST", "/api/admin/users", admin=True, json=body, ok=(200, 412)
            )  # 412: login or email taken (made meanwhile)
            self.run.diff(f"user {login}", "absent", {"login": login, "name": name, "email": email})
            if answer is None:
                return None, wrote_file
            if answer.status == 200:
                owners.claim(standing, int(answer.body["id"]))  # issue 17
                return int(answer.body["id"]), wrote_file
            standing, own = owners.check_add(login)  # issue 17: made meanwhile, maybe by another company
            if standing.user is not None and standing.owner != self.company:
                raise ProvisioningError(
                    f"user {login} was made meanwhile by another run, not recorded as company {self.company}'s: "
                    "not adopting it; run again"
                )
            user = standing.user
            if user is None:
                raise ProvisioningError(
                    f"user {login}: Grafana says the login or email is taken, "
                    "but the login cannot be found (is the email used by another user?)"
                )
        user_id = int(user["id"])
        if own and ((name and user.get("name") != name) or (email and user.get("email") != email)):
            self.run.write(
                f"update the name or email of {login}",
                "PUT",
                f"/api/users/{user_id}",
                admin=True,
                json={"login": login, "name": name or user.get("name", ""), "email": email or user.get("email", "")},
            )
            self.run.diff(
                f"user {login}",
                {"name": user.get("name"), "email": user.get("email")},
                {"name": name or user.get("name"), "email": email or user.get("email")},
            )
        if own and password and not self._password_opens(login, password):
            self.run.write(
                f"set the password of {login}",
                "PUT",
                f"/api/admin/users/{user_id}/password",
                admin=True,
                json={"password": password},
            )
        owners.claim(standing, user_id)  # issue 17
        return user_id, wrote_file

    def _password_opens(self, login: str, password: str) -> bool:
        import requests

        from .. import peers

        try:
            reply = peers.request("GET", f"{self.g.url}/api/user", auth=(login, password), timeout=self.g.timeout)
        except requests.RequestException:
            raise GrafanaError("GET", "/api/user", 0, f"Grafana at {self.g.url} cannot be reached") from None
        return reply.status_code == 200

    def ensure_member(self, login: str, user_id: int | None, team_id: int | None) -> None:
        """Team tenancy: member of the team. Org tenancy: Viewer of the company's organisation, and
        not a member of the main organisation (where Grafana puts new users)."""
        if not self.in_org:
            if user_id is not None and self.s.has_admin:
                # a team holds members of its organisation only (a user back from org tenancy is not)
                listed = self.run.read(f"/api/users/{user_id}/orgs", admin=True).body or []
                if MAIN_ORG_ID not in [int(o["orgId"]) for o in listed]:
                    self.run.write(
                        f"add {login} to the main organisation as Viewer",
                        "POST",
                        f"/api/orgs/{MAIN_ORG_ID}/users",
                        admin=True,
                        json={"loginOrEmail": login, "role": "Viewer"},
                        ok=(200, 409),
                    )
            members: list[dict] = []
            if team_id is not None and user_id is not None:
                members = self._read(f"/api/teams/{team_id}/members", ok=(200,)).body or []
            if user_id is None or team_id is None or user_id not in [int(m["userId"]) for m in members]:
                self._write(
                    f"add {login} to team {self.names['team']}",
                    "POST",
                    f"/api/teams/{team_id}/members",
                    json={"userId": user_id},
                    ok=(200, 400),
                )  # 400: already a member
                self.run.diff(f"member {login}", "absent", f"team {self.names['team']}")
            return
        orgs: dict[int, Any] = {}
        if user_id is not None:
            orgs = {
                int(o["orgId"]): o.get("role")
                for o in self.run.read(f"/api/users/{user_id}/orgs", admin=True).body or []
            }
        if self.org_id is None or self.org_id not in orgs:
            self.run.write(
                f"add {login} to organisation {self.company} as Viewer",
                "POST",
                f"/api/orgs/{self.org_id}/users",
                admin=True,
                json={"loginOrEmail": login, "role": "Viewer"},
                ok=(200, 409),
            )
            self.run.diff(f"member {login}", "absent", f"organisation {self.company} (Viewer)")
        elif orgs[self.org_id] != "Viewer":
            self.run.write(
                f"make {login} Viewer of organisation {self.company}",
                "PATCH",
                f"/api/orgs/{self.org_id}/users/{user_id}",
                admin=True,
                json={"role": "Viewer"},
            )
        if MAIN_ORG_ID in orgs and self.org_id != MAIN_ORG_ID:
            self.run.write(
                f"remove {login} from the main organisation",
                "DELETE",
                f"/api/orgs/{MAIN_ORG_ID}/users/{user_id}",
                admin=True,
                ok=(200, 404),
            )

    # ---- config API -------------------------------------------------------------------------
    def check_client(self, client_id: str) -> str | None:
        """The bucket `client_id` reads (None: not registered, or no config API); refused when it
        is another bucket than the company's."""
        if not self.s.config_api_url:
            return None
        bucket = ConfigApi(self.s.config_api_url, self.s.config_api_token).bucket_of(client_id)
        if bucket is not None and bucket != self.names["bucket"]:
            raise ProvisioningError(
                f"config API: client id {client_id} is registered with bucket {bucket}, not {self.names['bucket']}"
            )
        return bucket

    def register_client(self, client_id: str) -> None:
        if not self.s.config_api_url:
            return
        api = ConfigApi(self.s.config_api_url, self.s.config_api_token)
        if self.check_client(client_id) is not None:
            return
        self.run.changes.append(f"register client id {client_id} in the config API")
        self.run.diff(f"config API client {client_id}", "absent", {"bucket": self.names["bucket"]})
        if not self.run.check:
            api.register(client_id, self.names["bucket"])

    def unregister_client(self, client_id: str) -> None:
        """Unregister `client_id` when it reads this company's bucket (the deployed client ids
        collide like the datasource names: company acme_x's is acme user x's)."""
        if not self.s.config_api_url:
            return
        api = ConfigApi(self.s.config_api_url, self.s.config_api_token)
        bucket = api.bucket_of(client_id)
        if bucket is None:
            return
        if bucket != self.names["bucket"]:
            self.run.notes.append(f"config API: client id {client_id} reads bucket {bucket}, not {self.company}: kept")
            return
        self.run.changes.append(f"unregister client id {client_id} from the config API")
        if not self.run.check:
            api.unregister(client_id)

    # ---- the whole company ------------------------------------------------------------------
    def marker(self) -> Path:
        return self.s.data_dir / self.names["bucket"] / ".company.created"

    def present(
        self,
        token: str | None = None,
        token_id: str | None = None,
        company_steps: bool = True,
        campaign: str | None = None,
        refresh_dashboard: bool = False,
    ) -> dict:
        """Create what is missing, adopt what exists (`refresh_dashboard`: re-render the company's
        dashboard, keeping what the customer added). `company_steps=False` (the marker exists, as
        the deployed playbook left it): read only, write nothing at all; check that the company's
        resources exist."""
        if campaign:
            check_name("campaign", campaign)
        render.template_for(self.templates_dir, self.s.datasource_type)  # before any write
        if company_steps and self.s.has_admin:  # issue 17: the default user's login owned by another company
            from .users import Owners

            Owners(self).check_add(self.names["user_login"])
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
        user_id = self.default_user(team_id)
        editor = [{"userId": user_id, "permission": EDIT}] if self.s.has_admin else []
        self.ensure_dashboard(folder_uid, datasource, team_id, refresh=refresh_dashboard, editors=editor)
        self.register_client(client_id_of(datasource, self.own_view()))
        marker = self.marker()
        if marker.parent.is_dir() and not marker.exists():
            self.run.changes.append(f"write the company marker {marker}")
            if not self.run.check:
                marker.write_text(f"Grafana resources of {self.company} provisioned by create_grafana_resources.yml\n")
        return self.run.result(
            company=self.company,
            tenancy=self.tenancy,
            org_id=self.org_id,
            team_id=team_id,
            folder_uid=folder_uid,
            datasource_uid=datasource.get("uid", ""),
            dashboard_uid=self.names["dashboard_uid"],
            company_steps=True,
        )

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
        return self.run.result(
            company=self.company,
            tenancy=self.tenancy,
            org_id=self.org_id,
            team_id=team_id,
            folder_uid=folder_uid,
            datasource_uid=datasource.get("uid", ""),
            dashboard_uid=self.names["dashboard_uid"],
            company_steps=False,
        )

    def default_user(self, team_id: int | None) -> int | None:
        """The company's one default user: an existing one is adopted as it is (name, email and
        password untouched; made a member if it is not); else ours, user_<company>, is created with
        a random password written once to the secrets folder. Returns its id (None in check mode
        when it is to be created, or without the admin API)."""
        if not self.s.has_admin:
            self.run.notes.append(
                f"The default user {self.names['user_login']} is not created: Grafana's admin API needs basic auth "
                "of a Grafana server admin (set GRAFANA_USERNAME and GRAFANA_PASSWORD beside "
                "GRAFANA_API_TOKEN)."
            )
            return None
        user = self.find_default_user(team_id)
        if user is not None and user["login"] != self.names["user_login"]:  # issue 17: a deployed one
            from .users import Owners

            standing = Owners(self).standing(user["login"])
            if user.get("isGrafanaAdmin") or standing.owner not in (None, self.company):
                self.run.notes.append(
                    f"Grafana user {user['login']} belongs to {standing.describe()}: not adopted as the "
                    f"default user of company {self.company}"
                )
                user = None
        if user is not None:
            user_id: int | None = int(user["id"])
            login = user["login"]
        else:
            login = self.names["user_login"]
            user_id, _ = self.ensure_user(
                login, self.names["user_name"], password_file=self.s.secrets_dir / f"grafana_{login}.password"
            )
        self.ensure_member(login, user_id, team_id)
        return user_id

    def find_default_user(self, team_id: int | None) -> dict | None:
        """The default user that exists: ours (user_<company>), or the deployed playbook's (login
        <company>, named "<company> Default", a member of the team), or None."""
        ours = self.find_user(self.names["user_login"])
        if ours is not None and ours.get("login") == self.names["user_login"]:
            return ours
        deployed = self.find_user(self.company)
        if deployed is None or deployed.get("login") != self.company:
            return None
        if deployed.get("name") == self.names["user_name"]:
            return deployed
        if team_id is not None:
            members = self._read(f"/api/teams/{team_id}/members", ok=(200,)).body or []
            if int(deployed["id"]) in [int(m["userId"]) for m in members]:
                return deployed
        return None

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

    # ---- user views: deletion -----------------------------------------------------------------
    def user_datasources(self, org_id: int | None = None) -> list[tuple[str, dict]]:
        """(login, datasource) of every user view of this company in scope (owner read from jsonData)."""
        if org_id is None:
            answer = self._read("/api/datasources", ok=(200,))
        else:
            answer = self.run.read("/api/datasources", org_id=org_id, ok=(200,))
        found = []
        for datasource in (answer.body or []) if answer.found else []:
            owner = datasource_owner(datasource)
            if owner is not None and owner[0] == self.company and owner[1]:
                found.append((owner[1], datasource))
        return sorted(found, key=lambda pair: pair[0])

    def remove_user_view(self, login: str, datasource: dict | None = None, dashboard: bool = True) -> None:
        """Delete the dashboard (if in the company's folder; `dashboard=False`: the folder's deletion
        takes it) and the datasource of `login`'s view (only PowerView's own for this company and
        user). Its client id is the caller's business (a migration keeps it)."""
        view = self.user_view(login)
        found = self._read(f"/api/dashboards/uid/{seg(view.dashboard_uid)}") if dashboard else Answer(404, None)
        folder_uid = self.find_folder() if found.found else None
        if found.found and folder_uid and (found.body.get("meta") or {}).get("folderUid") == folder_uid:
            self._write(
                f"delete dashboard {view.dashboard_uid}",
                "DELETE",
                f"/api/dashboards/uid/{seg(view.dashboard_uid)}",
                ok=(200, 404),
            )
            self.run.diff(f"dashboard {view.dashboard_uid}", "present", "absent")
        datasource = datasource or self.find_datasource(view)
        if datasource is not None:
            if datasource_owner(datasource) != view.owner:
                self.run.notes.append(
                    f"data source {view.datasource_name} belongs to {describe_owner(datasource_owner(datasource))}, "
                    f"not to {view.label}: left alone"
                )
            else:
                self._write(
                    f"delete data source {view.datasource_name}",
                    "DELETE",
                    f"/api/datasources/uid/{seg(datasource['uid'])}",
                    ok=(200, 404),
                )
                self.run.diff(f"data source {view.datasource_name}", "present", "absent")

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
            from .users import Owners

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
                self.run.write(
                    f"delete user {user_login}",
                    "DELETE",
                    f"/api/admin/users/{int(user['id'])}",
                    admin=True,
                    ok=(200, 404),
                )
                self.run.diff(f"user {user_login}", "present", "absent")
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

    def dashboards_in(self, folder_uid: str) -> list[str]:
        hits = self._read("/api/search", ok=(200,), params={"type": "dash-db", "folderUIDs": folder_uid}).body or []
        return [h["uid"] for h in hits]

    def _delete_team_layout(self) -> None:
        folder_uid = self.find_folder()
        doomed = self.dashboards_in(folder_uid) if folder_uid else []
        own = self._read(f"/api/dashboards/uid/{seg(self.names['dashboard_uid'])}")
        if own.found and (own.body.get("meta") or {}).get("folderUid", "") in ("", folder_uid):
            doomed.append(self.names["dashboard_uid"])  # in another folder: another company's
        for uid in dict.fromkeys(doomed):
            self._write(f"delete dashboard {uid}", "DELETE", f"/api/dashboards/uid/{seg(uid)}", ok=(200, 404))
            self.run.diff(f"dashboard {uid}", "present", "absent")
        if folder_uid:
            self._write(f"delete folder {folder_uid}", "DELETE", f"/api/folders/{seg(folder_uid)}", ok=(200, 404))
            self.run.diff(f"folder {folder_uid}", "present", "absent")
        datasource = self.find_datasource()
        if datasource and datasource_owner(datasource) != self.own_view().owner:
            self.run.notes.append(
                f"data source {self.names['datasource_name']} belongs to "
                f"{describe_owner(datasource_owner(datasource))}, not to company {self.company}: left alone"
            )
        elif datasource:
            self._write(
                f"delete data source {self.names['datasource_name']}",
                "DELETE",
                f"/api/datasources/uid/{seg(datasource['uid'])}",
                ok=(200, 404),
            )
            self.run.diff(f"data source {self.names['datasource_name']}", "present", "absent")
        team_id = self.find_team()
        if team_id is not None:
            self._write(f"delete team {self.names['team']}", "DELETE", f"/api/teams/{team_id}", ok=(200, 404))
            self.run.diff(f"team {self.names['team']}", "present", "absent")
