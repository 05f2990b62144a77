"""The windows of the derived buckets `<company>_1h`, `_1d`, `_1w`: their bounds, the InfluxQL
statements that read them, and the exact arithmetic that makes them (no I/O here; the reads are in
`derived_reads`, the recompute, its locks and its outbox in `derived`).

The finest level comes from the raw bucket, one statement per channel:

    SELECT mean("F") AS "mean_F", min("F") AS "min_F", max("F") AS "max_F", count("F") AS "count_F"
    FROM "electrical" WHERE "campaign" = '...' AND "device_master_sn" = '...' AND "channel_id" = '...'
      AND time >= '<first window start>' AND time < '<last window end>'
    GROUP BY time(1h), * fill(none)

Each coarser level is folded EXACTLY from the level below, whose windows tile it (1h -> 1d -> 1w):
mean = sum(mean x count) / sum(count), min of the minima, max of the maxima, sum of the counts.
That reads 24 rows a day instead of every raw point of a week (the weekly window of a daily file
would otherwise re-read seven days of raw data at each upload); a level below without counts
(written by the deployed Flux tasks, say) is detected (`count_mismatch`) and that level is read
from the raw data.

Written to `<company>_<level>`: measurement `electrical` = the mean (the deployed schema),
`electrical_min`, `electrical_max`, and `electrical_count` (raw points in the window: its
coverage, and the weight of the fold), same tags and field names as the raw series. Each value
is stamped at its window's END (as Flux aggregateWindow does); windows are aligned on the epoch
like InfluxQL's and Flux's (days at 00:00 UTC, weeks on Thursday 00:00 UTC). The field list is
the file's own: a field's windows depend only on that field's points. Every series (tag set) has
windows of its own, so a master series (with `device_subtype`) and a slave series never mix;
`fill(none)` and the counts leave empty windows out.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import lru_cache

from powerview.core import schema
from powerview.core.names import name_problem
from powerview.delivery.influxql import quote_ident, quote_string
from powerview.ingestion import lineprotocol

RAW_MEASUREMENT = schema.MEASUREMENT
MEASUREMENTS = schema.DERIVED_MEASUREMENTS
AGGREGATES = tuple(MEASUREMENTS)
derived_bucket = schema.derived_bucket


def window_bounds(start: int, end: int, seconds: int) -> tuple[int, int]:
    """(start of the window holding `start`, end of the window holding `end`); epoch-aligned."""
    return start - start % seconds, end - end % seconds + seconds


def iso_z(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(text: str) -> int:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp())


@dataclass(frozen=True)
class Span:
    """Raw points of one device (one campaign, or every campaign when None) between `start` and
    `end` (epoch seconds, inclusive) in the fields `fields`: the windows they touch are to redo."""

    bucket: str
    campaign: str | None
    device_master_sn: str
    start: int
    end: int
    fields: tuple[str, ...]
    channels: tuple[str, ...] = ()  # channel_id of each field, when known (narrower statements)

    def check(self) -> None:
        """Raise ValueError when a name breaks the project's rules (they go into queries)."""
        for kind, name in (("company", self.bucket), ("device", self.device_master_sn)) + (
            () if self.campaign is None else (("campaign", self.campaign),)
        ):
            problem = name_problem(kind, name)
            if problem:
                raise ValueError(problem)
        if not self.fields or self.start > self.end:
            raise ValueError("a span needs fields and start <= end")
        if self.channels and len(self.channels) != len(self.fields):
            raise ValueError("a span names the channel of every field or of none")
        for field in self.fields + self.channels:
            quote_ident(field)


def where_clause(span: Span, time_condition: str | None, channel: str | None) -> str:
    where = [f"{quote_ident('device_master_sn')} = {quote_string(span.device_master_sn)}"]
    if span.campaign is not None:
        where.insert(0, f"{quote_ident('campaign')} = {quote_string(span.campaign)}")
    if channel is not None:
        where.append(f"{quote_ident('channel_id')} = {quote_string(channel)}")
    if time_condition is not None:
        where.append(time_condition)
    return " AND ".join(where)


