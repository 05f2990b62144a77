"""Who owns a Grafana user: the company that made it. Checked before any write, so that one
company never takes over another company's user (issue 17).

The marker. PowerView marks its data sources with their owner in jsonData (powerviewCompany,
powerviewUser). Grafana users have no such free field: the user API carries login, email, name,
theme and the Grafana-admin flag only, and the user itself may change its login, email and name
(PUT /api/user, "Update signed in User"), so none of them can prove who made it. Team and
organisation memberships are set by admins only, but they say which companies *hold* a user, not
which one *made* it (and a takeover is exactly a second membership). So the owner is recorded
where only the operator writes: the file `grafana_user_owners.json` in POWERVIEW_SECRETS_DIR
(mode 0600, beside the password files), keyed by the Grafana user id (a user that renames its
login keeps its owner; a user deleted and made again by hand under the same login does not
inherit the old entry): {"<user id>": {"company": "<company>", "login": "<login at the time>"}}.
A read-modify-write holds an exclusive lock (fcntl) on `grafana_user_owners.json.lock`, and the
file is replaced atomically (temporary file, fsync, rename).

Users made before the record (the deployed playbooks, an older PowerView) are attributed, in
this order, and marked the first time their own company touches them:
1. the default user of a company that exists (a team or an organisation of that name): the
   deployed one, login `<company>` (create_grafana_resources.yml, company_user_login), and
   PowerView's, login `user_<company>`;
2. the one company whose team (in the main organisation) or organisation holds the user;
3. otherwise nobody: a user held by no company (made by hand, or left over by a deletion) is
   adopted by the company that adds it; one held by several companies (a takeover of an older
   version, or memberships given by hand) belongs to none of them: a company that holds it keeps
   it without changing its password or email, any other is refused.
A Grafana server admin is never a company's user.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from powerview.core.fsutil import write_durably
from powerview.core.names import name_problem

from .client import seg
from .scope import ProvisioningError

if TYPE_CHECKING:
    from .scope import Scope

RECORD_NAME = "grafana_user_owners.json"
MAIN_ORG_ID = 1


def is_company_name(name: str) -> bool:
    return bool(name) and name_problem("company", name) is None


def default_user_of(login: str) -> list[str]:
    """The companies whose default user `login` would be: `user_<c>` (PowerView) or `<c>` (deployed)."""
    found = []
    if login.startswith("user_") and is_company_name(login[5:]):
        found.append(login[5:])
    if is_company_name(login):
        found.append(login)
    return found


class OwnerRecord:
    """The operator-side record of who made each Grafana user (see the module's docstring)."""

    def __init__(self, secrets_dir: Path):
        self.path = Path(secrets_dir) / RECORD_NAME

    def read(self) -> dict[str, dict]:
        try:
            text = self.path.read_text()
        except FileNotFoundError:
            return {}
        try:
            data = json.loads(text)
        except ValueError:
            data = None
        if not isinstance(data, dict) or not all(
            isinstance(v, dict) and isinstance(v.get("company"), str) for v in data.values()
        ):
            raise ProvisioningError(
                f'{self.path} is not a record of Grafana user owners ({{"<user id>": {{"company": ...}}}}): '
                "fix or restore it; until then no user is added nor deleted"
            )
        return data

    def owner(self, user_id: int) -> str | None:
        entry = self.read().get(str(int(user_id)))
        return entry["company"] if entry else None

    @contextlib.contextmanager
    def _locked(self) -> Iterator[dict[str, dict]]:
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(str(self.path) + ".lock", os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            data = self.read()
            yield data
            text = json.dumps(data, indent=1, sort_keys=True) + "\n"
            write_durably(self.path, text.encode("utf-8"), mode=0o600, prefix=f".{RECORD_NAME}.")
        finally:
            os.close(fd)

    def set(self, user_id: int, login: str, company: str) -> None:
        with self._locked() as data:
            data[str(int(user_id))] = {"company": company, "login": login}

    def drop(self, user_id: int) -> None:
        with self._locked() as data:
            data.pop(str(int(user_id)), None)


@dataclass(frozen=True)
class Standing:
    """What Grafana and the record say about one login, read before any write."""

    login: str
    user: dict | None = None  # the Grafana user of that login (None: no such user)
    owner: str | None = None  # the company that made it (None: nobody known)
    how: str = ""  # how the owner is known, for the messages
    holders: tuple[str, ...] = ()  # the companies whose team or organisation holds it

    @property
    def user_id(self) -> int | None:
        return int(self.user["id"]) if self.user else None

    def describe(self) -> str:
        return f"company {self.owner} ({self.how})" if self.owner else "no company"


class Owners:
    """Ownership checks of one company's run (`company`: a powerview.onboarding.grafana.company.Company)."""

    def __init__(self, company: Scope):
        self.c = company
        self.run = company.run
        self.record = OwnerRecord(company.s.secrets_dir)

    # ---- reading -------------------------------------------------------------------------------
    def _holders(self, user_id: int) -> tuple[str, ...]:
        """Companies holding the user: teams of the main organisation (GET /api/users/:id/teams, in
        the admin's current organisation) and organisations other than the main one."""
        teams = self.run.read(f"/api/users/{user_id}/teams", admin=True, ok=(200, 404)).body or []
        orgs = self.run.read(f"/api/users/{user_id}/orgs", admin=True, ok=(200, 404)).body or []
        names = {t.get("name", "") for t in teams if isinstance(t, dict)}
        names |= {o.get("name", "") for o in orgs if isinstance(o, dict) and int(o.get("orgId", 0)) != MAIN_ORG_ID}
        return tuple(sorted(n for n in names if isinstance(n, str) and is_company_name(n)))

    def _company_exists(self, name: str) -> bool:
        teams = self.run.read("/api/teams/search", params={"name": name}, ok=(200, 404))
        if teams.found and any(t.get("name") == name for t in (teams.body or {}).get("teams", [])):
            return True
        return self.run.read(f"/api/orgs/name/{seg(name)}", admin=True, ok=(200, 404)).found

    def standing(self, login: str) -> Standing:
        answer = self.run.read("/api/users/lookup", admin=True, params={"loginOrEmail": login}, ok=(200, 404))
        user = answer.body if answer.found else None
        if user is None:
            return Standing(login)
        if user.get("login") != login:
            raise ProvisioningError(
                f"login {login} is the email of Grafana user {user.get('login')}: Grafana's lookup mixes "
                f"logins and emails, so {login} cannot be used as a login; choose another (nothing was changed)"
            )
        holders = self._holders(int(user["id"]))
        recorded = self.record.owner(int(user["id"]))
        if recorded:
            return Standing(login, user, recorded, "recorded as its maker", holders)
        for company in default_user_of(login):
            if company in holders or self._company_exists(company):
                return Standing(login, user, company, f"the default user of {company}", holders)
        if len(holders) == 1:
            return Standing(
                login, user, holders[0], f"the only company holding it, team or organisation {holders[0]}", holders
            )
        return Standing(login, user, None, "", holders)

    # ---- add-user and the default user --------------------------------------------------------
    def check_add(self, login: str) -> tuple[Standing, bool]:
        """Refuse, before any write, a login that another company owns (or holds, with no known
        owner) or a Grafana server admin. Returns (standing, whether the user's password, name and
        email may be changed: only when this company owns it)."""
        company = self.c.company
        st = self.standing(login)
        if st.user is None:
            return st, True
        if st.user.get("isGrafanaAdmin"):
            raise ProvisioningError(
                f"Grafana user {login} is a Grafana server admin, not a user of a company: not adding it "
                f"to {company} (nothing was changed)"
            )
        if st.owner is not None and st.owner != company:
            raise ProvisioningError(
                f"Grafana user {login} belongs to {st.describe()}, not to company {company}: not adding it "
                f"to {company} and not changing its password or email (nothing was changed); choose another login"
            )
        if st.owner is None and st.holders and company not in st.holders:
            raise ProvisioningError(
                f"Grafana user {login} is held by companies {', '.join(st.holders)} and none of them is known "
                f"as its maker: not adding it to company {company} (nothing was changed); choose another login"
            )
        if st.owner is None and st.holders:
            self.run.notes.append(
                f"Grafana user {login} is held by companies {', '.join(st.holders)}, none known as its maker: "
                f"its password, name and email are left alone"
            )
            return st, False
        return st, True

    def claim(self, st: Standing, user_id: int | None) -> None:
        """Record this company as the maker of the user it just made, adopted or owns (not when
        several companies hold it with no known maker). Bookkeeping on the operator's side, not a
        change in Grafana: a user made now is recorded silently, one made before the record gets a
        note the first time."""
        company = self.c.company
        if user_id is None or (st.owner is None and st.holders) or self.run.check:
            return
        if self.record.owner(user_id) == company:
            return
        if st.user is not None:
            self.run.notes.append(
                f"Grafana user {st.login} recorded as company {company}'s ({st.how or 'held by no company'}) "
                f"in {self.record.path}"
            )
        self.record.set(user_id, st.login, company)

    # ---- deletion -----------------------------------------------------------------------------
    def may_delete(self, login: str) -> tuple[Standing, bool]:
        """Whether deleting this company may delete Grafana user `login`: only when the company owns
        it (or nobody does) and no other company holds it. Otherwise a note says why it is kept."""
        company = self.c.company
        st = self.standing(login)
        if st.user is None:
            return st, True  # nothing to delete in Grafana; a stale password file may go
        others = [h for h in st.holders if h != company]
        if st.user.get("isGrafanaAdmin"):
            why = "is a Grafana server admin"
        elif st.owner is not None and st.owner != company:
            why = f"belongs to {st.describe()}"
        elif others:
            why = f"is still held by company {', '.join(others)}"
        else:
            return st, True
        self.run.notes.append(f"Grafana user {login} {why}: kept (only removed from company {company})")
        return st, False

    def forget(self, st: Standing) -> None:
        """After the user's deletion, or when its maker is deleted but others hold it (then the
        membership decides again who owns it), drop its entry."""
        if st.user_id is None or self.run.check or self.record.owner(st.user_id) != self.c.company:
            return
        self.record.drop(st.user_id)


def owners_of(secrets_dir: Path) -> dict[str, Any]:
    """The record as it is (for tests and operators)."""
    return OwnerRecord(secrets_dir).read()
