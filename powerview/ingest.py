"""One file -> one outcome; a run -> a report. The only module that knows both the device files
and InfluxDB: layout finds and claims the file, a format reader yields channels and rows, the
line protocol turns them into batches, the writer sends them, layout moves the file.
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterable

from . import layout, lineprotocol
from .formats import DeviceFile, FileFault, Header, RowRules, RowSummary, open_device_file
from .formats.common import Counters
from .influx import InfluxRejected, InfluxUnavailable
from .settings import ConfigError

log = logging.getLogger(__name__)

SUCCESS, ERROR, RETRY, SKIPPED = "success", "error", "retry", "skipped"
DEVICE_TAG = "MV2"
FILE_MEASUREMENT = "tsv_parser_file"
RUN_MEASUREMENT = "tsv_parser_run"


@dataclass(frozen=True)
class RunOptions:
    data_root: Path
    rules: RowRules
    batch_lines: int
    dry_run: bool


def iso(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch, timezone.utc).isoformat().replace("+00:00", "Z")


def channel_tags(table: Header, campaign: str, channel) -> dict[str, str]:
    """The tag set of a channel's points (exact: existing dashboards depend on it)."""
    tags = {
        "campaign": campaign,
        "channel_id": channel.channel_id,
        "channel_unit": channel.unit,
        "channel_label": channel.label,
        "channel_name": channel.name,
        "device": DEVICE_TAG,
        "device_type": channel.device_type,
        "device_master_sn": table.master_sn,
        "device_sn": channel.device_sn,
    }
    if channel.device_type == "master":
        tags["device_subtype"] = table.master_type
    return tags


def new_entry(loc: layout.Location) -> dict:
    return {
        "file": str(loc.path), "bucket": loc.company, "campaign": loc.campaign,
        "device_folder_sn": loc.device, "device_master_sn": None, "format": None,
        "status": None, "error": None, "warnings": [], "nb_rows": 0, "nb_channels": 0,
        "nb_points": 0, **{name: 0 for name in Counters.COUNTER_NAMES},
        "time_min": None, "time_max": None, "channels": {}, "file_header_meta": None,
        "sha256": None, "destination": None, "duration_s": 0.0,
    }


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def ingest_file(loc: layout.Location, options: RunOptions, writer) -> dict:
    """Ingest one claimed file and move it. Returns its report entry.

    Raises ConfigError (InfluxDB refused our credentials): the file stays where it is.
    """
    started = time.monotonic()
    entry = new_entry(loc)
    move_to = None
    try:
        problem = loc.name_problem()
        if problem:
            raise FileFault(problem, line=None, rule="folder names are checked before use")
        entry["sha256"] = sha256_of(loc.path)
        _read_and_write(loc, options, writer, entry)
        entry["status"], move_to = SUCCESS, layout.PARSED_DIR
    except FileFault as fault:
        entry["status"], entry["error"], move_to = ERROR, f"{loc.path}: {fault}", layout.ERROR_DIR
    except InfluxRejected as exc:
        # not a fault of the file (a schema conflict with older data, say): keep it where it is
        entry["status"], entry["error"] = ERROR, f"{loc.path}: {exc} (file left in place)"
    except InfluxUnavailable as exc:
        entry["status"], entry["error"] = RETRY, f"{loc.path}: {exc} (file left in place)"

    if not options.dry_run and move_to:
        entry["destination"] = str(layout.move_to(loc.path, move_to))
    entry["duration_s"] = round(time.monotonic() - started, 4)
    _log_outcome(entry)
    return entry


def _read_and_write(loc: layout.Location, options: RunOptions, writer, entry: dict) -> None:
    with open(loc.path, encoding="utf-8-sig", errors="replace", newline="\n") as stream:
        device: DeviceFile = open_device_file(stream, options.rules)
        header = device.header
        entry.update(format=header.format, device_master_sn=header.master_sn,
                     nb_channels=len(header.channels), file_header_meta=header.meta)
        warnings = list(header.warnings)
        if header.master_sn != loc.device:
            warnings.append(f"the folder is named {loc.device} but the file's master is "
                            f"{header.master_sn}: tags use {header.master_sn}")
        prefixes = []
        for ch in header.channels:
            tags = channel_tags(header, loc.campaign, ch)
            problem = lineprotocol.key_problem(lineprotocol.MEASUREMENT, tags, ch.field)
            if problem:
                raise FileFault(f"column {ch.column + 1} ({ch.channel_id}): InfluxDB would refuse its points: "
                                f"{problem}", line=header.label_line,
                                rule="names and labels fit in InfluxDB's key limits")
            prefixes.append(lineprotocol.line_prefix(lineprotocol.MEASUREMENT, tags, ch.field))
        nb_points = 0
        for body, nb_lines in lineprotocol.batches(prefixes, device.rows, options.batch_lines):
            writer.write(loc.company, body)
            nb_points += nb_lines
        _fill_from_table(entry, header, device.rows.summary(), nb_points, warnings)
        if nb_points == 0:
            raise FileFault("not a single valid point in the file", line=None,
                            rule="a file holds at least one valid, dated value")


