"""The rules every call to InfluxDB follows (all generations): the status classification into
`core.sink`'s errors, THE retry loop, the is-this-InfluxDB check, the 413 split.
The calls themselves go through the one HTTP layer, `influx_http` (plain HTTP, every generation:
writes, buckets, InfluxQL, tasks); the writers of the three generations are in `influx_targets`.
influxdb-client is used only by the authorizations (`onboarding/influx_tokens.py`): its
ApiException is classified here without this module importing that library.

This module knows HTTP and InfluxDB; it knows nothing about T302 files.
"""

from __future__ import annotations

import http.client
import logging
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from powerview.core import peers
from powerview.core.settings import ConfigError
from powerview.core.sink import InfluxRejected, InfluxUnavailable, RequestTooLarge

if TYPE_CHECKING:
    pass

log = logging.getLogger(__name__)

T = TypeVar("T")


class AnswerLike(Protocol):
    """What the rules read of an HTTP answer: a requests.Response, or `influx_http.Answer` (the
    standard library's transport)."""

    status_code: int

    @property
    def headers(self) -> Any: ...  # .get(name, default), case-insensitive

    @property
    def text(self) -> str: ...

    def json(self) -> Any: ...


def check_server(url: str, timeout_s: float, budget_s: float, get: Callable[[], AnswerLike] | None = None) -> None:
    """THE is-this-InfluxDB check, every generation: `GET /ping` answers 204 (1.x, 2.x and
    compatible servers) or 200 with a JSON version (3.x). Raises ConfigError for anything else (a
    web server answering HTML, a 404), InfluxUnavailable when nothing answers for the whole retry
    budget. `get` (the HTTP layer's `Connection`, with the credentials InfluxDB 3 may want on
    /ping) makes the call itself; without it, a plain GET. Redirects are not followed."""
    endpoint = f"{url}/ping"

    def ping() -> AnswerLike:
        if get is not None:
            return get()
        from powerview.core.peer_requests import request

        return request("GET", endpoint, timeout=timeout_s, allow_redirects=False)

    try:
        answer = with_retries(ping, budget_s, f"GET {peers.redact_url(endpoint)}")
    except InfluxUnavailable:
        raise
    status = answer.status_code
    if status == 204:
        return
    if status == 200 and "json" in answer.headers.get("Content-Type", ""):
        try:
            if "version" in answer.json():
                return
        except ValueError:
            pass
    if status >= 500:
        raise InfluxUnavailable(f"GET {endpoint} answered HTTP {status}")
    kind = answer.headers.get("Content-Type", "no content type").split(";")[0]
    raise ConfigError(
        f"INFLUXDB_HOST={peers.redact_url(url)} does not look like an InfluxDB: GET /ping answered HTTP {status} "
        f"({kind}) where an InfluxDB answers 204 No Content; check INFLUXDB_HOST"
    )


V2_CREDENTIALS = "INFLUXDB_ADMIN_TOKEN and INFLUXDB_ORG"


def classify_status(status: int, message: str, credentials: str = V2_CREDENTIALS, what: str = "") -> Exception:
    """What an HTTP error status of InfluxDB means, the same for every generation and use:
    401/403 ConfigError (the credentials), 404 ConfigError (a database, bucket or organization
    that does not exist, or not InfluxDB's address), 413 RequestTooLarge (split the batch),
    400/422 InfluxRejected (the data), anything else InfluxUnavailable (retried)."""
    prefix = f"{what}: " if what else ""
    if status in (401, 403):
        return ConfigError(f"{prefix}InfluxDB refused the credentials (HTTP {status}): check {credentials} ({message})")
    if status == 413:
        return RequestTooLarge(f"{prefix}InfluxDB refused the request as too large (HTTP 413): {message}")
    if status in (400, 422):
        return InfluxRejected(f"{prefix}InfluxDB rejected the data (HTTP {status}): {message}")
    if status == 404:
        return ConfigError(
            f"{prefix}InfluxDB answered HTTP 404 ({message}): the database, bucket or organization does not "
            f"exist, or INFLUXDB_HOST is not InfluxDB's address: check INFLUXDB_HOST and {credentials}"
        )
    return InfluxUnavailable(f"{prefix}InfluxDB answered HTTP {status}: {message}")


def client_errors() -> tuple[type[BaseException], ...]:
    """influxdb-client's ApiException once a caller (the token tool) has loaded that library;
    nothing otherwise. Never imports it: a parser run does not load influxdb-client at all."""
    rest = sys.modules.get("influxdb_client.rest")
    return (rest.ApiException,) if rest is not None else ()


