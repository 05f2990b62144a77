"""The SFTPGo hook (called by on-upload.sh): one event in, zero or one job out, one log line.

SFTPGo describes the event in `SFTPGO_ACTION*` variables. This module only decides and queues:
it never runs the parser or Ansible itself, so it returns in a moment. Then it starts the worker
unless one is running (a running worker picks the new job up).

    upload, status 1, <company>/<campaign>/<device>/<file>.tsv     -> ingest job
    upload, status 2 or 3 (failed, partial, over quota)             -> ignored
    rename whose target is such a .tsv                               -> ingest job for the target
    upload without a path, or no SFTPGO_ACTION (post-disconnect)     -> scan job
    mkdir <company> or <company>/<campaign>                          -> Grafana provisioning job
    mkdir deeper, other actions, other files                         -> ignored
    outside the data folder, '..', names against the rules          -> refused
"""

from __future__ import annotations

import os
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from . import layout, uploadlog, workerlock
from .settings import DEFAULT_ENV_FILE, ConfigError, Settings, load
from .spool import INGEST, PROVISION, SCAN, Job, Spool

QUEUED, IGNORED, REFUSED, ERROR = "queued", "ignored", "refused", "error"
STATUS_TEXT = {"1": "no error", "2": "generic error", "3": "quota exceeded"}

EVENT_VARS = {
    "action": "SFTPGO_ACTION",
    "user": "SFTPGO_ACTION_USERNAME",
    "path": "SFTPGO_ACTION_PATH",
    "target": "SFTPGO_ACTION_TARGET",
    "status": "SFTPGO_ACTION_STATUS",
    "size": "SFTPGO_ACTION_FILE_SIZE",
    "virtual_path": "SFTPGO_ACTION_VIRTUAL_PATH",
    "protocol": "SFTPGO_ACTION_PROTOCOL",
    "ip": "SFTPGO_ACTION_IP",
    "timestamp": "SFTPGO_ACTION_TIMESTAMP",
}


@dataclass(frozen=True)
class Decision:
    result: str               # queued | ignored | refused
    reason: str
    job: Job | None = None


def read_event(environ: Mapping[str, str]) -> dict:
    """The SFTPGo event as a dict of the non-empty variables (see EVENT_VARS)."""
    event = {key: environ.get(var, "") for key, var in EVENT_VARS.items()}
    if not event["action"]:
        # SFTPGo's post-disconnect hook sets SFTPGO_CONNECTION_* and no SFTPGO_ACTION
        event["user"] = event["user"] or environ.get("SFTPGO_CONNECTION_USERNAME", "")
        event["protocol"] = event["protocol"] or environ.get("SFTPGO_CONNECTION_PROTOCOL", "")
        event["ip"] = event["ip"] or environ.get("SFTPGO_CONNECTION_IP", "")
    return {k: v for k, v in event.items() if v}


def decide(event: dict, settings: Settings, now: float | None = None) -> Decision:
    """What to do with one event. Pure but for looking at the file system."""
    action = event.get("action", "")
    if action == "" or (action == "upload" and not event.get("path")):
        return Decision(QUEUED, "post-disconnect: scan of the data folder",
                        Job.new(SCAN, event, now))
    if action == "upload":
        status = event.get("status", "")
        if status != "1":
            text = STATUS_TEXT.get(status, "unknown status")
            return Decision(IGNORED, f"upload not complete (status {status or 'missing'}: {text})")
        return _file_decision(event, event["path"], settings, now)
    if action == "rename":
        target = event.get("target", "")
        if not target:
            return Decision(IGNORED, "rename without a target")
        return _file_decision(event, target, settings, now)
    if action == "mkdir":
        return _mkdir_decision(event, event.get("path", ""), settings, now)
    return Decision(IGNORED, f"action {action!r} is not handled")


