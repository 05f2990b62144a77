"""`powerview-worker` (`python -m powerview.cli.worker`): the spool's worker and the operators'
commands on pending jobs.

    python -m powerview.cli.worker run            run due jobs now, in the foreground (the timer's command)
    python -m powerview.cli.worker start          start a detached worker, as the hook does
    python -m powerview.cli.worker list           pending jobs (--failed: given-up jobs)
    python -m powerview.cli.worker retry ID...    make jobs due now / bring failed jobs back (--all)
    python -m powerview.cli.worker purge ID...    delete jobs (--all, --failed)
    python -m powerview.cli.worker scan           queue a scan of the data folder and start the worker

The worker itself (one at a time, under the spool's lock) is `powerview.operations.worker`.
"""

from __future__ import annotations

import json
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import click

from powerview.cli import common as commandline
from powerview.core.envfile import DEFAULT_ENV_FILE
from powerview.core.exitcodes import ExitCode
from powerview.core.settings import ConfigError, load_worker
from powerview.operations import worker, workerlock
from powerview.operations.spool import SCAN, Job, Spool


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
    sys.exit(worker.serve(settings, env_file, lock_fd))


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
    spool = Spool(settings.spool_dir, worker.horizon(settings))
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


if __name__ == "__main__":
    cli(prog_name="python -m powerview.cli.worker")
