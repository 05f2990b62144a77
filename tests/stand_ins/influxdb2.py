"""A stand-in for the InfluxDB 2 (OSS 2.x) HTTP API, for tests.

Pure standard library: a ``ThreadingHTTPServer`` on 127.0.0.1 (port chosen by the OS) in a
background thread.  The real ``influxdb_client`` (1.50) works against it unchanged.

Written from InfluxDB's own material, not from guesses:

* the OpenAPI contract (influxdata/openapi ``src/oss/paths/write.yml``,
  ``src/common/paths/{buckets,buckets_bucketID,authorizations,authorizations_authID}.yml``),
* the docs (docs.influxdata.com ``/influxdb/v2/write-data/troubleshoot/``,
  ``/influxdb/v2/reference/syntax/line-protocol/``, ``/influxdb/v2/api/response-codes/``),
* and, where those give a status without a body or disagree with each other, the server
  itself (influxdata/influxdb, 2.x): ``kit/transport/http/error_handler.go`` (error code ->
  HTTP status, body ``{"code", "message"}``, header ``X-Platform-Error-Code``),
  ``http/write_handler.go``, ``http/points/points_parser.go``, ``models/points.go`` (the line
  protocol parser, ported below), ``tsdb/shard.go`` (field type conflicts),
  ``tenant/*bucket*.go``, ``tenant/error_org.go``, ``authorization/*.go``,
  ``authorizer/authorize*.go``, ``http/authentication_middleware.go``.

Endpoints and answers (``code`` is the JSON ``code``; the status follows error_handler.go:
invalid/empty value 400, unauthorized 401, forbidden 403, not found 404, conflict and
unprocessable entity 422, internal error 500, unavailable 503):

| request                                  | answer                                                          |
|------------------------------------------|-----------------------------------------------------------------|
| GET /health (no auth)                    | 200 {name, message, status: "pass", checks, version, commit}    |
| GET, HEAD /ping (no auth)                | 204, headers X-Influxdb-Build: OSS, X-Influxdb-Version          |
| GET /ready (no auth)                     | 200 {status: "ready", started, up}                              |
| any other request without a known token  | 401 {"code":"unauthorized","message":"unauthorized access"}     |
| GET /api/v2/orgs?org=&orgID=             | 200 {links, orgs} (only orgs the token may read);               |
|                                          | 404 'organization name "x" not found' / "organization not found"|
| GET /api/v2/orgs/{id}                    | 200 org; 404 "organization not found"; 401 "read:orgs/ID is unauthorized" |
| GET /api/v2/buckets?name=&org=&orgID=&id=| 200 {links, buckets} (only buckets the token may read; paging   |
|   &limit=&offset=&after=                 | limit 1..100 default 20, links.next when the page is full);     |
|                                          | 404 'bucket "x" not found' when ``name`` AND an org are given   |
|                                          | and no such bucket exists (tenant/service_bucket.go: that is a  |
|                                          | lookup, not a listing); ``name`` alone lists (maybe empty)      |
| POST /api/v2/buckets                     | 201 bucket; 400 "organization id must be provided", name starts |
|                                          | with "_" or contains '"'; 401 "write:orgs/ID/buckets is         |
|                                          | unauthorized"; 404 org; 422 {"code":"conflict","message":       |
|                                          | "bucket with name X already exists"}; 422 negative retention    |
| GET, DELETE /api/v2/buckets/{id}         | 200 / 204; 400 "id must have a length of 16 bytes"; 404 "bucket |
|                                          | not found"; 401 when the token may not read / write it;         |
|                                          | 400 "system buckets cannot be deleted"                          |
| GET /api/v2/authorizations               | 200 {links, authorizations} (filters user, userID, org, orgID,  |
|   ?user=&userID=&org=&orgID=&token=      | token; only what the token may read); 404 unknown org / user    |
| POST /api/v2/authorizations              | 201 with "token"; 400 "authorization must include permissions", |
|                                          | "org id required", bad permission, permission for another org;  |
|                                          | 401 no write:orgs/ID/authorizations; 403 "permission P is not   |
|                                          | allowed" (a token cannot grant what it does not hold)           |
| GET, PATCH, DELETE /api/v2/authorizations/{id} | 200 / 200 / 204; 404 "authorization not found"; 400 bad id |
| POST /api/v2/write?org=|orgID=&bucket=   | 204; 400 "invalid precision; valid precision units are ns, us,  |
|   &precision=                            | ms, and s", "writing requires points", malformed line protocol  |
|                                          | (NOTHING from the request is stored); 403 {"code":"forbidden",  |
|                                          | "message":"insufficient permissions for write"}; 404 'bucket "x"|
|                                          | not found' / org not found; 422 {"code":"unprocessable entity", |
|                                          | "message":"failure writing points to database: partial write:   |
|                                          | field type conflict: ... dropped=N"} (the other points ARE      |
|                                          | stored, as InfluxDB does); Content-Encoding gzip honoured       |
| POST /api/v2/query?org=|orgID=           | 200 annotated CSV; 404 {"code":"not found","message":"failed to |
|                                          | initialize execute state: could not find bucket \\"x\\""} when the |
|                                          | bucket is missing OR the token may not read it                  |
| GET, POST /query?db=&q=&epoch= (1.x      | only with ``influxql_backend``: InfluxQL answered by a real      |
|   compatibility; Token header, u/p, Basic)| InfluxDB 1.x holding the same points (see below); 401 without a  |
|                                          | token; db = a bucket the token may read (virtual DBRP mapping:   |
|                                          | database = bucket name, rp autogen), else 200 with the statement |
|                                          | error "database not found: <db>" (1.x's shape)                   |
| GET /api/v2/tasks?name=&org=&orgID=      | 200 {links, tasks} (only tasks the token may read; ``name`` is an |
|   &status=&after=&limit=                 | exact match; limit 1..500, default 100); 400 "failed to decode   |
|                                          | request" for a bad id, an unknown org name, a bad limit          |
|                                          | (http/task_service.go decodeGetTasksRequest)                     |
| GET /api/v2/tasks/{id}                   | 200 task; 400 bad id; 404 "failed to find task"                 |
| PATCH /api/v2/tasks/{id}                 | 200 task; 400 "failed to decode request: invalid task status"   |
|   {"status": "active"|"inactive", ...}   | (TaskUpdate.Validate), empty update; 401 without write on tasks; |
|                                          | 404 "failed to update task: task not found"                     |
| anything else (authenticated)            | 404 {"code":"not found","message":"path not found"}; 405 for a  |
|                                          | known path with another method                                  |

Where the sources disagree, the server's behaviour wins and is noted here:

* Write with a valid token that lacks write permission on an existing bucket: the docs
  (troubleshoot page, OpenAPI) list only 401, but ``http/write_handler.go``
  (``checkBucketWritePermissions``) answers 403 "insufficient permissions for write"; that is
  also what users observe (influxdata/influxdb#17942).  The bucket lookup comes first, so an
  unknown bucket is 404 whatever the token.
* An inactive token passes authentication (the middleware only looks the token up); its
  permission set is refused afterwards: writes get 403 "insufficient permissions for write",
  other endpoints 401 {"code":"unauthorized","message":"token is inactive"}
  (``Authorization.PermissionSet`` in authorization.go).
* A malformed line gives 400 {"code":"invalid","message":"unable to parse '<line>': <reason>"},
  one such sentence per bad line joined by "\\n" (``models.ParsePointsWithPrecision``).  InfluxDB
  OSS names the offending line by its text, not by a line number.
* A gzip body whose header is invalid: the raw gzip error reaches ``HandleHTTPError``, which turns
  any non-platform error into 500 "An internal error has occurred"; a corrupt body after a valid
  header is 400/500 "unable to read data: ...".
* The operator ("admin") authorization exists from the start and is listed by
  GET /api/v2/authorizations, as on a freshly set-up InfluxDB; so are the system buckets
  ``_monitoring`` and ``_tasks`` by GET /api/v2/buckets (type "system").

Line protocol: ``models/points.go`` is ported faithfully (escaping of measurement, tag keys and
values, field keys, string values; no empty tag values; at least one field; ``i`` / ``u``
suffixes; float syntax incl. scientific notation, NaN refused; booleans t/T/true/True/TRUE and
f/F/false/False/FALSE; optional timestamp, converted with the precision ns/us/ms/s; blank lines
and ``#`` comments skipped; duplicate tag keys refused; time range and key length checked).
The "names may not start with _" rule of the docs is not enforced (the parser does not
enforce it either).

Limitations (documented, deliberate):

* Field types are remembered per (bucket, measurement, field) for the life of the stand-in;
  InfluxDB remembers them per shard (7 days by default), so a conflict separated by weeks would
  be accepted there and refused here.  Within one request the first occurrence fixes the type.
* The Flux endpoint does not run Flux: it finds every ``from(bucket: "name")``, checks the bucket
  exists and the token may read it, and answers ALL points of those buckets (after
  last-write-wins deduplication), one table per series and field; ``range``/``filter`` and the
  rest are ignored; ``_start`` is 1970-01-01 and ``_stop`` the time of the query.
* One organization, one user ("admin").  No users, labels, dashboards, setup, v1 write API.
* Tasks: listed, read and updated (status, description), never run; a test seeds them with
  ``add_task()`` the way ``influx task create`` left them (the Flux text with its
  ``option task = {name, every, offset}``). No POST, DELETE, runs or logs.
* InfluxQL (``/query``): InfluxDB 2's ``/query`` runs InfluxQL over the bucket's own data
  (api-guide/influxdb-1x/query); rather than re-implement InfluxQL, a stand-in started with
  ``influxql_backend=<URL of a real InfluxDB 1.x>`` forwards every accepted write body to that
  server (database ``<backend_prefix><bucket>``, precision kept) and answers ``/query`` from it
  after checking the token's read permission on the bucket, ``SHOW DATABASES`` excepted, which
  lists the readable (non-system) buckets. Answers are 1.x's JSON, which is what 2.x's
  ``/query`` returns by default.
* Bucket retention is stored and served but never applied.

State for tests: ``buckets``, ``authorizations``, ``points()``, ``latest()``, ``requests``,
``schema()``, ``token_for(description)``; fault injection: ``fail_next_writes()`` (with
``Retry-After``), ``fail_next(method, path_regex, status)`` (any request, InfluxDB's error
body), ``on_request`` / ``on_write`` (another process acting meanwhile), ``go_down()`` /
``come_back()``.  ``parse_line_protocol()`` is the parser on its own.
"""

