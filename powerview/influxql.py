"""InfluxQL over HTTP: the `/query` endpoint that InfluxDB 1.x, 2.x (v1 compatibility, database =
bucket through the virtual DBRP mapping) and 3.x (v1 compatibility) all serve, plus the plain-HTTP
request helper the 1.x and 3.x writers share.

Error mapping (`influx.classify_status`, the same as the InfluxDB 2 writer's): unreachable, 5xx,
429, no complete answer within the request's deadline -> retried within the budget, then
InfluxUnavailable; 401/403/404 -> ConfigError (naming the settings to check); 413 ->
RequestTooLarge (the writers split the batch); 400, 422 -> InfluxRejected; an answer that is not
the JSON InfluxDB sends -> InfluxUnavailable (a proxy's HTML error page, say).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator

import requests

from . import peers
from .influx import InfluxRejected, InfluxUnavailable, classify_status

log = logging.getLogger(__name__)


def quote_ident(name: str) -> str:
    """An InfluxQL double-quoted identifier (measurement, tag key, field key, database)."""
    if "\n" in name or "\r" in name:
        raise ValueError(f"identifier {name!r} holds a line break")
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def quote_string(value: str) -> str:
    """An InfluxQL single-quoted string literal (tag values in WHERE)."""
    if "\n" in value or "\r" in value:
        raise ValueError(f"string {value!r} holds a line break")
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


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
    """One HTTP call with the project's retry rules. `credentials` names the settings to check on
    401/403; `accept(response)` may declare another status fine (e.g. 409 "already exists")."""
    deadline = time.monotonic() + budget_s
    delay, attempt = 0.5, 0
    while True:
        attempt += 1
        retry_after = None
        try:
            with peers.deadline(timeout_s, f"{what}: {method} {peers.redact_url(url)}"):
                response = session.request(method, url, timeout=timeout_s, **kwargs)
        except requests.RequestException as exc:
            error = f"InfluxDB unreachable: {type(exc).__name__}: {peers.redact_text(str(exc))}"
        else:
            status = response.status_code
            if status in ok_statuses or (accept is not None and accept(response)):
                return response
            classified = classify_status(status, _message(response), credentials)
            if not isinstance(classified, InfluxUnavailable):
                raise type(classified)(f"{what}: {classified}")
            error = str(classified)
            try:
                retry_after = max(0.0, float(response.headers.get("Retry-After", "")))
            except ValueError:
                retry_after = None
        wait = delay if retry_after is None else retry_after
        remaining = deadline - time.monotonic()
        if remaining <= 0 or wait > remaining:
            raise InfluxUnavailable(f"{what}: {error} (gave up after {attempt} attempts)")
        log.warning("%s: %s; retry %d in %.1f s", what, error, attempt, wait)
        sleep(wait)
        delay = min(delay * 2, 30.0)


class QueryClient:
    """Runs InfluxQL through `/query` of the targeted InfluxDB; one database (= bucket) a call.

    `auth` is what the generation wants: ("v1", user, password) for 1.x (omitted when no user is
    set), ("token", token) for 2.x (`Authorization: Token`), ("bearer", token) for 3.x.
    """

    single_statement = False  # InfluxDB 3: one InfluxQL statement per /query request

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

    def raw(self, db: str | None, influxql: str, write: bool = False) -> dict:
        """The decoded JSON answer; a statement error raises InfluxRejected."""
        params = {"q": influxql, "epoch": "s"}
        if db is not None:
            params["db"] = db
        what = f"InfluxQL on {db}" if db else "InfluxQL"
        if write:  # CREATE/DROP must be POSTed (1.x)
            response = request(
                self.session,
                "POST",
                self.url + "/query",
                data=params,
                budget_s=self.budget_s,
                timeout_s=self.timeout_s,
                what=what,
                credentials=self.credentials,
            )
        else:
            response = request(
                self.session,
                "GET",
                self.url + "/query",
                params=params,
                budget_s=self.budget_s,
                timeout_s=self.timeout_s,
                what=what,
                credentials=self.credentials,
            )
        try:
            payload = response.json()
        except ValueError:
            raise InfluxUnavailable(
                f"{what}: the answer is not JSON (HTTP {response.status_code}, "
                f"{response.headers.get('Content-Type', 'no content type')}): "
                f"{response.text[:200]!r}"
            ) from None
        if not isinstance(payload, dict) or "results" not in payload:
            if isinstance(payload, dict) and payload.get("error"):
                raise InfluxRejected(f"{what}: {payload['error']}")
            raise InfluxUnavailable(f"{what}: unexpected answer {str(payload)[:200]!r}")
        for result in payload["results"]:
            if isinstance(result, dict) and result.get("error"):
                raise InfluxRejected(f"{what}: {result['error']}")
        return payload

    def series(self, db: str | None, influxql: str) -> Iterator[dict]:
        """Every series of every statement: {"name", "tags", "columns", "values"}."""
        for result in self.raw(db, influxql)["results"]:
            yield from result.get("series") or []

    def close(self) -> None:
        self.session.close()
