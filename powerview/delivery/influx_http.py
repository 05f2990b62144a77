"""The one HTTP layer to InfluxDB, every generation (1.x, 2.x, 3.x) and every use: the writes
of every generation (InfluxDB 2's `/api/v2/write` included), InfluxDB 2's buckets and
organizations, InfluxQL, databases, tasks. A `Connection` holds the address, the generation's
authentication, the per-request deadline and the retry budget; every call goes through the
project's retry loop (`influx.with_retries`) and status classification (`influx.classify_status`:
401/403/404 ConfigError, 413 RequestTooLarge, 400/422 InfluxRejected, the rest retried then
InfluxUnavailable).

Two transports, one set of rules: `Connection.call` (requests, for every call but the writes)
and `Connection.write` (the hot path: a batch of line protocol POSTed over one kept-alive
urllib3 connection, without requests' per-call overhead; about twice cheaper per batch,
measured in bench/bench_ingest.py). Like influxdb-client's write path before it, `write` reads no
proxy setting from the environment and checks TLS certificates against the system's store.

Only the authorizations (`onboarding/influx_tokens.py`) still use influxdb-client; they share the
same loop and classification.
"""

from __future__ import annotations

import gzip
import json
import time
from collections.abc import Callable, Mapping
from urllib.parse import urlencode, urlsplit

import requests
import urllib3

from powerview.core import peers
from powerview.core.settings import InfluxSettings
from powerview.delivery.influx import InfluxUnavailable, check_server, classify_status, with_retries

GZIP_LEVEL = 1  # TSV_INFLUX_GZIP: line protocol shrinks ~8x at level 1, for a fraction of level 9's CPU


def message_of(text: str) -> str:
    """InfluxDB's error message in an answer body: the JSON `error` (1.x, 3.x) or `message`
    (2.x), else the text itself; one line, bounded."""
    try:
        payload = json.loads(text)
    except ValueError:
        payload = text
    if isinstance(payload, dict):
        payload = payload.get("error") or payload.get("message") or payload
    return " ".join(str(payload).split())[:500]


def _message(response: requests.Response) -> str:
    return message_of(response.text)


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
        self._write_headers: dict[str, str] = {}  # the authentication of `write`, as the session's
        if auth and auth[0] == "v1" and auth[1]:
            self.session.auth = (auth[1], auth[2] or "")
            self._write_headers = urllib3.util.make_headers(basic_auth=f"{auth[1]}:{auth[2] or ''}")
        elif auth and auth[0] == "token":
            self.session.headers["Authorization"] = self._write_headers["Authorization"] = f"Token {auth[1]}"
        elif auth and auth[0] == "bearer":
            self.session.headers["Authorization"] = self._write_headers["Authorization"] = f"Bearer {auth[1]}"
        elif urlsplit(self.url).username is not None:  # credentials in the address: requests sends them
            parts = urlsplit(self.url)
            self._write_headers = urllib3.util.make_headers(basic_auth=f"{parts.username}:{parts.password or ''}")
        self._pool: urllib3.HTTPConnectionPool | None = None  # the writes' kept-alive connection
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

    def write(
        self,
        path: str,
        params: Mapping[str, str],
        body: bytes,
        what: str,
        *,
        compress: bool = False,
        headers: Mapping[str, str] | None = None,
        ok_statuses: tuple[int, ...] = (204,),
        accept_404: bool = False,
    ) -> int:
        """POST a batch of line protocol to `path`?`params` (the hot path: urllib3, one kept-alive
        connection, no redirect followed); gzip-compressed with `compress`. The same rules as
        `call`: the status of an accepted answer (404 with `accept_404`), else the classified
        error (413 RequestTooLarge: the caller splits the batch), retried within the budget."""
        if self._pool is None:
            self._pool = urllib3.connection_from_url(self.url, maxsize=1, block=False, retries=False)
        pool = self._pool
        target = f"{urlsplit(self.url).path}{path}?{urlencode(params)}"
        sent = {"Content-Type": "text/plain; charset=utf-8", "Accept": "application/json", **self._write_headers}
        sent.update(headers or {})
        if compress:
            body = gzip.compress(body, GZIP_LEVEL)
            sent["Content-Encoding"] = "gzip"
        timeout = urllib3.Timeout(connect=self.timeout_s, read=self.timeout_s)
        where = f"{what}: POST {peers.redact_url(self.url + path)}"

        def attempt() -> int:
            with peers.deadline(self.timeout_s, where):
                answer = pool.urlopen("POST", target, body=body, headers=sent, timeout=timeout, redirect=False)
            status = answer.status
            if status in ok_statuses or (accept_404 and status == 404):
                return status
            classified = classify_status(status, message_of(answer.data.decode("utf-8", "replace")), self.credentials)
            if not isinstance(classified, InfluxUnavailable):
                raise type(classified)(f"{what}: {classified}")
            classified.headers = answer.headers  # type: ignore[attr-defined]  # Retry-After
            raise classified

        return with_retries(attempt, self.budget_s, what)

    def check_server(self) -> None:
        """Once per connection: the address is an InfluxDB (`influx.check_server`, ConfigError
        otherwise), asked with this connection's credentials (InfluxDB 3 may want them on /ping)."""
        if not self._checked:
            check_server(self.url, self.timeout_s, self.budget_s, self.session)
            self._checked = True

    def close(self) -> None:
        self.session.close()
        if self._pool is not None:
            self._pool.close()
            self._pool = None


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
