"""The three InfluxDB generations behind one small interface: `write(bucket, body)`,
`ensure_bucket(bucket)`, `close()` (line protocol, precision seconds), chosen by INFLUXDB_VERSION.

* 2 (default): `/api/v2/write?org=<INFLUXDB_ORG>&bucket=<bucket>&precision=s` with
  `Authorization: Token <INFLUXDB_ADMIN_TOKEN>` (gzip with TSV_INFLUX_GZIP); a bucket is looked up
  (`GET /api/v2/buckets?name=&org=`; InfluxDB 2 answers 404 to a lookup by name and organization
  that finds nothing) and created when TSV_INFLUX_CREATE_BUCKETS allows
  (`POST /api/v2/buckets` with the organization's ID from `GET /api/v2/orgs?org=`, no retention;
  422 or 409 "already exists": another process made it meanwhile). Plain HTTP, the same calls
  influxdb-client made before (docs.influxdata.com /influxdb/v2/api/, write and buckets).
* 1: `/write?db=<bucket>&precision=s`; a bucket is a database, created with `CREATE DATABASE`
  (idempotent) when TSV_INFLUX_CREATE_BUCKETS allows and the user may; optional credentials
  INFLUXDB_V1_USER / INFLUXDB_V1_PASSWORD (HTTP basic auth), for servers with auth-enabled.
* 3 (Core / Enterprise): the v2-compatible `/api/v2/write?bucket=<database>&precision=s` with
  `Authorization: Bearer <INFLUXDB_ADMIN_TOKEN>`; databases created through
  `POST /api/v3/configure/database`. InfluxDB 3 fixes a table's tag columns when the table is
  created (a later write that brings a new tag key is refused, depending on the version), and
  `electrical` points carry `device_subtype` on masters only: so before the first write the
  tables `electrical`, `electrical_min` and `electrical_max` are created with every tag key of
  the schema (`POST /api/v3/configure/table`); a slave point then simply has no value in that
  column, exactly what the other generations store. No tag and field share a name (fields are
  `<channel_id>_<unit>`, all starting with `M`).

`open_query_client(settings)` gives the InfluxQL client (`/query`) for the same server.
"""

from __future__ import annotations

import logging
from typing import Any, cast

from powerview.core import schema
from powerview.core.schema import DEFAULT_META_BUCKET
from powerview.core.settings import ConfigError, InfluxSettings
from powerview.core.sink import InfluxRejected, InfluxUnavailable, Writer
from powerview.delivery.influx import write_in_halves
from powerview.delivery.influx_http import Answer, Connection, auth_of, credentials_hint
from powerview.delivery.influxql import QueryClient, quote_ident

log = logging.getLogger(__name__)

ELECTRICAL_TAGS = schema.TAG_KEYS
ELECTRICAL_TABLES = tuple(schema.DERIVED_MEASUREMENTS.values())


class _HttpWriter:
    """What the writers of the three generations share: one `Connection` (the project's HTTP
    layer; batches on its standard-library transport), the is-this-InfluxDB check before the first
    write, the 413 split, a missing database as a setting to fix."""

    # the write endpoint, its database parameter, the rest of its call
    write_path, bucket_param, write_options = "", "", cast(dict[str, Any], {})
    missing_database = ""  # the ConfigError of a write answered 404, {bucket} in it
    accept_404 = True  # False: a 404 is classified as every other (ConfigError with InfluxDB's message)
    compress = False  # gzip the batches (TSV_INFLUX_GZIP: InfluxDB 2 only, as before)
    what = "database"  # what a bucket is called on this generation

    def __init__(self, settings: InfluxSettings):
        self._settings = settings
        self._conn = open_query_client(settings)
        self._known_buckets: set[str] = set()

    def _call(self, method: str, path: str, what: str, **kwargs) -> Answer:
        return self._conn.fetch(method, path, what, **kwargs)

    def ensure_bucket(self, bucket: str) -> None:
        if bucket not in self._known_buckets and self._settings.create_buckets:
            self._create(bucket)
        self._known_buckets.add(bucket)

    def _create(self, bucket: str) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def write(self, bucket: str, body: bytes) -> None:
        """Write one batch (precision: seconds); returns once InfluxDB acknowledged it. A 413
        (request too large) splits the batch in halves until it passes; only a single line still
        refused raises InfluxRejected."""
        self._conn.check_server()
        self.ensure_bucket(bucket)
        write_in_halves(lambda part: self._write_once(bucket, part), body, f"{self.what} {bucket}")

    def _params(self, bucket: str) -> dict[str, str]:
        return {self.bucket_param: bucket, "precision": "s"}

    def _write_once(self, bucket: str, body: bytes) -> None:
        status = self._conn.write(
            self.write_path,
            self._params(bucket),
            body,
            f"writing to {self.what} {bucket}",
            compress=self.compress,
            accept_404=self.accept_404,
            **self.write_options,
        )
        if status == 404:  # "database not found": a setting to fix, not a fault of the file
            raise ConfigError(self.missing_database.format(bucket=repr(bucket)))

    def close(self) -> None:
        self._conn.close()


