"""What every part of a company's provisioning shares: the run, the company's scope and its views.

Every resource is read first and written only when it is missing or differs, so a second run
writes nothing. In check mode nothing is written: each write that would happen is recorded in
`Run.changes` (one line each, e.g. "create team acme") and `Run.diff` (before/after, no secrets).

Two tenancies (GRAFANA_TENANCY):
- `team` (the deployed layout): in the credentials' organisation, a team <company> with the
  company's users; folder, datasource and dashboard readable by that team only.
- `org`: one organisation <company> holding the folder, datasource and dashboard; the company's
  users are its members (Viewer) and are not members of the main organisation. Calls into it use
  basic auth of the server admin and the X-Grafana-Org-Id header.

`Scope` holds the company, its names and its organisation, and scopes reads and writes to it;
the resource parts (folders, permissions, datasources, dashboards, membership, accounts, client
ids, removal) build on it and `company.Company` puts them together.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from powerview.core.names import name_problem

from .client import Answer, Grafana
from .names import company_names, user_names
from .settings import GrafanaSettings

MAIN_ORG_ID = 1  # Grafana's first organisation, where auto_assign_org puts new users
VIEW = 1  # folder/dashboard permission "View"
EDIT = 2  # dashboard permission "Edit"


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

    def admin(self, change: str, method: str, path: str, body: dict, ok: tuple[int, ...] = (200,)) -> Answer | None:
        """`write` of a JSON `body` with the server admin's credentials (users, organisations)."""
        return self.write(change, method, path, admin=True, json=body, ok=ok)

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


class Scope:
    """The Grafana resources of one company, in the tenancy of the settings (or the one given):
    its names, its views, and the calls scoped to its organisation."""

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

    def marker(self) -> Path:
        return self.s.data_dir / self.names["bucket"] / ".company.created"
