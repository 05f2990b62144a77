"""The one HTTP layer to InfluxDB, every generation (1.x, 2.x, 3.x) and every use (writes of
1.x and 3.x, InfluxQL, databases, tasks, bucket listing): a `Connection` holds the address, the
generation's authentication, the per-request deadline and the retry budget; `request` is one call
through the project's retry loop (`influx.with_retries`) and status classification
(`influx.classify_status`: 401/403/404 ConfigError, 413 RequestTooLarge, 400/422 InfluxRejected,
the rest retried then InfluxUnavailable).

The InfluxDB 2 writer (`influx.InfluxWriter`, influxdb-client) and the authorizations
(`influx_tokens`, influxdb-client) share the same loop and classification.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import requests

from powerview.core import peers
from powerview.core.settings import InfluxSettings
from powerview.delivery.influx import InfluxUnavailable, check_server, classify_status, with_retries


def _message(response: requests.Response) -> str:
    try:
        payload = response.json()
        if isinstance(payload, dict):
            text = payload.get("error") or payload.get("message") or str(payload)
        else:
            text = str(payload)
    except ValueError:
        text = response.text
    return " ".join(str(text).split())[:500]


def request(
    session: requests.Session,
    method: str,
    url: str,
    *,
    budget_s: float,
    timeout_s: float,
    what: str,
    credentials: str,
    ok_statuses: tuple[int, ...] = (200, 204),
    accept: Callable[[requests.Response], bool] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    **kwargs,
) -> requests.Response:
    """One HTTP call to InfluxDB through the project's retry loop (`influx.with_retries`) and
    status classification (`influx.classify_status`). `credentials` names the settings to check
    on 401/403; `accept(response)` may declare another status fine (e.g. 409 "already exists")."""

    def attempt() -> requests.Response:
        with peers.deadline(timeout_s, f"{what}: {method} {peers.redact_url(url)}"):
            response = session.request(method, url, timeout=timeout_s, **kwargs)
        status = response.status_code
        if status in ok_statuses or (accept is not None and accept(response)):
            return response
        classified = classify_status(status, _message(response), credentials)
        if not isinstance(classified, InfluxUnavailable):
            raise type(classified)(f"{what}: {classified}")
        classified.headers = response.headers  # type: ignore[attr-defined]  # Retry-After
        raise classified

    return with_retries(attempt, budget_s, what, sleep=sleep)


class Connection:
    """The address and credentials of one InfluxDB, and calls to it with the project's rules.

    `auth` is what the generation wants: ("v1", user, password) for 1.x (omitted when no user is
    set), ("token", token) for 2.x (`Authorization: Token`), ("bearer", token) for 3.x.
    `credentials` names the settings an operator checks on 401/403/404.
    """

    def __init__(
        self,
        url: str,
        auth: tuple = (),
        timeout_s: float = 30.0,
        budget_s: float = 60.0,
        credentials: str = "the InfluxDB credentials",
    ):
        self.url = url.rstrip("/")
        self.timeout_s, self.budget_s, self.credentials = timeout_s, budget_s, credentials
        self.session = peers.Session()
        if auth and auth[0] == "v1" and auth[1]:
            self.session.auth = (auth[1], auth[2] or "")
        elif auth and auth[0] == "token":
            self.session.headers["Authorization"] = f"Token {auth[1]}"
        elif auth and auth[0] == "bearer":
            self.session.headers["Authorization"] = f"Bearer {auth[1]}"
        self._checked = False

    def call(
        self,
        method: str,
        path: str,
        what: str,
        *,
        ok_statuses: tuple[int, ...] = (200, 204),
        accept: Callable[[requests.Response], bool] | None = None,
        accept_404: bool = False,
        **kwargs,
    ) -> requests.Response:
        """`method` `path` (below the address); the response of an accepted status. With
        `accept_404` a 404 is returned to the caller (an API this generation lacks, a database
        that does not exist) instead of raised."""
        if accept_404:
            accept = _or_404(accept)
        return request(
            self.session,
            method,
            self.url + path,
            budget_s=self.budget_s,
            timeout_s=self.timeout_s,
            what=what,
            credentials=self.credentials,
            ok_statuses=ok_statuses,
            accept=accept,
            **kwargs,
        )

    def check_server(self) -> None:
        """Once per connection: the address is an InfluxDB (`influx.check_server`, ConfigError
        otherwise), asked with this connection's credentials (InfluxDB 3 may want them on /ping)."""
        if not self._checked:
            check_server(self.url, self.timeout_s, self.budget_s, self.session)
            self._checked = True

    def close(self) -> None:
        self.session.close()


def _or_404(accept: Callable[[requests.Response], bool] | None) -> Callable[[requests.Response], bool]:
    return lambda r: r.status_code == 404 or (accept is not None and accept(r))


def credentials_hint(settings: InfluxSettings) -> str:
    """The settings an operator checks when this generation refuses the credentials."""
    if settings.version == 1:
        return "INFLUXDB_V1_USER and INFLUXDB_V1_PASSWORD"
    if settings.version == 3:
        return "INFLUXDB_ADMIN_TOKEN (an InfluxDB 3 admin token)"
    return "INFLUXDB_ADMIN_TOKEN and INFLUXDB_ORG"


def auth_of(settings: InfluxSettings) -> tuple:
    """The `Connection.auth` of the targeted generation."""
    if settings.version == 1:
        return ("v1", settings.v1_user, settings.v1_password)
    if settings.version == 3:
        return ("bearer", settings.token)
    return ("token", settings.token)
