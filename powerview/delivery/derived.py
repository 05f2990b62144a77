"""Derived buckets `<company>_1h`, `<company>_1d`, `<company>_1w`, kept exact by ingestion.

For one device of one campaign and a time span, every window of every level that the span touches
is recomputed over ALL the raw data of that device in that campaign (not only one file's), through
InfluxQL on `/query` (the language InfluxDB 1.x, 2.x and 3.x share). The finest level comes from
the raw bucket, one request per level and chunk:

    SELECT mean("F") AS "mean_F", min("F") AS "min_F", max("F") AS "max_F", count("F") AS "count_F"
    FROM "electrical" WHERE "campaign" = '...' AND "device_master_sn" = '...' AND "channel_id" = '...'
      AND time >= '<first window start>' AND time < '<last window end>'
    GROUP BY time(1h), * fill(none)          (one such statement per channel, in one request;
                                              InfluxDB 3 takes one statement a request: one
                                              statement over every channel there, see _read)

On InfluxDB 1.x and 2.x the per-channel statements go without `GROUP BY *` (about twice as fast
on 1.x), followed in the same request by `SHOW SERIES` of the device: a channel's one series
gives its tags; a channel with several series is read again with `GROUP BY *` (_read_narrow).

Each coarser level is folded EXACTLY from the level below, whose windows tile it (1h -> 1d -> 1w):
mean = sum(mean x count) / sum(count), min of the minima, max of the maxima, sum of the counts.
That reads 24 rows a day instead of every raw point of a week (the weekly window of a daily file
would otherwise re-read seven days of raw data at each upload); a level below without counts
(written by the deployed Flux tasks, say) is detected and that level is read from the raw data.

Written to `<company>_<level>`: measurement `electrical` = the mean (the deployed schema),
`electrical_min`, `electrical_max`, and `electrical_count` (raw points in the window: its
coverage, and the weight of the fold), same tags and field names as the raw series. Each value
is stamped at its window's END (as Flux aggregateWindow does); windows are aligned on the epoch
like InfluxQL's and Flux's (days at 00:00 UTC, weeks on Thursday 00:00 UTC). The field list is
the file's own: a field's windows depend only on that field's points. Every series (tag set) has
windows of its own, so a master series (with `device_subtype`) and a slave series never mix;
`fill(none)` and the counts leave empty windows out.

Durability: as soon as a file's points are written, BEFORE it moves to parsed/ (Recorder, the
run's per-file step), its span is written as one JSON record under
`<POWERVIEW_SPOOL_DIR>/outbox/derived/` (temporary file, fsync, rename: a kill -9 leaves the whole
record or none). A record is deleted once every level is rewritten; any failure or kill leaves
it for the next run (or `powerview-downsample --pending`, which the worker runs at the end of
its pass), so a raw ingestion never fails because of this step and no window stays wrong.

Before a coarser level is folded, the raw points of its windows are counted: a window missing
from the level below (a level enabled later) shows up as a count that does not add up, and the
level is then read from the raw data. One recompute at a time per bucket (BucketLocks, shared
with powerview-downsample): the one that read the newer raw data always writes last.

A span whose levels each fit in one chunk (any file of days or weeks) is done in one pass
(_one_pass): one read of the raw bucket for the finest level and every count, levels tiled by
windows recomputed in the pass folded in memory, a read of the level below only for the others,
one write per level; the lock is held from the first read to the last write.
"""

from __future__ import annotations

import fcntl
import json
import logging
import math
import os
import re
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from functools import lru_cache, partial
from pathlib import Path

from powerview.core import schema
from powerview.core.names import name_problem
from powerview.core.outcome import FileOutcome, Status
from powerview.core.settings import ConfigError, ParserSettings
from powerview.delivery import outbox
from powerview.delivery.influx import InfluxRejected, InfluxUnavailable
from powerview.delivery.influxql import QueryClient, quote_ident, quote_string
from powerview.ingestion import lineprotocol

