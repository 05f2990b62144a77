"""Everything that talks to InfluxDB 2: the client, buckets, batched writes with retries.

This module knows HTTP and InfluxDB; it knows nothing about T302 files.
"""

from __future__ import annotations

import logging
import time
import warnings
from typing import Callable

import urllib3
from influxdb_client import InfluxDBClient
from influxdb_client.client.write_api import SYNCHRONOUS
from influxdb_client.rest import ApiException

from .settings import ConfigError, Settings

log = logging.getLogger(__name__)

warnings.filterwarnings("ignore", module="influxdb_client")


class InfluxUnavailable(Exception):
    """InfluxDB could not be reached or kept failing for the whole retry budget: retry later."""


class InfluxRejected(Exception):
    """InfluxDB refused the data itself (400, 413, 422): retrying the same bytes will not help."""


def connect(settings: Settings) -> InfluxDBClient:
    """A client from the settings. Raises ConfigError when a required variable is missing."""
    settings.require_influx()
    return InfluxDBClient(
        url=settings.influx_url,
        token=settings.influx_token,
        org=settings.influx_org,
        timeout=int(settings.influx_timeout_s * 1000),
        enable_gzip=settings.influx_gzip,
        retries=False,  # retries are ours: bounded in total time, Retry-After honoured
    )


def classify(exc: BaseException) -> Exception:
    """Turn a client exception into ConfigError, InfluxRejected or InfluxUnavailable."""
    if isinstance(exc, ApiException):
        status = exc.status or 0
        message = _api_message(exc)
        if status in (401, 403):
            return ConfigError(f"InfluxDB refused the token (HTTP {status}): check INFLUXDB_ADMIN_TOKEN "
                               f"and INFLUXDB_ORG ({message})")
        if status in (400, 413, 422):
            return InfluxRejected(f"InfluxDB rejected the data (HTTP {status}): {message}")
        return InfluxUnavailable(f"InfluxDB answered HTTP {status}: {message}")
    return InfluxUnavailable(f"InfluxDB unreachable: {type(exc).__name__}: {exc}")


def _api_message(exc: ApiException) -> str:
    body = exc.body.decode("utf-8", "replace") if isinstance(exc.body, bytes) else (exc.body or "")
    return (body or exc.reason or "").strip()[:500]


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


_TRANSIENT = (urllib3.exceptions.HTTPError, ConnectionError, TimeoutError, OSError)


def with_retries(action: Callable[[], object], budget_s: float, what: str,
                 sleep: Callable[[float], None] = time.sleep) -> object:
    """Run `action`, retrying connection errors, 429 and 5xx with exponential backoff.

    Gives up with InfluxUnavailable once `budget_s` seconds have passed; 401/403 raise
    ConfigError and 400/413/422 InfluxRejected at once.
    """
    deadline = time.monotonic() + budget_s
    delay = 0.5
    attempt = 0
    while True:
        attempt += 1
        try:
            return action()
        except (ApiException, *_TRANSIENT) as exc:
            error = classify(exc)
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


def ensure_bucket(client: InfluxDBClient, org: str, name: str, budget_s: float = 30.0) -> bool:
    """Create bucket `name` in organization `org` unless it exists. Returns True when created."""
    api = client.buckets_api()

    def find():
        try:
            found = api.find_buckets(name=name, org=org).buckets or []
        except ApiException as exc:
            if exc.status == 404:  # InfluxDB 2 answers 404 to a lookup by name and org that finds nothing
                return []
            raise
        return [b for b in found if b.name == name]

    if with_retries(find, budget_s, f"looking up bucket {name}"):
        return False
    log.info("creating bucket %s in organization %s", name, org)
    try:
        with_retries(lambda: api.create_bucket(bucket_name=name, org=org), budget_s, f"creating bucket {name}")
    except InfluxRejected:
        # 422 "bucket with name ... already exists": another process created it meanwhile
        if not with_retries(find, budget_s, f"looking up bucket {name}"):
            raise
        return False
    return True


class InfluxWriter:
    """Writes line-protocol batches to buckets of one organization, creating buckets on first use."""

    def __init__(self, settings: Settings):
        self._settings = settings
        self._client = connect(settings)
        self._org = settings.influx_org
        self._write_api = self._client.write_api(write_options=SYNCHRONOUS)
        self._known_buckets: set[str] = set()

    def ensure_bucket(self, bucket: str) -> None:
        if bucket not in self._known_buckets and self._settings.influx_create_buckets:
            ensure_bucket(self._client, self._org, bucket, self._settings.influx_retry_max_s)
            self._known_buckets.add(bucket)

    def write(self, bucket: str, body: bytes) -> None:
        """Write one batch (precision: seconds); returns once InfluxDB acknowledged it."""
        self.ensure_bucket(bucket)
        with_retries(
            lambda: self._write_api.write(bucket=bucket, org=self._org, record=body, write_precision="s"),
            self._settings.influx_retry_max_s, f"writing to bucket {bucket}")

    def close(self) -> None:
        self._write_api.close()
        self._client.close()


class DiscardWriter:
    """A dry run's writer: counts what would be written, sends nothing."""

    def __init__(self):
        self.nb_lines = 0

    def ensure_bucket(self, bucket: str) -> None:
        pass

    def write(self, bucket: str, body: bytes) -> None:
        self.nb_lines += body.count(b"\n")

    def close(self) -> None:
        pass
