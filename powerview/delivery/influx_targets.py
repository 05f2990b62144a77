"""The three InfluxDB generations behind one small interface: `write(bucket, body)`,
`ensure_bucket(bucket)`, `close()` (line protocol, precision seconds), chosen by INFLUXDB_VERSION.

* 2 (default): `influx.InfluxWriter` (influxdb-client, /api/v2/write, buckets API), unchanged.
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

import requests

from powerview.core import schema
from powerview.core.schema import DEFAULT_META_BUCKET
from powerview.core.settings import ConfigError, InfluxSettings
from powerview.delivery.influx import InfluxWriter, Writer, write_in_halves
from powerview.delivery.influx_http import auth_of, credentials_hint
from powerview.delivery.influxql import QueryClient, quote_ident

log = logging.getLogger(__name__)

ELECTRICAL_TAGS = schema.TAG_KEYS
ELECTRICAL_TABLES = tuple(schema.DERIVED_MEASUREMENTS.values())


class _HttpWriter:
    """Shared plumbing of the 1.x and 3.x writers: one `Connection` (the project's HTTP layer),
    the is-this-InfluxDB check before the first write, the 413 split, a missing database as a
    setting to fix."""

    # the write endpoint, its database parameter, the rest of its call
    write_path, bucket_param, write_options = "", "", cast(dict[str, Any], {})
    missing_database = ""  # the ConfigError of a write answered 404, {bucket} in it

    def __init__(self, settings: InfluxSettings):
        self._settings = settings
        self._conn = open_query_client(settings)
        self._known_buckets: set[str] = set()

    def _call(self, method: str, path: str, what: str, **kwargs) -> requests.Response:
        return self._conn.call(method, path, what, **kwargs)

    def ensure_bucket(self, bucket: str) -> None:
        if bucket not in self._known_buckets and self._settings.create_buckets:
            self._create(bucket)
        self._known_buckets.add(bucket)

    def _create(self, bucket: str) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def write(self, bucket: str, body: bytes) -> None:
        self._conn.check_server()
        self.ensure_bucket(bucket)
        write_in_halves(lambda part: self._write_once(bucket, part), body, f"database {bucket}")

    def _write_once(self, bucket: str, body: bytes) -> None:
        response = self._call(
            "POST",
            self.write_path,
            f"writing to database {bucket}",
            params={self.bucket_param: bucket, "precision": "s"},
            data=body,
            accept_404=True,
            **self.write_options,
        )
        if response.status_code == 404:  # "database not found": a setting to fix, not a fault of the file
            raise ConfigError(self.missing_database.format(bucket=repr(bucket)))

    def close(self) -> None:
        self._conn.close()


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
            json={"db": bucket},
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
                json={"db": bucket, "table": table, "tags": list(ELECTRICAL_TAGS), "fields": []},
                ok_statuses=(200, 201, 204),
                accept=_already_exists,
            )


def _already_exists(response: requests.Response) -> bool:
    """409 (or a 400 saying so): the database or table exists already, which is what we want."""
    return response.status_code == 409 or (response.status_code == 400 and "already exists" in response.text)


def open_writer(settings: InfluxSettings, meta_bucket: str = DEFAULT_META_BUCKET) -> Writer:
    """The writer for INFLUXDB_VERSION. Raises ConfigError when a required setting is missing."""
    if settings.version == 1:
        return Influx1Writer(settings)
    if settings.version == 3:
        return Influx3Writer(settings, meta_bucket)
    return InfluxWriter(settings)


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
