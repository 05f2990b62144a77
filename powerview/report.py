"""The run report: its shape, its summary counts, and its atomic writing as JSON."""

from __future__ import annotations

import json
import os
import tempfile
from datetime import datetime, timezone
from pathlib import Path

from .ingest import ERROR, RETRY, SKIPPED, SUCCESS


def build(started: datetime, finished: datetime, dry_run: bool, data_folder: Path, files: list[dict]) -> dict:
    def count(status: str) -> int:
        return sum(1 for f in files if f["status"] == status)

    return {
        "started_at": started.isoformat().replace("+00:00", "Z"),
        "finished_at": finished.isoformat().replace("+00:00", "Z"),
        "duration_s": round((finished - started).total_seconds(), 3),
        "dry_run": dry_run,
        "data_folder": str(data_folder),
        "nb_files_total": len(files),
        "nb_files_success": count(SUCCESS),
        "nb_files_failed": count(ERROR),
        "nb_files_retry": count(RETRY),
        "nb_files_skipped": count(SKIPPED),
        "nb_points_total": sum(f["nb_points"] for f in files if f["status"] == SUCCESS),
        "files": files,
    }


def exit_code(report: dict, config_error: bool) -> int:
    """2 configuration, 75 InfluxDB unavailable (retry later), 1 a file rejected, 0 all ingested."""
    if config_error:
        return 2
    if report["nb_files_retry"]:
        return 75
    if report["nb_files_failed"]:
        return 1
    return 0


def to_json(report: dict) -> str:
    return json.dumps(report, indent=2, ensure_ascii=False, allow_nan=False)


def write(report_dir: Path, report: dict, started: datetime) -> Path:
    """Write the report as `tsv_parser_<UTC start>.json` (temporary file + rename); never
    overwrites an earlier report of the same second (a suffix is added)."""
    report_dir.mkdir(parents=True, exist_ok=True)
    stamp = started.astimezone(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    fd, tmp = tempfile.mkstemp(prefix=".tsv_parser_", suffix=".json.tmp", dir=report_dir)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(to_json(report))
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        for n in range(1000):
            target = report_dir / (f"tsv_parser_{stamp}.json" if n == 0 else f"tsv_parser_{stamp}_{n}.json")
            try:
                os.link(tmp, target)  # fails if the name is taken: no report is overwritten
            except FileExistsError:
                continue
            return target
        raise OSError(f"no free report name in {report_dir}")
    finally:
        os.unlink(tmp)


def utcnow() -> datetime:
    return datetime.now(timezone.utc)
