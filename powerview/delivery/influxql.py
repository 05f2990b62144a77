"""InfluxQL over HTTP: the `/query` endpoint that InfluxDB 1.x, 2.x (v1 compatibility, database =
bucket through the virtual DBRP mapping) and 3.x (v1 compatibility) all serve, on the project's HTTP layer (`influx_http`,
its standard-library transport).

Error mapping (`influx.classify_status`, the same as the InfluxDB 2 writer's): unreachable, 5xx,
429, no complete answer within the request's deadline -> retried within the budget, then
InfluxUnavailable; 401/403/404 -> ConfigError (naming the settings to check); 413 ->
RequestTooLarge (the writers split the batch); 400, 422 -> InfluxRejected; an answer that is not
the JSON InfluxDB sends -> InfluxUnavailable (a proxy's HTML error page, say).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

from powerview.delivery.influx import InfluxRejected, InfluxUnavailable
from powerview.delivery.influx_http import (  # noqa: F401  (request: the former home of the HTTP call)
    Connection,
    request,
)

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


class QueryClient(Connection):
    """Runs InfluxQL through `/query` of the targeted InfluxDB; one database (= bucket) a call.

    A `Connection` (the generation's authentication, retries, status classification) that also
    speaks InfluxQL.
    """

    single_statement = False  # InfluxDB 3: one InfluxQL statement per /query request
    show_series = True  # False once the server refused SHOW SERIES (an older InfluxDB 2 may lack it)

    def raw(self, db: str | None, influxql: str, write: bool = False) -> dict:
        """The decoded JSON answer; a statement error raises InfluxRejected."""
        params = {"q": influxql, "epoch": "s"}
        if db is not None:
            params["db"] = db
        what = f"InfluxQL on {db}" if db else "InfluxQL"
        if write:  # CREATE/DROP must be POSTed (1.x); reads go in the query string
            response = self.fetch("POST", "/query", what, data=params)
        else:
            response = self.fetch("GET", "/query", what, params=params)
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
