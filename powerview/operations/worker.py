"""The spool's single worker, and the operators' commands on pending jobs.

    python -m powerview.operations.worker run            run due jobs now, in the foreground (the timer's command)
    python -m powerview.operations.worker start          start a detached worker, as the hook does
    python -m powerview.operations.worker list           pending jobs (--failed: given-up jobs)
    python -m powerview.operations.worker retry ID...    make jobs due now / bring failed jobs back (--all)
    python -m powerview.operations.worker purge ID...    delete jobs (--all, --failed)
    python -m powerview.operations.worker scan           queue a scan of the data folder and start the worker

Only one worker runs at a time: it holds the flock on `<spool>/worker.lock` for as long as it
runs. It checks the events on-upload.sh records (between jobs, and every 0.25 s while a job
runs), queues their jobs and runs them one after another. When nothing is left, it releases the
lock and looks once more: a hook that recorded an event while the lock was still held, and so
started no worker, relies on that last look.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import click

from powerview.cli import common as commandline
from powerview.core.envfile import DEFAULT_ENV_FILE
from powerview.core.exitcodes import ExitCode
from powerview.core.settings import ConfigError, WorkerSettings, load_worker
from powerview.delivery import catalogue
from powerview.operations import workerlock
from powerview.operations.jobrunner import JobRunner, Tools
from powerview.operations.spool import SCAN, Job, Spool

log = logging.getLogger("powerview.operations.worker")


def _open_log(settings: WorkerSettings) -> int:
    settings.log_dir.mkdir(parents=True, exist_ok=True)
    return os.open(
        settings.log_dir / workerlock.WORKER_LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640
    )


def _configure_logging(log_fd: int) -> None:
    """The worker's lines go to worker.log (`log_fd`), and to stderr when it is not that file
    already (a terminal, the journal); the parser's own lines come through its stderr."""
    root = logging.getLogger("powerview")
    line_format = "%(asctime)s worker[%(process)d] %(levelname)s %(message)s"
    root.handlers[:] = [
        commandline.log_handler(os.fdopen(os.dup(log_fd), "a", buffering=1, encoding="utf-8"), line_format)
    ]
    try:
        same = os.path.sameopenfile(2, log_fd)
    except OSError:
        same = True
    if not same:
        root.addHandler(commandline.log_handler(sys.stderr, line_format))
    root.setLevel(logging.INFO)
    root.propagate = False


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


def serve(settings: WorkerSettings, env_file: Path | None, lock_fd: int | None = None) -> int:
    """Run due jobs under the worker lock until none is due. Returns 0."""
    spool = Spool(settings.spool_dir, horizon(settings)).ensure()
    log_fd = _open_log(settings)
    _configure_logging(log_fd)
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


# -- command line ------------------------------------------------------------------------------