class Influx2Writer(_HttpWriter):
    """InfluxDB 2 (the deployed generation): /api/v2/write in one organization, buckets created on
    first use through the buckets API."""

    # a 404 (bucket or organization not found) is the ConfigError of every 404, with InfluxDB's message
    write_path, bucket_param, what, accept_404 = "/api/v2/write", "bucket", "bucket", False

    def __init__(self, settings: InfluxSettings):
        super().__init__(settings)
        self._org = settings.org or ""
        self._org_id: str | None = None
        self.compress = settings.gzip

    def _params(self, bucket: str) -> dict[str, str]:
        return {"org": self._org, "bucket": bucket, "precision": "s"}

    def _create(self, bucket: str) -> None:
        self._org_id = ensure_bucket(self._conn, self._org, bucket, self._org_id)[1]


def find_bucket(conn: Connection, org: str, name: str) -> dict | None:
    """The bucket `name` of organization `org` as InfluxDB 2 describes it (`id`, `name`...), or
    None. `GET /api/v2/buckets?name=&org=`: InfluxDB 2 answers 404 to a lookup by name and
    organization that finds nothing (and to an unknown organization: `org_id` says which)."""
    answer = conn.fetch(
        "GET", "/api/v2/buckets", f"looking up bucket {name}", params={"name": name, "org": org}, accept_404=True
    )
    if answer.status_code == 404:
        return None
    buckets = _json_of(answer, "GET /api/v2/buckets").get("buckets")
    if not isinstance(buckets, list):
        raise InfluxRejected("GET /api/v2/buckets: no 'buckets' list in the answer")
    return next((b for b in buckets if isinstance(b, dict) and b.get("name") == name), None)


def org_id(conn: Connection, org: str) -> str:
    """The ID of organization `org` (a name; an ID is returned as it is, as influxdb-client did).
    `GET /api/v2/orgs?org=NAME`; 404 or no organization visible: ConfigError naming INFLUXDB_ORG."""
    if len(org) == 16 and all(c in "0123456789abcdef" for c in org.lower()):
        return org
    answer = conn.fetch(
        "GET",
        "/api/v2/orgs",
        f"looking up organization {org}",
        params={"org": org},
        ok_statuses=(200,),
        accept_404=True,
    )
    orgs = [] if answer.status_code == 404 else _json_of(answer, "GET /api/v2/orgs").get("orgs")
    found = [o for o in orgs or [] if isinstance(o, dict) and o.get("id")] if isinstance(orgs, list) else []
    if not found:
        raise ConfigError(
            f"InfluxDB organization {org!r} not found (or not readable with INFLUXDB_ADMIN_TOKEN): check INFLUXDB_ORG"
        )
    return str(next((o["id"] for o in found if o.get("name") == org), found[0]["id"]))


def ensure_bucket(conn: Connection, org: str, name: str, known_org_id: str | None = None) -> tuple[bool, str | None]:
    """Create bucket `name` in organization `org` unless it exists: (True when created, the
    organization's ID when it had to be looked up, else `known_org_id`). A server without
    InfluxDB 2's buckets API is a ConfigError (not a fault of the file)."""

    def no_buckets_api(exc: Exception, call: str) -> ConfigError:
        return ConfigError(
            f"{call} was refused ({exc}): this server does not offer InfluxDB 2's buckets "
            "API as expected; check INFLUXDB_HOST, or set TSV_INFLUX_CREATE_BUCKETS=false "
            "when the buckets are created by other means"
        )

    try:
        if find_bucket(conn, org, name) is not None:
            return False, known_org_id
    except InfluxRejected as exc:
        raise no_buckets_api(exc, "GET /api/v2/buckets") from None
    known_org_id = known_org_id or org_id(conn, org)
    log.info("creating bucket %s in organization %s", name, org)
    try:
        answer = conn.fetch(
            "POST",
            "/api/v2/buckets",
            f"creating bucket {name}",
            json_body={"orgID": known_org_id, "name": name, "retentionRules": []},
            ok_statuses=(200, 201),
            accept=lambda r: r.status_code == 409,
        )
        if answer.status_code != 409:
            return True, known_org_id
        refusal: Exception = InfluxRejected(f"HTTP 409: {answer.text[:200]}")
    except InfluxRejected as exc:
        refusal = exc
    # 422 (InfluxDB 2) or 409 "bucket with name ... already exists": another process made it meanwhile
    try:
        found = find_bucket(conn, org, name)
    except InfluxRejected as exc:
        raise no_buckets_api(exc, "GET /api/v2/buckets") from None
    if found is None:
        raise no_buckets_api(refusal, "POST /api/v2/buckets")
    return False, known_org_id