def classify(exc: BaseException) -> Exception:
    """Turn a client exception into ConfigError, InfluxRejected or InfluxUnavailable."""
    if isinstance(exc, client_errors()):
        return classify_status(getattr(exc, "status", None) or 0, _api_message(exc))
    return InfluxUnavailable(f"InfluxDB unreachable: {type(exc).__name__}: {peers.redact_text(str(exc))}")


def write_in_halves(write_once: Callable[[bytes], None], body: bytes, where: str) -> None:
    """`write_once(body)`; on HTTP 413 (RequestTooLarge) the batch is split in halves until it
    passes, for every generation; only a single line still refused raises InfluxRejected."""
    try:
        write_once(body)
    except RequestTooLarge as exc:
        lines = body.splitlines(keepends=True)
        if len(lines) <= 1:
            raise InfluxRejected(
                f"a single line of {len(body)} bytes is larger than InfluxDB accepts ({exc})"
            ) from None
        half = len(lines) // 2
        log.info("%s: HTTP 413 for %d lines, writing them in two halves", where, len(lines))
        write_in_halves(write_once, b"".join(lines[:half]), where)
        write_in_halves(write_once, b"".join(lines[half:]), where)


def _api_message(exc: BaseException) -> str:
    """The message of an influxdb-client ApiException (`body`, else `reason`)."""
    body = getattr(exc, "body", None)
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else (body or "")
    return (text or getattr(exc, "reason", None) or "").strip()[:500]


def retry_after_seconds(exc: BaseException) -> float | None:
    """The server's Retry-After (seconds form), if any."""
    headers = getattr(exc, "headers", None)
    if not headers:
        return None
    value = headers.get("Retry-After")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def transient_errors() -> tuple[type[BaseException], ...]:
    """The transport errors retried: OSError (connection refused or reset, socket timeouts, every
    requests exception, PeerTimeout), http.client's (an answer cut off), and urllib3's once that
    library is loaded (influxdb-client's transport, in the token tool)."""
    urllib3_errors = sys.modules.get("urllib3.exceptions")
    return (OSError, http.client.HTTPException, *((urllib3_errors.HTTPError,) if urllib3_errors else ()))


def with_retries(
    action: Callable[[], T],
    budget_s: float,
    what: str,
    sleep: Callable[[float], None] = time.sleep,
    timeout_s: float | None = None,
) -> T:
    """THE retry loop of every call to InfluxDB (any generation, any use): run `action`, retrying
    connection errors, 429 and 5xx (InfluxUnavailable) with exponential backoff, the server's
    Retry-After honoured.

    Gives up with InfluxUnavailable once `budget_s` seconds have passed (a budget of 0: a single
    attempt); 401/403/404 raise ConfigError and 400/413/422 InfluxRejected (RequestTooLarge) at
    once. `action` may raise a classified exception itself (`classify_status`; `.headers` for
    Retry-After), a transport error, or (the token tool) an influxdb-client ApiException. With `timeout_s`, each
    attempt has that total deadline (a server that answers a byte at a time is a failed attempt).
    """
    deadline = time.monotonic() + budget_s
    delay = 0.5
    attempt = 0
    retried: tuple[type[BaseException], ...] = (InfluxUnavailable, *transient_errors(), *client_errors())
    while True:
        attempt += 1
        try:
            with peers.deadline(timeout_s, what):
                return action()
        except retried as exc:
            error = exc if isinstance(exc, InfluxUnavailable) else classify(exc)
            if not isinstance(error, InfluxUnavailable):
                raise error from None
            wait = retry_after_seconds(exc)
            wait = delay if wait is None else wait
            remaining = deadline - time.monotonic()
            if remaining <= 0 or wait > remaining:
                raise InfluxUnavailable(f"{what}: {error} (gave up after {attempt} attempts)") from None
            log.warning("%s: %s; retry %d in %.1f s", what, error, attempt, wait)
            sleep(wait)
            delay = min(delay * 2, 30.0)


class DiscardWriter:
    """A dry run's writer: counts what would be written, sends nothing."""

    def __init__(self) -> None:
        self.nb_lines = 0

    def write(self, bucket: str, body: bytes) -> None:
        self.nb_lines += body.count(b"\n")

    def close(self) -> None:
        pass
