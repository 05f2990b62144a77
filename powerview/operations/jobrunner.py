"""Running the spool's jobs: the parser for ingest and scan jobs, ansible-playbook for provisioning.

Commands are argument lists, never shell strings; names reach Ansible as a JSON file written by
`json.dump` (`-e @file`). Each file's outcome is read from the parser's report (`--report-file`):
where the file went and why; the exit code (exitcodes.ExitCode) only decides when the report is
missing. InfluxDB unavailable keeps the job, with a backoff, for as long as it takes; a fault of
the environment, the configuration or a bug is retried with a backoff, then set aside in failed/.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from powerview.core import names
from powerview.core.envfile import PROJECT_DIR, read_environment
from powerview.core.exitcodes import ExitCode, describe
from powerview.core.outcome import Fault, FileReport, RunReport, Status
from powerview.core.settings import WorkerSettings
from powerview.delivery import derived
from powerview.ingestion import layout
from powerview.operations import hook, uploadlog
from powerview.operations.spool import INGEST, SCAN, WAITING_INFLUXDB, Job, JobResult, Spool, backoff

log = logging.getLogger("powerview.operations.worker")

BATCH_FILES = 50  # files per parser run
MAX_SCAN_ROUNDS = 30  # follow-up scans while files are still changing


@dataclass(frozen=True)
class Tools:
    """How to run the parser and Ansible: interpreter, scripts, environment, output."""

    python: str
    parser: Path | None  # a script to run with `python`; None: `python -m powerview.cli.parse`
    ansible_playbook: str
    env: dict
    env_file: Path | None
    output: int | None  # descriptor receiving the children's stdout and stderr
    timeout_s: float

    @classmethod
    def default(cls, settings: WorkerSettings, env_file: Path | None, output: int | None) -> Tools:
        bin_dir = Path(sys.executable).parent
        playbook_cmd = bin_dir / "ansible-playbook"
        env = dict(read_environment(env_file))
        env.setdefault("LANG", "C.UTF-8")
        env.setdefault("LC_ALL", env["LANG"])
        env["PATH"] = f"{bin_dir}:{env.get('PATH') or '/usr/local/bin:/usr/bin:/bin'}"
        env.update(PYTHONUNBUFFERED="1", ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0")
        env = {k: v for k, v in env.items() if not k.startswith("SFTPGO_")}
        return cls(
            python=sys.executable,
            parser=None,
            ansible_playbook=str(playbook_cmd)
            if playbook_cmd.exists()
            else (shutil.which("ansible-playbook") or "ansible-playbook"),
            env=env,
            env_file=env_file,
            output=output,
            timeout_s=settings.job_timeout_seconds,
        )


@dataclass(frozen=True)
class Finished:
    """A command that ran (or could not): its exit code, how long, and why it failed."""

    code: int | None  # None: could not start, or killed after the timeout
    duration: float
    error: str | None = None


POLL_S = 0.25


def run_command(cmd: list[str], tools: Tools, cwd: Path, idle: Callable[[], object] | None = None) -> Finished:
    """Run `cmd` (a list) in its own process group; kill the group after the timeout.

    While it runs, `idle` is called every POLL_S (the worker checks new events meanwhile).
    """
    started = time.monotonic()
    log.info("running: %s", " ".join(json.dumps(c) if " " in c else c for c in cmd))
    try:
        process = subprocess.Popen(
            cmd,
            cwd=cwd,
            env=tools.env,
            stdin=subprocess.DEVNULL,
            stdout=tools.output,
            stderr=tools.output,
            start_new_session=True,
        )
    except OSError as exc:
        log.error("cannot start %s: %s", cmd[0], exc)
        return Finished(None, time.monotonic() - started, f"cannot start {Path(cmd[0]).name}: {exc}")
    deadline = started + tools.timeout_s
    while True:
        try:
            code = process.wait(timeout=max(0.0, min(POLL_S, deadline - time.monotonic())))
            break
        except subprocess.TimeoutExpired:
            if time.monotonic() >= deadline:
                _kill_group(process)
                log.error("killed after %.0f s (POWERVIEW_JOB_TIMEOUT_SECONDS)", tools.timeout_s)
                return Finished(None, time.monotonic() - started, f"killed after {tools.timeout_s:.0f} s")
            if idle is not None:
                idle()
    duration = time.monotonic() - started
    log.info("exit %d after %.1f s", code, duration)
    return Finished(code, duration, None if code == 0 else f"exit {code}")


def _kill_group(process: subprocess.Popen) -> None:
    for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 5)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def file_id(st: os.stat_result) -> str:
    return f"{st.st_dev}:{st.st_ino}"


def moved_copy(path: Path, st: os.stat_result) -> Path | None:
    """The file `st` (read at `path` before the run) in parsed/ or error/ beside it, if the parser
    moved it there (a move keeps the inode, whatever name it took), else None."""
    if os.path.lexists(path):
        return None
    for folder in names.PROCESSED_DIRS:
        try:
            with os.scandir(path.parent / folder) as entries:
                for entry in entries:
                    if entry.inode() == st.st_ino and entry.stat(follow_symlinks=False).st_dev == st.st_dev:
                        return Path(entry.path)
        except (FileNotFoundError, NotADirectoryError):
            continue
    return None


@dataclass(frozen=True)
class ParserRun:
    """A parser run and its report: each file's outcome by path."""

    run: Finished
    entries: dict[str, FileReport]

    def entry(self, path: Path) -> FileReport | None:
        return self.entries.get(str(path))


