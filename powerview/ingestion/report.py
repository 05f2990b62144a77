"""The run report (outcome.RunReport): its summary counts, and its atomic writing as JSON."""

from __future__ import annotations

import json
import math
import os
from datetime import UTC, datetime
from pathlib import Path

from powerview.core.exitcodes import ExitCode, worst
from powerview.core.fsutil import write_durably, write_temporary
from powerview.core.outcome import FileOutcome, RunReport, Status


def build(
    started: datetime, finished: datetime, dry_run: bool, data_folder: Path, outcomes: list[FileOutcome]
) -> RunReport:
    def count(status: Status) -> int:
        return sum(1 for o in outcomes if o.status == status)

    problems = count(Status.ERROR) + count(Status.RETRY)
    return {
        # the deployed report's run keys (docs/utilisation-parseur.md): run_id = start_time = started_at
        # in the deployed format, end_time = finished_at, base_folder = data_folder, status
        "run_id": started.astimezone(UTC).isoformat(),
        "start_time": started.astimezone(UTC).isoformat(),
        "end_time": finished.astimezone(UTC).isoformat(),
        "base_folder": str(data_folder),
        "status": "success" if problems == 0 else "partial_failure",
        "started_at": started.isoformat().replace("+00:00", "Z"),
        "finished_at": finished.isoformat().replace("+00:00", "Z"),
        "duration_s": round((finished - started).total_seconds(), 3),
        "dry_run": dry_run,
        "data_folder": str(data_folder),
        "nb_files_total": len(outcomes),
        "nb_files_success": count(Status.SUCCESS),
        "nb_files_failed": count(Status.ERROR),
        "nb_files_retry": count(Status.RETRY),
        "nb_files_skipped": count(Status.SKIPPED),
        "nb_points_total": sum(o.nb_points for o in outcomes if o.status == Status.SUCCESS),
        "exit_code": int(exit_code(outcomes)),
        "files": [o.to_json() for o in outcomes],
    }


def exit_code(outcomes: list[FileOutcome], *more: ExitCode) -> ExitCode:
    """The run's exit code: the most urgent among its files' (and `more`); see exitcodes."""
    return worst([o.exit_code for o in outcomes] + list(more))


def to_json(report: RunReport) -> str:
    """Strict JSON (no NaN or Infinity); a non-finite number that slipped in becomes null."""
    try:
        return json.dumps(report, indent=2, ensure_ascii=False, allow_nan=False)
    except ValueError:
        return json.dumps(_finite(report), indent=2, ensure_ascii=False, allow_nan=False)


def _finite(value):
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def _data(report: RunReport) -> bytes:
    return (to_json(report) + "\n").encode("utf-8")


def write_file(path: Path, report: RunReport) -> Path:
    """Write the report at exactly `path` (the caller's choice, replaced atomically)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_durably(path, _data(report), prefix=".tsv_parser_")
    return path


def write(report_dir: Path, report: RunReport, started: datetime) -> Path:
    """Write the report as `tsv_parser_<UTC start>.json` (temporary file + rename); never
    overwrites an earlier report of the same second (a suffix is added)."""
    report_dir.mkdir(parents=True, exist_ok=True)
    stamp = started.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    tmp = write_temporary(report_dir, _data(report), prefix=".tsv_parser_")
    try:
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
    return datetime.now(UTC)
