"""Derived buckets `<company>_1h`, `<company>_1d`, `<company>_1w`, kept exact by ingestion.

For one device of one campaign and a time span, every window of a level that the span touches is
recomputed over ALL the raw data of that device in that campaign (not only one file's), with one
InfluxQL query per level and chunk through `/query` (the language InfluxDB 1.x, 2.x and 3.x share):

    SELECT mean("F") AS "mean_F", min("F") AS "min_F", max("F") AS "max_F", ...
    FROM "electrical" WHERE "campaign" = '...' AND "device_master_sn" = '...'
      AND time >= '<first window start>' AND time < '<last window end>'
    GROUP BY time(<level>), * fill(none)

and written to `<company>_<level>`: measurement `electrical` holds the mean (the deployed schema),
`electrical_min` and `electrical_max` the extremes, with the raw series' tags and field names.
Each value is stamped at its window's END (as Flux aggregateWindow does); windows are aligned on
the epoch like InfluxQL's and Flux's (days at 00:00 UTC, weeks on Thursday 00:00 UTC). The field
list is the file's own: a window of a field depends only on that field's points, so fields the
file does not hold are unaffected by it. `GROUP BY *` splits by tag set, so a master series (with
`device_subtype`) and a slave series never mix; `fill(none)` leaves empty windows out, and in a
series a field that has no point in a window (null) is not written.

Durability: before anything is recomputed, each file's span is written as one JSON record under
`<POWERVIEW_SPOOL_DIR>/outbox/derived/` (temporary file, fsync, rename: a kill -9 leaves the whole
record or none). A record is deleted once every level is rewritten; any failure leaves it for the
next run, so a raw ingestion never fails because of this step.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterable, Iterator

from . import lineprotocol
from .influx import InfluxRejected, InfluxUnavailable
from .influxql import QueryClient, quote_ident, quote_string
from .layout import name_problem
from .settings import DOWNSAMPLE_LEVELS, ConfigError, Settings

log = logging.getLogger(__name__)

RAW_MEASUREMENT = lineprotocol.MEASUREMENT
MEASUREMENTS = (("mean", "electrical"), ("min", "electrical_min"), ("max", "electrical_max"))
# windows a query covers at most (memory stays flat on years of data)
CHUNK_WINDOWS = {"1h": 24 * 31, "1d": 366, "1w": 260}
OUTBOX = Path("outbox") / "derived"
UPDATED, QUEUED, OFF, FAILED = "updated", "queued", "off", "failed"


def derived_bucket(bucket: str, level: str) -> str:
    return f"{bucket}_{level}"


def window_bounds(start: int, end: int, seconds: int) -> tuple[int, int]:
    """(start of the window holding `start`, end of the window holding `end`); epoch-aligned."""
    return start - start % seconds, end - end % seconds + seconds


def iso_z(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(text: str) -> int:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
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

    def check(self) -> None:
        """Raise ValueError when a name breaks the project's rules (they go into queries)."""
        for kind, name in (("company", self.bucket), ("device", self.device_master_sn)) + \
                (() if self.campaign is None else (("campaign", self.campaign),)):
            problem = name_problem(kind, name)
            if problem:
                raise ValueError(problem)
        if not self.fields or self.start > self.end:
            raise ValueError("a span needs fields and start <= end")
        for field in self.fields:
            quote_ident(field)


def recompute_query(span: Span, level: str, first: int, last: int) -> str:
    """The InfluxQL statement that recomputes the windows of `level` in [first, last)."""
    seconds = DOWNSAMPLE_LEVELS[level]
    if first % seconds or last % seconds or first >= last:
        raise ValueError("window bounds must be aligned and ordered")
    select = ", ".join(f"{agg}({quote_ident(f)}) AS {quote_ident(agg + '_' + f)}"
                       for f in span.fields for agg, _ in MEASUREMENTS)
    where = [f"{quote_ident('device_master_sn')} = {quote_string(span.device_master_sn)}"]
    if span.campaign is not None:
        where.insert(0, f"{quote_ident('campaign')} = {quote_string(span.campaign)}")
    return (f"SELECT {select} FROM {quote_ident(RAW_MEASUREMENT)} WHERE {' AND '.join(where)} "
            f"AND time >= '{iso_z(first)}' AND time < '{iso_z(last)}' GROUP BY time({level}), * fill(none)")


