"""The one HTTP layer to InfluxDB, every generation (1.x, 2.x, 3.x) and every use: the writes
of every generation (InfluxDB 2's `/api/v2/write` included), InfluxDB 2's buckets and
organizations, InfluxQL, databases, tasks. A `Connection` holds the address, the generation's
authentication, the per-request deadline and the retry budget; every call goes through the
project's retry loop (`influx.with_retries`) and status classification (`influx.classify_status`:
401/403/404 ConfigError, 413 RequestTooLarge, 400/422 InfluxRejected, the rest retried then
InfluxUnavailable).

Two transports under the same rules:
* `Connection.fetch` and `Connection.write`: the standard library's http.client over one
  kept-alive connection. Everything a parser run asks (the is-this-InfluxDB check, bucket look-up
  and creation, the line-protocol batches, InfluxQL: count-back, layout check, derived buckets,
  CREATE DATABASE, InfluxDB 3's databases) goes this way: nothing to import beyond the standard
  library, and a batch costs about a third of what it costs through requests
  (bench/bench_ingest.py, docs/utilisation-parseur.md). Like influxdb-client's write path before
  it, no proxy is read from the environment, redirects are not followed, and TLS certificates
  are checked against the system's store.
* `Connection.call`: requests (a `peer_requests.Session`, made on first use), for the operators' tools
  (catalogue rebuild, Flux tasks), where a Session's adapters and environment proxies apply.

Only the authorizations (`onboarding/influx_tokens.py`) still use influxdb-client; they share the
same loop and classification.
"""

from __future__ import annotations

import base64
import gzip
import http.client
import json
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode, urlsplit

from powerview.core import peers
from powerview.core.settings import InfluxSettings
from powerview.delivery.influx import AnswerLike, InfluxUnavailable, check_server, classify_status, with_retries

if TYPE_CHECKING:
    import requests

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


_ALWAYS_SAFE = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-~")
_FORM_ESCAPES = {
    byte: "+" if byte == 0x20 else chr(byte) if byte in _ALWAYS_SAFE else f"%{byte:02X}" for byte in range(256)
}


def form_encode(params: Mapping[str, str]) -> bytes:
    """`application/x-www-form-urlencoded`, byte for byte what `urllib.parse.urlencode` gives,
    in one `str.translate` per value (urlencode quotes a character at a time: milliseconds for
    the tens of kilobytes of a multi-statement query)."""
    return "&".join(
        f"{key.encode().decode('latin-1').translate(_FORM_ESCAPES)}="
        f"{value.encode().decode('latin-1').translate(_FORM_ESCAPES)}"
        for key, value in params.items()
    ).encode("ascii")


class Answer:
    """An answer of the standard library's transport: what callers read of a requests.Response
    (`status_code`, `headers` with a case-insensitive `get`, `content`, `text`, `json()`)."""

    __slots__ = ("status_code", "headers", "content")

    def __init__(self, status_code: int, headers: http.client.HTTPMessage, content: bytes):
        self.status_code, self.headers, self.content = status_code, headers, content

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")

    def json(self) -> Any:
        """The decoded JSON body; ValueError when it is not JSON."""
        return json.loads(self.content)


class _Link:
    """One kept-alive http.client connection to the server (made on first use, made again when
    the server closed it). A request that finds a reused connection closed before any answer (the
    server's keep-alive timeout) is sent once more on a new one."""

    def __init__(self, url: str, timeout_s: float):
        parts = urlsplit(url)
        self.https = parts.scheme == "https"
        self.host = parts.hostname or ""
        self.port = parts.port
        self.base = parts.path.rstrip("/")
        self.timeout_s = timeout_s
        self._conn: http.client.HTTPConnection | None = None

    def _connect(self) -> http.client.HTTPConnection:
        if self.https:
            import ssl

            return http.client.HTTPSConnection(
                self.host, self.port, timeout=self.timeout_s, context=ssl.create_default_context()
            )
        return http.client.HTTPConnection(self.host, self.port, timeout=self.timeout_s)

    def exchange(self, method: str, target: str, body: bytes | None, headers: Mapping[str, str]) -> Answer:
        for _ in range(2):
            reused = self._conn is not None
            conn = self._conn or self._connect()
            self._conn = conn
            try:
                conn.request(method, self.base + target, body, dict(headers))
                response = conn.getresponse()
                content = response.read()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                self.close()
                if reused:
                    continue  # the server had closed the idle connection: once more, on a new one
                raise
            except BaseException:
                self.close()  # a timeout, a deadline, a cut answer: the connection is unusable
                raise
            if response.will_close:
                self.close()
            return Answer(response.status, response.headers, content)
        raise AssertionError("unreachable")  # pragma: no cover

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def _message(response: AnswerLike) -> str:
    return message_of(response.text)