def by_channel(span: Span) -> list[tuple[str | None, list[str]]]:
    """[(channel or None, its fields)]: one statement per channel when the span knows them (each
    reads only its own series: several times faster on InfluxDB 1.x, and narrow answers)."""
    if not span.channels:
        return [(None, list(span.fields))]
    grouped: dict[str, list[str]] = {}
    for channel, field in zip(span.channels, span.fields):
        grouped.setdefault(channel, []).append(field)
    return list(grouped.items())


def _check_bounds(level: str, first: int, last: int) -> None:
    seconds = schema.LEVEL_BY_NAME[level].seconds
    if first % seconds or last % seconds or first >= last:
        raise ValueError("window bounds must be aligned and ordered")


def recompute_query(span: Span, level: str, first: int, last: int) -> str:
    """InfluxQL over the RAW bucket: mean, min, max and count of every field in every window of
    `level` in [first, last), per series (GROUP BY *), empty windows left out."""
    return "; ".join(recompute_statements(span, level, first, last))


def recompute_statements(span: Span, level: str, first: int, last: int, grouped: bool = True) -> list[str]:
    """The statements of recompute_query, one per channel (see by_channel); `grouped=False`
    leaves out `GROUP BY *` (see read)."""
    return _raw_window_statements(span, level, first, last, AGGREGATES, grouped)


def _raw_window_statements(
    span: Span, level: str, first: int, last: int, aggregates, grouped: bool = True
) -> list[str]:
    """Per channel: `aggregates` of every field (named <aggregate>_<field>) over the RAW
    measurement, per window of `level` in [first, last) and per series, empty windows left out."""
    _check_bounds(level, first, last)
    time_condition = f"time >= '{iso_z(first)}' AND time < '{iso_z(last)}'"
    by_series = ", *" if grouped else ""
    statements = []
    for channel, fields in by_channel(span):
        select = ", ".join(
            f"{agg}({quote_ident(f)}) AS {quote_ident(agg + '_' + f)}" for f in fields for agg in aggregates
        )
        statements.append(
            f"SELECT {select} FROM {quote_ident(RAW_MEASUREMENT)} "
            f"WHERE {where_clause(span, time_condition, channel)} GROUP BY time({level}){by_series} fill(none)"
        )
    return statements


def fold_query(span: Span, lower: str, level: str, first: int, last: int) -> str:
    """InfluxQL over `<bucket>_<lower>`: the windows of the level below that make up the windows
    of `level` in [first, last) (stamped at their ends: first < time <= last). One statement: the
    rows are few (24 a day at most a series)."""
    return fold_statements(replace(span, channels=()), lower, level, first, last)[0]


def fold_statements(span: Span, lower: str, level: str, first: int, last: int, grouped: bool = True) -> list[str]:
    """The statements of fold_query, one per channel when the span knows them (InfluxDB 1.x
    reads one series per statement much faster than every field of every series at once);
    `grouped=False` leaves out `GROUP BY *` (see read)."""
    _check_bounds(level, first, last)
    time_condition = f"time > '{iso_z(first)}' AND time <= '{iso_z(last)}'"
    sources = ", ".join(quote_ident(m) for m in MEASUREMENTS.values())
    by_series = " GROUP BY *" if grouped else ""
    return [
        f"SELECT {', '.join(quote_ident(f) for f in fields)} FROM {sources} "
        f"WHERE {where_clause(span, time_condition, channel)}{by_series}"
        for channel, fields in by_channel(span)
    ]


def count_query(span: Span, level: str, first: int, last: int) -> str:
    """InfluxQL over the RAW bucket: the number of points of every field in every window of
    `level` in [first, last), per series. The fold's counts must match it exactly: a window of
    the level below that is absent (a level enabled later, raw data ingested with the derived
    step off) or stale shows up here, and the level is then read from the raw data."""
    return "; ".join(count_statements(span, level, first, last))


