"""Grafana's HTTP API, one call at a time, with errors that say what failed and never a secret.

Two credentials (admin.md, org.md, authentication.md):
- org-scoped calls (teams, folders, datasources, dashboards) use GRAFANA_API_TOKEN when it is set,
  else basic auth; in an organisation other than the token's own they use basic auth and the
  `X-Grafana-Org-Id` header;
- the admin API (users, organisations) takes basic auth of a Grafana server admin only.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import requests

from powerview.core import peer_requests, peers

from .settings import GrafanaSettings


def seg(value: Any) -> str:
    """One URL path segment: everything but unreserved characters is percent-encoded (a '/' too)."""
    return quote(str(value), safe="")


class GrafanaError(Exception):
    """An unexpected answer, or no answer. `status` is 0 when Grafana could not be reached."""

    def __init__(self, method: str, path: str, status: int, message: str):
        self.method, self.path, self.status, self.message = method, path, status, message
        where = f"{method} {path}"
        super().__init__(f"HTTP {status} from {where}: {message}" if status else f"{where}: {message}")


@dataclass(frozen=True)
class Answer:
    status: int
    body: Any

    @property
    def found(self) -> bool:
        return self.status == 200


class Grafana:
    """Calls to one Grafana. `org_id=None` acts in the credentials' own (current) organisation."""

    def __init__(self, settings: GrafanaSettings, timeout: float = 15.0, session: requests.Session | None = None):
        self.settings = settings
        self.url = settings.url
        self.timeout = timeout
        self.session = session or peer_requests.Session()
        self._basic: tuple[str, str] | None = None
        if settings.username and settings.password:
            self._basic = (settings.username, settings.password)

    # ---- plumbing ---------------------------------------------------------------------------
    def call(
        self,
        method: str,
        path: str,
        *,
        admin: bool = False,
        org_id: int | None = None,
        params: dict | None = None,
        json: Any = None,
        ok: Iterable[int] = (200,),
    ) -> Answer:
        headers = {"Accept": "application/json"}
        auth = None
        if admin or org_id is not None or not self.settings.api_token:
            if self._basic is None:
                raise GrafanaError(
                    method,
                    path,
                    0,
                    "needs basic auth of a Grafana server admin: set GRAFANA_USERNAME and GRAFANA_PASSWORD",
                )
            auth = self._basic
        else:
            headers["Authorization"] = "Bearer " + self.settings.api_token
        if org_id is not None:
            headers["X-Grafana-Org-Id"] = str(int(org_id))
        try:
            reply = self.session.request(
                method, self.url + path, params=params, json=json, headers=headers, auth=auth, timeout=self.timeout
            )
        except requests.RequestException as exc:
            raise GrafanaError(
                method, path, 0, f"Grafana at {peers.redact_url(self.url)} cannot be reached ({type(exc).__name__})"
            ) from None
        try:
            body = reply.json() if reply.content else None
        except ValueError:
            body = None
            if reply.status_code in ok:
                raise GrafanaError(
                    method, path, reply.status_code, "the answer is not JSON (is GRAFANA_URL Grafana's address?)"
                ) from None
        if reply.status_code not in ok:
            message = body.get("message", "") if isinstance(body, dict) else reply.text[:200].strip()
            raise GrafanaError(method, path, reply.status_code, message or reply.reason or "")
        return Answer(reply.status_code, body)

    # ---- health and credentials -----------------------------------------------------------
    def check_connection(self) -> dict:
        """Health, then the credentials; returns the credentials' organisation."""
        self.call("GET", "/api/health")
        answer = self.call("GET", "/api/org", ok=(200, 401, 403))
        if answer.status != 200:
            which = "GRAFANA_API_TOKEN" if self.settings.api_token else "GRAFANA_USERNAME and GRAFANA_PASSWORD"
            message = answer.body.get("message", "") if isinstance(answer.body, dict) else ""
            raise GrafanaError(
                "GET",
                "/api/org",
                answer.status,
                f"Grafana at {peers.redact_url(self.url)} refused the credentials ({message}): check {which}",
            )
        if self._basic and self.settings.api_token:
            admin = self.call("GET", "/api/user", admin=True, ok=(200, 401, 403))
            if admin.status != 200:
                raise GrafanaError(
                    "GET", "/api/user", admin.status, "Grafana refused GRAFANA_USERNAME and GRAFANA_PASSWORD"
                )
        return answer.body