def chunks(span: Span, level: str) -> Iterator[tuple[int, int]]:
    """Aligned [first, last) ranges covering every window the span touches, CHUNK_WINDOWS at most."""
    seconds = DOWNSAMPLE_LEVELS[level]
    first, last = window_bounds(span.start, span.end, seconds)
    step = seconds * CHUNK_WINDOWS[level]
    while first < last:
        yield first, min(first + step, last)
        first += step


def derived_lines(series: Iterable[dict], seconds: int) -> Iterator[str]:
    """Query answer -> line protocol: per window of a series, one line per measurement (mean,
    min, max) holding the fields that have a value, stamped at the window's end."""
    for one in series:
        tags = {k: v for k, v in (one.get("tags") or {}).items() if v not in ("", None)}
        columns = one["columns"]
        by_field: dict[str, dict[str, int]] = {}
        for index, column in enumerate(columns):
            agg, sep, field = column.partition("_")
            if column != "time" and sep and agg in ("mean", "min", "max"):
                by_field.setdefault(field, {})[agg] = index
        prefixes = {agg: lineprotocol.escape_measurement(m) + lineprotocol.tag_set(tags) + " "
                    for agg, m in MEASUREMENTS}
        for row in one.get("values") or []:
            stamp = f" {int(row[0]) + seconds}\n"
            fields: dict[str, list[str]] = {agg: [] for agg, _ in MEASUREMENTS}
            for field, where in by_field.items():
                if row[where["mean"]] is None:
                    continue
                key = lineprotocol.escape_key(field)
                for agg, _ in MEASUREMENTS:
                    fields[agg].append(f"{key}={float(row[where[agg]])!r}")
            if fields["mean"]:
                for agg, _ in MEASUREMENTS:
                    yield prefixes[agg] + ",".join(fields[agg]) + stamp


def recompute(span: Span, levels: Iterable[str], client: QueryClient, writer, batch_lines: int = 5000,
              on_chunk: Callable[[], None] = lambda: None) -> int:
    """Recompute and write every window of `levels` the span touches. Returns the lines written.
    Raises InfluxUnavailable / InfluxRejected / ConfigError (nothing is half-trusted: a retry
    redoes whole windows)."""
    span.check()
    written = 0
    for level in levels:
        seconds = DOWNSAMPLE_LEVELS[level]
        target = derived_bucket(span.bucket, level)
        for first, last in chunks(span, level):
            buffer: list[str] = []
            for line in derived_lines(client.series(span.bucket, recompute_query(span, level, first, last)), seconds):
                buffer.append(line)
                if len(buffer) >= batch_lines:
                    writer.write(target, "".join(buffer).encode())
                    written += len(buffer)
                    buffer.clear()
            if buffer:
                writer.write(target, "".join(buffer).encode())
                written += len(buffer)
            on_chunk()
    return written


# ---------------------------------------------------------------- the durable outbox

