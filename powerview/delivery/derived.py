"""Derived buckets `<company>_1h`, `<company>_1d`, `<company>_1w`, kept exact by ingestion.

For one device of one campaign and a time span, every window of every level that the span touches
is recomputed over ALL the raw data of that device in that campaign (not only one file's), through
InfluxQL on `/query` (the language InfluxDB 1.x, 2.x and 3.x share): the finest level from the raw
bucket, each coarser one folded exactly from the level below (`windows`: the bounds, statements and
arithmetic; `derived_reads`: the reads). This module runs the recompute, holds its locks and keeps
its durable outbox.

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
import os
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import asdict
from functools import partial
from pathlib import Path

from powerview.core import schema
from powerview.core.names import name_problem
from powerview.core.outcome import FileOutcome, Status
from powerview.core.settings import ConfigError, ParserSettings
from powerview.delivery import outbox
from powerview.delivery.derived_reads import for_client, read, read_lower, read_raw, series_of
from powerview.delivery.influx import InfluxRejected, InfluxUnavailable
from powerview.delivery.influxql import QueryClient
from powerview.delivery.windows import (
    Aggregate,
    Incomplete,
    Span,
    aggregates_from_lower,
    aggregates_from_raw,
    by_channel,
    chunks,
    count_mismatch,
    count_statements,
    counts_from_raw,
    derived_bucket,
    derived_lines,
    fold,
    iso_z,
    parse_iso,
    plan,
    recompute_statements,
    sorted_levels,
    source_level,
)

log = logging.getLogger(__name__)

OUTBOX = Path("outbox") / "derived"
UPDATED, QUEUED, OFF, FAILED = "updated", "queued", "off", "failed"


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
    narrow = for_client(span, client)
    if lower is None:
        aggregates: Iterable[Aggregate] = aggregates_from_raw(
            series_of(read_raw(client, narrow, lambda g: recompute_statements(narrow, level, first, last, g))), seconds
        )
    else:
        database = derived_bucket(span.bucket, lower)
        try:
            folded = aggregates_from_lower(
                series_of(read_lower(client, narrow, lower, level, first, last)),
                seconds,
            )
            raw_counts = counts_from_raw(
                series_of(read_raw(client, narrow, lambda g: count_statements(narrow, level, first, last, g))), seconds
            )
            missing = count_mismatch(folded, raw_counts)
            if missing:
                raise Incomplete(missing)
            aggregates = folded
        except Incomplete as exc:
            log.warning("%s: %s: recomputing %s from the raw data", database, exc, level)
            aggregates = aggregates_from_raw(
                series_of(read(client, span.bucket, recompute_statements(narrow, level, first, last))), seconds
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
    narrow = for_client(span, client)

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
        parts.append((kind + level, len(by_channel(narrow))))

    def statements(grouped: bool) -> list[str]:
        return [statement for make in makers for statement in make(grouped)]

    results = read_raw(client, narrow, statements) if makers else []
    raw: dict[str, list[dict]] = {}
    position = 0
    for key, size in parts:
        raw[key] = list(series_of(results[position : position + size]))
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
            fresh[level] = fold({(tags, end, field): values for tags, end, field, values in fresh[lower]}, seconds)
        else:
            database = derived_bucket(span.bucket, lower)
            try:  # the level below is written already (levels go finer to coarser)
                folded = aggregates_from_lower(
                    series_of(read_lower(client, narrow, lower, level, first, last)), seconds
                )
                missing = count_mismatch(folded, counts_from_raw(raw["count" + level], seconds))
                if missing:
                    raise Incomplete(missing)
                fresh[level] = folded
            except Incomplete as exc:
                log.warning("%s: %s: recomputing %s from the raw data", database, exc, level)
                more = recompute_statements(narrow, level, first, last)
                fresh[level] = list(aggregates_from_raw(series_of(read(client, span.bucket, more)), seconds))
        written += _write(writer, derived_bucket(span.bucket, level), derived_lines(fresh[level]), batch_lines)
    return written


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