def _checked(
    response: Any,
    what: str,
    credentials: str,
    ok_statuses: tuple[int, ...],
    accept: Callable[[Any], bool] | None,
) -> Any:
    """`response` if its status is accepted; else raise its classified error (with Retry-After)."""
    status = response.status_code
    if status in ok_statuses or (accept is not None and accept(response)):
        return response
    classified = classify_status(status, _message(response), credentials)
    if not isinstance(classified, InfluxUnavailable):
        raise type(classified)(f"{what}: {classified}")
    classified.headers = response.headers  # type: ignore[attr-defined]  # Retry-After
    raise classified


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
    """One HTTP call to InfluxDB through requests, the project's retry loop (`influx.with_retries`)
    and status classification (`influx.classify_status`). `credentials` names the settings to check
    on 401/403; `accept(response)` may declare another status fine (e.g. 409 "already exists")."""

    def attempt() -> requests.Response:
        with peers.deadline(timeout_s, f"{what}: {method} {peers.redact_url(url)}"):
            response = session.request(method, url, timeout=timeout_s, **kwargs)
        return _checked(response, what, credentials, ok_statuses, accept)

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
        self._session: requests.Session | None = None
        self._link = _Link(self.url, timeout_s)
        parts = urlsplit(self.url)
        self._headers: dict[str, str] = {"Accept": "application/json"}  # those of `fetch` and `write`
        if auth and auth[0] == "v1" and auth[1]:
            self._headers["Authorization"] = _basic(auth[1], auth[2] or "")
        elif auth and auth[0] == "token":
            self._headers["Authorization"] = f"Token {auth[1]}"
        elif auth and auth[0] == "bearer":
            self._headers["Authorization"] = f"Bearer {auth[1]}"
        elif parts.username is not None:  # credentials in the address: basic auth, as requests does
            self._headers["Authorization"] = _basic(parts.username, parts.password or "")
        self._checked = False

    @property
    def session(self) -> requests.Session:
        """The requests Session of `call` (a `peer_requests.Session`: whole-request deadline), made on
        first use with the generation's authentication."""
        if self._session is None:
            from powerview.core.peer_requests import Session

            session = Session()
            if "Authorization" in self._headers:  # the same credentials as `fetch` and `write`
                session.headers["Authorization"] = self._headers["Authorization"]
            self._session = session
        return self._session

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
        """`method` `path` (below the address) through requests; the response of an accepted
        status. With `accept_404` a 404 is returned to the caller (an API this generation lacks, a
        database that does not exist) instead of raised."""
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

    def fetch(
        self,
        method: str,
        path: str,
        what: str,
        *,
        params: Mapping[str, str] | None = None,
        data: Mapping[str, str] | bytes | None = None,
        json_body: Any = None,
        headers: Mapping[str, str] | None = None,
        ok_statuses: tuple[int, ...] = (200, 204),
        accept: Callable[[Answer], bool] | None = None,
        accept_404: bool = False,
    ) -> Answer:
        """`method` `path`?`params` (below the address) on the standard library's transport, with
        the same rules as `call`: a form (`data` mapping), raw bytes (`data`) or JSON
        (`json_body`) as the body; the answer of an accepted status (404 too with `accept_404`),
        else the classified error, retried within the budget."""
        sent = dict(self._headers)
        body: bytes | None
        if json_body is not None:
            body, sent["Content-Type"] = json.dumps(json_body).encode(), "application/json"
        elif isinstance(data, Mapping):
            body, sent["Content-Type"] = form_encode(data), "application/x-www-form-urlencoded"
        else:
            body = data
        sent.update(headers or {})
        return self._send(
            method, path, params, body, sent, what, ok_statuses, _or_404(accept) if accept_404 else accept
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
        """POST a batch of line protocol to `path`?`params` (the hot path), gzip-compressed with
        `compress`: the status of an accepted answer (404 too with `accept_404`), else the
        classified error (413 RequestTooLarge: the caller splits the batch)."""
        sent = {**self._headers, "Content-Type": "text/plain; charset=utf-8", **(headers or {})}
        if compress:
            body = gzip.compress(body, GZIP_LEVEL)
            sent["Content-Encoding"] = "gzip"
        accept = _or_404(None) if accept_404 else None
        return self._send("POST", path, params, body, sent, what, ok_statuses, accept).status_code

    def _send(
        self,
        method: str,
        path: str,
        params: Mapping[str, str] | None,
        body: bytes | None,
        headers: Mapping[str, str],
        what: str,
        ok_statuses: tuple[int, ...],
        accept: Callable[[Answer], bool] | None,
    ) -> Answer:
        target = f"{path}?{urlencode(params)}" if params else path
        where = f"{what}: {method} {peers.redact_url(self.url + path)}"

        def attempt() -> Answer:
            with peers.deadline(self.timeout_s, where):
                answer = self._link.exchange(method, target, body, headers)
            return _checked(answer, what, self.credentials, ok_statuses, accept)

        return with_retries(attempt, self.budget_s, what)

    def check_server(self) -> None:
        """Once per connection: the address is an InfluxDB (`influx.check_server`, ConfigError
        otherwise), asked with this connection's credentials (InfluxDB 3 may want them on /ping)."""
        if not self._checked:

            def ping() -> Answer:
                with peers.deadline(self.timeout_s, f"GET {peers.redact_url(self.url)}/ping"):
                    return self._link.exchange("GET", "/ping", None, self._headers)

            check_server(self.url, self.timeout_s, self.budget_s, get=ping)
            self._checked = True

    def close(self) -> None:
        self._link.close()
        if self._session is not None:
            self._session.close()
            self._session = None


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode("ascii")


def _or_404(accept: Callable[[Any], bool] | None) -> Callable[[Any], bool]:
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