def _fill_from_table(entry: dict, header: Header, summary: RowSummary, nb_points: int,
                     warnings: list[str]) -> None:
    c = summary.counters
    entry["nb_rows"] = c.nb_rows
    entry["nb_points"] = nb_points
    for name in c.COUNTER_NAMES:
        entry[name] = getattr(c, name)
    entry["time_min"], entry["time_max"] = iso(summary.time_min), iso(summary.time_max)
    entry["warnings"] = warnings + summary.warnings + summary.samples
    if summary.nb_samples_dropped:
        entry["warnings"].append(f"... and {summary.nb_samples_dropped} more skipped rows or values")
    entry["channels"] = {
        ch.channel_id: {"unit": ch.unit, "label": ch.label, "name": ch.name, "device_sn": ch.device_sn,
                        "device_type": ch.device_type, "field": ch.field, **stats.as_dict()}
        for ch, stats in zip(header.channels, summary.stats)
    }


def _log_outcome(entry: dict) -> None:
    if entry["status"] == SUCCESS:
        skipped = {k: entry[k] for k in Counters.COUNTER_NAMES if entry[k]}
        log.info("%s: %d points %s (%s)%s", entry["file"], entry["nb_points"],
                 "written" if entry["destination"] else "valid (dry run)",
                 ", ".join(f"{k}={v}" for k, v in skipped.items()) or "nothing skipped",
                 f", moved to {entry['destination']}" if entry["destination"] else "")
        for warning in entry["warnings"]:
            log.debug("%s: %s", entry["file"], warning)
    elif entry["status"] == ERROR:
        log.error("%s%s", entry["error"], f"; moved to {entry['destination']}" if entry["destination"] else "")
    elif entry["status"] == RETRY:
        log.warning("%s", entry["error"])


def skipped_entry(loc: layout.Location, reason: str) -> dict:
    entry = new_entry(loc)
    entry["status"], entry["error"] = SKIPPED, reason
    log.info("%s: %s", loc.path, reason)
    return entry


def run(locations: Iterable[layout.Location], options: RunOptions, writer,
        progress: Callable[[Iterable], Iterable] = lambda items: items) -> tuple[list[dict], ConfigError | None]:
    """Ingest every file in turn. Once InfluxDB is found unavailable, the remaining files are left
    in place as `retry` without waiting again; a ConfigError stops the run."""
    entries: list[dict] = []
    unavailable: str | None = None
    config_error: ConfigError | None = None
    for loc in progress(list(locations)):
        if unavailable or config_error:
            entry = new_entry(loc)
            entry["status"] = RETRY
            entry["error"] = f"{loc.path}: not attempted: {unavailable or config_error} (file left in place)"
            entries.append(entry)
            continue
        claim = layout.Claim(loc.path)
        if not options.dry_run and not claim.acquire():
            entries.append(skipped_entry(loc, "taken by another process (or already moved): skipped"))
            continue
        try:
            entries.append(ingest_file(loc, options, writer))
        except ConfigError as exc:
            config_error = exc
            entry = new_entry(loc)
            entry["status"], entry["error"] = RETRY, f"{loc.path}: {exc} (file left in place)"
            entries.append(entry)
        finally:
            claim.release()
        if entries[-1]["status"] == RETRY and config_error is None:
            unavailable = "InfluxDB unavailable"
    return entries, config_error


def meta_lines(report: dict, now: int) -> bytes:
    """The run summary for the meta bucket: one point per file and one for the run."""
    lines = []
    for entry in report["files"]:
        tags = {"status": entry["status"], "bucket": entry["bucket"], "campaign": entry["campaign"],
                "device_master_sn": entry["device_master_sn"] or "", "file_name": Path(entry["file"]).name}
        fields = {"nb_rows": entry["nb_rows"], "nb_points": entry["nb_points"],
                  **{name: entry[name] for name in Counters.COUNTER_NAMES},
                  "duration_s": float(entry["duration_s"])}
        lines.append(lineprotocol.line(FILE_MEASUREMENT, tags, fields, now))
    run_fields = {name: report[name] for name in ("nb_files_total", "nb_files_success", "nb_files_failed",
                                                  "nb_files_retry", "nb_points_total")}
    run_fields["duration_s"] = float(report["duration_s"])
    lines.append(lineprotocol.line(RUN_MEASUREMENT, {"dry_run": "false"}, run_fields, now))
    return "".join(lines).encode()
