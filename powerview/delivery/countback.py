"""After a run's writes: count each written file's points back from InfluxDB, as the deployed
parser did, and report `nb_points_expected`, `nb_points_in_influx`, `time_start`, `time_end`.

One InfluxQL statement per file, on every generation (`/query`, see influxql.py):

    SELECT count(*) FROM "electrical" WHERE "campaign" = '<campaign>'
      AND "device_master_sn" = '<master>' AND time >= '<time_start>' AND time <= '<time_end>'

summed over every returned count column (one per field): the number of field values of that
campaign and master over the file's time range, the deployed count's meaning. It holds the file's
own points and any other file's of the same device and range, so it is at least the file's count
(exactly equal for one file into an empty database); less is a shortfall: a warning in the log
and in the file's report entry, as deployed.

This step never changes a file's outcome: the points are written already. When the count cannot
be made (an outage, refused credentials, an odd answer) `nb_points_in_influx` stays null with a
warning; once InfluxDB is found unavailable the remaining files are not counted (no second wait
of the retry budget). A dry run writes nothing: the count stays null.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import UTC, datetime

from powerview.core import schema
from powerview.core.outcome import FileOutcome, Status
from powerview.core.settings import ConfigError
from powerview.delivery.influx import InfluxRejected, InfluxUnavailable
from powerview.delivery.influxql import QueryClient, quote_ident, quote_string

log = logging.getLogger(__name__)

COUNT_BUDGET_S = 10.0  # the retry budget of one count: a check, not worth a long wait


def deployed_iso(iso_z: str | None) -> str | None:
    """`2025-10-12T03:17:20Z` -> `2025-10-12T03:17:20+00:00` (the deployed report's format)."""
    if iso_z is None:
        return None
    return datetime.fromisoformat(iso_z.replace("Z", "+00:00")).astimezone(UTC).isoformat()


def count_query(campaign: str, master_sn: str, time_start: str, time_end: str) -> str:
    return (
        f"SELECT count(*) FROM {quote_ident(schema.MEASUREMENT)} "
        f"WHERE {quote_ident('campaign')} = {quote_string(campaign)} "
        f"AND {quote_ident('device_master_sn')} = {quote_string(master_sn)} "
        f"AND time >= {quote_string(time_start)} AND time <= {quote_string(time_end)}"
    )


def count_points(
    client: QueryClient, bucket: str, campaign: str, master_sn: str, time_start: str, time_end: str
) -> int:
    """Field values of `campaign` and `master_sn` in `bucket` between the two instants (inclusive)."""
    total = 0
    for series in client.series(bucket, count_query(campaign, master_sn, time_start, time_end)):
        columns = series.get("columns") or []
        for row in series.get("values") or []:
            for column, value in zip(columns, row):
                if column != "time" and value is not None:
                    total += int(float(value))
    return total


def prepare(outcomes: Iterable[FileOutcome]) -> list[FileOutcome]:
    """Fill `nb_points_expected`, `time_start`, `time_end` of every successful file with points;
    returns those files. `nb_points_in_influx` is left null."""
    written = []
    for out in outcomes:
        if out.status != Status.SUCCESS or not out.nb_points or not out.time_min or not out.time_max:
            continue
        out.nb_points_expected = out.nb_points
        out.time_start, out.time_end = deployed_iso(out.time_min), deployed_iso(out.time_max)
        written.append(out)
    return written


def count_back(outcomes: Iterable[FileOutcome], client: QueryClient) -> None:
    """Count every written file's points back; never raises for InfluxDB (see the module)."""
    unavailable: str | None = None
    for out in prepare(outcomes):
        if unavailable is not None:
            _not_counted(out, unavailable)
            continue
        try:
            out.nb_points_in_influx = count_points(
                client,
                out.bucket,
                out.campaign,
                out.device_master_sn or "",
                out.time_start or "",
                out.time_end or "",
            )
        except InfluxUnavailable as exc:
            unavailable = f"InfluxDB unavailable during the count ({exc})"
            _not_counted(out, unavailable)
            continue
        except (InfluxRejected, ConfigError, ValueError, TypeError, OSError) as exc:
            _not_counted(out, f"{type(exc).__name__}: {exc}")
            continue
        if out.nb_points_in_influx < (out.nb_points_expected or 0):
            warning = (
                f"InfluxDB count incomplete: {out.nb_points_expected} points expected, "
                f"{out.nb_points_in_influx} found for campaign {out.campaign!r}, master "
                f"{out.device_master_sn} over [{out.time_start} ; {out.time_end}]"
            )
            out.warnings.append(warning)
            log.warning("%s: %s", out.file, warning)
        else:
            log.debug("%s: %d points counted back (>= %d)", out.file, out.nb_points_in_influx, out.nb_points_expected)


def _not_counted(out: FileOutcome, reason: str) -> None:
    warning = f"points written but not counted back from InfluxDB: {reason}"
    out.warnings.append(warning)
    log.warning("%s: %s", out.file, warning)
