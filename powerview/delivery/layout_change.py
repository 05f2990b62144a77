"""A file whose channel layout differs from the one already stored over the same time range.

A T302 logger reconfigured between mono and tri (or a channel relabelled) numbers its channels
differently: the same field `M<master>_Ch1_W` then names another measuring point, and its points
land in another series (another tag set: device_subtype, channel_label...) beside the old ones.
Over a time range that already holds data, the dashboards then show two values for one field
and time. Nothing is refused (the file may be the right one); the run report (`layout_change`
and a warning) and the log name the fields, the tags that differ and the range.

One query per file, after its points are written (so that its own series are there): the points
of the file's fields per series and day over the file's time range. A field with points in two
series on the same day is such a change; days, not instants, so that the answer stays small.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from powerview.core import schema
from powerview.core.outcome import FileOutcome, Status
from powerview.delivery.derived import iso_z, parse_iso
from powerview.delivery.influxql import QueryClient, quote_ident, quote_string

log = logging.getLogger(__name__)

DAY = 86400
MAX_FIELDS_NAMED = 5


def check_query(entry: FileOutcome) -> str | None:
    """The InfluxQL of the check for a `success` entry (None when it has nothing to check)."""
    fields = sorted({ch["field"] for ch in (entry.channels or {}).values() if ch.get("field")})
    if entry.status != Status.SUCCESS or not fields or not entry.time_min or not entry.time_max:
        return None
    start, end = parse_iso(entry.time_min), parse_iso(entry.time_max)
    select = ", ".join(f"count({quote_ident(f)}) AS {quote_ident(f)}" for f in fields)
    return (
        f"SELECT {select} FROM {quote_ident(schema.MEASUREMENT)} "
        f"WHERE {quote_ident('campaign')} = {quote_string(entry.campaign)} "
        f"AND {quote_ident('device_master_sn')} = {quote_string(entry.device_master_sn or '')} "
        f"AND time >= '{iso_z(start)}' AND time <= '{iso_z(end)}' GROUP BY time(1d), * fill(none)"
    )


def changes(series: Iterable[dict]) -> dict[str, tuple[list[frozenset], int, int]]:
    """Answer of check_query -> {field: (its tag sets, first day start, last day end)} for the
    fields with points in more than one series on a same day."""
    days: dict[tuple[str, int], set[frozenset]] = {}
    for one in series:
        tags = frozenset((k, v) for k, v in (one.get("tags") or {}).items() if v not in ("", None))
        columns = one["columns"]
        for row in one.get("values") or []:
            for field, count in zip(columns[1:], row[1:]):
                if count:
                    days.setdefault((field, int(row[0])), set()).add(tags)
    found: dict[str, tuple[list[frozenset], int, int]] = {}
    for (field, day), tag_sets in sorted(days.items()):
        if len(tag_sets) < 2:
            continue
        known = found.get(field)
        if known is None:
            found[field] = (sorted(tag_sets, key=sorted), day, day + DAY)
        else:
            merged = known[0] + [t for t in tag_sets if t not in known[0]]
            found[field] = (merged, known[1], day + DAY)
    return found


def describe(entry: FileOutcome, found: dict[str, tuple[list[frozenset], int, int]]) -> str:
    """One sentence naming the fields, the tags that differ and the range."""
    start = max(min(first for _, first, _ in found.values()), parse_iso(entry.time_min or "1970-01-01"))
    end = min(max(last for _, _, last in found.values()), parse_iso(entry.time_max or "2100-01-01") + 1)
    differing: dict[str, set[str]] = {}
    for tag_sets, _, _ in found.values():
        keys = {k for tags in tag_sets for k, _ in tags}
        for key in sorted(keys):
            values = {dict(tags).get(key, "") for tags in tag_sets}
            if len(values) > 1:
                differing.setdefault(key, set()).update(values)
    fields = sorted(found)
    named = ", ".join(fields[:MAX_FIELDS_NAMED]) + (
        f" and {len(fields) - MAX_FIELDS_NAMED} more" if len(fields) > MAX_FIELDS_NAMED else ""
    )
    tags = "; ".join(
        f"{key}: {' / '.join(sorted(v or '(none)' for v in values))}" for key, values in sorted(differing.items())
    )
    return (
        f"channel layout changed over a time range that already holds data: between {iso_z(start)} and "
        f"{iso_z(end)}, {len(fields)} field(s) of device {entry.device_master_sn} ({named}) have points "
        f"in series with other tags ({tags or 'other tag sets'}): two values for one field and time; "
        "check the logger's configuration, then delete the wrong series"
    )


def check(entry: FileOutcome, client: QueryClient) -> str | None:
    """Set `entry.layout_change` (and a warning) when the file's layout differs from the stored
    one over its range; returns the sentence, or None. Raises what the client raises."""
    query = check_query(entry)
    if query is None:
        return None
    found = changes(client.series(entry.bucket, query))
    if not found:
        return None
    sentence = describe(entry, found)
    entry.layout_change = sentence
    entry.warnings.append(sentence)
    log.warning("%s: %s", entry.file, sentence)
    return sentence


class Checker:
    """The check as a run's per-file step: one query client for the run, opened at the first
    file, with a single attempt per query (no retry budget: a check never holds a run up); after
    a failure (InfluxDB unavailable or refusing the query) the rest of the run goes unchecked,
    with one warning (the points are written: the check never changes an outcome)."""

    def __init__(self, settings):
        self.settings = settings  # InfluxSettings
        self.client: QueryClient | None = None
        self.off = False

    def __call__(self, entry: FileOutcome) -> None:
        if self.off or entry.status != Status.SUCCESS:
            return
        try:
            if self.client is None:
                from dataclasses import replace

                from powerview.delivery.influx_targets import open_query_client

                self.client = open_query_client(replace(self.settings, retry_max_s=0.0))
            check(entry, self.client)
        except Exception as exc:  # noqa: BLE001 - a check, never a reason to fail the file
            self.off = True
            log.warning("channel layout check skipped for the rest of the run: %s: %s", type(exc).__name__, exc)

    def close(self) -> None:
        if self.client is not None:
            self.client.close()
            self.client = None