def count_statements(span: Span, level: str, first: int, last: int, grouped: bool = True) -> list[str]:
    """The statements of count_query, one per channel (see by_channel)."""
    return _raw_window_statements(span, level, first, last, ("count",), grouped)


def counts_from_raw(series: Iterable[dict], seconds: int) -> dict[tuple, int]:
    """Answer of count_query -> {(tags, window end, field): count} for windows with points."""
    counts: dict[tuple, int] = {}
    for one in series:
        tags = _tags(one)
        columns = one["columns"]
        for row in one.get("values") or []:
            for column, value in zip(columns[1:], row[1:]):
                if value:
                    counts[(tags, int(row[0]) + seconds, column.partition("_")[2])] = int(value)
    return counts


def _tags(one: dict) -> tuple:
    return tuple(sorted((k, v) for k, v in (one.get("tags") or {}).items() if v not in ("", None)))


def chunks(span: Span, level: str) -> Iterator[tuple[int, int]]:
    """Aligned [first, last) ranges covering every window the span touches, the level's chunk at most."""
    seconds = schema.LEVEL_BY_NAME[level].seconds
    first, last = window_bounds(span.start, span.end, seconds)
    step = seconds * schema.LEVEL_BY_NAME[level].chunk
    while first < last:
        yield first, min(first + step, last)
        first += step


Aggregate = tuple  # (tags: tuple of items, window end, field, {"mean", "min", "max", "count"})


def aggregates_from_raw(series: Iterable[dict], seconds: int) -> Iterator[Aggregate]:
    """Answer of recompute_query -> one aggregate per (series, window, field) with points."""
    for one in series:
        tags = tuple(sorted((k, v) for k, v in (one.get("tags") or {}).items() if v not in ("", None)))
        by_field: dict[str, dict[str, int]] = {}
        for index, column in enumerate(one["columns"]):
            agg, sep, field = column.partition("_")
            if sep and agg in AGGREGATES:
                by_field.setdefault(field, {})[agg] = index
        for row in one.get("values") or []:
            end = int(row[0]) + seconds
            for field, where in by_field.items():
                if row[where["count"]]:  # null or 0: no point of this field in this series' window
                    yield tags, end, field, {agg: row[where[agg]] for agg in AGGREGATES}


class Incomplete(Exception):
    """The level below lacks counts for some window (written by something else, e.g. the deployed
    Flux tasks), or lacks whole windows (its counts do not add up to the raw data's): fold from
    the raw data instead."""


def aggregates_from_lower(series: Iterable[dict], seconds: int) -> list[Aggregate]:
    """Answer of fold_query -> the windows of the upper level, exactly: mean = sum(mean * count) /
    sum(count), min of minima, max of maxima, sum of counts. Raises Incomplete."""
    return fold(_lower_parts(series), seconds)


def _lower_parts(series: Iterable[dict]) -> dict[tuple, dict[str, float]]:
    """Answer of fold_query -> {(tags, window end, field): {aggregate: value}} of the level below."""
    names = {m: agg for agg, m in MEASUREMENTS.items()}
    parts: dict[tuple, dict[str, float]] = {}
    for one in series:
        agg = names.get(one.get("name") or "")
        if agg is None:
            continue
        tags = tuple(sorted((k, v) for k, v in (one.get("tags") or {}).items() if v not in ("", None)))
        columns = one["columns"]
        for row in one.get("values") or []:
            for field, value in zip(columns[1:], row[1:]):
                if value is not None:
                    parts.setdefault((tags, int(row[0]), field), {})[agg] = value
    return parts


