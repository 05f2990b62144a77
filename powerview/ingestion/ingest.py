"""One file -> one outcome; a run -> the outcomes of its files. The only module that knows both
the device files and InfluxDB: layout finds and claims the file, a format reader yields channels
and rows, the line protocol turns them into batches, the writer sends them, layout moves the file.

Every fault met while handling one file becomes that file's outcome (see outcome.Fault): a fault
of its content sends it to error/; a fault of the environment, an outage or a bug leaves it where
it is. Only a configuration error (InfluxDB refusing our credentials, a server that is not an
InfluxDB) stops the run, since every later file would meet it too.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from powerview.core import names, schema
from powerview.core.outcome import Fault, FileOutcome, Status
from powerview.core.settings import ConfigError
from powerview.core.sink import InfluxRejected, InfluxUnavailable, Writer
from powerview.ingestion import layout, lineprotocol
from powerview.ingestion.formats import FileFault, Header, RowRules, RowSummary, open_device_file
from powerview.ingestion.formats.common import Counters
from powerview.ingestion.formats.lines import LINE_RULE, MAX_LINE_CHARS

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunOptions:
    data_root: Path
    rules: RowRules
    batch_lines: int
    dry_run: bool
    meta_bucket: str = schema.DEFAULT_META_BUCKET
    # called with a `success` outcome after its points are written and before the file moves to
    # parsed/: what must survive a kill of the run (derived spans, catalogue messages) is recorded
    # there. It must not raise.
    before_move: Callable[[FileOutcome], None] | None = None


def iso(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch, UTC).isoformat().replace("+00:00", "Z")


def new_outcome(loc: layout.Location) -> FileOutcome:
    return FileOutcome(
        file=str(loc.path),
        bucket=loc.company,
        campaign=loc.campaign,
        device_folder_sn=loc.device,
        counters={name: 0 for name in Counters.COUNTER_NAMES},
    )


def fingerprint(claim: layout.Claim) -> str:
    """The file's sha256, read once before anything is written; a line over the length limit is a
    fault of the file found here, so that nothing of such a file is written.

    Chunks are exactly the limit long, so a line between two newlines of one chunk is always
    shorter: only the line running across chunk boundaries needs counting.
    """
    digest = hashlib.sha256()
    line, since_newline = 1, 0  # line number of the current line, its length so far
    with claim.open("rb") as fh:
        for chunk in iter(lambda: fh.read(MAX_LINE_CHARS), b""):
            digest.update(chunk)
            first = chunk.find(b"\n")
            if first < 0:
                since_newline += len(chunk)
            else:
                if since_newline + first > MAX_LINE_CHARS:
                    raise _long_line(line)
                line += chunk.count(b"\n")
                since_newline = len(chunk) - chunk.rfind(b"\n") - 1
            if since_newline > MAX_LINE_CHARS:
                raise _long_line(line)
    return digest.hexdigest()


def _long_line(line: int) -> FileFault:
    return FileFault(f"line longer than {MAX_LINE_CHARS} bytes", line=line, rule=LINE_RULE)


def _os_reason(exc: OSError) -> str:
    return f"{exc.strerror or exc}" + (f": {exc.filename}" if exc.filename else "")


def ingest_file(loc: layout.Location, claim: layout.Claim, options: RunOptions, writer: Writer) -> FileOutcome:
    """Ingest one claimed file and move it. Returns its outcome.

    Raises ConfigError (InfluxDB refused our credentials, or is not an InfluxDB): the file stays.
    """
    started = time.monotonic()
    out = new_outcome(loc)
    move_to: str | None = None
    try:
        out.file_id = claim.file_id()
        problem = loc.name_problem() or names.reserved_bucket_problem(loc.company, options.meta_bucket)
        if problem:
            raise FileFault(problem, line=None, rule="folder and file names are checked before use")
        out.sha256 = fingerprint(claim)
        _read_and_write(loc, claim, options, writer, out)
        out.status, move_to = Status.SUCCESS, names.PARSED_DIR
    except FileFault as fault:
        out.fail(Fault.FILE, f"{loc.path}: {fault}")
        move_to = names.ERROR_DIR
    except InfluxRejected as exc:
        # InfluxDB will never take these points as they are: the operator fixes the file
        out.fail(Fault.FILE, f"{loc.path}: {exc} (fix the file, then move it back from error/)")
        move_to = names.ERROR_DIR
    except InfluxUnavailable as exc:
        out.fail(Fault.INFLUXDB, f"{loc.path}: {exc} (file left in place)")
    except ConfigError:
        raise
    except OSError as exc:
        out.fail(Fault.ENVIRONMENT, f"{loc.path}: cannot read the file: {_os_reason(exc)} (file left in place)")

    if move_to and not options.dry_run:
        if out.status == Status.SUCCESS and options.before_move is not None:
            _before_move(options.before_move, out)
        _move(claim, move_to, out)
    out.duration_s = round(time.monotonic() - started, 4)
    _log_outcome(out)
    return out


def _before_move(hook: Callable[[FileOutcome], None], out: FileOutcome) -> None:
    try:
        hook(out)
    except Exception:  # noqa: BLE001 - the points are in: the file's outcome does not change
        log.exception("%s: recording its follow-up work failed", out.file)


def _move(claim: layout.Claim, folder: str, out: FileOutcome) -> None:
    try:
        out.destination = str(layout.move_claimed(claim, folder))
    except OSError as exc:
        what = (
            f"its {out.nb_points} points were written, but it"
            if out.status == Status.SUCCESS
            else f"it was rejected ({out.error}), but it"
        )
        out.fail(
            Fault.ENVIRONMENT,
            f"{claim.path}: {what} could not be moved to {folder}/: {_os_reason(exc)} "
            "(file left in place; fix the folder, the next run moves it)",
        )


def _read_and_write(
    loc: layout.Location, claim: layout.Claim, options: RunOptions, writer: Writer, out: FileOutcome
) -> None:
    with claim.open(encoding="utf-8-sig", errors="replace", newline="\n") as stream:
        device = open_device_file(stream, options.rules)
        header = device.header
        out.format, out.device_master_sn = header.format, header.master_sn
        out.nb_channels, out.file_header_meta = len(header.channels), header.meta
        warnings = list(header.warnings)
        if header.master_sn != loc.device:
            warnings.append(
                f"the folder is named {loc.device} but the file's master is "
                f"{header.master_sn}: tags use {header.master_sn}"
            )
        prefixes = []
        for ch in header.channels:
            tags = schema.channel_tags(loc.campaign, header.master_sn, header.master_type, ch)
            problem = lineprotocol.key_problem(schema.MEASUREMENT, tags, ch.field)
            if problem:
                raise FileFault(
                    f"column {ch.column + 1} ({ch.channel_id}): InfluxDB would refuse its points: {problem}",
                    line=header.label_line,
                    rule="names and labels fit in InfluxDB's key limits",
                )
            prefixes.append(lineprotocol.line_prefix(schema.MEASUREMENT, tags, ch.field))
        nb_points = 0
        for body, nb_lines in lineprotocol.batches(prefixes, device.rows, options.batch_lines):
            writer.write(loc.company, body)
            nb_points += nb_lines
        _fill_from_rows(out, header, device.rows.summary(), nb_points, warnings)
        if nb_points == 0:
            raise FileFault(
                "not a single valid point in the file", line=None, rule="a file holds at least one valid, dated value"
            )


def _fill_from_rows(out: FileOutcome, header: Header, summary: RowSummary, nb_points: int, warnings: list[str]) -> None:
    c = summary.counters
    out.nb_rows = c.nb_rows
    out.nb_points = nb_points
    out.counters = {name: getattr(c, name) for name in c.COUNTER_NAMES}
    out.time_min, out.time_max = iso(summary.time_min), iso(summary.time_max)
    out.warnings = warnings + summary.warnings + summary.samples
    if summary.nb_samples_dropped:
        out.warnings.append(f"... and {summary.nb_samples_dropped} more skipped rows or values")
    out.channels = {
        ch.channel_id: {
            "unit": ch.unit,
            "label": ch.label,
            "name": ch.name,
            "device_sn": ch.device_sn,
            "device_type": ch.device_type,
            "field": ch.field,
            # the deployed report's channel keys (docs/utilisation-parseur.md)
            "column_idx": ch.column,
            "device_master_sn": header.master_sn,
            "channel_label": ch.label,
            "channel_name": ch.name,
            "channel_unit": ch.unit,
            **stats.as_dict(),
        }
        for ch, stats in zip(header.channels, summary.stats)
    }


def _log_outcome(out: FileOutcome) -> None:
    if out.status == Status.SUCCESS:
        skipped = {k: v for k, v in out.counters.items() if v}
        folder_warning = next((w for w in out.warnings if w.startswith("the folder is named")), None)
        log.info(
            "%s: %d points %s (%s)%s%s",
            out.file,
            out.nb_points,
            "written" if out.destination else "valid (dry run)",
            ", ".join(f"{k}={v}" for k, v in skipped.items()) or "nothing skipped",
            f", moved to {out.destination}" if out.destination else "",
            f"; warning: {folder_warning}" if folder_warning else "",
        )
        for warning in out.warnings:
            # a unit-less label changes the field's name: worth the operator's eye
            log.log(logging.WARNING if "has no unit" in warning else logging.DEBUG, "%s: %s", out.file, warning)
    elif out.status == Status.ERROR:
        log.error("%s%s", out.error, f"; moved to {out.destination}" if out.destination else "")
    elif out.status == Status.RETRY:
        log.warning("%s", out.error)


def skipped_outcome(loc: layout.Location, reason: str) -> FileOutcome:
    out = new_outcome(loc)
    out.status, out.error = Status.SKIPPED, reason
    log.info("%s: %s", loc.path, reason)
    return out


def _not_attempted(loc: layout.Location, fault: Fault, reason: str) -> FileOutcome:
    out = new_outcome(loc)
    out.fail(fault, f"{loc.path}: not attempted: {reason} (file left in place)")
    return out


def _bug(loc: layout.Location, exc: BaseException) -> FileOutcome:
    log.exception("%s: internal error", loc.path)
    out = new_outcome(loc)
    out.fail(
        Fault.BUG,
        f"{loc.path}: internal error {type(exc).__name__}: {exc} (file left in place; "
        "please report it with the worker or parser log)",
    )
    return out


def run(
    locations: Iterable[layout.Location],
    options: RunOptions,
    writer: Writer,
    progress: Callable[[list], Iterable] = lambda items: items,
) -> tuple[list[FileOutcome], ConfigError | None]:
    """Ingest every file in turn; one file's fault never stops the others.

    Once InfluxDB is found unavailable, the remaining files are left in place as `retry` without
    waiting again; a ConfigError stops the run (the remaining files are left in place too).
    """
    outcomes: list[FileOutcome] = []
    unavailable: str | None = None
    config_error: ConfigError | None = None
    for loc in progress(list(locations)):
        if config_error is not None:
            outcomes.append(_not_attempted(loc, Fault.CONFIGURATION, str(config_error)))
            continue
        if unavailable is not None:
            outcomes.append(_not_attempted(loc, Fault.INFLUXDB, unavailable))
            continue
        try:
            out = _claim_and_ingest(loc, options, writer)
        except ConfigError as exc:
            config_error = exc
            out = new_outcome(loc)
            out.fail(Fault.CONFIGURATION, f"{loc.path}: {exc} (file left in place)")
        except Exception as exc:  # noqa: BLE001 - a bug in one file's handling must not stop the run
            out = _bug(loc, exc)
        outcomes.append(out)
        if out.fault is Fault.INFLUXDB:
            unavailable = "InfluxDB unavailable"
    return outcomes, config_error


def _claim_and_ingest(loc: layout.Location, options: RunOptions, writer: Writer) -> FileOutcome:
    claim = layout.Claim(loc.path)
    try:
        claimed = claim.acquire(lock=not options.dry_run)
    except OSError as exc:
        out = new_outcome(loc)
        out.fail(Fault.ENVIRONMENT, f"{loc.path}: cannot open the file: {_os_reason(exc)} (file left in place)")
        log.error("%s", out.error)
        return out
    if not claimed:
        return skipped_outcome(loc, "taken by another process (or already moved): skipped")
    try:
        return ingest_file(loc, claim, options, writer)
    finally:
        claim.release()


def _tag(value: str | None) -> str:
    """A meta tag value from untrusted text: printable, bounded."""
    text = "".join(ch if ch.isprintable() else "?" for ch in (value or ""))
    return text[:256]


def meta_lines(report: Mapping[str, Any], now: int) -> bytes:
    """The run summary for the meta bucket: one point per file and one for the run."""
    lines = []
    for entry in report["files"]:
        tags = {
            "status": entry["status"],
            "bucket": _tag(entry["bucket"]),
            "campaign": _tag(entry["campaign"]),
            "device_master_sn": _tag(entry["device_master_sn"]),
            "file_name": _tag(Path(entry["file"]).name),
        }
        fields = {
            "nb_rows": entry["nb_rows"],
            "nb_channels": entry["nb_channels"],
            "nb_points": entry["nb_points"],
            **{name: entry[name] for name in Counters.COUNTER_NAMES},
            "duration_s": float(entry["duration_s"]),
        }
        lines.append(lineprotocol.line(schema.FILE_MEASUREMENT, tags, fields, now))
    run_fields = {
        name: report[name]
        for name in ("nb_files_total", "nb_files_success", "nb_files_failed", "nb_files_retry", "nb_points_total")
    }
    run_fields["duration_s"] = float(report["duration_s"])
    run_fields["base_folder"] = _tag(report["base_folder"])
    run_tags = {"dry_run": "false", "status": report["status"]}
    lines.append(lineprotocol.line(schema.RUN_MEASUREMENT, run_tags, run_fields, now))
    return "".join(lines).encode()