from __future__ import annotations

import base64
import csv
import gzip
import io
import json
import math
import re
import secrets
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from .base import StandIn
from .base import StandInHandler as _Handler

__all__ = ["InfluxDB2StandIn", "Point", "RequestRecord", "parse_line_protocol", "LineProtocolError"]

VERSION = "v2.7.11"
COMMIT = "stand-in"

# kit/transport/http/error_handler.go: influxDBErrorToStatusCode
_CODE_TO_STATUS = {
    "internal error": 500,
    "not implemented": 501,
    "invalid": 400,
    "unprocessable entity": 422,
    "empty value": 400,
    "conflict": 422,
    "not found": 404,
    "unavailable": 503,
    "forbidden": 403,
    "too many requests": 429,
    "unauthorized": 401,
    "method not allowed": 405,
    "request too large": 413,
}
_STATUS_TO_CODE = {
    500: "internal error",
    501: "not implemented",
    400: "invalid",
    422: "unprocessable entity",
    404: "not found",
    503: "unavailable",
    403: "forbidden",
    429: "too many requests",
    401: "unauthorized",
    405: "method not allowed",
    413: "request too large",
}

# influxdb.AllResourceTypes (authz.go)
RESOURCE_TYPES = (
    "authorizations",
    "buckets",
    "dashboards",
    "orgs",
    "sources",
    "tasks",
    "telegrafs",
    "users",
    "variables",
    "scrapers",
    "secrets",
    "labels",
    "views",
    "documents",
    "notificationRules",
    "notificationEndpoints",
    "checks",
    "dbrp",
    "notebooks",
    "annotations",
    "remotes",
    "replications",
    "instance",
)
ACTIONS = ("read", "write")

MIN_NANO_TIME = -(2**63) + 2  # models.MinNanoTime
MAX_NANO_TIME = 2**63 - 2  # models.MaxNanoTime
MAX_KEY_LENGTH = 65535  # models.MaxKeyLength
PRECISION_NS = {"ns": 1, "us": 1_000, "ms": 1_000_000, "s": 1_000_000_000}


# --------------------------------------------------------------------------------------------
# public value types
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Point:
    """One accepted point.  ``fields`` values are typed as InfluxDB types them: float, int
    (for both ``i`` and ``u`` fields), str, bool.  ``time`` is in nanoseconds."""

    measurement: str
    tags: dict[str, str]
    fields: dict[str, float | int | str | bool]
    time: int


@dataclass
class RequestRecord:
    """One HTTP request as received: ``query`` holds the first value of each parameter,
    ``body`` is decompressed when the request said ``Content-Encoding: gzip``."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    status: int = 0


class LineProtocolError(ValueError):
    """Raised by ``parse_line_protocol`` with InfluxDB's own wording."""


# --------------------------------------------------------------------------------------------
# line protocol: a port of influxdb models/points.go (ParsePointsWithPrecision and helpers)
# --------------------------------------------------------------------------------------------

_BS, _SP, _COMMA, _EQ, _DQ, _NL, _HASH = 0x5C, 0x20, 0x2C, 0x3D, 0x22, 0x0A, 0x23
_TAG_KEY, _TAG_VALUE, _FIELDS = 0, 1, 2


class _PointError(Exception):
    pass


def _is_numeric(b: int) -> bool:
    return 0x30 <= b <= 0x39 or b == 0x2E


def _skip_whitespace(buf: bytes, i: int) -> int:
    while i < len(buf) and buf[i] in (0x20, 0x09, 0x00):
        i += 1
    return i


def _scan_line(buf: bytes, i: int) -> tuple[int, bytes]:
    start = i
    quoted = fields = False
    equals = commas = 0
    n = len(buf)
    while i < n:
        c = buf[i]
        if c == _BS and i + 2 < n:
            i += 2
            continue
        if c == _SP:
            fields = True
        if fields:
            if not quoted and c == _EQ:
                i += 1
                equals += 1
                continue
            if not quoted and c == _COMMA:
                i += 1
                commas += 1
                continue
            if c == _DQ and equals > commas:
                i += 1
                quoted = not quoted
                continue
        if c == _NL and not quoted:
            break
        i += 1
    return i, buf[start:i]


def _scan_to(buf: bytes, i: int, stop: int) -> int:
    while i < len(buf):
        if buf[i] == stop and (i == 0 or buf[i - 1] != _BS):
            break
        i += 1
    return i


def _scan_measurement(buf: bytes, i: int) -> tuple[int, int]:
    if i >= len(buf) or buf[i] == _COMMA:
        raise _PointError("missing measurement")
    while True:
        i += 1
        if i >= len(buf):
            raise _PointError("missing fields")
        if buf[i - 1] == _BS:
            continue
        if buf[i] == _COMMA:
            return _TAG_KEY, i + 1
        if buf[i] == _SP:
            return _FIELDS, i


def _scan_tags_key(buf: bytes, i: int) -> int:
    if i >= len(buf) or buf[i] in (_SP, _COMMA, _EQ):
        raise _PointError("missing tag key")
    while True:
        i += 1
        if i >= len(buf) or (buf[i] in (_SP, _COMMA) and buf[i - 1] != _BS):
            raise _PointError("missing tag value")
        if buf[i] == _EQ and buf[i - 1] != _BS:
            return i + 1


def _scan_tags_value(buf: bytes, i: int) -> tuple[int, int]:
    if i >= len(buf) or buf[i] in (_COMMA, _SP):
        raise _PointError("missing tag value")
    while True:
        i += 1
        if i >= len(buf):
            raise _PointError("missing fields")
        if buf[i] == _EQ and buf[i - 1] != _BS:
            raise _PointError("invalid tag format")
        if buf[i] == _COMMA and buf[i - 1] != _BS:
            return _TAG_KEY, i + 1
        if buf[i] == _SP and buf[i - 1] != _BS:
            return _FIELDS, i


def _scan_key(buf: bytes, i: int) -> tuple[int, bytes, list[tuple[bytes, bytes]], int]:
    """Returns (end, raw measurement, raw tag pairs, key length)."""
    start = _skip_whitespace(buf, i)
    state, i = _scan_measurement(buf, start)
    indices: list[int] = []
    if state == _TAG_KEY:
        state = _TAG_KEY
        while True:
            if state == _TAG_KEY:
                indices.append(i)
                i = _scan_tags_key(buf, i)
                state = _TAG_VALUE
            elif state == _TAG_VALUE:
                state, i = _scan_tags_value(buf, i)
            else:
                indices.append(i + 1)
                break
    tags: list[tuple[bytes, bytes]] = []
    for j in range(len(indices) - 1):
        segment = buf[indices[j] : indices[j + 1] - 1]
        eq = _scan_to(segment, 0, _EQ)
        tags.append((segment[:eq], segment[eq + 1 :]))
    keys = [k for k, _ in tags]
    if len(set(keys)) != len(keys):
        raise _PointError("duplicate tags")
    measurement = buf[start : indices[0] - 1] if indices else buf[start:i]
    return i, measurement, tags, i - start


def _scan_number(buf: bytes, i: int) -> int:
    start = i
    is_int = is_unsigned = False
    n = len(buf)
    if i < n and buf[i] == 0x2D:  # '-'
        i += 1
        if i == n:
            raise _PointError("invalid number")
    decimal = scientific = False
    while i < n:
        c = buf[i]
        if c in (_COMMA, _SP):
            break
        if c == 0x69 and i > start and not (is_int or is_unsigned):  # 'i'
            is_int = True
            i += 1
            continue
        if c == 0x75 and i > start and not (is_int or is_unsigned):  # 'u'
            is_unsigned = True
            i += 1
            continue
        if c == 0x2E:
            if decimal:
                raise _PointError("invalid number")
            decimal = True
        if i > start and c in (0x65, 0x45):  # e E
            scientific = True
            i += 1
            continue
        if c in (0x2B, 0x2D) and buf[i - 1] in (0x65, 0x45):
            i += 1
            continue
        if i + 2 < n and c in (0x4E, 0x6E):  # NaN
            raise _PointError("invalid number")
        if not _is_numeric(c):
            raise _PointError("invalid number")
        i += 1
    if (is_int or is_unsigned) and (decimal or scientific):
        raise _PointError("invalid number")
    digits = i - start
    if is_int:
        digits -= 1
    if decimal:
        digits -= 1
    if buf[start] == 0x2D:
        digits -= 1
    if digits == 0:
        raise _PointError("invalid number")
    text = buf[start:i].decode("ascii", "replace")
    if is_int:
        if buf[i - 1] != 0x69:
            raise _PointError("invalid number")
        value = int(text[:-1])
        if not -(2**63) <= value <= 2**63 - 1:
            raise _PointError(
                f'unable to parse integer {text[:-1]}: strconv.ParseInt: parsing "{text[:-1]}": value out of range'
            )
    elif is_unsigned:
        if buf[i - 1] != 0x75 or buf[start] == 0x2D:
            raise _PointError("invalid number")
        value = int(text[:-1])
        if value > 2**64 - 1:
            raise _PointError(
                f'unable to parse unsigned {text[:-1]}: strconv.ParseUint: parsing "{text[:-1]}": value out of range'
            )
    else:
        try:
            value_f = float(text)
        except ValueError:
            raise _PointError("invalid float") from None
        if math.isinf(value_f):
            raise _PointError("invalid float")
    return i