def fold(parts: dict[tuple, dict[str, float]], seconds: int) -> list[Aggregate]:
    """Windows of the level below -> the windows of `seconds` they make up, exactly."""
    upper: dict[tuple, dict] = {}
    for (tags, stamp, field), values in parts.items():
        if len(values) != len(AGGREGATES) or not values["count"]:
            raise Incomplete(f"window ending {iso_z(stamp)} of {field}: {sorted(values)} only")
        start = stamp - 1
        key = (tags, start - start % seconds + seconds, field)
        acc = upper.get(key)
        count = int(values["count"])
        if acc is None:
            upper[key] = {
                "weighted": [values["mean"] * count],
                "min": values["min"],
                "max": values["max"],
                "count": count,
            }
        else:
            acc["weighted"].append(values["mean"] * count)
            acc["min"] = min(acc["min"], values["min"])
            acc["max"] = max(acc["max"], values["max"])
            acc["count"] += count
    return [
        (
            tags,
            end,
            field,
            {
                "mean": math.fsum(acc["weighted"]) / acc["count"],
                "min": acc["min"],
                "max": acc["max"],
                "count": acc["count"],
            },
        )
        for (tags, end, field), acc in upper.items()
    ]


@lru_cache(maxsize=4096)
def _series_text(tags: tuple, field: str) -> str:
    """`,k=v,... <field>=` of a series, escaped (the same series recur on every level)."""
    return lineprotocol.tag_set(dict(tags)) + " " + lineprotocol.escape_key(field) + "="


def derived_lines(aggregates: Iterable[Aggregate]) -> Iterator[str]:
    """One line per aggregate and measurement (mean -> electrical, min -> electrical_min, max ->
    electrical_max, count -> electrical_count), stamped at the window's end."""
    heads: dict[tuple, tuple[str, str, str, str]] = {}  # the same series recur in every window
    for tags, end, field, values in aggregates:
        head = heads.get((tags, field))
        if head is None:
            series = _series_text(tags, field)
            head = heads[tags, field] = (
                MEASUREMENTS["mean"] + series,
                MEASUREMENTS["min"] + series,
                MEASUREMENTS["max"] + series,
                MEASUREMENTS["count"] + series,
            )
        suffix = f" {end}\n"
        yield head[0] + repr(float(values["mean"])) + suffix
        yield head[1] + repr(float(values["min"])) + suffix
        yield head[2] + repr(float(values["max"])) + suffix
        yield f"{head[3]}{int(values['count'])}i{suffix}"


def sorted_levels(levels: Iterable[str]) -> list[str]:
    return sorted(set(levels), key=lambda lv: schema.LEVEL_BY_NAME[lv].seconds)


def source_level(levels: list[str], level: str) -> str | None:
    """The finest enabled level below `level` whose windows tile it, or None (read the raw data)."""
    seconds = schema.LEVEL_BY_NAME[level].seconds
    below = [
        lv
        for lv in levels
        if schema.LEVEL_BY_NAME[lv].seconds < seconds and seconds % schema.LEVEL_BY_NAME[lv].seconds == 0
    ]
    return below[-1] if below else None


def plan(span: Span, levels: Iterable[str]) -> Iterator[tuple[str, str, str, int, int]]:
    """(level, database read, InfluxQL, first, last) for every chunk, coarser levels after finer."""
    ordered = sorted_levels(levels)
    for level in ordered:
        lower = source_level(ordered, level)
        for first, last in chunks(span, level):
            if lower is None:
                yield level, span.bucket, recompute_query(span, level, first, last), first, last
            else:
                yield (
                    level,
                    derived_bucket(span.bucket, lower),
                    fold_query(span, lower, level, first, last),
                    first,
                    last,
                )


def count_mismatch(folded: list[Aggregate], raw_counts: dict[tuple, int]) -> str | None:
    """Why the folded windows do not hold every raw point (None when they do, exactly)."""
    got = {(tags, end, field): int(values["count"]) for tags, end, field, values in folded}
    if got == raw_counts:
        return None
    wrong = sorted(
        (key for key in set(got) | set(raw_counts) if got.get(key) != raw_counts.get(key)), key=lambda k: (k[1], k[2])
    )
    tags, end, field = wrong[0]
    return (
        f"{len(wrong)} window(s) lack points of the level below, first the one ending {iso_z(end)} of {field} "
        f"({got.get(wrong[0], 0)} of {raw_counts.get(wrong[0], 0)} raw points)"
    )
