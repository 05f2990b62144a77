"""Who sees a company's folder and dashboards: the team (team tenancy) or the organisation's
Viewers (org tenancy), and the user who edits a user view's dashboard. Permissions are set
exactly on what a run creates; on what existed, only the missing principals are added.
"""

from __future__ import annotations

from typing import Any

from .scope import VIEW, Scope, View


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


class Permissions(Scope):
    """Folder and dashboard permissions of the company."""

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