def _scan_boolean(buf: bytes, i: int) -> int:
    start = i
    n = len(buf)
    if i < n and buf[i] not in b"tfTF":
        raise _PointError("invalid boolean")
    i += 1
    while i < n and buf[i] not in (_COMMA, _SP):
        i += 1
    word = buf[start:i]
    if len(word) == 1:
        return i
    if word not in (b"true", b"True", b"TRUE", b"false", b"False", b"FALSE"):
        raise _PointError("invalid boolean")
    return i


def _scan_fields(buf: bytes, i: int) -> tuple[int, bytes]:
    start = _skip_whitespace(buf, i)
    i = start
    quoted = False
    equals = commas = 0
    n = len(buf)
    while i < n:
        c = buf[i]
        if c == _BS and i + 1 < n:
            i += 2
            continue
        if c == _DQ and equals > commas:
            quoted = not quoted
            i += 1
            continue
        if c == _EQ and not quoted:
            equals += 1
            if i >= 2 and buf[i - 1] == _SP and buf[i - 2] != _BS:
                raise _PointError("missing field key")
            if i >= 2 and buf[i - 1] == _COMMA and buf[i - 2] != _BS:
                raise _PointError("missing field key")
            if i + 1 >= n:
                raise _PointError("missing field value")
            nxt = buf[i + 1]
            if nxt in (_COMMA, _SP):
                raise _PointError("missing field value")
            if _is_numeric(nxt) or nxt in (0x2D, 0x4E, 0x6E):
                i = _scan_number(buf, i + 1)
                continue
            if nxt != _DQ:
                i = _scan_boolean(buf, i + 1)
                continue
        if c == _COMMA and not quoted:
            commas += 1
        if c == _SP and not quoted:
            break
        i += 1
    if quoted:
        raise _PointError("unbalanced quotes")
    if equals == 0 or commas != equals - 1:
        raise _PointError("invalid field format")
    return i, buf[start:i]


def _scan_time(buf: bytes, i: int) -> tuple[int, bytes]:
    start = _skip_whitespace(buf, i)
    i = start
    while i < len(buf):
        c = buf[i]
        if c in (_NL, _SP):
            break
        if i == start and c == 0x2D:
            i += 1
            continue
        if not 0x30 <= c <= 0x39:
            raise _PointError("bad timestamp")
        i += 1
    return i, buf[start:i]


def _scan_field_value(buf: bytes, i: int) -> int:
    quoted = False
    while i < len(buf):
        c = buf[i]
        if c == _BS and i + 1 < len(buf) and buf[i + 1] in (_DQ, _BS):
            i += 2
            continue
        if c == _DQ:
            i += 1
            quoted = not quoted
            continue
        if c == _COMMA and not quoted:
            break
        i += 1
    return i


def _walk_fields(buf: bytes) -> list[tuple[bytes, bytes]]:
    out = []
    while buf:
        i = _scan_to(buf, 0, _EQ)
        key = buf[:i]
        buf = buf[i + 1 :]
        i = _scan_field_value(buf, 0)
        out.append((key, buf[:i]))
        buf = buf[i:]
        if buf:
            buf = buf[1:]
    return out


def _unescape_name(raw: bytes) -> str:
    """pkg/escape.Unescape: \\, \\" \\  and \\= lose their backslash (measurements, field keys)."""
    out = bytearray()
    i = 0
    while i < len(raw):
        if raw[i] == _BS and i + 1 < len(raw) and raw[i + 1] in (_COMMA, _DQ, _SP, _EQ):
            out.append(raw[i + 1])
            i += 2
            continue
        out.append(raw[i])
        i += 1
    return out.decode("utf-8", "replace")


def _unescape_tag(raw: bytes) -> str:
    """models.unescapeTag: \\, \\  and \\= lose their backslash."""
    return raw.replace(b"\\,", b",").replace(b"\\ ", b" ").replace(b"\\=", b"=").decode("utf-8", "replace")


def _unescape_string_field(raw: bytes) -> str:
    out = bytearray()
    i = 0
    while i < len(raw):
        if raw[i] == _BS and i + 1 < len(raw) and raw[i + 1] in (_BS, _DQ):
            out.append(raw[i + 1])
            i += 2
            continue
        out.append(raw[i])
        i += 1
    return out.decode("utf-8", "replace")


def _typed_value(raw: bytes) -> tuple[str, Any]:
    first = raw[0]
    if first in b"tT":
        return "boolean", True
    if first in b"fF":
        return "boolean", False
    if first == _DQ:
        return "string", _unescape_string_field(raw[1:-1])
    text = raw.decode("ascii")
    if text.endswith("i"):
        return "integer", int(text[:-1])
    if text.endswith("u"):
        return "unsigned", int(text[:-1])
    return "float", float(text)


def _parse_point(buf: bytes, default_time: int, multiplier: int) -> tuple[Point, dict[str, str]]:
    pos, measurement, tags, key_len = _scan_key(buf, 0)
    if not measurement:
        raise _PointError("missing measurement")
    if key_len > MAX_KEY_LENGTH:
        raise _PointError(f"max key length exceeded: {key_len} > {MAX_KEY_LENGTH}")
    pos, fields_raw = _scan_fields(buf, pos)
    if not fields_raw:
        raise _PointError("missing fields")
    pairs = _walk_fields(fields_raw)
    for key, _ in pairs:
        size = key_len + 4 + len(key)
        if size > MAX_KEY_LENGTH:
            raise _PointError(f"max key length exceeded: {size} > {MAX_KEY_LENGTH}")
    pos, ts = _scan_time(buf, pos)
    if not ts:
        t = default_time - default_time % multiplier
    else:
        text = ts.decode("ascii")
        try:
            value = int(text)
        except ValueError:
            raise _PointError(f'strconv.ParseInt: parsing "{text}": invalid syntax') from None
        if not -(2**63) <= value <= 2**63 - 1:
            raise _PointError(f'strconv.ParseInt: parsing "{text}": value out of range')
        t = value * multiplier
        if not MIN_NANO_TIME <= t <= MAX_NANO_TIME:
            raise _PointError(f"time outside range {MIN_NANO_TIME} - {MAX_NANO_TIME}")
        while pos < len(buf):
            if buf[pos] != _SP:
                raise _PointError("point is invalid")
            pos += 1
    fields: dict[str, Any] = {}
    types: dict[str, str] = {}
    for key, raw in pairs:
        name = _unescape_name(key)
        types[name], fields[name] = _typed_value(raw)
    point = Point(_unescape_name(measurement), {_unescape_tag(k): _unescape_tag(v) for k, v in sorted(tags)}, fields, t)
    return point, types


def parse_line_protocol(
    body: bytes | str, precision: str = "ns", now_ns: int | None = None
) -> list[tuple[Point, dict[str, str]]]:
    """Parse a write body as InfluxDB 2 does.  Returns (point, field types) pairs; raises
    ``LineProtocolError`` (message as InfluxDB words it) if any line is malformed."""
    if isinstance(body, str):
        body = body.encode("utf-8")
    multiplier = PRECISION_NS[precision]
    default_time = time.time_ns() if now_ns is None else now_ns
    parsed = []
    failed = []
    pos = 0
    while pos < len(body):
        pos, block = _scan_line(body, pos)
        pos += 1
        if not block:
            continue
        start = _skip_whitespace(block, 0)
        if start >= len(block) or block[start] == _HASH:
            continue
        if block[-1] == _NL:
            block = block[:-1]
        line = block[start:]
        try:
            parsed.append(_parse_point(line, default_time, multiplier))
        except _PointError as exc:
            failed.append(f"unable to parse '{line.decode('utf-8', 'replace')}': {exc}")
    if failed:
        raise LineProtocolError("\n".join(failed))
    return parsed


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------


class _ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


def _err(code: str, message: str) -> _ApiError:
    return _ApiError(_CODE_TO_STATUS[code], code, message)


def _new_id() -> str:
    while True:
        value = secrets.token_hex(8)
        if int(value, 16) != 0:
            return value


def _new_token() -> str:
    # authorization/service.go: rand.NewTokenGenerator(64) -> base64 (URL alphabet) of 64 bytes
    return base64.urlsafe_b64encode(secrets.token_bytes(64)).decode("ascii")


def _parse_id(text: str) -> str:
    """platform.IDFromString: 16 hex characters, not all zeros."""
    if len(text) != 16:
        raise _err("invalid", "id must have a length of 16 bytes")
    try:
        value = int(text, 16)
    except ValueError:
        raise _err("invalid", "invalid ID") from None
    if value == 0:
        raise _err("invalid", "invalid ID")
    return text.lower()


def _is_id(text: str) -> bool:
    try:
        _parse_id(text)
        return True
    except _ApiError:
        return False


def _rfc3339(ns: int) -> str:
    seconds, frac = divmod(ns, 1_000_000_000)
    text = datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S")
    if frac:
        text += "." + f"{frac:09d}".rstrip("0")
    return text + "Z"


def _now() -> str:
    return _rfc3339(time.time_ns())


def _resource_string(rtype: str, rid: str | None, org_id: str | None) -> str:
    # influxdb.Resource.String()
    if org_id and rid:
        return f"orgs/{org_id}/{rtype}/{rid}"
    if org_id:
        return f"orgs/{org_id}/{rtype}"
    if rid:
        return f"{rtype}/{rid}"
    return rtype


