"""A stand-in for what PowerView uses of the InfluxDB 3 Core / Enterprise HTTP API, for tests.

Pure standard library (a ThreadingHTTPServer on 127.0.0.1 in a thread). Written from the
InfluxDB 3 Core API reference (docs.influxdata.com/influxdb3/core/api/): authentication,
database and table management, the v2-compatible write endpoint, the v1-compatible /query.

| request                                   | answer                                                      |
|-------------------------------------------|-------------------------------------------------------------|
| GET /ping, /health                        | 200 (no token needed here)                                  |
| anything else without a known token       | 401 {"error": "unauthorized"}                              |
|   (Authorization: Bearer or Token; for    |                                                             |
|   /query also u/p parameters or Basic,    |                                                             |
|   the password being the token)           |                                                             |
| POST /api/v3/configure/database {"db"}    | 200; 400 invalid name (letters, digits, '-', '_', 64 chars  |
|                                           | at most, starting with a letter or digit); 409 exists       |
| POST /api/v3/configure/table {"db",       | 200; 404 database not found; 409 exists; 400 no tag, a tag  |
|   "table", "tags": [...], "fields": [...]}| and a field with the same name                              |
| POST /api/v2/write?bucket=&precision=     | 204; the database is created on first write; 400 {"error",  |
|                                           | "data": [{"original_line", "line_number", "error_message"}]}|
|                                           | listing the refused lines, the others being stored          |
|                                           | (accept_partial, the default)                               |
|                                           | 404 "database not found" when ``create_on_write`` is off    |
|                                           | (a token that may not create databases); 413 for a body     |
|                                           | over ``max_body_bytes`` (the server's request size limit)   |
| GET, POST /query?db=&q=&epoch=            | InfluxQL answered by a real InfluxDB 1.x holding the same   |
|                                           | points (``influxql_backend``); "database not found: <db>"   |
|                                           | (200, statement error) for an unknown database; 500 "must   |
|                                           | provide only one InfluxQl statement per query" for several  |
|                                           | statements separated by `;` (influxdb3_server's http.rs:    |
|                                           | query_influxql_inner refuses them, its catch-all is a 500)  |

Schema rules enforced on write (InfluxDB 3's documented restrictions):
* a table's tag columns are fixed when the table is created (by the first write, or by
  /api/v3/configure/table): a line bringing a tag key the table does not have is refused
  ("tag set is immutable"); a line may leave tags out (null);
* a tag and a field may not share a name; a field keeps its first type.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import threading
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from .base import StandIn
from .base import StandInHandler as _Handler
from .influxdb2 import LineProtocolError, parse_line_protocol

__all__ = ["InfluxDB3StandIn"]

_DB_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")


class InfluxDB3StandIn(StandIn):
    name = "influxdb3-stand-in"
    poll_interval = 0.01

    def __init__(self, admin_token: str = "apiv3_admin-token", influxql_backend: str | None = None):
        super().__init__()
        self.admin_token = admin_token
        self.influxql_backend = influxql_backend.rstrip("/") if influxql_backend else None
        self.backend_prefix = f"v3{secrets.token_hex(4)}_"
        self.tables: dict[str, dict[str, dict]] = {}  # db -> table -> {"tags": [...], "fields": {name: type}}
        self.points: dict[str, list] = {}  # db -> accepted Points
        self.requests: list[tuple[str, str, int]] = []
        self.create_on_write = True  # False: a write to a missing database is 404 "database not found"
        self.max_body_bytes = 0  # > 0: a larger write body is 413 (the server's request size limit)
        self._lock = threading.RLock()

    # ------------------------------------------------------------------ one request
    def serve(self, h: _Handler) -> None:
        split = urlsplit(h.path)
        query = dict(parse_qsl(split.query, keep_blank_values=True))
        length = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(length) if length else b""
        try:
            status, payload = self._route(h, h.command, split.path, query, body)
        except _Error as exc:
            status, payload = exc.status, {"error": exc.message, **exc.extra}
        data = b"" if payload is None else (payload if isinstance(payload, bytes) else json.dumps(payload).encode())
        with self._lock:
            self.requests.append((h.command, split.path, status))
        h.send_response(status)
        if data:
            h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        if data:
            h.wfile.write(data)

    def _token(self, h: _Handler, query: dict[str, str], v1: bool) -> None:
        scheme, _, rest = (h.headers.get("Authorization") or "").strip().partition(" ")
        token = rest.strip() if scheme.lower() in ("bearer", "token") else ""
        if v1 and not token:
            if scheme.lower() == "basic":
                try:
                    token = base64.b64decode(rest.strip()).decode().partition(":")[2]
                except (ValueError, UnicodeDecodeError):
                    token = ""
            else:
                token = query.get("p", "")
        if not token or token != self.admin_token:
            raise _Error(401, "unauthorized")

    def _route(self, h, method: str, path: str, query: dict[str, str], body: bytes) -> tuple[int, Any]:
        if path in ("/ping", "/health"):
            return 200, {"status": "pass"} if path == "/health" else {"version": "3.8.0", "revision": "stand-in"}
        if path == "/query":
            if method == "POST" and body:
                query = {**dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)), **query}
            self._token(h, query, v1=True)
            return self._influxql(query)
        self._token(h, query, v1=False)
        if path == "/api/v3/configure/database" and method == "POST":
            return self._create_database(_json(body).get("db"))
        if path == "/api/v3/configure/table" and method == "POST":
            return self._create_table(_json(body))
        if path == "/api/v2/write" and method == "POST":
            return self._write(query.get("bucket", ""), query.get("precision") or "ns", body)
        raise _Error(404, "not found")

    # ------------------------------------------------------------------ databases and tables
    def _create_database(self, name: Any) -> tuple[int, Any]:
        if not isinstance(name, str) or not _DB_NAME.match(name):
            raise _Error(400, f"invalid database name: {name!r}")
        with self._lock:
            if name in self.tables:
                raise _Error(409, "attempted to create a resource that already exists")
            self.tables[name] = {}
            self.points[name] = []
        self._backend("POST", "/query", {"q": f'CREATE DATABASE "{self.backend_prefix}{name}"'}, b"")
        return 200, None

    def _create_table(self, request: dict) -> tuple[int, Any]:
        db, table, tags = request.get("db"), request.get("table"), request.get("tags") or []
        fields = {f["name"]: f.get("type", "float64") for f in request.get("fields") or []}
        with self._lock:
            if db not in self.tables:
                raise _Error(404, f"database not found: {db}")
            if not tags:
                raise _Error(400, "a table needs at least one tag")
            if set(tags) & set(fields):
                raise _Error(400, "a tag and a field cannot have the same name")
            if table in self.tables[db]:
                raise _Error(409, "attempted to create a resource that already exists")
            self.tables[db][table] = {"tags": list(tags), "fields": fields}
        return 200, None

    # ------------------------------------------------------------------ write
    def _write(self, db: str, precision: str, body: bytes) -> tuple[int, Any]:
        if self.max_body_bytes and len(body) > self.max_body_bytes:
            raise _Error(413, f"the request body is larger than the limit of {self.max_body_bytes} bytes")
        if db not in self.tables:
            if not self.create_on_write:
                raise _Error(404, f"database not found: {db}")
            self._create_database(db)
        try:
            parsed = parse_line_protocol(body, precision)
        except LineProtocolError as exc:
            raise _Error(400, "parsing failed for write_lp endpoint", data=[{"error_message": str(exc)}]) from None
        refused, accepted = [], []
        lines = [line for line in body.decode("utf-8", "replace").split("\n") if line.strip()]
        with self._lock:
            for number, ((point, types), text) in enumerate(zip(parsed, lines), start=1):
                problem = self._schema_problem(db, point, types)
                if problem:
                    refused.append({"original_line": text[:200], "line_number": number, "error_message": problem})
                else:
                    accepted.append(text)
                    self.points[db].append(point)
        if accepted:
            status, answer = self._backend(
                "POST", "/write", {"db": self.backend_prefix + db, "precision": precision}, "\n".join(accepted).encode()
            )
            if status != 204:
                raise _Error(500, f"stand-in backend: {answer[:200]!r}")
        if refused:
            raise _Error(400, "partial write of line protocol occurred", data=refused)
        return 204, None

    def _schema_problem(self, db: str, point, types: dict[str, str]) -> str | None:
        table = self.tables[db].get(point.measurement)
        if table is None:
            table = self.tables[db][point.measurement] = {"tags": sorted(point.tags), "fields": {}}
        new_tags = sorted(set(point.tags) - set(table["tags"]))
        if new_tags:
            return (
                f"tag set of table {point.measurement!r} is immutable: {', '.join(new_tags)} "
                f"not among {', '.join(table['tags'])}"
            )
        for name, ftype in types.items():
            if name in table["tags"]:
                return f"column {name!r} is a tag: a field cannot have the same name"
            known = table["fields"].get(name)
            if known is not None and known != ftype:
                return f"field {name!r} is {known}, not {ftype}"
        for name, ftype in types.items():
            table["fields"].setdefault(name, ftype)
        return None

    # ------------------------------------------------------------------ InfluxQL
    def _influxql(self, query: dict[str, str]) -> tuple[int, Any]:
        q = query.get("q", "")
        if len(_statements(q)) > 1:
            return 500, b"must provide only one InfluxQl statement per query"
        with self._lock:
            names = sorted(self.tables)
        if q.strip().upper().startswith("SHOW DATABASES"):
            return 200, {
                "results": [
                    {
                        "statement_id": 0,
                        "series": [{"name": "databases", "columns": ["name"], "values": [[n] for n in names]}],
                    }
                ]
            }
        db = query.get("db", "")
        if db not in names:
            return 200, {"results": [{"statement_id": 0, "error": f"database not found: {db}"}]}
        params = {"db": self.backend_prefix + db, "q": q}
        if query.get("epoch"):
            params["epoch"] = query["epoch"]
        return self._backend("GET", "/query", params)

    def _backend(self, method: str, path: str, params: dict[str, str], body: bytes | None = None) -> tuple[int, bytes]:
        if not self.influxql_backend:
            return 204, b""
        request = urllib.request.Request(f"{self.influxql_backend}{path}?{urlencode(params)}", data=body, method=method)
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()


def _statements(q: str) -> list[str]:
    """The statements of an InfluxQL text: split on `;` outside quoted identifiers and strings
    (backslash escapes inside them), empty ones left out."""
    out, current, quote, escaped = [], [], "", False
    for char in q:
        if escaped:
            escaped = False
        elif quote and char == "\\":
            escaped = True
        elif quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == ";":
            out.append("".join(current))
            current = []
            continue
        current.append(char)
    out.append("".join(current))
    return [statement for statement in out if statement.strip()]


class _Error(Exception):
    def __init__(self, status: int, message: str, **extra: Any):
        super().__init__(message)
        self.status, self.message, self.extra = status, message, extra


def _json(body: bytes) -> dict:
    try:
        value = json.loads(body or b"{}")
    except json.JSONDecodeError:
        raise _Error(400, "invalid JSON body") from None
    if not isinstance(value, dict):
        raise _Error(400, "invalid JSON body")
    return value
