"""SFTPGo events: one event in, zero or one job out, one line in uploads.log.

on-upload.sh records each event (its SFTPGO_ACTION* variables) in <spool>/incoming/ and returns;
the worker calls `process_events`, which checks every recorded event here before anything runs:

    upload, status 1, <company>/<campaign>/<device>/<file>.tsv     -> ingest job
    upload, status 2 or 3 (failed, partial, over quota)             -> ignored
    rename whose target is such a .tsv                               -> ingest job for the target
    upload without a path, or no SFTPGO_ACTION (post-disconnect)     -> scan job
    mkdir <company> or <company>/<campaign>                          -> Grafana provisioning job
    mkdir deeper, other actions, other files, names PARSED_*         -> ignored
    outside the data folder, '..', names against the rules          -> refused
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from powerview.core.envfile import env_file_path
from powerview.core.settings import ConfigError, WorkerSettings, load_worker
from powerview.ingestion import layout
from powerview.operations import uploadlog, workerlock
from powerview.operations.spool import EVENT_SUFFIX, INGEST, PROVISION, SCAN, Job, Spool

QUEUED, IGNORED, REFUSED, ERROR = "queued", "ignored", "refused", "error"
# the deployed hook skipped uploads named PARSED_*: files it had already parsed
PARSED_PREFIX = "PARSED_"
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
    result: str  # queued | ignored | refused
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


def decide(event: dict, settings: WorkerSettings, now: float | None = None, job_id: str | None = None) -> Decision:
    """What to do with one event. Pure but for looking at the file system.

    The job, if any, gets `job_id` (the event's id): an event checked twice (a crash between the
    job and the deletion of the event) gives the same job, not a second one.
    """
    action = event.get("action", "")
    if action == "" or (action == "upload" and not event.get("path")):
        return Decision(QUEUED, "post-disconnect: scan of the data folder", Job.new(SCAN, event, now, job_id))
    if action == "upload":
        status = event.get("status", "")
        if status != "1":
            text = STATUS_TEXT.get(status, "unknown status")
            return Decision(IGNORED, f"upload not complete (status {status or 'missing'}: {text})")
        return _file_decision(event, event["path"], settings, now, job_id)
    if action == "rename":
        target = event.get("target", "")
        if not target:
            return Decision(IGNORED, "rename without a target")
        return _file_decision(event, target, settings, now, job_id)
    if action == "mkdir":
        return _mkdir_decision(event, event.get("path", ""), settings, now, job_id)
    return Decision(IGNORED, f"action {action!r} is not handled")


def _file_decision(event: dict, path: str, settings: WorkerSettings, now: float | None, job_id: str | None) -> Decision:
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
    if parts[-1].startswith(PARSED_PREFIX):
        return Decision(IGNORED, f"name starts with {PARSED_PREFIX}: already parsed (as the deployed hook)")
    try:
        location = layout.locate(settings.data_dir, given)
    except layout.LayoutError as exc:
        return Decision(REFUSED, str(exc))
    problem = location.name_problem()
    if problem:
        return Decision(REFUSED, problem)
    if not location.path.is_file():
        return Decision(IGNORED, "no such file (any more)")
    return Decision(QUEUED, "ingestion", Job.new(INGEST, event, now, job_id, path=str(location.path)))


def _mkdir_decision(
    event: dict, path: str, settings: WorkerSettings, now: float | None, job_id: str | None
) -> Decision:
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
    return Decision(QUEUED, what, Job.new(PROVISION, event, now, job_id, company=company, campaign=campaign))


def handle(environ: Mapping[str, str], settings: WorkerSettings, spool: Spool, event_id: str | None = None) -> Decision:
    """Check one event, queue its job durably, write its line in uploads.log."""
    started = time.monotonic()
    event = read_event(environ)
    decision = decide(event, settings, job_id=event_id)
    if decision.job is not None:
        spool.ensure().add(decision.job)
    uploadlog.write(
        settings.log_dir,
        action=event.get("action") or "post-disconnect",
        user=event.get("user"),
        path=event.get("path"),
        target=event.get("target"),
        status=event.get("status"),
        job=decision.job.id if decision.job else None,
        result=decision.result,
        duration=time.monotonic() - started,
        detail=decision.reason,
    )
    return decision


def process_events(spool: Spool, settings: WorkerSettings) -> int:
    """Check every event recorded by on-upload.sh, oldest first. Returns how many were checked.

    An event is deleted only once its job is stored; an event that cannot be read or checked is
    set aside in failed/ (the file it names stays where it is: a scan picks it up).
    """
    count = 0
    for path in spool.events():
        event_id = path.name[: -len(EVENT_SUFFIX)]
        try:
            environ = spool.read_event(path)
        except FileNotFoundError:
            continue
        try:
            handle(environ, settings, spool, event_id)
        except Exception as exc:  # noqa: BLE001 - one bad event must not block the others
            uploadlog.write(
                settings.log_dir,
                action=environ.get("SFTPGO_ACTION") or "post-disconnect",
                path=environ.get("SFTPGO_ACTION_PATH"),
                job=event_id,
                result=ERROR,
                detail=f"event set aside in failed/: {type(exc).__name__}: {exc}",
            )
            spool.ensure()
            os.replace(path, spool.failed_dir / path.name)
            continue
        spool.event_done(path)
        count += 1
    return count


def main(environ: Mapping[str, str] | None = None) -> int:
    """`python -m powerview.operations.hook`: what on-upload.sh does, from Python (for manual runs).

    Records the event from the environment in the spool and starts the worker. Returns 0.
    """
    environ = os.environ if environ is None else environ
    named = env_file_path(None, environ)  # POWERVIEW_ENV_FILE, else the project's .env
    env_file = named if named.is_file() else None
    try:
        settings = load_worker(env_file)
    except ConfigError as exc:
        sys.stderr.write(f"powerview hook: configuration error: {exc}\n")
        return 0
    spool = Spool(settings.spool_dir).ensure()
    event_id = spool.record_event(dict(environ))
    pid = workerlock.kick(settings.spool_dir, settings.log_dir, env_file)
    sys.stderr.write(f"event {event_id} recorded; " + (f"worker {pid} started\n" if pid else "worker running\n"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