def _file_decision(event: dict, path: str, settings: Settings, now: float | None) -> Decision:
    given = Path(path)
    if not given.name.endswith(layout.TSV_SUFFIX):
        return Decision(IGNORED, "not a .tsv file")
    if given.parent.name in layout.PROCESSED_DIRS:
        return Decision(IGNORED, f"in a {given.parent.name}/ folder: already processed")
    try:
        parts = layout.relative_parts(settings.data_dir, given)
    except layout.LayoutError as exc:
        return Decision(REFUSED, str(exc))
    if len(parts) != 4:
        return Decision(IGNORED, "not at <company>/<campaign>/<device>/<file> depth")
    if parts[-1].startswith("."):
        return Decision(IGNORED, "hidden file")
    try:
        location = layout.locate(settings.data_dir, given)
    except layout.LayoutError as exc:
        return Decision(REFUSED, str(exc))
    problem = location.name_problem()
    if problem:
        return Decision(REFUSED, problem)
    if not location.path.is_file():
        return Decision(IGNORED, "no such file (any more)")
    return Decision(QUEUED, "ingestion", Job.new(INGEST, event, now, path=str(location.path)))


def _mkdir_decision(event: dict, path: str, settings: Settings, now: float | None) -> Decision:
    if not path:
        return Decision(IGNORED, "mkdir without a path")
    try:
        parts = layout.relative_parts(settings.data_dir, path)
    except layout.LayoutError as exc:
        return Decision(REFUSED, str(exc))
    if not parts or len(parts) > 2:
        return Decision(IGNORED, "not a company or campaign folder: nothing to provision")
    kinds = ("company", "campaign")
    for kind, name in zip(kinds, parts):
        problem = layout.name_problem(kind, name)
        if problem:
            return Decision(REFUSED, problem)
    company, campaign = parts[0], (parts[1] if len(parts) == 2 else None)
    what = f"Grafana provisioning of {company}" + (f"/{campaign}" if campaign else " (company)")
    return Decision(QUEUED, what, Job.new(PROVISION, event, now, company=company, campaign=campaign))


def handle(environ: Mapping[str, str], settings: Settings, env_file: Path | None) -> Decision:
    """Decide, queue the job durably, log the event, start the worker if needed."""
    started = time.monotonic()
    event = read_event(environ)
    decision = decide(event, settings)
    spool = Spool(settings.spool_dir)
    if decision.job is not None:
        spool.ensure().add(decision.job)
    uploadlog.write(settings.log_dir, action=event.get("action") or "post-disconnect",
                    user=event.get("user"), path=event.get("path"), target=event.get("target"),
                    status=event.get("status"),
                    job=decision.job.id if decision.job else None, result=decision.result,
                    duration=time.monotonic() - started, detail=decision.reason)
    if decision.job is not None or spool.due():
        workerlock.kick(settings.spool_dir, settings.log_dir, env_file)
    return decision


def main(environ: Mapping[str, str] | None = None) -> int:
    """Entry point of on-upload.sh. Always returns 0: SFTPGo must never fail because of us."""
    environ = os.environ if environ is None else environ
    env_file = DEFAULT_ENV_FILE if DEFAULT_ENV_FILE.is_file() else None
    try:
        settings = load(env_file)
    except ConfigError as exc:
        sys.stderr.write(f"powerview hook: configuration error: {exc}\n")
        uploadlog.write(Path(environ.get("POWERVIEW_LOG_DIR") or "/srv/sftpgo/logs"),
                        action=environ.get("SFTPGO_ACTION") or "post-disconnect",
                        path=environ.get("SFTPGO_ACTION_PATH"), result=ERROR, detail=f"configuration: {exc}")
        return 0
    try:
        handle(environ, settings, env_file)
    except Exception as exc:  # noqa: BLE001 - the hook must end well whatever happens
        sys.stderr.write(traceback.format_exc())
        uploadlog.write(settings.log_dir, action=environ.get("SFTPGO_ACTION") or "post-disconnect",
                        path=environ.get("SFTPGO_ACTION_PATH"), result=ERROR,
                        detail=f"{type(exc).__name__}: {exc}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
