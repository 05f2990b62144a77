"""The hook's durable job queue: one small JSON file per job.

    <spool>/incoming/<id>.event  SFTPGo events recorded by on-upload.sh, not yet checked
                               (NUL-separated NAME=value lines); the worker turns each into
                               zero or one job (hook.py) and deletes it
    <spool>/jobs/<id>.json     pending jobs; a job is due once `next_try` has passed
    <spool>/failed/<id>.json   jobs given up after too many failures (see, retry or purge them)
    <spool>/tmp/               files being written, renamed into place once complete and synced
    <spool>/worker.lock        the flock held by the one running worker (workerlock.py)

Every write is a new file in tmp/, fsync'ed, then renamed over its final name and the folder
fsync'ed: a reader sees the old job or the new one, never half of one, and a job acknowledged
to SFTPGo survives a crash or a power cut. Job ids sort in creation order.
"""

from __future__ import annotations

import copy
import json
import os
import time
from dataclasses import asdict, dataclass, field, fields
from enum import StrEnum
from pathlib import Path

from powerview.core.fsutil import fsync_dir, write_durably

FORMAT_VERSION = 1
INGEST, SCAN, PROVISION = "ingest", "scan", "provision"
KINDS = (INGEST, SCAN, PROVISION)
WAITING_INFLUXDB = "influxdb"
JOBS_DIR, FAILED_DIR, TMP_DIR, INCOMING_DIR = "jobs", "failed", "tmp", "incoming"
SUFFIX = ".json"
EVENT_SUFFIX = ".event"
EVENT_PREFIXES = ("SFTPGO_ACTION", "SFTPGO_CONNECTION_")


class JobResult(StrEnum):
    """How a job (or one file of a scan) ended, as uploads.log and `worker list` show it."""

    PARSED = "parsed"  # ingested, file in parsed/
    REJECTED = "rejected"  # a fault of the file: in error/
    GONE = "gone"  # no longer at its path before the parser ran
    REPLACED = "replaced"  # a newer upload took the name before it was read
    REFUSED = "refused"  # the path or a name breaks the rules: nothing run
    LEFT = "left"  # a scan's file left in place (see the reason)
    SKIPPED = "skipped"  # held by another process: retried
    ENVIRONMENT = "environment"  # permissions, disk...: retried, then set aside
    CONFIGURATION = "configuration"  # settings or credentials: retried, then set aside
    BUG = "bug"  # internal error: retried, then set aside
    ERROR = "error"  # the command failed without saying why
    INFLUXDB_UNAVAILABLE = "influxdb-unavailable"  # kept for as long as it takes
    RETRY = "retry"
    FAILED = "failed"  # given up after POWERVIEW_MAX_ATTEMPTS
    SCANNED = "scanned"
    MERGED = "merged"
    PROVISIONED = "provisioned"


class SpoolError(Exception):
    """A job file cannot be read (not JSON, unknown kind or version)."""


def new_id(now: float | None = None) -> str:
    """`20260131T235959.123456Z-1a2b3c4d`: sorts by creation time, unique across processes."""
    now = time.time() if now is None else now
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(now))
    micros = int(round((now % 1) * 1_000_000)) % 1_000_000
    return f"{stamp}.{micros:06d}Z-{os.urandom(4).hex()}"


def backoff(attempts: int, base: float, maximum: float) -> float:
    """Seconds to wait after the `attempts`-th failure: base, 2 x base, 4 x base ... up to maximum."""
    if attempts <= 0:
        return 0.0
    return float(min(maximum, base * 2 ** min(attempts - 1, 32)))


@dataclass
class Job:
    id: str
    kind: str  # ingest | scan | provision
    created: float  # epoch seconds
    next_try: float  # epoch seconds; due when <= now
    path: str | None = None  # ingest: the file, absolute, inside the data folder
    company: str | None = None  # provision
    campaign: str | None = None  # provision (None: the company alone)
    round: int = 0  # scan: follow-up number (files still changing)
    attempts: int = 0  # failed runs so far
    waiting: str | None = None  # "influxdb" when the last run found InfluxDB unavailable
    last_result: str | None = None
    last_error: str | None = None
    event: dict = field(default_factory=dict)  # what SFTPGo said: action, user, path... (for the logs)
    version: int = FORMAT_VERSION

    @classmethod
    def new(
        cls, kind: str, event: dict | None = None, now: float | None = None, job_id: str | None = None, **payload
    ) -> Job:
        if kind not in KINDS:
            raise ValueError(f"unknown job kind {kind!r}")
        now = time.time() if now is None else now
        return cls(id=job_id or new_id(now), kind=kind, created=now, next_try=now, event=dict(event or {}), **payload)

    def target(self) -> str:
        """What the job is about, for listings and logs."""
        if self.kind == INGEST:
            return self.path or ""
        if self.kind == PROVISION:
            return f"{self.company}/{self.campaign}" if self.campaign else f"{self.company}"
        return f"data folder (round {self.round})" if self.round else "data folder"

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False, indent=1, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> Job:
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise SpoolError(f"not JSON: {exc}") from None
        if not isinstance(data, dict):
            raise SpoolError("not a JSON object")
        if data.get("version") != FORMAT_VERSION:
            raise SpoolError(f"unknown job format version {data.get('version')!r}")
        if data.get("kind") not in KINDS:
            raise SpoolError(f"unknown job kind {data.get('kind')!r}")
        known = {f.name for f in fields(cls)}
        try:
            return cls(**{k: v for k, v in data.items() if k in known})
        except TypeError as exc:
            raise SpoolError(f"missing field: {exc}") from None