def _when(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


EXIT_CODES = commandline.epilog(
    {
        ExitCode.OK: "done",
        ExitCode.REJECTED: "a setting is wrong, or the spool folder is missing (the message says which)",
        ExitCode.USAGE: "usage error (an unknown command, option or job id)",
    }
)


@click.group(context_settings=commandline.CONTEXT_SETTINGS, epilog=EXIT_CODES)
@commandline.env_file_option
@click.pass_context
def cli(ctx: click.Context, env_file: Path | None) -> None:
    """The PowerView spool: jobs queued by on-upload.sh and the worker that runs them."""
    env_file = env_file or (DEFAULT_ENV_FILE if DEFAULT_ENV_FILE.is_file() else None)
    try:
        settings = load_worker(env_file)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    ctx.obj = (settings, env_file)


@cli.command()
@click.option("--lock-fd", type=int, default=None, hidden=True)
@click.pass_obj
def run(obj, lock_fd: int | None) -> None:
    """Run the due jobs now in the foreground; exit at once if a worker is running."""
    settings, env_file = obj
    sys.exit(serve(settings, env_file, lock_fd))


@cli.command()
@click.pass_obj
def start(obj) -> None:
    """Start a detached worker, as the hook does (nothing if one is running)."""
    settings, env_file = obj
    pid = workerlock.kick(settings.spool_dir, settings.log_dir, env_file)
    click.echo(f"worker started (pid {pid})" if pid else "a worker is already running")


@cli.command("list")
@click.option("--failed", is_flag=True, help="List the jobs given up (spool/failed/).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per job.")
@click.pass_obj
def list_jobs(obj, failed: bool, as_json: bool) -> None:
    """List pending jobs (or failed ones), oldest first."""
    settings, _ = obj
    if not settings.spool_dir.is_dir():
        raise click.ClickException(
            f"the spool folder {settings.spool_dir} does not exist (POWERVIEW_SPOOL_DIR): "
            "no job was ever queued there; check the setting"
        )
    spool = Spool(settings.spool_dir, horizon(settings))
    jobs = spool.failed() if failed else spool.pending()
    now = time.time()
    for job in jobs:
        if as_json:
            click.echo(job.to_json().replace("\n", ""))
            continue
        next_try = spool.next_try(job, now)
        state = "due" if next_try <= now else f"next try {_when(next_try)}"
        extra = f" waiting={job.waiting}" if job.waiting else ""
        extra += f" last_result={job.last_result}" if job.last_result else ""
        error = f" last_error={json.dumps(job.last_error)}" if job.last_error else ""
        click.echo(
            f"{job.id} {job.kind} {json.dumps(job.target(), ensure_ascii=False)} "
            f"attempts={job.attempts} {state}{extra}{error}"
        )
    for path in spool.corrupt_files() if failed else []:
        click.echo(f"{path.name} set aside: unreadable job file or event (inspect it, then purge it)")
    events = spool.events()
    if events and not failed and not as_json:
        click.echo(f"{len(events)} event(s) recorded by on-upload.sh, not yet checked by the worker", err=True)
    if not as_json:
        click.echo(f"{len(jobs)} {'failed' if failed else 'pending'} job(s)", err=True)


def _ids(ids: tuple[str, ...], all_: bool) -> list[str] | None:
    if all_ == bool(ids):
        raise click.UsageError("give job ids or --all (not both)")
    return None if all_ else list(ids)


@cli.command()
@click.argument("ids", nargs=-1)
@click.option("--all", "all_", is_flag=True, help="Every pending and failed job.")
@click.pass_obj
def retry(obj, ids: tuple[str, ...], all_: bool) -> None:
    """Make jobs due now (failed jobs go back to the queue), then start the worker."""
    settings, env_file = obj
    touched = Spool(settings.spool_dir).ensure().retry(_ids(ids, all_))
    click.echo(f"{len(touched)} job(s) due now")
    if touched:
        workerlock.kick(settings.spool_dir, settings.log_dir, env_file)


@cli.command()
@click.argument("ids", nargs=-1)
@click.option("--all", "all_", is_flag=True, help="Every job (with --failed: every failed job).")
@click.option("--failed", "failed_only", is_flag=True, help="Only in spool/failed/.")
@click.pass_obj
def purge(obj, ids: tuple[str, ...], all_: bool, failed_only: bool) -> None:
    """Delete jobs. The files stay where they are: a scan or a new upload queues them again."""
    settings, _ = obj
    removed = Spool(settings.spool_dir).ensure().purge(_ids(ids, all_), failed_only=failed_only)
    click.echo(f"{len(removed)} job(s) purged")


@cli.command()
@click.pass_obj
def scan(obj) -> None:
    """Queue a scan of the data folder (settled files only) and start the worker."""
    settings, env_file = obj
    job = Job.new(SCAN, {"action": "manual-scan", "user": os.environ.get("USER", "")})
    Spool(settings.spool_dir).ensure().add(job)
    click.echo(f"scan {job.id} queued")
    workerlock.kick(settings.spool_dir, settings.log_dir, env_file)


def main(args: list[str] | None = None) -> None:
    """Entry point for on-upload.sh (isolated mode, no `-m`)."""
    cli.main(args=args, prog_name="python -m powerview.operations.worker")


if __name__ == "__main__":
    cli()