def _json_of(answer: Answer, call: str) -> dict:
    """The JSON object of an answer; an answer that is not one (a proxy's page) is an outage."""
    try:
        payload = answer.json()
    except ValueError:
        payload = None
    if not isinstance(payload, dict):
        raise InfluxUnavailable(
            f"{call}: the answer is not InfluxDB's JSON (HTTP {answer.status_code}, "
            f"{answer.headers.get('Content-Type', 'no content type')}): {answer.text[:200]!r}"
        )
    return payload


class Influx1Writer(_HttpWriter):
    """InfluxDB 1.x: /write and CREATE DATABASE."""

    write_path, bucket_param, write_options = "/write", "db", {"ok_statuses": (204,)}
    missing_database = (
        "InfluxDB database {bucket} does not exist and could not be created: create "
        "it (CREATE DATABASE) or let INFLUXDB_V1_USER create it"
    )

    def _create(self, bucket: str) -> None:
        try:
            self._conn.raw(None, f"CREATE DATABASE {quote_ident(bucket)}", write=True)
        except ConfigError as exc:  # a non-admin user: the database must exist already
            log.warning("cannot create database %s (%s): writing anyway", bucket, exc)


class Influx3Writer(_HttpWriter):
    """InfluxDB 3 Core / Enterprise: v2-compatible write, databases and tables through /api/v3."""

    write_path, bucket_param = "/api/v2/write", "bucket"
    write_options = {"headers": {"Content-Type": "text/plain; charset=utf-8"}}
    missing_database = (
        "InfluxDB 3 database {bucket} does not exist: create it (influxdb3 create database), "
        "or let PowerView create it (TSV_INFLUX_CREATE_BUCKETS=true with an admin token)"
    )

    def __init__(self, settings: InfluxSettings, meta_bucket: str = DEFAULT_META_BUCKET):
        super().__init__(settings)
        self._meta_bucket = meta_bucket

    def _create(self, bucket: str) -> None:
        self._call(
            "POST",
            "/api/v3/configure/database",
            f"creating database {bucket}",
            json_body={"db": bucket},
            ok_statuses=(200, 201, 204),
            accept=_already_exists,
        )
        if bucket == self._meta_bucket:
            return
        for table in ELECTRICAL_TABLES:
            self._call(
                "POST",
                "/api/v3/configure/table",
                f"creating table {table} in {bucket}",
                json_body={"db": bucket, "table": table, "tags": list(ELECTRICAL_TAGS), "fields": []},
                ok_statuses=(200, 201, 204),
                accept=_already_exists,
            )


def _already_exists(response: Answer) -> bool:
    """409 (or a 400 saying so): the database or table exists already, which is what we want."""
    return response.status_code == 409 or (response.status_code == 400 and "already exists" in response.text)


def open_writer(settings: InfluxSettings, meta_bucket: str = DEFAULT_META_BUCKET) -> Writer:
    """The writer for INFLUXDB_VERSION. Raises ConfigError when a required setting is missing."""
    if settings.version == 1:
        return Influx1Writer(settings)
    if settings.version == 3:
        return Influx3Writer(settings, meta_bucket)
    return Influx2Writer(settings)


def open_query_client(settings: InfluxSettings) -> QueryClient:
    """The InfluxQL client (`/query`) of the targeted server, a `Connection` for its other calls."""
    settings.require()
    client = QueryClient(
        settings.url or "",
        auth_of(settings),
        timeout_s=settings.timeout_s,
        budget_s=settings.retry_max_s,
        credentials=credentials_hint(settings),
    )
    client.single_statement = settings.version == 3
    return client