log = logging.getLogger(__name__)

RAW_MEASUREMENT = schema.MEASUREMENT
MEASUREMENTS = schema.DERIVED_MEASUREMENTS
AGGREGATES = tuple(MEASUREMENTS)
OUTBOX = Path("outbox") / "derived"
UPDATED, QUEUED, OFF, FAILED = "updated", "queued", "off", "failed"


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


def _where(span: Span, time_condition: str | None, channel: str | None) -> str:
    where = [f"{quote_ident('device_master_sn')} = {quote_string(span.device_master_sn)}"]
    if span.campaign is not None:
        where.insert(0, f"{quote_ident('campaign')} = {quote_string(span.campaign)}")
    if channel is not None:
        where.append(f"{quote_ident('channel_id')} = {quote_string(channel)}")
    if time_condition is not None:
        where.append(time_condition)
    return " AND ".join(where)


def _by_channel(span: Span) -> list[tuple[str | None, list[str]]]:
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
    """The statements of recompute_query, one per channel (see _by_channel); `grouped=False`
    leaves out `GROUP BY *` (see _read)."""
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
    for channel, fields in _by_channel(span):
        select = ", ".join(
            f"{agg}({quote_ident(f)}) AS {quote_ident(agg + '_' + f)}" for f in fields for agg in aggregates
        )
        statements.append(
            f"SELECT {select} FROM {quote_ident(RAW_MEASUREMENT)} "
            f"WHERE {_where(span, time_condition, channel)} GROUP BY time({level}){by_series} fill(none)"
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
    `grouped=False` leaves out `GROUP BY *` (see _read)."""
    _check_bounds(level, first, last)
    time_condition = f"time > '{iso_z(first)}' AND time <= '{iso_z(last)}'"
    sources = ", ".join(quote_ident(m) for m in MEASUREMENTS.values())
    by_series = " GROUP BY *" if grouped else ""
    return [
        f"SELECT {', '.join(quote_ident(f) for f in fields)} FROM {sources} "
        f"WHERE {_where(span, time_condition, channel)}{by_series}"
        for channel, fields in _by_channel(span)
    ]


def count_query(span: Span, level: str, first: int, last: int) -> str:
    """InfluxQL over the RAW bucket: the number of points of every field in every window of
    `level` in [first, last), per series. The fold's counts must match it exactly: a window of
    the level below that is absent (a level enabled later, raw data ingested with the derived
    step off) or stale shows up here, and the level is then read from the raw data."""
    return "; ".join(count_statements(span, level, first, last))


def count_statements(span: Span, level: str, first: int, last: int, grouped: bool = True) -> list[str]:
    """The statements of count_query, one per channel (see _by_channel)."""
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
    return _fold(_lower_parts(series), seconds)


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


def _fold(parts: dict[tuple, dict[str, float]], seconds: int) -> list[Aggregate]:
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


def recompute(
    span: Span,
    levels: Iterable[str],
    client: QueryClient,
    writer,
    batch_lines: int = 5000,
    on_chunk: Callable[[], None] = lambda: None,
    lock: Callable[[str], AbstractContextManager] | None = None,
) -> int:
    """Recompute and write every window of `levels` the span touches: the finest level from the
    raw data, each coarser one folded exactly from the level below (from the raw data when that
    level lacks counts or windows). Returns the lines written. Raises InfluxUnavailable /
    InfluxRejected / ConfigError; a retry redoes whole windows.

    `lock(bucket)` is held around the reading and the writing of each chunk: two recomputes of
    the same windows (the parser and powerview-downsample, say) never interleave, so the one
    that read the newer raw data always writes last (BucketLocks)."""
    span.check()
    ordered = sorted_levels(levels)
    bounds = {level: list(chunks(span, level)) for level in ordered}
    if ordered and all(len(ranges) == 1 for ranges in bounds.values()):
        # the common case (files of days or weeks): every level in one pass, see _one_pass
        with lock(span.bucket) if lock is not None else nullcontext():
            written = _one_pass(
                span, ordered, {lv: ranges[0] for lv, ranges in bounds.items()}, client, writer, batch_lines
            )
        on_chunk()
        return written
    written = 0
    for level, _database, _query, first, last in plan(span, levels):
        with lock(span.bucket) if lock is not None else nullcontext():
            lower = source_level(ordered, level)
            written += _recompute_chunk(span, level, lower, first, last, client, writer, batch_lines)
        on_chunk()
    return written


def _recompute_chunk(
    span: Span, level: str, lower: str | None, first: int, last: int, client: QueryClient, writer, batch_lines
) -> int:
    seconds = schema.LEVEL_BY_NAME[level].seconds
    narrow = _for_client(span, client)
    if lower is None:
        aggregates: Iterable[Aggregate] = aggregates_from_raw(
            _series(_read_raw(client, narrow, lambda g: recompute_statements(narrow, level, first, last, g))), seconds
        )
    else:
        database = derived_bucket(span.bucket, lower)
        try:
            folded = aggregates_from_lower(
                _series(_read_lower(client, narrow, lower, level, first, last)),
                seconds,
            )
            raw_counts = counts_from_raw(
                _series(_read_raw(client, narrow, lambda g: count_statements(narrow, level, first, last, g))), seconds
            )
            missing = _count_mismatch(folded, raw_counts)
            if missing:
                raise Incomplete(missing)
            aggregates = folded
        except Incomplete as exc:
            log.warning("%s: %s: recomputing %s from the raw data", database, exc, level)
            aggregates = aggregates_from_raw(
                _series(_read(client, span.bucket, recompute_statements(narrow, level, first, last))), seconds
            )
    return _write(writer, derived_bucket(span.bucket, level), derived_lines(aggregates), batch_lines)


def _one_pass(
    span: Span,
    ordered: list[str],
    bounds: dict[str, tuple[int, int]],
    client: QueryClient,
    writer,
    batch_lines: int,
) -> int:
    """Every level of a span whose levels each fit in one chunk, with the arithmetic of the chunk
    by chunk path in fewer round trips: ONE InfluxQL request on the raw bucket (the finest
    level's aggregates and the raw counts of every level folded from stored windows, several
    statements), then level by level, finer first: the fold's read of the level below when
    needed, and one write per derived bucket. The lock is held from the first read to the last
    write.

    A level whose windows are all tiled by windows of the level below recomputed in this pass
    (a daily file's day, say) is folded in memory from them: neither the stored windows nor the
    raw counts are needed, the fresh windows being exact by construction. Any other fold reads
    the level below as written, is checked against the raw counts and read from the raw data
    when they differ, exactly as chunk by chunk."""
    sources = {level: source_level(ordered, level) for level in ordered}
    narrow = _for_client(span, client)

    def covered(level: str) -> bool:
        lower = sources[level]
        return lower is not None and bounds[lower][0] <= bounds[level][0] and bounds[lower][1] >= bounds[level][1]

    parts: list[tuple[str, int]] = []  # (kind + level, number of statements)
    makers: list[Callable[[bool], list[str]]] = []
    for level in ordered:
        first, last = bounds[level]
        if sources[level] is None:
            make, kind = partial(recompute_statements, narrow, level, first, last), "raw"
        elif not covered(level):
            make, kind = partial(count_statements, narrow, level, first, last), "count"
        else:
            continue
        makers.append(make)
        parts.append((kind + level, len(_by_channel(narrow))))

    def statements(grouped: bool) -> list[str]:
        return [statement for make in makers for statement in make(grouped)]

    results = _read_raw(client, narrow, statements) if makers else []
    raw: dict[str, list[dict]] = {}
    position = 0
    for key, size in parts:
        raw[key] = list(_series(results[position : position + size]))
        position += size

    fresh: dict[str, list[Aggregate]] = {}
    written = 0
    for level in ordered:
        seconds = schema.LEVEL_BY_NAME[level].seconds
        first, last = bounds[level]
        lower = sources[level]
        if lower is None:
            fresh[level] = list(aggregates_from_raw(raw["raw" + level], seconds))
        elif covered(level):
            fresh[level] = _fold({(tags, end, field): values for tags, end, field, values in fresh[lower]}, seconds)
        else:
            database = derived_bucket(span.bucket, lower)
            try:  # the level below is written already (levels go finer to coarser)
                folded = aggregates_from_lower(_series(_read_lower(client, narrow, lower, level, first, last)), seconds)
                missing = _count_mismatch(folded, counts_from_raw(raw["count" + level], seconds))
                if missing:
                    raise Incomplete(missing)
                fresh[level] = folded
            except Incomplete as exc:
                log.warning("%s: %s: recomputing %s from the raw data", database, exc, level)
                more = recompute_statements(narrow, level, first, last)
                fresh[level] = list(aggregates_from_raw(_series(_read(client, span.bucket, more)), seconds))
        written += _write(writer, derived_bucket(span.bucket, level), derived_lines(fresh[level]), batch_lines)
    return written


def _for_client(span: Span, client: QueryClient) -> Span:
    """The span whose statements suit the server: one statement per channel where a request
    carries several (1.x, 2.x: the fastest there), one statement over every field where it
    carries one (InfluxDB 3: a request a channel would multiply the round trips)."""
    if span.channels and client.single_statement:
        return replace(span, channels=())
    return span


def _read_raw(client: QueryClient, span: Span, statements: Callable[[bool], list[str]]) -> list[dict]:
    """Per-channel statements on the raw bucket (see _read_narrow)."""
    return _read_narrow(client, span, span.bucket, (RAW_MEASUREMENT,), statements)


def _read_lower(client: QueryClient, span: Span, lower: str, level: str, first: int, last: int) -> list[dict]:
    """The windows of the level below that make up [first, last) of `level` (see _read_narrow)."""
    return _read_narrow(
        client,
        span,
        derived_bucket(span.bucket, lower),
        tuple(MEASUREMENTS.values()),
        partial(fold_statements, span, lower, level, first, last),
    )


def _read_narrow(
    client: QueryClient,
    span: Span,
    database: str,
    measurements: tuple[str, ...],
    statements: Callable[[bool], list[str]],
) -> list[dict]:
    """One result per statement of `statements(True)` (one per channel, `GROUP BY *`: the tags
    of each series in the answer), read the cheaper way where the server takes several statements
    a request: `statements(False)`, the same without `GROUP BY *` (InfluxDB 1.x answers a
    per-channel statement about twice as fast without it), followed in the SAME request by
    `SHOW SERIES` of the span's device. A channel with exactly one series in that list gets its
    tags from it; a channel with several (a label changed between two files), or a list that
    cannot be read back exactly, is read again with `GROUP BY *` (a second request).

    Why the list is complete: InfluxDB adds a series to its index before the points of that
    series can be read, and runs the statements of a request in order; so a series whose points
    a statement read is in the `SHOW SERIES` that follows it, even one written meanwhile."""
    channels = [channel or "" for channel, _ in _by_channel(span)]
    if client.single_statement or not span.channels or not getattr(client, "show_series", True):
        return _read(client, database, statements(True))
    plain = statements(False)
    show = f"SHOW SERIES FROM {', '.join(quote_ident(m) for m in measurements)} WHERE {_where(span, None, None)}"
    try:
        answers = _read(client, database, [*plain, show])
    except InfluxRejected as exc:
        grouped = _read(client, database, statements(True))  # raises when the statements are refused
        log.info("%s: %s: reading with GROUP BY * from now on", database, exc)
        client.show_series = False  # the server refuses SHOW SERIES
        return grouped
    known = series_by_channel(answers[-1], measurements)
    results: list[dict] = []
    again: list[int] = []
    for index, result in enumerate(answers[:-1]):
        found = result.get("series") or []
        tag_sets = None if known is None else known.get(channels[index % len(channels)], set())
        if tag_sets is not None and len(tag_sets) == 1:
            tags = dict(next(iter(tag_sets)))
            result = {**result, "series": [{**one, "tags": tags} for one in found]}
        elif tag_sets is None or tag_sets or found:  # several series, or rows without a series
            again.append(index)
        results.append(result)
    if again:
        with_tags = statements(True)
        for index, result in zip(again, _read(client, database, [with_tags[i] for i in again])):
            results[index] = result
    return results


def series_by_channel(result: dict, measurements: Iterable[str]) -> dict[str, set[tuple]] | None:
    """Answer of `SHOW SERIES` -> {channel_id: {tag set (sorted items)}} over `measurements`;
    None when a series key does not read back exactly (an escape this reading cannot undo)."""
    wanted = set(measurements)
    by_channel: dict[str, set[tuple]] = {}
    tag_sets: dict[str, tuple | None] = {}  # the same tags recur in every measurement
    for one in result.get("series") or []:
        for row in one.get("values") or []:
            key = str(row[0])
            measurement, _, rest = key.partition(",")
            if "\\" in measurement:
                return None
            if rest not in tag_sets:
                tag_sets[rest] = _parse_tags(rest)
            tags = tag_sets[rest]
            if tags is None:
                return None
            channel = dict(tags).get("channel_id")
            if measurement in wanted and channel is not None:
                by_channel.setdefault(channel, set()).add(tags)
    return by_channel


_KEY_PART = re.compile(r"(?:\\.|[^,\\])+")
_TAG = re.compile(r"((?:\\.|[^=\\])+)=(.*)")
_ESCAPED = re.compile(r"\\(.)")


def _parse_tags(text: str) -> tuple | None:
    """The tags of a series key after its measurement (`k=v,k=v`, line protocol escapes) as
    sorted items; None unless writing them back gives the same text (a backslash in a value,
    say: that device is read with GROUP BY *)."""
    if "\\" not in text:  # nothing escaped: no comma, equals sign or space in any name
        pairs = [part.partition("=") for part in text.split(",")] if text else []
        if any(not name or not sep for name, sep, _ in pairs):
            return None
        return tuple(sorted((name, value) for name, _, value in pairs if value))
    tags = {}
    for part in _KEY_PART.findall(text):
        pair = _TAG.fullmatch(part)
        if pair is None:
            return None
        tags[_ESCAPED.sub(r"\1", pair[1])] = _ESCAPED.sub(r"\1", pair[2])
    if lineprotocol.tag_set(tags) != "," + text:
        return None
    return tuple(sorted((name, value) for name, value in tags.items() if value))


def _read(client: QueryClient, database: str, statements: list[str]) -> list[dict]:
    """One result per statement. InfluxDB 1.x and 2.x run several statements separated by `;` in
    one /query request, POSTed (a long query stays out of the URL: no 414 from a proxy, no URL
    re-encoding); InfluxDB 3 accepts one statement per request (its v1 /query refuses more with
    HTTP 500 "must provide only one InfluxQl statement per query"), so each goes on its own."""
    if client.single_statement:
        results = [result for statement in statements for result in client.raw(database, statement)["results"]]
    else:
        results = client.raw(database, "; ".join(statements), write=True)["results"]
    if len(results) != len(statements):
        raise InfluxUnavailable(f"InfluxQL on {database}: {len(results)} result(s) for {len(statements)} statement(s)")
    return results


def _series(results: list[dict]) -> Iterator[dict]:
    for result in results:
        yield from result.get("series") or []


def _count_mismatch(folded: list[Aggregate], raw_counts: dict[tuple, int]) -> str | None:
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


def _write(writer, bucket: str, lines: Iterable[str], batch_lines: int) -> int:
    written = 0
    buffer: list[str] = []
    for line in lines:
        buffer.append(line)
        if len(buffer) >= batch_lines:
            writer.write(bucket, "".join(buffer).encode())
            written += len(buffer)
            buffer.clear()
    if buffer:
        writer.write(bucket, "".join(buffer).encode())
        written += len(buffer)
    return written


# ---------------------------------------------------------------- the durable outbox


class Outbox(outbox.Outbox):
    """Spans waiting to be recomputed: the project's durable outbox (`outbox.Outbox`: temporary
    file, fsync, rename, fsync of the folder) in `<spool>/outbox/derived/`, one JSON record
    {"version": 1, <the span>} a file. Every record has a name of its own (time, process,
    sequence): a span recorded again while another process recomputes an older record of the
    same content is never deleted with it. Records of earlier versions
    (`<time>-<pid>-<digest>.json`) are read the same way."""

    def __init__(self, spool_dir: Path):
        super().__init__(Path(spool_dir) / OUTBOX)

    @property
    def dir(self) -> Path:
        return self.folder

    def add(self, span: Span) -> Path:
        """Write the record durably. Raises OSError."""
        return self.put({"version": 1, **asdict(span)})

    def pending(self) -> list[Path]:
        """The waiting records, oldest first; none when the folder cannot be read (an unusable spool
        never stops a recompute)."""
        try:
            return self.waiting()
        except OSError:
            return []

    @staticmethod
    def load(path: Path) -> Span:
        data = json.loads(path.read_text())
        span = Span(
            bucket=data["bucket"],
            campaign=data["campaign"],
            device_master_sn=data["device_master_sn"],
            start=int(data["start"]),
            end=int(data["end"]),
            fields=tuple(data["fields"]),
            channels=tuple(data.get("channels") or ()),
        )
        span.check()
        return span


LOCKS = Path("locks") / "derived"


class BucketLocks:
    """One recompute at a time per bucket, across processes (the parser, powerview-downsample):
    flock on `<POWERVIEW_SPOOL_DIR>/locks/derived/<bucket>.lock`, held around the
    reading and the writing of each chunk. A lock that cannot be opened (unwritable spool) is
    logged once and the recompute goes on unlocked: the raw ingestion never waits on it."""

    def __init__(self, spool_dir: Path):
        self.dir = Path(spool_dir) / LOCKS
        self.warned = False

    @contextmanager
    def __call__(self, bucket: str) -> Iterator[None]:
        problem = name_problem("company", bucket)
        if problem:
            raise ValueError(problem)
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.dir / f"{bucket}.lock", os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            if not self.warned:
                log.warning("derived buckets: no lock in %s (%s): recomputing without it", self.dir, exc)
                self.warned = True
            yield
            return
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                log.info("derived buckets of %s: waiting for another recompute of its windows to finish", bucket)
                fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # releases the lock


def span_of(entry: FileOutcome) -> Span | None:
    """The span of a successful file (None when it has no point)."""
    if entry.status != Status.SUCCESS or not entry.time_min or not entry.time_max or not entry.device_master_sn:
        return None
    pairs = sorted({(ch["field"], channel_id) for channel_id, ch in (entry.channels or {}).items() if ch.get("field")})
    if not pairs:
        return None
    return Span(
        bucket=entry.bucket,
        campaign=entry.campaign,
        device_master_sn=entry.device_master_sn,
        start=parse_iso(entry.time_min),
        end=parse_iso(entry.time_max),
        fields=tuple(f for f, _ in pairs),
        channels=tuple(c for _, c in pairs),
    )


MERGE_GAP_S = 7 * 86400


def merge(spans: list[tuple[Path, Span]]) -> list[tuple[list[Path], Span]]:
    """Pending spans of the same device and campaign whose ranges overlap or lie within a week of
    each other, as one span (union of ranges and fields): a backlog is recomputed in a few
    queries instead of one series a file. Recomputing a window twice is harmless (exact)."""
    groups: dict[tuple, list[tuple[Path, Span]]] = {}
    for path, span in spans:
        groups.setdefault((span.bucket, span.campaign, span.device_master_sn), []).append((path, span))
    merged: list[tuple[list[Path], Span]] = []
    for items in groups.values():
        items.sort(key=lambda item: item[1].start)
        paths, current = [items[0][0]], items[0][1]
        for path, span in items[1:]:
            if span.start <= current.end + MERGE_GAP_S:
                pairs = sorted(set(_pairs(current)) | set(_pairs(span)))
                channels = () if not (current.channels and span.channels) else tuple(c for _, c in pairs)
                current = Span(
                    current.bucket,
                    current.campaign,
                    current.device_master_sn,
                    current.start,
                    max(current.end, span.end),
                    tuple(f for f, _ in pairs),
                    channels,
                )
                paths.append(path)
            else:
                merged.append((paths, current))
                paths, current = [path], span
        merged.append((paths, current))
    return merged


def _pairs(span: Span) -> list[tuple[str, str]]:
    return list(zip(span.fields, span.channels or ("",) * len(span.fields)))


def process_pending(
    outbox: Outbox,
    levels: tuple[str, ...],
    client: QueryClient,
    writer,
    batch_lines: int = 5000,
    lock: Callable[[str], AbstractContextManager] | None = None,
) -> set[Path]:
    """Recompute every pending record (neighbours merged); returns the ones done (deleted).
    Stops at the first outage (the rest waits for the next run)."""
    loaded: list[tuple[Path, Span]] = []
    for path in outbox.pending():
        try:
            loaded.append((path, outbox.load(path)))
        except FileNotFoundError:
            continue  # another run did it meanwhile
        except (ValueError, KeyError, TypeError, OSError) as exc:
            bad = path.with_suffix(".bad")
            log.error("derived outbox: unreadable record %s (%s): moved to %s", path, exc, bad.name)
            try:
                os.replace(path, bad)
            except OSError:
                pass
    done: set[Path] = set()
    for paths, span in merge(loaded):
        try:
            nb = recompute(span, levels, client, writer, batch_lines, lock=lock)
        except InfluxRejected as exc:
            log.error(
                "derived buckets of %s/%s/%s: %s (kept in %s)",
                span.bucket,
                span.campaign,
                span.device_master_sn,
                exc,
                outbox.dir,
            )
            continue
        except (InfluxUnavailable, ConfigError) as exc:
            log.warning(
                "derived buckets not updated now (%s): %d record(s) kept in %s for the next run",
                exc,
                len(outbox.pending()),
                outbox.dir,
            )
            break
        for path in paths:
            path.unlink(missing_ok=True)
            done.add(path)
        log.info(
            "derived buckets of %s/%s/%s updated from %s to %s (%s, %d lines)",
            span.bucket,
            span.campaign,
            span.device_master_sn,
            iso_z(span.start),
            iso_z(span.end),
            ",".join(levels),
            nb,
        )
    return done


class Recorder:
    """The per-file step of a run, called between a file's write and its move to parsed/: its
    span goes to the durable outbox there, so that a parser killed at any point (kill -9, the
    OOM killer, the worker's timeout) leaves no file in parsed/ whose windows are not recorded.
    A span that cannot be recorded (unwritable spool) is kept in memory and tried at the end of
    the run (after_ingest), and the log names the powerview-downsample command that redoes it."""

    def __init__(self, settings: ParserSettings):
        self.settings = settings
        self.outbox = Outbox(settings.spool_dir)
        self.records: dict[str, Path] = {}  # by entry.file
        self.unrecorded: dict[str, Span] = {}
        self.failed: set[str] = set()

    def __call__(self, entry: FileOutcome) -> None:
        if not self.settings.downsample_levels or entry.status != Status.SUCCESS:
            return
        try:
            span = span_of(entry)
        except (KeyError, TypeError, ValueError) as exc:
            log.error("derived buckets: %s: unusable report entry (%s)", entry.file, exc)
            self.failed.add(entry.file)
            return
        if span is None:
            return
        try:
            self.records[entry.file] = self.outbox.add(span)
        except (OSError, ValueError) as exc:
            log.error(
                "derived outbox %s: cannot record the windows of %s (%s): trying at the end of the run; "
                "if this run is killed before, run powerview-downsample --bucket %s --start %s --end %s",
                self.outbox.dir,
                entry.file,
                exc,
                span.bucket,
                iso_z(span.start),
                iso_z(span.end + 1),
            )
            self.unrecorded[entry.file] = span


def after_ingest(
    settings: ParserSettings,
    writer,
    entries: list[FileOutcome],
    client: QueryClient | None = None,
    recorder: Recorder | None = None,
) -> None:
    """Record the span of every `success` entry durably (unless `recorder` did it before the
    file's move), then process every pending record.
    Sets `entry.derived` to "updated", "queued" (kept for the next run), "failed" (could not
    even be recorded: run `powerview-downsample`) or "off" (TSV_DOWNSAMPLE_LEVELS empty).
    Never raises for InfluxDB or the disk: the raw ingestion's outcome is not changed. When the run
    found InfluxDB unavailable (an entry in `retry`), the spans are recorded and left queued:
    processing them would only wait out another retry budget."""
    successes = [e for e in entries if e.status == Status.SUCCESS]
    outage = any(e.status == Status.RETRY for e in entries)
    if not settings.downsample_levels:
        for entry in successes:
            entry.derived = OFF
        return
    if recorder is None:
        recorder = Recorder(settings)
    for entry in successes:
        entry.derived = None
        if entry.file not in recorder.records and entry.file not in recorder.unrecorded:
            if entry.file not in recorder.failed:
                recorder(entry)
    outbox = recorder.outbox
    records, unrecorded = recorder.records, dict(recorder.unrecorded)
    for entry in successes:
        if entry.file in recorder.failed:
            entry.derived = FAILED
    if outage:
        for entry in successes:
            if entry.derived is None:
                entry.derived = QUEUED if entry.file in records else FAILED if entry.file in unrecorded else UPDATED
        log.warning(
            "derived buckets: InfluxDB unavailable during this run: %d record(s) wait in %s", len(records), outbox.dir
        )
        return
    own_client = client is None
    lock = BucketLocks(settings.spool_dir)
    try:
        client = client or _client(settings)
        done = process_pending(outbox, settings.downsample_levels, client, writer, settings.batch_lines, lock)
        for file, span in list(unrecorded.items()):
            try:
                recompute(span, settings.downsample_levels, client, writer, settings.batch_lines, lock=lock)
                del unrecorded[file]
            except (InfluxUnavailable, InfluxRejected, ConfigError) as exc:
                log.error(
                    "derived buckets of %s not updated and not recorded (%s): run powerview-downsample "
                    "--bucket %s --start %s --end %s",
                    file,
                    exc,
                    span.bucket,
                    iso_z(span.start),
                    iso_z(span.end + 1),
                )
    except Exception as exc:  # noqa: BLE001 - this step never changes the raw ingestion's outcome
        log.error("derived buckets: %s: %s (records kept in %s)", type(exc).__name__, exc, outbox.dir)
        done = set()
    finally:
        if own_client and client is not None:
            client.close()
    for entry in successes:
        if entry.derived is not None:
            continue
        if entry.file in records:
            path = records[entry.file]
            entry.derived = UPDATED if path in done or not path.exists() else QUEUED
        elif entry.file in unrecorded:
            entry.derived = FAILED
        else:
            entry.derived = UPDATED
    if any(entry.derived == QUEUED for entry in successes):
        log.warning(
            "derived buckets: %d record(s) wait in %s: the next run does them (or powerview-downsample --pending)",
            len(outbox.pending()),
            outbox.dir,
        )


def _client(settings: ParserSettings) -> QueryClient:
    from powerview.delivery.influx_targets import open_query_client

    return open_query_client(settings.influx)