class Outbox:
    """Spans waiting to be recomputed, one JSON file each (atomic rename), named by content."""

    def __init__(self, spool_dir: Path):
        self.dir = Path(spool_dir) / OUTBOX

    def add(self, span: Span) -> Path:
        """Write the record durably (fsync, rename, fsync of the folder). Raises OSError."""
        self.dir.mkdir(parents=True, exist_ok=True)
        text = json.dumps({"version": 1, **asdict(span)}, sort_keys=True)
        path = self.dir / (hashlib.sha256(text.encode()).hexdigest()[:32] + ".json")
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=self.dir)
        try:
            with os.fdopen(fd, "w") as fh:
                fh.write(text)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        dir_fd = os.open(self.dir, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
        return path

    def pending(self) -> list[Path]:
        try:
            return sorted((p for p in self.dir.glob("*.json")), key=lambda p: (p.stat().st_mtime, p.name))
        except OSError:
            return []

    @staticmethod
    def load(path: Path) -> Span:
        data = json.loads(path.read_text())
        span = Span(bucket=data["bucket"], campaign=data["campaign"], device_master_sn=data["device_master_sn"],
                    start=int(data["start"]), end=int(data["end"]), fields=tuple(data["fields"]))
        span.check()
        return span


def span_of(entry: dict) -> Span | None:
    """The span of a successful report entry (None when it has no point)."""
    if entry.get("status") != "success" or not entry.get("time_min") or not entry.get("time_max"):
        return None
    fields = tuple(sorted({ch["field"] for ch in (entry.get("channels") or {}).values() if ch.get("field")}))
    if not fields:
        return None
    return Span(bucket=entry["bucket"], campaign=entry["campaign"], device_master_sn=entry["device_master_sn"],
                start=parse_iso(entry["time_min"]), end=parse_iso(entry["time_max"]), fields=fields)


def process_pending(outbox: Outbox, levels: tuple[str, ...], client: QueryClient, writer,
                    batch_lines: int = 5000) -> set[Path]:
    """Recompute every pending record; returns the ones done (deleted). Stops at the first
    outage (the rest waits for the next run)."""
    done: set[Path] = set()
    for path in outbox.pending():
        try:
            span = outbox.load(path)
        except FileNotFoundError:
            continue  # another run did it meanwhile
        except (ValueError, KeyError, TypeError, OSError) as exc:
            bad = path.with_suffix(".bad")
            log.error("derived outbox: unreadable record %s (%s): moved to %s", path, exc, bad.name)
            try:
                os.replace(path, bad)
            except OSError:
                pass
            continue
        try:
            nb = recompute(span, levels, client, writer, batch_lines)
        except InfluxRejected as exc:
            log.error("derived buckets of %s/%s/%s: %s (kept in %s)", span.bucket, span.campaign,
                      span.device_master_sn, exc, path)
            continue
        except (InfluxUnavailable, ConfigError) as exc:
            log.warning("derived buckets not updated now (%s): %d record(s) kept in %s for the next run",
                        exc, len(outbox.pending()), outbox.dir)
            break
        path.unlink(missing_ok=True)
        done.add(path)
        log.info("derived buckets of %s/%s/%s updated (%s, %d lines)", span.bucket, span.campaign,
                 span.device_master_sn, ",".join(levels), nb)
    return done


def after_ingest(settings: Settings, writer, entries: list[dict], client: QueryClient | None = None) -> None:
    """Record the span of every `success` entry durably, then process every pending record.
    Sets `entry["derived"]` to "updated", "queued" (kept for the next run), "failed" (could not
    even be recorded: run `powerview-downsample`) or "off" (TSV_DOWNSAMPLE_LEVELS empty).
    Never raises for InfluxDB or the disk: the raw ingestion's outcome is not changed."""
    successes = [e for e in entries if e.get("status") == "success"]
    if not settings.downsample_levels:
        for entry in successes:
            entry["derived"] = OFF
        return
    outbox = Outbox(settings.spool_dir)
    records: dict[int, Path] = {}
    unrecorded: dict[int, Span] = {}
    for index, entry in enumerate(successes):
        span = span_of(entry)
        if span is None:
            entry["derived"] = UPDATED  # no point: nothing to recompute
            continue
        try:
            records[index] = outbox.add(span)
        except (OSError, ValueError) as exc:
            log.error("derived outbox %s: cannot record the windows of %s (%s): trying now", outbox.dir,
                      entry.get("file"), exc)
            unrecorded[index] = span
    own_client = client is None
    try:
        client = client or _client(settings)
        done = process_pending(outbox, settings.downsample_levels, client, writer, settings.influx_batch_lines)
        for index, span in list(unrecorded.items()):
            try:
                recompute(span, settings.downsample_levels, client, writer, settings.influx_batch_lines)
                del unrecorded[index]
            except (InfluxUnavailable, InfluxRejected, ConfigError) as exc:
                log.error("derived buckets of %s not updated and not recorded (%s): run powerview-downsample "
                          "--bucket %s --start %s --end %s", successes[index].get("file"), exc, span.bucket,
                          iso_z(span.start), iso_z(span.end + 1))
    except Exception as exc:  # noqa: BLE001 - this step never changes the raw ingestion's outcome
        log.error("derived buckets: %s: %s (records kept in %s)", type(exc).__name__, exc, outbox.dir)
        done = set()
    finally:
        if own_client and client is not None:
            client.close()
    for index, entry in enumerate(successes):
        if index in records:
            entry["derived"] = UPDATED if records[index] in done or not records[index].exists() else QUEUED
        elif index in unrecorded:
            entry["derived"] = FAILED
        elif "derived" not in entry:
            entry["derived"] = UPDATED


def _client(settings: Settings) -> QueryClient:
    from .influx_targets import open_query_client
    return open_query_client(settings)