class Spool:
    """The spool folder. Safe for many writers (hooks) and one worker at a time."""

    def __init__(self, root: Path | str, horizon_s: float | None = None):
        self.root = Path(root)
        # no job waits longer than this: a `next_try` further ahead was computed by a clock that
        # was wrong (set a year ahead during an outage, then fixed) and counts as due now
        self.horizon_s = horizon_s
        self.jobs_dir = self.root / JOBS_DIR
        self.failed_dir = self.root / FAILED_DIR
        self.tmp_dir = self.root / TMP_DIR
        self.incoming_dir = self.root / INCOMING_DIR
        # (folder, name) -> ((inode, mtime, size), job): a long-running worker re-reads only the
        # files that changed (every write is a new inode), not the whole backlog each time
        self._cache: dict[tuple[str, str], tuple[tuple[int, int, int], Job]] = {}

    def ensure(self) -> Spool:
        for folder in (self.jobs_dir, self.failed_dir, self.tmp_dir, self.incoming_dir):
            folder.mkdir(parents=True, exist_ok=True)
        return self

    # -- writing -----------------------------------------------------------------------------

    def _write(self, folder: Path, job: Job, only_if_exists: bool = False) -> Path:
        final = folder / f"{job.id}{SUFFIX}"
        write_durably(
            final,
            job.to_json().encode("utf-8"),
            tmp_dir=self.tmp_dir,
            mode=0o640,
            prefix=f"{job.id}.",
            keep_if=final.exists if only_if_exists else None,  # purged meanwhile: do not bring it back
        )
        return final

    def add(self, job: Job) -> Path:
        """Store a new job durably; returns its file."""
        return self._write(self.jobs_dir, job)

    def update(self, job: Job) -> None:
        """Replace a pending job (attempts, next try); a job purged meanwhile stays purged."""
        self._write(self.jobs_dir, job, only_if_exists=True)

    def remove(self, job: Job) -> None:
        """The job is done: forget it."""
        try:
            (self.jobs_dir / f"{job.id}{SUFFIX}").unlink()
        except FileNotFoundError:
            return
        fsync_dir(self.jobs_dir)

    def give_up(self, job: Job, reason: str) -> None:
        """Move a job to failed/, where operators see it, retry it or purge it."""
        job.last_error = reason
        self._write(self.failed_dir, job)
        self.remove(job)

    # -- events recorded by on-upload.sh ------------------------------------------------------

    def record_event(self, environ: dict, now: float | None = None) -> str:
        """Record an SFTPGo event as on-upload.sh does (for `python -m powerview.operations.hook` and tests)."""
        event_id = new_id(now)
        data = b"".join(
            f"{k}={v}".encode("utf-8", "surrogateescape") + b"\0"
            for k, v in sorted(environ.items())
            if k.startswith(EVENT_PREFIXES)
        )
        write_durably(
            self.incoming_dir / f"{event_id}{EVENT_SUFFIX}",
            data,
            tmp_dir=self.tmp_dir,
            mode=0o640,
            prefix=f"{event_id}.",
        )
        return event_id

    def events(self) -> list[Path]:
        """Recorded events not yet checked, oldest first."""
        try:
            with os.scandir(self.incoming_dir) as entries:
                return sorted((Path(e.path) for e in entries if e.name.endswith(EVENT_SUFFIX)), key=lambda p: p.name)
        except FileNotFoundError:
            return []

    @staticmethod
    def read_event(path: Path) -> dict[str, str]:
        """The variables of a recorded event (only SFTPGO_ACTION* and SFTPGO_CONNECTION_*)."""
        environ = {}
        for item in path.read_bytes().split(b"\0"):
            name, sep, value = item.decode("utf-8", "surrogateescape").partition("=")
            if sep and name.startswith(EVENT_PREFIXES):
                environ[name] = value
        return environ

    def event_done(self, path: Path) -> None:
        path.unlink(missing_ok=True)

    def has_work(self, now: float | None = None) -> bool:
        """An event to check or a job due."""
        return bool(self.events()) or bool(self.due(now))

    # -- reading -----------------------------------------------------------------------------

    def _read_folder(self, folder: Path) -> list[Job]:
        try:
            entries = sorted((e for e in os.scandir(folder) if e.name.endswith(SUFFIX)), key=lambda e: e.name)
        except FileNotFoundError:
            return []
        jobs, seen = [], set()
        for entry in entries:
            key = (folder.name, entry.name)
            try:
                st = entry.stat(follow_symlinks=False)
                stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
                cached = self._cache.get(key)
                if cached is not None and cached[0] == stamp:
                    job = copy.copy(cached[1])  # jobs are flat: a shallow copy is enough
                else:
                    job = Job.from_json(Path(entry.path).read_text(encoding="utf-8"))
                    self._cache[key] = (stamp, copy.copy(job))
            except FileNotFoundError:
                continue  # done meanwhile
            except (SpoolError, OSError, UnicodeDecodeError) as exc:
                self._quarantine(Path(entry.path), str(exc))
                continue
            seen.add(key)
            jobs.append(job)
        for key in [k for k in self._cache if k[0] == folder.name and k not in seen]:
            del self._cache[key]
        return jobs

    def _quarantine(self, path: Path, reason: str) -> None:
        """A job file that cannot be read goes to failed/ as `<name>.corrupt` for an operator."""
        if path.parent == self.failed_dir:
            return
        try:
            os.rename(path, self.failed_dir / f"{path.name}.corrupt")
        except OSError:
            pass

    def pending(self) -> list[Job]:
        """Every pending job, oldest first."""
        return self._read_folder(self.jobs_dir)

    def next_try(self, job: Job, now: float | None = None) -> float:
        """When `job` falls due: its `next_try`, or now when that lies beyond the horizon."""
        now = time.time() if now is None else now
        if self.horizon_s is not None and job.next_try > now + self.horizon_s:
            return now
        return job.next_try

    def due(self, now: float | None = None) -> list[Job]:
        now = time.time() if now is None else now
        return [job for job in self.pending() if self.next_try(job, now) <= now]

    def failed(self) -> list[Job]:
        return self._read_folder(self.failed_dir)

    def corrupt_files(self) -> list[Path]:
        try:
            return sorted(p for p in self.failed_dir.iterdir() if p.name.endswith((".corrupt", EVENT_SUFFIX)))
        except FileNotFoundError:
            return []

    # -- operators and the worker --------------------------------------------------------------

    def wake(self, waiting: str = WAITING_INFLUXDB, now: float | None = None) -> list[Job]:
        """Make every job waiting for `waiting` due now (InfluxDB answered again)."""
        now = time.time() if now is None else now
        woken = []
        for job in self.pending():
            if job.waiting == waiting and job.next_try > now:
                job.next_try = now
                self.update(job)
                woken.append(job)
        return woken

    def retry(self, ids: list[str] | None = None, now: float | None = None) -> list[Job]:
        """Pending jobs become due now; failed jobs go back to the queue with a fresh count.

        `ids` None means every job. Returns the jobs touched.
        """
        now = time.time() if now is None else now
        wanted = None if ids is None else set(ids)
        touched = []
        for job in self.pending():
            if wanted is None or job.id in wanted:
                job.next_try = now
                self.update(job)
                touched.append(job)
        for job in self.failed():
            if wanted is None or job.id in wanted:
                job.next_try, job.attempts, job.last_error = now, 0, None
                self._write(self.jobs_dir, job)
                (self.failed_dir / f"{job.id}{SUFFIX}").unlink(missing_ok=True)
                touched.append(job)
        return touched

    def purge(self, ids: list[str] | None = None, failed_only: bool = False) -> list[str]:
        """Delete jobs (`ids` None: all of them; `failed_only`: only from failed/). Returns the ids."""
        wanted = None if ids is None else set(ids)
        folders = (self.failed_dir,) if failed_only else (self.jobs_dir, self.failed_dir)
        removed = []
        for folder in folders:
            try:
                entries = sorted(folder.iterdir())
            except FileNotFoundError:
                continue
            for path in entries:
                job_id = path.name.split(SUFFIX)[0]
                if wanted is None or job_id in wanted:
                    path.unlink(missing_ok=True)
                    removed.append(job_id)
            fsync_dir(folder)
        return removed

    def clean_tmp(self, older_than_s: float = 3600.0, now: float | None = None) -> int:
        """Remove leftovers of writers that died before their rename."""
        now = time.time() if now is None else now
        count = 0
        try:
            entries = list(self.tmp_dir.iterdir())
        except FileNotFoundError:
            return 0
        for path in entries:
            try:
                if now - path.stat().st_mtime > older_than_s:
                    path.unlink()
                    count += 1
            except FileNotFoundError:
                continue
        return count
