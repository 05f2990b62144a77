"""The spool's single worker (its commands are in `powerview.cli.worker`).

Only one worker runs at a time: it holds the flock on `<spool>/worker.lock` for as long as it
runs. It checks the events on-upload.sh records (between jobs, and every 0.25 s while a job
runs), queues their jobs and runs them one after another. When nothing is left, it releases the
lock and looks once more: a hook that recorded an event while the lock was still held, and so
started no worker, relies on that last look.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from pathlib import Path

from powerview.core import logsafe
from powerview.core.settings import WorkerSettings
from powerview.delivery import catalogue
from powerview.operations import workerlock
from powerview.operations.jobrunner import JobRunner, Tools
from powerview.operations.spool import Spool

log = logging.getLogger("powerview.operations.worker")


POLL_S = 0.25


def wait_for_due(spool: Spool, linger_s: float) -> bool:
    """Sleep while the next pending job falls due within `linger_s`. True once one is due
    (or an event comes in).

    A worker that just scheduled a follow-up scan or a short retry stays for it, still holding
    the lock; a job queued meanwhile by a hook is seen within POLL_S.
    """
    deadline = time.time() + linger_s
    while True:
        if spool.events():
            return True
        pending = spool.pending()
        if not pending:
            return False
        now = time.time()
        next_try = min(spool.next_try(job, now) for job in pending)
        if next_try <= now:
            return True
        if next_try > deadline:
            return False
        time.sleep(min(POLL_S, next_try - now))


def horizon(settings: WorkerSettings) -> float:
    """The longest a job may wait (the longest backoff or follow-up scan delay, and a margin):
    a later `next_try` comes from a clock that jumped ahead, and the job is due now."""
    return max(settings.retry_max_seconds, settings.retry_base_seconds, settings.settle_seconds) + 60.0


def configure_logging(log_fd: int) -> None:
    """The worker's lines go to worker.log (`log_fd`), and to stderr when it is not that file
    already (a terminal, the journal); the parser's own lines come through its stderr."""
    root = logging.getLogger("powerview")
    line_format = "%(asctime)s worker[%(process)d] %(levelname)s %(message)s"
    root.handlers[:] = [logsafe.handler(os.fdopen(os.dup(log_fd), "a", buffering=1, encoding="utf-8"), line_format)]
    try:
        same = os.path.sameopenfile(2, log_fd)
    except OSError:
        same = True
    if not same:
        root.addHandler(logsafe.handler(sys.stderr, line_format))
    root.setLevel(logging.INFO)
    root.propagate = False


def open_log(settings: WorkerSettings) -> int:
    """worker.log, opened for appending (the parser's stderr goes there too)."""
    settings.log_dir.mkdir(parents=True, exist_ok=True)
    return os.open(
        settings.log_dir / workerlock.WORKER_LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640
    )


def serve(settings: WorkerSettings, env_file: Path | None, lock_fd: int | None = None) -> int:
    """Run due jobs under the worker lock until none is due; every line to worker.log (where
    the parser's stderr goes too). Returns 0."""
    spool = Spool(settings.spool_dir, horizon(settings)).ensure()
    log_fd = open_log(settings)
    configure_logging(log_fd)
    fd: int | None = lock_fd if lock_fd is not None and workerlock.holds_lock(lock_fd, spool.root) else None
    if fd is None:
        fd = workerlock.try_lock(spool.root)
    if fd is None:
        log.info("another worker is running: it will take the pending jobs")
        return 0
    runner = JobRunner(settings, spool, Tools.default(settings, env_file, log_fd))
    while True:
        log.info("worker start pid=%d at=%.6f", os.getpid(), time.time())
        try:
            runs = runner.run_due()
            while wait_for_due(spool, settings.worker_linger_seconds):
                runs += runner.run_due()
            # channel publications the config API did not take yet (the timer's run brings them in)
            catalogue.publish_entries([], catalogue.Recorder.load(env_file))
            # derived windows recorded by a parser run that did not finish (killed at the timeout)
            runner.derived_pending()
        finally:
            log.info("worker stop pid=%d at=%.6f", os.getpid(), time.time())
            workerlock.release(fd)
        log.info("%d run(s); %d job(s) left for later", runs, len(spool.pending()))
        if not spool.has_work():
            return 0
        fd = workerlock.try_lock(spool.root)  # an event came in while we were finishing
        if fd is None:
            return 0


if __name__ == "__main__":
    # `python -m powerview.operations.worker ...`, the command the previous release's docs gave to
    # systemd timers and cron: without this it would import this module and exit 0, doing nothing
    import runpy

    runpy.run_module("powerview.cli.worker", run_name="__main__", alter_sys=True)
