"""Grafana user accounts of a company: a user made or brought up to date (issue 17: only by the
company that owns it, powerview/onboarding/grafana/users.py), and the company's one default user (an
existing one adopted, else user_<company> — or the deployed playbook's company_user_login_override —
with the given password or a random one written once to the secrets folder)."""

from __future__ import annotations

import os
import secrets
import string
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .client import GrafanaError
from .membership import Membership
from .scope import ProvisioningError
from .users import Owners


def _write_secret_file(path: Path, content: str) -> None:
    """Write `content` to a new file, mode 0600, in a 0700 folder; never overwrite."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(content + "\n")


@dataclass(frozen=True)
class DefaultUser:
    """What the operator asked of the default user: the deployed playbook's
    company_user_login_override, _email_override and _password_override (empty: not given). They
    apply to a user this run creates; an existing one is adopted as it is."""

    login: str = ""
    email: str = ""
    password: str = ""


def new_password() -> str:
    alphabet = string.ascii_letters + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(32))


class Accounts(Membership):
    """The company's users and its default user."""

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
        owner is recorded (powerview/onboarding/grafana/users.py)."""
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
            # 412: login or email taken (made meanwhile)
            answer = self.run.admin(f"create user {login}", "POST", "/api/admin/users", body, ok=(200, 412))
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
            named = {"login": login, "name": name or user.get("name", ""), "email": email or user.get("email", "")}
            self.run.admin(f"update the name or email of {login}", "PUT", f"/api/users/{user_id}", named)
            self.run.diff(
                f"user {login}",
                {"name": user.get("name"), "email": user.get("email")},
                {"name": name or user.get("name"), "email": email or user.get("email")},
            )
        if own and password and not self._password_opens(login, password):
            path = f"/api/admin/users/{user_id}/password"
            self.run.admin(f"set the password of {login}", "PUT", path, {"password": password})
        owners.claim(standing, user_id)  # issue 17
        return user_id, wrote_file

    def _password_opens(self, login: str, password: str) -> bool:
        import requests

        from powerview.core import peer_requests

        try:
            reply = peer_requests.request(
                "GET", f"{self.g.url}/api/user", auth=(login, password), timeout=self.g.timeout
            )
        except requests.RequestException:
            raise GrafanaError("GET", "/api/user", 0, f"Grafana at {self.g.url} cannot be reached") from None
        return reply.status_code == 200

    def default_user(self, team_id: int | None, asked: DefaultUser | None = None, client_id: str = "") -> int | None:
        """The company's one default user: an existing one is adopted as it is (name, email and
        password untouched; made a member if it is not); else ours, user_<company> (or
        `asked.login`), is created with `asked.password` or a random password written once to the
        secrets folder. Returns its id (None in check mode when it is to be created, or without
        the admin API). `client_id`: the company data source's, which names the deployed default
        user (`<company>_<login>`)."""
        asked = asked or DefaultUser()
        if not self.s.has_admin:
            self.run.notes.append(
                f"The default user {asked.login or self.names['user_login']} is not created: Grafana's admin API "
                "needs basic auth "
                "of a Grafana server admin (set GRAFANA_USERNAME and GRAFANA_PASSWORD beside "
                "GRAFANA_API_TOKEN)."
            )
            return None
        prefix = f"{self.company}_"
        hinted = client_id[len(prefix) :] if client_id.startswith(prefix) else ""
        user = self.find_default_user(team_id, asked.login, hinted)
        if user is not None and user["login"] not in (self.names["user_login"], asked.login):  # a deployed one
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
            login = asked.login or self.names["user_login"]
            user_id, _ = self.ensure_user(
                login,
                self.names["user_name"],
                email=asked.email,
                password=asked.password,
                password_file=self.s.secrets_dir / f"grafana_{login}.password",
            )
        self.ensure_member(login, user_id, team_id)
        return user_id

    def find_default_user(self, team_id: int | None, asked_login: str = "", hinted_login: str = "") -> dict | None:
        """The default user that exists: the login the operator gives (`asked_login`, the deployed
        company_user_login_override: that one or none), else ours (user_<company>), else the
        deployed playbook's: login <company>, or `hinted_login` (the one its data source's clientId
        <company>_<login> names, when the default login was overridden), named "<company> Default"
        or a member of the team; or None."""
        if asked_login:
            asked = self.find_user(asked_login)
            return asked if asked is not None and asked.get("login") == asked_login else None
        ours = self.find_user(self.names["user_login"])
        if ours is not None and ours.get("login") == self.names["user_login"]:
            return ours
        members: list[int] | None = None
        for login in dict.fromkeys(filter(None, (self.company, hinted_login))):
            deployed = self.find_user(login)
            if deployed is None or deployed.get("login") != login:
                continue
            if deployed.get("name") == self.names["user_name"]:
                return deployed
            if team_id is not None:
                if members is None:
                    listed = self._read(f"/api/teams/{team_id}/members", ok=(200,)).body or []
                    members = [int(m["userId"]) for m in listed]
                if int(deployed["id"]) in members:
                    return deployed
        return None