def read_report(path: Path) -> dict[str, FileReport]:
    """The report's entries by file path; empty when the parser wrote none (it crashed)."""
    try:
        report: RunReport = json.loads(path.read_text(encoding="utf-8"))
        return {entry["file"]: entry for entry in report["files"]}
    except (OSError, ValueError, KeyError, TypeError):
        return {}


_FAULT_RESULTS = {
    Fault.ENVIRONMENT.value: JobResult.ENVIRONMENT,
    Fault.CONFIGURATION.value: JobResult.CONFIGURATION,
    Fault.BUG.value: JobResult.BUG,
    Fault.INFLUXDB.value: JobResult.INFLUXDB_UNAVAILABLE,
}


def outcome_of(entry: FileReport) -> tuple[JobResult, str, str | None]:
    """(result, reason an operator can act on, fault) of one file from its report entry."""
    status, fault = entry.get("status"), entry.get("fault")
    destination = entry.get("destination")
    if status == Status.SUCCESS:
        return JobResult.PARSED, f"ingested ({entry.get('nb_points', 0)} points), moved to {destination}", None
    if status == Status.ERROR and fault == Fault.FILE and destination:
        return JobResult.REJECTED, f"rejected, moved to {destination}: {entry.get('error')}", fault
    if status == Status.SKIPPED:
        return JobResult.SKIPPED, f"left in place by the parser: {entry.get('error')}", None
    return _FAULT_RESULTS.get(fault or "", JobResult.ERROR), str(entry.get("error") or "no reason given"), fault


