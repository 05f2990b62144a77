"""A8: a member of the company's team sees its dashboard."""

from __future__ import annotations

import requests

from .context import HTTP_TIMEOUT_S, Context, Skip


class Access(Context):
    """A8."""

    # A8: a member of the team sees the dashboard
    def a8(self) -> None:
        url, n = self.settings.grafana.url, self.names
        login = n["user_login"]

        def member() -> str:
            if self.team_id is None:
                raise Skip(f"team {n['team']} not found (see A2)")
            answer = self.grafana.get(f"{url}/api/teams/{self.team_id}/members", timeout=HTTP_TIMEOUT_S)
            assert answer.status_code == 200, (
                f"GET /api/teams/{self.team_id}/members answered HTTP {answer.status_code}"
            )
            logins = [m.get("login") for m in answer.json()]
            assert login in logins, f"{login} is not a member of team {n['team']} (members: {logins})"
            return f"{login} in team {n['team']}"

        def permission() -> str:
            if self.team_id is None:
                raise Skip(f"team {n['team']} not found (see A2)")
            answer = self.grafana.get(
                f"{url}/api/dashboards/uid/{n['dashboard_uid']}/permissions", timeout=HTTP_TIMEOUT_S
            )
            assert answer.status_code == 200, f"GET dashboard permissions answered HTTP {answer.status_code}"
            items = [i for i in answer.json() if i.get("teamId") == self.team_id and (i.get("permission") or 0) >= 1]
            assert items, f"team {n['team']} has no permission on dashboard {n['dashboard_uid']}"
            return ", ".join(
                sorted(
                    {
                        f"{i.get('permissionName', i.get('permission'))}{' (folder)' if i.get('inherited') else ''}"
                        for i in items
                    }
                )
            )

        def opens() -> str:
            secret = self.settings.grafana.secrets_dir / f"grafana_{login}.password"
            try:
                password = secret.read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise Skip(f"cannot read {secret} ({exc.strerror}): open the dashboard by hand as {login}") from None
            answer = requests.get(
                f"{url}/api/dashboards/uid/{n['dashboard_uid']}", auth=(login, password), timeout=HTTP_TIMEOUT_S
            )
            assert answer.status_code == 200, f"as {login}: GET dashboard answered HTTP {answer.status_code}"
            panels = answer.json().get("dashboard", {}).get("panels") or []
            return f"as {login}: HTTP 200, {len(panels)} panel(s)"

        self.check("A8", f"user {login} is a member of team {n['team']}", member)
        self.check("A8", f"team {n['team']} may view dashboard {n['dashboard_uid']}", permission)
        self.check("A8", f"{login} opens dashboard {n['dashboard_uid']}", opens)
