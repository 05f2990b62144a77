"""Where a company's users belong, per tenancy: team tenancy, a team <company> in the main
organisation; org tenancy, an organisation <company> (the server admin a member as Admin, the
company's users Viewers, no longer in the main organisation)."""

from __future__ import annotations

from typing import Any

from .client import seg
from .scope import MAIN_ORG_ID, ProvisioningError, Scope


class Membership(Scope):
    """The company's organisation (org tenancy), its team (team tenancy) and their members."""

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
            change = f"create organisation {self.company}"
            answer = self.run.admin(change, "POST", "/api/orgs", {"name": self.company}, ok=(200, 409))
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
            self._add_to_org(self.s.username or "", self.org_id, f"organisation {self.company}", "Admin", ok=(200,))
        elif mine.get("role") != "Admin":
            self._set_role(self.s.username or "", int(mine["userId"]), "Admin")

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

    # ---- members ------------------------------------------------------------------------------
    def ensure_member(self, login: str, user_id: int | None, team_id: int | None) -> None:
        """Team tenancy: member of the team. Org tenancy: Viewer of the company's organisation, and
        not a member of the main organisation (where Grafana puts new users)."""
        if not self.in_org:
            if user_id is not None and self.s.has_admin:
                # a team holds members of its organisation only (a user back from org tenancy is not)
                listed = self.run.read(f"/api/users/{user_id}/orgs", admin=True).body or []
                if MAIN_ORG_ID not in [int(o["orgId"]) for o in listed]:
                    self._add_to_org(login, MAIN_ORG_ID, "the main organisation", "Viewer")
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
            self._add_to_org(login, self.org_id, f"organisation {self.company}", "Viewer")
            self.run.diff(f"member {login}", "absent", f"organisation {self.company} (Viewer)")
        elif orgs[self.org_id] != "Viewer":
            self._set_role(login, user_id, "Viewer")
        if MAIN_ORG_ID in orgs and self.org_id != MAIN_ORG_ID:
            self.run.write(
                f"remove {login} from the main organisation",
                "DELETE",
                f"/api/orgs/{MAIN_ORG_ID}/users/{user_id}",
                admin=True,
                ok=(200, 404),
            )

    def _add_to_org(self, login: str, org_id: int | None, where: str, role: str, ok=(200, 409)) -> None:
        """`login` a member of organisation `org_id` (`where`: its name in the change) with `role`."""
        body = {"loginOrEmail": login, "role": role}
        self.run.admin(f"add {login} to {where} as {role}", "POST", f"/api/orgs/{org_id}/users", body, ok=ok)

    def _set_role(self, login: str, user_id: int | None, role: str) -> None:
        """The role of member `login` in the company's organisation."""
        path = f"/api/orgs/{self.org_id}/users/{user_id}"
        self.run.admin(f"make {login} {role} of organisation {self.company}", "PATCH", path, {"role": role})