class JobRunner:
    """Runs the due jobs of a spool one after another."""

    def __init__(self, settings: WorkerSettings, spool: Spool, tools: Tools):
        self.settings = settings
        self.spool = spool
        self.tools = tools

    # -- outcomes ----------------------------------------------------------------------------

    def _log(self, job: Job, result: JobResult, duration: float | None, detail: str, path: str | None = None) -> None:
        uploadlog.write(
            self.settings.log_dir,
            action=job.kind,
            user=job.event.get("user"),
            path=path if path is not None else (job.path or job.target()),
            job=job.id,
            result=result,
            duration=duration,
            attempts=job.attempts or None,
            detail=detail,
        )

    def done(self, job: Job, result: JobResult, duration: float | None, detail: str) -> None:
        # the outcome is logged before the job is forgotten: a kill in between runs the job
        # again (a second line), never loses its line; a job gone from jobs/ has its line
        self._log(job, result, duration, detail)
        self.spool.remove(job)

    def retry(
        self, job: Job, result: JobResult, duration: float | None, detail: str, waiting: str | None = None
    ) -> None:
        """Keep the job for later, with a backoff; give it up after max_attempts (not for InfluxDB)."""
        job.attempts += 1
        job.waiting, job.last_result, job.last_error = waiting, result, detail
        if waiting is None and job.attempts >= self.settings.max_attempts:
            self._log(
                job,
                JobResult.FAILED,
                duration,
                f"{detail}; given up after {job.attempts} attempts (see: python -m powerview.cli.worker list --failed)",
            )
            self.spool.give_up(job, detail)
            return
        delay = backoff(job.attempts, self.settings.retry_base_seconds, self.settings.retry_max_seconds)
        job.next_try = time.time() + delay
        self.spool.update(job)
        self._log(job, JobResult.RETRY, duration, f"{detail}; next try in {delay:.0f} s")

    def influx_is_down(self, until: float) -> None:
        """InfluxDB is unavailable: no other job needing it runs before `until`."""
        for job in self.spool.due():
            if job.kind in (INGEST, SCAN):
                job.next_try, job.waiting = until, WAITING_INFLUXDB
                self.spool.update(job)

    def influx_is_up(self) -> None:
        woken = self.spool.wake(WAITING_INFLUXDB)
        if woken:
            log.info("InfluxDB answers again: %d job(s) waiting for it are due now", len(woken))

    # -- the loop ----------------------------------------------------------------------------

    def take_events(self) -> int:
        """Check the events on-upload.sh recorded: their jobs join the queue."""
        return hook.process_events(self.spool, self.settings)

    def run_due(self) -> int:
        """Check new events and run due jobs until none is left. Returns how many runs were made."""
        runs = 0
        self.spool.clean_tmp()
        while True:
            self.take_events()
            due = self.spool.due()
            if not due:
                return runs
            head = due[0]
            runs += 1
            try:
                if head.kind == INGEST:
                    self.ingest([j for j in due if j.kind == INGEST][:BATCH_FILES])
                elif head.kind == SCAN:
                    self.scan([j for j in due if j.kind == SCAN])
                else:
                    self.provision(head)
            except Exception as exc:  # noqa: BLE001 - a bug must not stop the queue
                log.exception("job %s: unexpected error", head.id)
                self.retry(head, JobResult.BUG, None, f"unexpected {type(exc).__name__}: {exc}")

    # -- ingest ------------------------------------------------------------------------------

    def _check_file(self, path: Path) -> str | None:
        """Why the file cannot be handed to the parser (refused), or None."""
        try:
            location = layout.locate(self.settings.data_dir, path)
        except layout.LayoutError as exc:
            return str(exc)
        return location.name_problem()

    def parse(self, paths: list[Path]) -> ParserRun:
        self.spool.ensure()
        report_file = self.spool.tmp_dir / f"parser-{os.getpid()}-{time.monotonic_ns()}.report.json"
        program = [str(self.tools.parser)] if self.tools.parser else ["-m", "powerview.cli.parse"]
        cmd = [
            self.tools.python,
            *program,
            "--dataFolder",
            str(self.settings.data_dir),
            "--report-file",
            str(report_file),
        ]
        for path in paths:
            cmd += ["--tsvFile", str(path)]
        if self.tools.env_file is not None:
            cmd += ["--env-file", str(self.tools.env_file)]
        try:
            run = run_command(cmd, self.tools, PROJECT_DIR, idle=self.take_events)
            return ParserRun(run, read_report(report_file))
        finally:
            report_file.unlink(missing_ok=True)

    def ingest(self, jobs: list[Job]) -> None:
        batch: list[tuple[Job, Path, os.stat_result]] = []
        for job in jobs:
            path = Path(job.path or "")
            problem = self._check_file(path)
            if problem:
                self.done(job, JobResult.REFUSED, None, problem)
                continue
            try:
                st = os.stat(path, follow_symlinks=False)
            except FileNotFoundError:
                self.done(
                    job, JobResult.GONE, None, "no longer at its path (already ingested by an earlier job or scan?)"
                )
                continue
            batch.append((job, path, st))
        if not batch:
            return
        paths = list(dict.fromkeys(path for _, path, _ in batch))  # a file queued twice runs once
        parsed = self.parse(paths)
        for job, path, st in batch:
            self._file_outcome(job, path, st, parsed)
        self._after_parser(parsed.run)

    def _file_outcome(self, job: Job, path: Path, st: os.stat_result, parsed: ParserRun) -> None:
        run, entry = parsed.run, parsed.entry(path)
        if entry is None:
            moved = moved_copy(path, st)
            if moved is not None:  # moved by the parser, which then died (killed, a crash) before its report
                result = JobResult.PARSED if moved.parent.name == names.PARSED_DIR else JobResult.REJECTED
                why = describe(run.code) if run.code is not None else run.error
                self.done(job, result, run.duration, f"moved to {moved}; the parser left no report ({why})")
                return
            self._no_report(job, run)
            return
        if entry.get("file_id") not in (None, file_id(st)) and entry.get("status") != Status.SKIPPED:
            # the upload was replaced before the parser opened it: the newer one was read
            self.done(
                job,
                JobResult.REPLACED,
                run.duration,
                f"replaced by a newer upload before it was read; the newer one: {entry.get('status')}",
            )
            return
        result, detail, fault = outcome_of(entry)
        if result == JobResult.SKIPPED and not os.path.lexists(path):
            self.done(job, JobResult.GONE, run.duration, f"taken by another process: {entry.get('error')}")
        elif result in (JobResult.PARSED, JobResult.REJECTED):
            self.done(job, result, run.duration, detail)
        elif fault == Fault.INFLUXDB.value:
            self.retry(job, JobResult.INFLUXDB_UNAVAILABLE, run.duration, detail, waiting=WAITING_INFLUXDB)
        else:
            self.retry(job, result, run.duration, detail)

    def _no_report(self, job: Job, run: Finished) -> None:
        """The parser left no word on this file (it crashed, or was killed): its exit code decides."""
        if run.code == ExitCode.TEMPFAIL:
            self.retry(
                job,
                JobResult.INFLUXDB_UNAVAILABLE,
                run.duration,
                "InfluxDB unavailable (exit 75), file left in place",
                waiting=WAITING_INFLUXDB,
            )
        else:
            self.retry(
                job,
                JobResult.ERROR,
                run.duration,
                f"parser failed without a report ({describe(run.code) if run.code is not None else run.error})"
                ", file left in place",
            )

    def _after_parser(self, run: Finished) -> None:
        if run.code == ExitCode.TEMPFAIL:
            delay = backoff(1, self.settings.retry_base_seconds, self.settings.retry_max_seconds)
            self.influx_is_down(time.time() + delay)
        elif run.code in (ExitCode.OK, ExitCode.REJECTED, ExitCode.CANTCREAT):
            self.influx_is_up()

    # -- derived windows a parser recorded and did not recompute ----------------------------

    def derived_pending(self) -> Finished | None:
        """Run `powerview-downsample --pending` (under the job timeout) when the derived outbox
        holds records: a parser killed mid-run (timeout, OOM) recorded its files' windows
        before moving them to parsed/, and no later run may come soon. Not while InfluxDB is
        known to be down (the jobs waiting for it do them when it is back)."""
        if not derived.Outbox(self.settings.spool_dir).pending():
            return None
        if any(job.waiting == WAITING_INFLUXDB for job in self.spool.pending()):
            return None
        cmd = [self.tools.python, "-m", "powerview.cli.downsample", "--pending"]
        if self.tools.env_file is not None:
            cmd += ["--env-file", str(self.tools.env_file)]
        return run_command(cmd, self.tools, PROJECT_DIR, idle=self.take_events)

    # -- scan --------------------------------------------------------------------------------

    def settled_files(self, now: float | None = None) -> tuple[list[tuple[Path, os.stat_result]], list[Path]]:
        """(files unchanged for the settle delay, files still changing), names checked.

        A file's ctime moves whenever its size, content or modification time change, and a
        client cannot set it: a file whose ctime is older than the settle delay has not changed
        for that long.
        """
        now = time.time() if now is None else now
        settled, changing = [], []
        for path in layout.discover(self.settings.data_dir):
            problem = self._check_file(path)
            if problem:
                log.warning("scan: %s: not taken: %s", path, problem)
                continue
            try:
                st = os.stat(path, follow_symlinks=False)
            except FileNotFoundError:
                continue
            if now - st.st_ctime >= self.settings.settle_seconds:
                settled.append((path, st))
            else:
                changing.append(path)
        return settled, changing

    def scan(self, jobs: list[Job]) -> None:
        """One scan for every due scan job (they would all find the same files)."""
        started = time.monotonic()
        settled, changing = self.settled_files()
        worst: Finished | None = None
        counts: dict[str, int] = {}
        lead = jobs[0]
        for i in range(0, len(settled), BATCH_FILES):
            chunk = settled[i : i + BATCH_FILES]
            parsed = self.parse([path for path, _ in chunk])
            run = parsed.run
            for path, st in chunk:
                entry = parsed.entry(path)
                moved = moved_copy(path, st) if entry is None else None
                if moved is not None:
                    result = JobResult.PARSED if moved.parent.name == names.PARSED_DIR else JobResult.REJECTED
                    detail = f"moved to {moved}; the parser left no report ({describe(run.code)})"
                elif entry is None:
                    result, detail = JobResult.LEFT, f"no outcome in the parser's report ({describe(run.code)})"
                else:
                    result, detail, _fault = outcome_of(entry)
                    if result not in (JobResult.PARSED, JobResult.REJECTED):
                        result = JobResult.LEFT
                counts[result.value] = counts.get(result.value, 0) + 1
                self._log(lead, result, run.duration, f"found by a scan: {detail}", path=str(path))
            self._after_parser(run)
            if run.code not in (ExitCode.OK, ExitCode.REJECTED) and (worst is None or run.code == ExitCode.TEMPFAIL):
                worst = run
            if run.code == ExitCode.TEMPFAIL:
                break
        summary = ", ".join(f"{n} {what}" for what, n in sorted(counts.items())) or "no settled file"
        if changing:
            summary += f", {len(changing)} still changing"
        duration = time.monotonic() - started
        rounds = max(job.round for job in jobs)
        if changing and rounds < MAX_SCAN_ROUNDS:
            follow = Job.new(SCAN, lead.event, round=rounds + 1)
            follow.next_try = time.time() + self.settings.settle_seconds
            self.spool.add(follow)
            summary += f": follow-up scan {follow.id} in {self.settings.settle_seconds:g} s"
        for job in jobs[1:]:
            self.done(job, JobResult.MERGED, None, f"merged into scan {lead.id}")
        if worst is not None and worst.code == ExitCode.TEMPFAIL:
            self.retry(
                lead,
                JobResult.INFLUXDB_UNAVAILABLE,
                duration,
                f"{summary}; InfluxDB unavailable (exit 75)",
                waiting=WAITING_INFLUXDB,
            )
        elif worst is not None:
            self.retry(
                lead,
                JobResult.ERROR,
                duration,
                f"{summary}; parser: {describe(worst.code) if worst.code else worst.error}",
            )
        else:
            self.done(lead, JobResult.SCANNED, duration, summary)

    # -- Grafana provisioning ----------------------------------------------------------------

    def provision(self, job: Job) -> None:
        given = [("company", job.company or "")] + ([("campaign", job.campaign)] if job.campaign else [])
        for kind, name in given:
            problem = names.name_problem(kind, name)
            if problem:
                self.done(job, JobResult.REFUSED, None, problem)
                return
        playbook = self.settings.grafana_playbook
        if not playbook.is_file():
            self.retry(
                job, JobResult.CONFIGURATION, None, f"playbook {playbook} not found (POWERVIEW_GRAFANA_PLAYBOOK)"
            )
            return
        extra_vars = {"company_name": job.company}
        if job.campaign:
            extra_vars["campaign_name"] = job.campaign
        self.spool.ensure()
        vars_file = self.spool.tmp_dir / f"{job.id}.vars.json"
        with open(vars_file, "w", encoding="utf-8") as out:
            json.dump(extra_vars, out)
        # Ansible's output goes to a file of its own first, then to worker.log: its failure
        # message is the cause uploads.log gives
        output_file = self.spool.tmp_dir / f"{job.id}.ansible.log"
        try:
            cwd = playbook.parent.parent if (playbook.parent.parent / "ansible.cfg").is_file() else playbook.parent
            with open(output_file, "w+b") as output:
                run = run_command(
                    [self.tools.ansible_playbook, str(playbook), "-e", f"@{vars_file}"],
                    replace(self.tools, output=output.fileno()),
                    cwd,
                    idle=self.take_events,
                )
                output.seek(0)
                text = output.read().decode("utf-8", "replace")
            if self.tools.output is not None:
                os.write(self.tools.output, text.encode())
        finally:
            vars_file.unlink(missing_ok=True)
            output_file.unlink(missing_ok=True)
        if run.code == 0:
            self.done(job, JobResult.PROVISIONED, run.duration, "ansible-playbook succeeded")
        else:
            cause = ansible_failure(text)
            detail = f"ansible-playbook failed ({run.error})" + (f": {cause}" if cause else "")
            self.retry(job, JobResult.ERROR, run.duration, detail)


_FAILED_TASK = re.compile(r"^(?:fatal|failed): \[[^\]]*\]: FAILED! => (\{.*\})\s*$")
_CAUSE_CHARS = 300


def ansible_failure(output: str) -> str | None:
    """The cause of a failed ansible-playbook run, in one line: the failed task's message
    (`msg`, as the module returned it), or Ansible's own `ERROR! ...` line; None when neither."""
    cause = None
    for line in output.splitlines():
        match = _FAILED_TASK.match(line)
        if match:
            try:
                result = json.loads(match.group(1))
            except ValueError:
                continue
            if isinstance(result, dict) and result.get("msg"):
                cause = str(result["msg"])
        elif line.startswith("ERROR! ") and cause is None:
            cause = line[len("ERROR! ") :]
    if cause is None:
        return None
    cause = " ".join(cause.split())
    return cause if len(cause) <= _CAUSE_CHARS else cause[: _CAUSE_CHARS - 3] + "..."