def _permission_string(perm: dict) -> str:
    res = perm["resource"]
    return f"{perm['action']}:{_resource_string(res['type'], res.get('id'), res.get('orgID'))}"


def _permission_matches(perm: dict, action: str, rtype: str, rid: str | None, org_id: str | None) -> bool:
    """influxdb.Permission.Matches (matchesV1)."""
    res = perm["resource"]
    if perm["action"] != action or res["type"] != rtype:
        return False
    pid, porg = res.get("id"), res.get("orgID")
    if pid is None and porg is None:
        return True
    if porg is not None and pid is None and org_id is not None and porg == org_id:
        return True
    if pid is not None and rid is not None and pid == rid:
        return True
    return False


def _format_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e21:
            return str(int(value))
        return repr(value)
    return str(value)


_FLUX_TYPES = {
    "float": "double",
    "integer": "long",
    "unsigned": "unsignedLong",
    "string": "string",
    "boolean": "boolean",
}

_FROM_BUCKET = re.compile(r'from\s*\(\s*bucket\s*:\s*"((?:[^"\\]|\\.)*)"')


# --------------------------------------------------------------------------------------------
# the server
# --------------------------------------------------------------------------------------------


class InfluxDB2StandIn(StandIn):
    """See the module docstring.  ``with InfluxDB2StandIn() as influx: ...``"""

    name = "influxdb2-stand-in"
    poll_interval = 0.005

    def __init__(
        self,
        org: str = "powerview",
        admin_token: str = "admin-token",
        redact_tokens: bool = False,
        influxql_backend: str | None = None,
        backend_prefix: str | None = None,
    ):
        super().__init__()
        self.influxql_backend = influxql_backend.rstrip("/") if influxql_backend else None
        self.backend_prefix = backend_prefix if backend_prefix is not None else f"s{secrets.token_hex(4)}_"
        self._backend_dbs: set[str] = set()
        self.org = org
        self.org_id = _new_id()
        self.admin_token = admin_token
        self.redact_tokens = redact_tokens
        self.user = "admin"
        self.user_id = _new_id()
        self.requests: list[RequestRecord] = []

        self._lock = threading.RLock()
        self._write_failures: list[tuple[int, float | None, dict | None]] = []
        # influxd --http-write-body... / WithMaxBatchSizeBytes: 413 "points batch is too large"
        self.max_batch_bytes = 0
        # called (with the bucket name) before each write is handled: tests replace or remove
        # the file being ingested from here, while the parser is in the middle of it
        self.on_write: Callable[[str], None] | None = None
        # called (with the method and path) before any request is handled: a test plays another
        # process there (e.g. creates the bucket between the parser's look-up and its creation)
        self.on_request: Callable[[str, str], None] | None = None

        created = _now()
        self._org_record = {
            "id": self.org_id,
            "name": org,
            "description": "",
            "createdAt": created,
            "updatedAt": created,
        }
        self._buckets: dict[str, dict] = {}  # id -> internal bucket
        self._auths: list[dict] = []  # internal authorizations, creation order
        self._points: dict[str, list[Point]] = {}  # bucket id -> points in arrival order
        self._schema: dict[str, dict[tuple[str, str], str]] = {}  # bucket id -> field types
        self._tasks: dict[str, dict] = {}  # task id -> task, creation order
        for name, retention, description in (
            ("_monitoring", 604800, "System bucket for monitoring logs"),
            ("_tasks", 259200, "System bucket for task logs"),
        ):
            self._add_bucket(name, "system", retention, description)
        self._auths.append(
            {
                "id": _new_id(),
                "token": admin_token,
                "status": "active",
                "description": "admin's Token",
                "orgID": self.org_id,
                "userID": self.user_id,
                "permissions": [{"action": a, "resource": {"type": t}} for t in RESOURCE_TYPES for a in ACTIONS],
                "createdAt": created,
                "updatedAt": created,
            }
        )

    # ---------------------------------------------------------------- state for tests

    @property
    def buckets(self) -> dict[str, dict]:
        """name -> bucket JSON as GET /api/v2/buckets/{id} serves it."""
        with self._lock:
            return {b["name"]: self._bucket_json(b) for b in self._sorted_buckets()}

    @property
    def authorizations(self) -> list[dict]:
        """Every authorization as the API serves it, always with the real token."""
        with self._lock:
            return [self._auth_json(a, redact=False) for a in self._auths]

    def points(self, bucket: str) -> list[Point]:
        """Every accepted point of bucket ``bucket`` (name), in arrival order, duplicates kept."""
        with self._lock:
            b = self._bucket_by_name(bucket)
            return list(self._points.get(b["id"], [])) if b else []

    def latest(self, bucket: str) -> dict[tuple, Point]:
        """What InfluxDB keeps: (measurement, sorted tag items, field, time) -> the last written
        value, as a Point holding that one field."""
        out: dict[tuple, Point] = {}
        for p in self.points(bucket):
            tag_items = tuple(sorted(p.tags.items()))
            for name, value in p.fields.items():
                out[(p.measurement, tag_items, name, p.time)] = Point(
                    p.measurement, dict(p.tags), {name: value}, p.time
                )
        return out

    def schema(self, bucket: str) -> dict[tuple[str, str], str]:
        """(measurement, field) -> InfluxDB type name (float, integer, unsigned, string, boolean)."""
        with self._lock:
            b = self._bucket_by_name(bucket)
            return dict(self._schema.get(b["id"], {})) if b else {}

    @property
    def tasks(self) -> dict[str, dict]:
        """name -> task JSON as GET /api/v2/tasks/{id} serves it."""
        with self._lock:
            return {t["name"]: self._task_json(t) for t in self._tasks.values()}

    def add_task(self, name: str, flux: str, every: str = "", offset: str = "", status: str = "active") -> str:
        """A task as `influx task create --file` leaves it (the options are parsed from the Flux
        script by the server). Returns its id."""
        now = _now()
        task = {
            "id": _new_id(),
            "orgID": self.org_id,
            "name": name,
            "ownerID": self.user_id,
            "description": "",
            "status": status,
            "flux": flux,
            "every": every,
            "offset": offset,
            "createdAt": now,
            "updatedAt": now,
        }
        with self._lock:
            self._tasks[task["id"]] = task
        return task["id"]

    def token_for(self, description: str) -> str:
        """The token of the authorization with this description (KeyError if none)."""
        with self._lock:
            for a in self._auths:
                if a["description"] == description:
                    return a["token"]
        raise KeyError(description)

    # ---------------------------------------------------------------- fault injection

    def fail_next_writes(
        self, status: int, count: int = 1, retry_after: float | None = None, body: dict | None = None
    ) -> None:
        """Answer the next ``count`` POST /api/v2/write with ``status`` (and ``Retry-After``),
        storing nothing.  Checked before authentication, like an overloaded server."""
        with self._lock:
            self._write_failures.extend([(status, retry_after, body)] * count)

    # ---------------------------------------------------------------- internals: model

    def _add_bucket(self, name: str, btype: str, retention: int, description: str = "", shard_group: int = 0) -> dict:
        now = _now()
        bucket = {
            "id": _new_id(),
            "orgID": self.org_id,
            "type": btype,
            "name": name,
            "description": description,
            "retention": retention,
            "shardGroup": shard_group,
            "createdAt": now,
            "updatedAt": now,
        }
        self._buckets[bucket["id"]] = bucket
        self._points[bucket["id"]] = []
        self._schema[bucket["id"]] = {}
        return bucket

    def _sorted_buckets(self) -> list[dict]:
        # the org index is keyed by org ID + name, so listings come in name (byte) order
        return sorted(self._buckets.values(), key=lambda b: b["name"].encode("utf-8"))

    def _bucket_by_name(self, name: str) -> dict | None:
        for b in self._buckets.values():
            if b["name"] == name:
                return b
        return None

    def _bucket_json(self, b: dict) -> dict:
        rules = []
        if b["retention"] > 0 or b["shardGroup"] > 0:
            rules.append(
                {"type": "expire", "everySeconds": b["retention"], "shardGroupDurationSeconds": b["shardGroup"]}
            )
        out = {"id": b["id"], "orgID": b["orgID"], "type": b["type"]}
        if b["description"]:
            out["description"] = b["description"]
        out.update(
            {
                "name": b["name"],
                "retentionRules": rules,
                "createdAt": b["createdAt"],
                "updatedAt": b["updatedAt"],
                "links": {
                    "self": f"/api/v2/buckets/{b['id']}",
                    "org": f"/api/v2/orgs/{b['orgID']}",
                    "members": f"/api/v2/buckets/{b['id']}/members",
                    "owners": f"/api/v2/buckets/{b['id']}/owners",
                    "labels": f"/api/v2/buckets/{b['id']}/labels",
                    "write": f"/api/v2/write?org={b['orgID']}&bucket={b['id']}",
                },
                "labels": [],
            }
        )
        return out

    def _org_json(self) -> dict:
        oid = self.org_id
        return {
            "links": {
                "self": f"/api/v2/orgs/{oid}",
                "members": f"/api/v2/orgs/{oid}/members",
                "owners": f"/api/v2/orgs/{oid}/owners",
                "labels": f"/api/v2/orgs/{oid}/labels",
                "secrets": f"/api/v2/orgs/{oid}/secrets",
                "buckets": f"/api/v2/buckets?org={self.org}",
                "tasks": f"/api/v2/tasks?org={self.org}",
                "dashboards": f"/api/v2/dashboards?org={self.org}",
            },
            **self._org_record,
        }

    def _auth_json(self, a: dict, redact: bool) -> dict:
        perms = []
        for p in a["permissions"]:
            res = dict(p["resource"])
            if res.get("id") and res["type"] == "buckets" and res["id"] in self._buckets:
                res["name"] = self._buckets[res["id"]]["name"]
            elif res.get("id") and res["type"] == "orgs" and res["id"] == self.org_id:
                res["name"] = self.org
            if res.get("orgID") == self.org_id:
                res["org"] = self.org
            perms.append({"action": p["action"], "resource": res})
        return {
            "id": a["id"],
            "token": "redacted" if redact else a["token"],
            "status": a["status"],
            "description": a["description"],
            "orgID": a["orgID"],
            "org": self.org,
            "userID": a["userID"],
            "user": self.user,
            "permissions": perms,
            "links": {"self": f"/api/v2/authorizations/{a['id']}", "user": f"/api/v2/users/{a['userID']}"},
            "createdAt": a["createdAt"],
            "updatedAt": a["updatedAt"],
        }

    # ---------------------------------------------------------------- internals: authorization

    @staticmethod
    def _permission_set(auth: dict) -> list[dict]:
        if auth["status"] != "active":
            raise _err("unauthorized", "token is inactive")
        return auth["permissions"]

    def _allowed(self, auth: dict, action: str, rtype: str, rid: str | None, org_id: str | None) -> bool:
        return any(_permission_matches(p, action, rtype, rid, org_id) for p in self._permission_set(auth))

    def _authorize(self, auth: dict, action: str, rtype: str, rid: str | None, org_id: str | None) -> None:
        """authorizer.authorize: 401 "<action>:<resource> is unauthorized"."""
        if not self._allowed(auth, action, rtype, rid, org_id):
            raise _err("unauthorized", f"{action}:{_resource_string(rtype, rid, org_id)} is unauthorized")

    def _authorize_read_bucket(self, auth: dict, b: dict) -> None:
        if b["type"] == "system":  # authorizeReadSystemBucket -> AuthorizeReadOrg
            self._authorize(auth, "read", "orgs", b["orgID"], None)
        else:
            self._authorize(auth, "read", "buckets", b["id"], b["orgID"])

    def _can(self, check: Callable[[], None]) -> bool:
        try:
            check()
            return True
        except _ApiError as exc:
            if exc.code == "unauthorized":
                return False
            raise

    def _find_org(self, org: str | None = None, org_id: str | None = None) -> dict:
        """tenant FindOrganization: by ID (404 "organization not found") or by name
        (404 'organization name "x" not found')."""
        if org_id is not None:
            if org_id != self.org_id:
                raise _err("not found", "organization not found")
        elif org is not None:
            if org != self.org:
                raise _err("not found", f'organization name "{org}" not found')
        else:
            raise _err("invalid", "Please provide either orgID or org")
        return self._org_record

    def _query_organization(self, query: dict[str, str]) -> dict:
        """http/requests.go queryOrganization: ``org`` is an ID or a name, ``orgID`` an ID."""
        org = query.get("org", "")
        org_id = query.get("orgID", "")
        if org_id:
            return self._find_org(org_id=_parse_id(org_id))
        if org:
            if _is_id(org) and org.lower() == self.org_id:
                return self._org_record
            return self._find_org(org=org)
        return self._find_org()

    # ---------------------------------------------------------------- internals: HTTP plumbing

    def serve(self, h: _Handler) -> None:
        method = h.command
        split = urlsplit(h.path)
        path = split.path
        query: dict[str, str] = {}
        for key, value in parse_qsl(split.query, keep_blank_values=True):
            query.setdefault(key, value)
        headers = {k: v for k, v in h.headers.items()}
        raw = self._read_body(h)
        encoding = (h.headers.get("Content-Encoding") or "").strip().lower()
        body = raw
        gzip_error: Exception | None = None
        if encoding in ("gzip", "x-gzip") and raw:
            try:
                body = gzip.decompress(raw)
            except (OSError, EOFError, zlib.error) as exc:
                gzip_error = exc
        record = RequestRecord(method, path, query, headers, body)

        status, out_headers, payload = 500, {}, b""
        try:
            if self.on_request is not None:
                self.on_request(method, path)
            injected = self.injected_fault(method, path)  # StandIn.fail_next()
            if injected is not None:
                code = _STATUS_TO_CODE.get(injected, "internal error")
                raise _ApiError(injected, code, f"stand-in: injected failure (HTTP {injected})")
            status, out_headers, payload = self._route(h, method, path, query, body, raw, gzip_error)
        except _ApiError as exc:
            status = exc.status
            out_headers = {
                "Content-Type": "application/json; charset=utf-8",
                "X-Platform-Error-Code": exc.code,
                **exc.headers,
            }
            payload = json.dumps({"code": exc.code, "message": exc.message}, separators=(",", ":")).encode()
        except Exception:  # noqa: BLE001 - a stand-in bug must not hang the client
            status = 500
            out_headers = {"Content-Type": "application/json; charset=utf-8", "X-Platform-Error-Code": "internal error"}
            payload = json.dumps(
                {"code": "internal error", "message": "An internal error has occurred"}, separators=(",", ":")
            ).encode()
            import traceback

            traceback.print_exc()

        if payload and "gzip" in (h.headers.get("Accept-Encoding") or "") and path == "/api/v2/query" and status == 200:
            payload = gzip.compress(payload)
            out_headers["Content-Encoding"] = "gzip"

        record.status = status
        with self._lock:
            self.requests.append(record)

        h.send_response(status)
        h.send_header("X-Influxdb-Build", "OSS")
        h.send_header("X-Influxdb-Version", VERSION)
        for key, value in out_headers.items():
            h.send_header(key, value)
        if status not in (204, 304) and not (100 <= status < 200):
            h.send_header("Content-Length", str(len(payload)))
        # headers and body in one send: separate small writes stall on Nagle + delayed ACK
        h._headers_buffer.append(b"\r\n")  # type: ignore[attr-defined]
        if method != "HEAD" and status not in (204, 304) and payload:
            h._headers_buffer.append(payload)  # type: ignore[attr-defined]
        h.flush_headers()

    @staticmethod
    def _read_body(h: _Handler) -> bytes:
        if (h.headers.get("Transfer-Encoding") or "").lower() == "chunked":
            chunks = []
            while True:
                size_line = h.rfile.readline()
                size = int(size_line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while h.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                chunks.append(h.rfile.read(size))
                h.rfile.readline()
            return b"".join(chunks)
        length = int(h.headers.get("Content-Length") or 0)
        return h.rfile.read(length) if length > 0 else b""

    @staticmethod
    def _json(status: int, obj: Any) -> tuple[int, dict[str, str], bytes]:
        return status, {"Content-Type": "application/json; charset=utf-8"}, (json.dumps(obj, indent=2) + "\n").encode()

    @staticmethod
    def _decode_json(body: bytes) -> Any:
        try:
            return json.loads(body.decode("utf-8") if body else "")
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise _err("invalid", f"failed to decode request body: {exc}") from None

    def _authenticate(self, h: _Handler) -> dict:
        """http/authentication_middleware.go: "Token <t>" (or "Bearer <t>"); unknown -> 401."""
        header = (h.headers.get("Authorization") or "").strip()
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() not in ("token", "bearer") or not token:
            raise _err("unauthorized", "unauthorized access")
        with self._lock:
            for a in self._auths:
                if a["token"] == token:
                    return a
        raise _err("unauthorized", "unauthorized access")

    # ---------------------------------------------------------------- routing

    _ROUTES: list[tuple[re.Pattern, dict[str, str]]] = [
        (re.compile(r"^/api/v2/write/?$"), {"POST": "_write"}),
        (re.compile(r"^/api/v2/query/?$"), {"POST": "_query"}),
        (re.compile(r"^/api/v2/buckets/?$"), {"GET": "_get_buckets", "POST": "_post_bucket"}),
        (
            re.compile(r"^/api/v2/buckets/(?P<id>[^/]+)/?$"),
            {"GET": "_get_bucket", "DELETE": "_delete_bucket", "PATCH": "_patch_bucket"},
        ),
        (re.compile(r"^/api/v2/tasks/?$"), {"GET": "_get_tasks"}),
        (re.compile(r"^/api/v2/tasks/(?P<id>[^/]+)/?$"), {"GET": "_get_task", "PATCH": "_patch_task"}),
        (re.compile(r"^/api/v2/orgs/?$"), {"GET": "_get_orgs"}),
        (re.compile(r"^/api/v2/orgs/(?P<id>[^/]+)/?$"), {"GET": "_get_org"}),
        (re.compile(r"^/api/v2/authorizations/?$"), {"GET": "_get_auths", "POST": "_post_auth"}),
        (
            re.compile(r"^/api/v2/authorizations/(?P<id>[^/]+)/?$"),
            {"GET": "_get_auth", "PATCH": "_patch_auth", "DELETE": "_delete_auth"},
        ),
    ]

    def _route(
        self,
        h: _Handler,
        method: str,
        path: str,
        query: dict[str, str],
        body: bytes,
        raw: bytes,
        gzip_error: Exception | None,
    ) -> tuple[int, dict[str, str], bytes]:
        # no authentication for these (RegisterNoAuthRoute)
        if path == "/health" and method in ("GET", "HEAD"):
            return self._json(
                200,
                {
                    "name": "influxdb",
                    "message": "ready for queries and writes",
                    "status": "pass",
                    "checks": [],
                    "version": VERSION,
                    "commit": COMMIT,
                },
            )
        if path == "/ping" and method in ("GET", "HEAD"):
            return 204, {}, b""
        if path == "/ready" and method == "GET":
            return self._json(200, {"status": "ready", "started": _now(), "up": "1m0s"})

        if method == "POST" and re.match(r"^/api/v2/write/?$", path):
            with self._lock:
                failure = self._write_failures.pop(0) if self._write_failures else None
            if failure is not None:
                status, retry_after, fail_body = failure
                code = _STATUS_TO_CODE.get(status, "internal error")
                payload = (
                    fail_body
                    if fail_body is not None
                    else {"code": code, "message": f"stand-in: injected failure (HTTP {status})"}
                )
                headers = {
                    "Content-Type": "application/json; charset=utf-8",
                    "X-Platform-Error-Code": str(payload.get("code", code)),
                }
                if retry_after is not None:
                    headers["Retry-After"] = (
                        str(int(retry_after)) if float(retry_after).is_integer() else str(retry_after)
                    )
                return status, headers, json.dumps(payload, separators=(",", ":")).encode()

        if re.match(r"^/query/?$", path) and self.influxql_backend:
            if method not in ("GET", "POST"):
                raise _ApiError(405, "method not allowed", "allow: GET, POST")
            return self._influxql(h, method, query, body)

        for pattern, methods in self._ROUTES:
            match = pattern.match(path)
            if not match:
                continue
            auth = self._authenticate(h)
            if method not in methods:
                raise _ApiError(405, "method not allowed", f"allow: {', '.join(sorted(methods))}")
            handler = getattr(self, methods[method])
            with self._lock:
                if methods[method] == "_write":
                    return handler(auth, query, body, raw, gzip_error, h)
                if methods[method] == "_query":
                    return handler(auth, query, body, h)
                return handler(auth, query, body, **match.groupdict())

        if path.startswith("/api/"):
            self._authenticate(h)
        raise _err("not found", "path not found")

    # ---------------------------------------------------------------- tasks

    def _task_json(self, t: dict) -> dict:
        # influxdb.Task as the HTTP API serves it (http/task_service.go newTaskResponse)
        out = {"id": t["id"], "orgID": t["orgID"], "org": self.org, "name": t["name"], "ownerID": t["ownerID"]}
        if t["description"]:
            out["description"] = t["description"]
        out.update({"status": t["status"], "flux": t["flux"]})
        for key in ("every", "offset"):
            if t[key]:
                out[key] = t[key]
        tid = t["id"]
        out.update(
            {
                "createdAt": t["createdAt"],
                "updatedAt": t["updatedAt"],
                "links": {
                    "self": f"/api/v2/tasks/{tid}",
                    "members": f"/api/v2/tasks/{tid}/members",
                    "owners": f"/api/v2/tasks/{tid}/owners",
                    "labels": f"/api/v2/tasks/{tid}/labels",
                    "runs": f"/api/v2/tasks/{tid}/runs",
                    "logs": f"/api/v2/tasks/{tid}/logs",
                },
                "labels": [],
            }
        )
        return out

    def _task_by_id(self, id: str, verb: str) -> dict:  # noqa: A002
        try:
            tid = _parse_id(id)
        except _ApiError as exc:
            raise _err("invalid", f"failed to decode request: {exc.message}") from None
        task = self._tasks.get(tid)
        if task is None:
            raise _err("not found", f"failed to {verb} task: task not found")
        return task

    def _get_tasks(self, auth: dict, query: dict[str, str], body: bytes) -> tuple:
        def bad(message: str) -> _ApiError:
            return _err("invalid", f"failed to decode request: {message}")

        after = org_id = None
        try:
            if query.get("after"):
                after = _parse_id(query["after"])
            if query.get("orgID"):
                org_id = _parse_id(query["orgID"])
        except _ApiError as exc:
            raise bad(exc.message) from None
        if query.get("org"):
            if query["org"] != self.org:
                raise bad(f"org {query['org']} not found or unauthorized")
            org_id = self.org_id
        limit = 100  # TaskDefaultPageSize
        if query.get("limit"):
            try:
                limit = int(query["limit"])
            except ValueError:
                raise bad(f"strconv.Atoi: parsing {query['limit']!r}: invalid syntax") from None
            if not 1 <= limit <= 500:  # TaskMaxPageSize; handleGetTasks wraps it as invalid
                raise bad("limit must be between 1 and 500")
        status = query.get("status") if query.get("status") in ("active", "inactive") else None
        name = query.get("name") or None
        found = [
            t
            for t in sorted(self._tasks.values(), key=lambda t: t["id"])
            if (org_id is None or t["orgID"] == org_id)
            and (name is None or t["name"] == name)
            and (status is None or t["status"] == status)
            and (after is None or t["id"] > after)
            and self._allowed(auth, "read", "tasks", t["id"], t["orgID"])
        ][:limit]
        params = {k: v for k, v in query.items() if k in ("after", "org", "orgID", "name", "status") and v}
        params["limit"] = str(limit)
        links = {"self": "/api/v2/tasks?" + urlencode(sorted(params.items()))}
        if len(found) >= limit:
            links["next"] = "/api/v2/tasks?" + urlencode(sorted(dict(params, after=found[-1]["id"]).items()))
        return self._json(200, {"links": links, "tasks": [self._task_json(t) for t in found]})

    def _get_task(self, auth: dict, query: dict[str, str], body: bytes, id: str) -> tuple:  # noqa: A002
        task = self._task_by_id(id, "find")
        self._authorize(auth, "read", "tasks", task["id"], task["orgID"])
        return self._json(200, self._task_json(task))

    def _patch_task(self, auth: dict, query: dict[str, str], body: bytes, id: str) -> tuple:  # noqa: A002
        try:
            tid = _parse_id(id)
        except _ApiError as exc:
            raise _err("invalid", f"failed to decode request: {exc.message}") from None
        update = self._decode_json(body)
        if not isinstance(update, dict):
            raise _err("invalid", "failed to decode request: json: cannot unmarshal into Go value of type TaskUpdate")
        known = {key: update[key] for key in ("status", "description") if update.get(key) is not None}
        if not known and not any(update.get(k) for k in ("flux", "name", "every", "cron", "offset")):
            raise _err("invalid", "failed to decode request: cannot update task without content")
        if "status" in known and known["status"] not in ("active", "inactive"):
            raise _err("invalid", "failed to decode request: invalid task status")
        task = self._tasks.get(tid)
        if task is None:
            raise _err("not found", "failed to update task: task not found")
        self._authorize(auth, "write", "tasks", task["id"], task["orgID"])
        task.update(known)
        task["updatedAt"] = _now()
        return self._json(200, self._task_json(task))

    # ---------------------------------------------------------------- orgs

    def _get_orgs(self, auth: dict, query: dict[str, str], body: bytes) -> tuple:
        if query.get("orgID"):
            self._find_org(org_id=_parse_id(query["orgID"]))
        elif query.get("org"):
            self._find_org(org=query["org"])
        orgs = [self._org_json()] if self._can(lambda: self._authorize(auth, "read", "orgs", self.org_id, None)) else []
        params = {"descending": "false", "limit": query.get("limit", "20"), "offset": query.get("offset", "0")}
        return self._json(200, {"links": {"self": "/api/v2/orgs?" + urlencode(params)}, "orgs": orgs})

    def _get_org(self, auth: dict, query: dict[str, str], body: bytes, id: str) -> tuple:  # noqa: A002
        oid = _parse_id(id)
        self._find_org(org_id=oid)
        self._authorize(auth, "read", "orgs", oid, None)
        return self._json(200, self._org_json())

    # ---------------------------------------------------------------- buckets

    def _find_options(self, query: dict[str, str]) -> tuple[int, int, str | None, bool]:
        """influxdb.DecodeFindOptions."""
        limit, offset = 20, 0
        if query.get("limit"):
            try:
                limit = int(query["limit"])
            except ValueError:
                raise _err("invalid", f"strconv.Atoi: parsing {query['limit']!r}: invalid syntax") from None
            if limit < 1 or limit > 100:
                raise _err("invalid", "limit must be between 1 and 100")
        if query.get("offset"):
            try:
                offset = int(query["offset"])
            except ValueError:
                raise _err("invalid", f"strconv.Atoi: parsing {query['offset']!r}: invalid syntax") from None
            if offset < 0:
                raise _err("invalid", "offset must be greater than or equal to 0")
        after = _parse_id(query["after"]) if query.get("after") else None
        descending = query.get("descending", "false").lower() == "true"
        return limit, offset, after, descending

    def _get_buckets(self, auth: dict, query: dict[str, str], body: bytes) -> tuple:
        limit, offset, after, descending = self._find_options(query)
        org_id = _parse_id(query["orgID"]) if query.get("orgID") else None
        name = query.get("name") or None
        bucket_id = _parse_id(query["id"]) if query.get("id") else None
        if bucket_id is not None:
            if bucket_id not in self._buckets:
                raise _err("not found", "bucket not found")
            found = [self._buckets[bucket_id]]
        else:
            if org_id is None and query.get("org"):
                org_id = self._find_org(org=query["org"])["id"]
            if name is not None and org_id is not None:
                # tenant BucketSvc.FindBuckets: name + org is GetBucketByName, which fails when absent
                b = self._bucket_by_name(name) if org_id == self.org_id else None
                if b is None:
                    raise _err("not found", f'bucket "{name}" not found')
                found = [b]
            else:
                found = [
                    b
                    for b in self._sorted_buckets()
                    if (org_id is None or b["orgID"] == org_id) and (name is None or b["name"] == name)
                ]
                if descending:
                    found.reverse()
                if after is not None:
                    ids = [b["id"] for b in found]
                    found = found[ids.index(after) + 1 :] if after in ids else []
                found = found[offset : offset + limit]
        visible = [b for b in found if self._can(lambda b=b: self._authorize_read_bucket(auth, b))]
        params: dict[str, str] = {"descending": "true" if descending else "false", "limit": str(limit)}
        if offset:
            params["offset"] = str(offset)
        if after:
            params["after"] = after
        for key in ("name", "org", "orgID", "id"):
            if query.get(key):
                params[key] = query[key]
        links = {"self": "/api/v2/buckets?" + urlencode(sorted(params.items()))}
        if len(found) >= limit:
            nxt = dict(params, offset=str(offset + limit))
            links["next"] = "/api/v2/buckets?" + urlencode(sorted(nxt.items()))
        if offset > 0:
            prev = dict(params, offset=str(max(offset - limit, 0)))
            links["prev"] = "/api/v2/buckets?" + urlencode(sorted(prev.items()))
        return self._json(200, {"links": links, "buckets": [self._bucket_json(b) for b in visible]})

    def _post_bucket(self, auth: dict, query: dict[str, str], body: bytes) -> tuple:
        req = self._decode_json(body)
        if not isinstance(req, dict):
            raise _err("invalid", "failed to decode request body: json: cannot unmarshal into Go value")
        org_id = req.get("orgID") or ""
        if not isinstance(org_id, str) or not _is_id(org_id):
            raise _err("invalid", "organization id must be provided")
        org_id = org_id.lower()
        rules = req.get("retentionRules") or []
        if len(rules) > 1:
            raise _err("unprocessable entity", "buckets cannot have more than one retention rule at this time")
        retention = shard_group = 0
        if rules:
            retention = int(rules[0].get("everySeconds") or 0)
            shard_group = int(rules[0].get("shardGroupDurationSeconds") or 0)
            if retention < 0:
                raise _err("unprocessable entity", "expiration seconds cannot be negative")
            if shard_group < 0:
                raise _err("unprocessable entity", "shard-group duration seconds cannot be negative")
        # AuthedBucketService.CreateBucket, then BucketSvc.CreateBucket
        self._authorize(auth, "write", "buckets", None, org_id)
        name = req.get("name") or ""
        if not isinstance(name, str):
            raise _err("invalid", "failed to decode request body: json: cannot unmarshal name")
        if name.startswith("_"):
            raise _err("invalid", f"bucket name {name} is invalid. Buckets may not start with underscore")
        if '"' in name:
            raise _err("invalid", f"bucket name {name} is invalid. Bucket names may not include quotation marks")
        self._find_org(org_id=org_id)
        if self._bucket_by_name(name) is not None:
            raise _err("conflict", f"bucket with name {name} already exists")
        bucket = self._add_bucket(name, "user", retention, req.get("description") or "", shard_group)
        return self._json(201, self._bucket_json(bucket))

    def _get_bucket(self, auth: dict, query: dict[str, str], body: bytes, id: str) -> tuple:  # noqa: A002
        bid = _parse_id(id)
        b = self._buckets.get(bid)
        if b is None:
            raise _err("not found", "bucket not found")
        self._authorize_read_bucket(auth, b)
        return self._json(200, self._bucket_json(b))

    def _patch_bucket(self, auth: dict, query: dict[str, str], body: bytes, id: str) -> tuple:  # noqa: A002
        bid = _parse_id(id)
        req = self._decode_json(body)
        b = self._buckets.get(bid)
        if b is None:
            raise _err("not found", "bucket not found")
        self._authorize(auth, "write", "buckets", bid, b["orgID"])
        name = req.get("name")
        if name is not None and name != b["name"]:
            if b["type"] == "system":
                raise _err("invalid", "system buckets cannot be renamed")
            if name.startswith("_"):
                raise _err("invalid", f"bucket name {name} is invalid. Buckets may not start with underscore")
            if '"' in name:
                raise _err("invalid", f"bucket name {name} is invalid. Bucket names may not include quotation marks")
            if self._bucket_by_name(name) is not None:
                raise _err("conflict", "bucket name is not unique")
            b["name"] = name
        if req.get("description") is not None:
            b["description"] = req["description"]
        rules = req.get("retentionRules") or []
        if rules:
            if rules[0].get("everySeconds") is not None:
                b["retention"] = int(rules[0]["everySeconds"])
            if rules[0].get("shardGroupDurationSeconds") is not None:
                b["shardGroup"] = int(rules[0]["shardGroupDurationSeconds"])
        b["updatedAt"] = _now()
        return self._json(200, self._bucket_json(b))

    def _delete_bucket(self, auth: dict, query: dict[str, str], body: bytes, id: str) -> tuple:  # noqa: A002
        bid = _parse_id(id)
        b = self._buckets.get(bid)
        if b is None:
            raise _err("not found", "bucket not found")
        self._authorize(auth, "write", "buckets", bid, b["orgID"])
        if b["type"] == "system":
            raise _err("invalid", "system buckets cannot be deleted")
        del self._buckets[bid]
        self._points.pop(bid, None)
        self._schema.pop(bid, None)
        return 204, {}, b""

    # ---------------------------------------------------------------- authorizations

    def _validate_permissions(self, perms: Any) -> list[dict]:
        if not perms:
            raise _err("invalid", "authorization must include permissions")
        if not isinstance(perms, list):
            raise _err("invalid", "invalid json structure")
        out = []
        for p in perms:
            if not isinstance(p, dict) or not isinstance(p.get("resource"), dict):
                raise _err("invalid", "invalid json structure")
            action = p.get("action")
            res = p["resource"]
            if action not in ACTIONS:
                raise _err("invalid", "unknown action for permission")
            if res.get("type") not in RESOURCE_TYPES:
                raise _err("invalid", "unknown resource type for permission")
            clean: dict[str, str] = {"type": res["type"]}
            for key in ("id", "orgID"):
                if res.get(key):
                    clean[key] = _parse_id(str(res[key]))
            out.append({"action": action, "resource": clean})
        return out

    def _get_auths(self, auth: dict, query: dict[str, str], body: bytes) -> tuple:
        user_id = _parse_id(query["userID"]) if query.get("userID") else None
        org_id = _parse_id(query["orgID"]) if query.get("orgID") else None
        if user_id is None and query.get("user"):
            if query["user"] != self.user:
                raise _err("not found", "user not found")
            user_id = self.user_id
        if org_id is None and query.get("org"):
            org_id = self._find_org(org=query["org"])["id"]
        found = [
            a
            for a in self._auths
            if (user_id is None or a["userID"] == user_id) and (org_id is None or a["orgID"] == org_id)
        ]
        if query.get("token"):
            found = [a for a in found if a["token"] == query["token"]]
            if not found:
                raise _err("not found", "authorization not found")
        visible = [
            a
            for a in found
            if self._can(lambda a=a: self._authorize(auth, "read", "authorizations", a["id"], a["orgID"]))
            and self._can(lambda a=a: self._authorize(auth, "read", "users", a["userID"], None))
        ]
        return self._json(
            200,
            {
                "links": {"self": "/api/v2/authorizations"},
                "authorizations": [self._auth_json(a, self.redact_tokens) for a in visible],
            },
        )

    def _post_auth(self, auth: dict, query: dict[str, str], body: bytes) -> tuple:
        req = self._decode_json(body)
        if not isinstance(req, dict):
            raise _err("invalid", "invalid json structure")
        perms = self._validate_permissions(req.get("permissions"))
        org_id = req.get("orgID") or ""
        if not isinstance(org_id, str) or not _is_id(org_id):
            raise _err("invalid", "org id required")
        org_id = org_id.lower()
        status = req.get("status") or "active"
        if status not in ("active", "inactive"):
            raise _err("invalid", "status must be active or inactive")
        user_id = req.get("userID") or self.user_id
        if user_id != self.user_id:
            raise _err("invalid", "unable to create token")
        # AuthedAuthorizationService.CreateAuthorization
        self._authorize(auth, "write", "authorizations", None, org_id)
        self._authorize(auth, "write", "users", user_id, None)
        for p in perms:
            res = p["resource"]
            if not self._allowed(auth, p["action"], res["type"], res.get("id"), res.get("orgID")):
                raise _err("forbidden", f"permission {_permission_string(p)} is not allowed")
        # Service.CreateAuthorization: a.Valid(), then user and org must exist
        for p in perms:
            if p["resource"].get("orgID") and p["resource"]["orgID"] != org_id:
                raise _err("invalid", f"permission {_permission_string(p)} is not for org id {org_id}")
        if org_id != self.org_id:
            raise _err("invalid", "unable to create token")
        now = _now()
        a = {
            "id": _new_id(),
            "token": _new_token(),
            "status": status,
            "description": req.get("description") or "",
            "orgID": org_id,
            "userID": user_id,
            "permissions": perms,
            "createdAt": now,
            "updatedAt": now,
        }
        self._auths.append(a)
        return self._json(201, self._auth_json(a, redact=False))

    def _auth_by_id(self, text: str) -> dict:
        aid = _parse_id(text)
        for a in self._auths:
            if a["id"] == aid:
                return a
        raise _err("not found", "authorization not found")

    def _get_auth(self, auth: dict, query: dict[str, str], body: bytes, id: str) -> tuple:  # noqa: A002
        a = self._auth_by_id(id)
        self._authorize(auth, "read", "authorizations", a["id"], a["orgID"])
        self._authorize(auth, "read", "users", a["userID"], None)
        return self._json(200, self._auth_json(a, self.redact_tokens))

    def _patch_auth(self, auth: dict, query: dict[str, str], body: bytes, id: str) -> tuple:  # noqa: A002
        a = self._auth_by_id(id)
        req = self._decode_json(body)
        if not isinstance(req, dict):
            raise _err("invalid", "invalid json structure")
        self._authorize(auth, "write", "authorizations", a["id"], a["orgID"])
        self._authorize(auth, "write", "users", a["userID"], None)
        status = req.get("status")
        if status is not None:
            if status not in ("active", "inactive"):
                raise _err("invalid", "status must be active or inactive")
            a["status"] = status
        if req.get("description") is not None:
            a["description"] = req["description"]
        a["updatedAt"] = _now()
        return self._json(200, self._auth_json(a, self.redact_tokens))

    def _delete_auth(self, auth: dict, query: dict[str, str], body: bytes, id: str) -> tuple:  # noqa: A002
        a = self._auth_by_id(id)
        self._authorize(auth, "write", "authorizations", a["id"], a["orgID"])
        self._authorize(auth, "write", "users", a["userID"], None)
        self._auths.remove(a)
        return 204, {}, b""

    # ---------------------------------------------------------------- write

    def _write(
        self, auth: dict, query: dict[str, str], body: bytes, raw: bytes, gzip_error: Exception | None, h: _Handler
    ) -> tuple:
        # http/write_handler.go handleWrite, step by step
        if self.on_write is not None:
            self.on_write(query.get("bucket", ""))
        if self.max_batch_bytes and len(body) > self.max_batch_bytes:
            raise _err("request too large", "unable to read data: points batch is too large")
        precision = query.get("precision") or "ns"
        if precision not in PRECISION_NS:
            raise _err("invalid", "invalid precision; valid precision units are ns, us, ms, and s")
        bucket_ref = query.get("bucket", "")
        if not bucket_ref:
            raise _err("not found", "bucket not found")
        if gzip_error is not None and raw[:2] != b"\x1f\x8b":
            # gzip.NewReader's ErrHeader is returned as is: not a platform error -> 500
            raise _err("internal error", "An internal error has occurred")
        org = self._query_organization(query)
        bucket = None
        if _is_id(bucket_ref):
            b = self._buckets.get(bucket_ref.lower())
            if b is not None and b["orgID"] == org["id"]:
                bucket = b
        if bucket is None:
            bucket = self._bucket_by_name(bucket_ref)
            if bucket is None or bucket["orgID"] != org["id"]:
                raise _err("not found", f'bucket "{bucket_ref}" not found')
        try:
            allowed = self._allowed(auth, "write", "buckets", bucket["id"], org["id"])
        except _ApiError:
            allowed = False  # inactive token: PermissionSet() fails -> forbidden
        if not allowed:
            raise _err("forbidden", "insufficient permissions for write")
        if gzip_error is not None:
            # points_parser.go readAll: checksum errors are "invalid", anything else "internal error"
            if isinstance(gzip_error, gzip.BadGzipFile):
                raise _err("invalid", "unable to read data: gzip: invalid checksum")
            raise _err("internal error", "unable to read data: unexpected EOF")
        if not body:
            raise _err("invalid", "writing requires points")
        try:
            parsed = parse_line_protocol(body, precision)
        except LineProtocolError as exc:
            raise _err("invalid", str(exc)) from None

        self._forward_write(bucket["name"], body, precision)
        schema = self._schema[bucket["id"]]
        stored = self._points[bucket["id"]]
        dropped = 0
        reason = ""
        for point, types in parsed:
            conflict = None
            for name, ftype in types.items():
                known = schema.get((point.measurement, name))
                if known is not None and known != ftype:
                    conflict = (name, ftype, known)
                    break
            if conflict is not None:
                dropped += 1
                if not reason:
                    name, ftype, known = conflict
                    reason = (
                        f'field type conflict: input field "{name}" on measurement '
                        f'"{point.measurement}" is type {ftype}, already exists as type {known}'
                    )
                continue
            for name, ftype in types.items():
                schema.setdefault((point.measurement, name), ftype)
            stored.append(point)
        if dropped:
            raise _err(
                "unprocessable entity", f"failure writing points to database: partial write: {reason} dropped={dropped}"
            )
        return 204, {}, b""

    # ---------------------------------------------------------------- InfluxQL (/query)

    def _backend(self, method: str, path: str, params: dict[str, str], body: bytes | None = None) -> tuple:
        import urllib.error
        import urllib.request

        url = f"{self.influxql_backend}{path}?{urlencode(params)}"
        request = urllib.request.Request(url, data=body, method=method)
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    def _forward_write(self, bucket: str, body: bytes, precision: str) -> None:
        if not self.influxql_backend:
            return
        db = self.backend_prefix + bucket
        if db not in self._backend_dbs:
            self._backend("POST", "/query", {"q": f'CREATE DATABASE "{db}"'}, b"")
            self._backend_dbs.add(db)
        status, answer = self._backend("POST", "/write", {"db": db, "precision": precision}, body)
        if status not in (204, 400):  # 400: a type conflict, refused by both the same way
            raise _err("internal error", f"stand-in backend: HTTP {status} {answer[:200]!r}")

    def _influxql_auth(self, h: _Handler, query: dict[str, str]) -> dict:
        """1.x compatibility authentication: Token header, u/p query parameters or Basic."""
        header = (h.headers.get("Authorization") or "").strip()
        token = ""
        scheme, _, rest = header.partition(" ")
        if scheme.lower() == "token":
            token = rest.strip()
        elif scheme.lower() == "basic":
            try:
                token = base64.b64decode(rest.strip()).decode().partition(":")[2]
            except (ValueError, UnicodeDecodeError):
                token = ""
        elif query.get("p"):
            token = query["p"]
        with self._lock:
            for a in self._auths:
                if token and a["token"] == token and a["status"] == "active":
                    return a
        raise _err("unauthorized", "unauthorized access")

    def _influxql(self, h: _Handler, method: str, query: dict[str, str], body: bytes) -> tuple:
        params = dict(query)
        if method == "POST" and body:
            for key, value in parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True):
                params.setdefault(key, value)
        auth = self._influxql_auth(h, params)
        q = params.get("q", "")
        with self._lock:
            readable = [
                b
                for b in self._sorted_buckets()
                if b["type"] != "system" and self._can(lambda b=b: self._authorize_read_bucket(auth, b))
            ]
        if q.strip().upper().startswith("SHOW DATABASES"):
            payload = {
                "results": [
                    {
                        "statement_id": 0,
                        "series": [
                            {"name": "databases", "columns": ["name"], "values": [[b["name"]] for b in readable]}
                        ],
                    }
                ]
            }
            return self._json(200, payload)
        db = params.get("db", "")
        if not any(b["name"] == db for b in readable):
            return self._json(200, {"results": [{"statement_id": 0, "error": f"database not found: {db}"}]})
        forwarded = {"db": self.backend_prefix + db, "q": q}
        if params.get("epoch"):
            forwarded["epoch"] = params["epoch"]
        status, answer = self._backend("GET", "/query", forwarded)
        return status, {"Content-Type": "application/json"}, answer

    # ---------------------------------------------------------------- query (Flux, minimal)

    def _query(self, auth: dict, query: dict[str, str], body: bytes, h: _Handler) -> tuple:
        self._query_organization(query)
        content_type = (h.headers.get("Content-Type") or "application/json").split(";")[0].strip().lower()
        dialect: dict = {}
        if content_type == "application/vnd.flux":
            flux = body.decode("utf-8", "replace")
        elif content_type == "application/json":
            req = self._decode_json(body)
            if not isinstance(req, dict):
                raise _err("invalid", "invalid json structure")
            flux = req.get("query") or ""
            dialect = req.get("dialect") or {}
        else:
            raise _err("invalid", f"invalid content type {content_type!r}")
        if not flux.strip():
            raise _err("invalid", "query cannot be empty")
        names = [json.loads(f'"{m}"') for m in _FROM_BUCKET.findall(flux)]
        buckets = []
        for name in names:
            b = self._bucket_by_name(name)
            readable = b is not None and self._can(lambda b=b: self._authorize_read_bucket(auth, b))
            if not readable:
                raise _err("not found", f'failed to initialize execute state: could not find bucket "{name}"')
            buckets.append(b)
        return 200, {"Content-Type": "text/csv; charset=utf-8"}, self._annotated_csv(buckets, dialect)

    def _annotated_csv(self, buckets: list[dict], dialect: dict) -> bytes:
        header = dialect.get("header", True)
        annotations = dialect.get("annotations", ["datatype", "group", "default"])
        series: dict[tuple, list[tuple[int, Any]]] = {}
        types: dict[tuple, str] = {}
        for b in buckets:
            schema = self._schema.get(b["id"], {})
            latest: dict[tuple, Any] = {}
            for p in self._points.get(b["id"], []):
                tag_items = tuple(sorted(p.tags.items()))
                for name, value in p.fields.items():
                    latest[(p.measurement, tag_items, name, p.time)] = value
            for (measurement, tag_items, name, t), value in latest.items():
                key = (measurement, tag_items, name)
                series.setdefault(key, []).append((t, value))
                types[key] = schema.get((measurement, name), "float")
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\r\n")
        start, stop = _rfc3339(0), _now()
        for table, key in enumerate(sorted(series)):
            measurement, tag_items, name = key
            columns = ["result", "table", "_start", "_stop", "_time", "_value", "_field", "_measurement"] + [
                k for k, _ in tag_items
            ]
            if table:
                out.write("\r\n")
            if "datatype" in annotations:
                writer.writerow(
                    [
                        "#datatype",
                        "string",
                        "long",
                        "dateTime:RFC3339",
                        "dateTime:RFC3339",
                        "dateTime:RFC3339",
                        _FLUX_TYPES[types[key]],
                        "string",
                        "string",
                    ]
                    + ["string"] * len(tag_items)
                )
            if "group" in annotations:
                writer.writerow(
                    ["#group", "false", "false", "true", "true", "false", "false", "true", "true"]
                    + ["true"] * len(tag_items)
                )
            if "default" in annotations:
                writer.writerow(["#default", "_result"] + [""] * (len(columns) - 1))
            if header:
                writer.writerow([""] + columns)
            for t, value in sorted(series[key], key=lambda item: item[0]):
                writer.writerow(
                    ["", "", str(table), start, stop, _rfc3339(t), _format_value(value), name, measurement]
                    + [v for _, v in tag_items]
                )
        return out.getvalue().encode("utf-8")
