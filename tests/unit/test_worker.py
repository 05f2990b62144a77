"""The worker's job runs, with a stand-in parser and a stand-in ansible-playbook (small scripts).

The stand-in parser follows tsv_parser.py's contract: exit 0 files moved to parsed/, 1 some moved
to error/, 75 InfluxDB down (files left in place). Its behaviour comes from FAKE_MODE; it records
each call (argv) as one JSON line in FAKE_CALLS, and writes its report with the parser's own typed
contract (outcome.FileOutcome, report.build; checked against docs/rapport.schema.json in
test_report_contract.py).
"""

from __future__ import annotations

import json
import os
import sys
import textwrap
import time

import pytest
import requests

from powerview.core.settings import load_worker as load
from powerview.operations import uploadlog, worker, workerlock
from powerview.operations.jobrunner import JobRunner, Tools
from powerview.operations.spool import INGEST, PROVISION, SCAN, WAITING_INFLUXDB, Job, Spool

import samples

FAKE_PARSER = textwrap.dedent("""\
    import json, os, sys
    from pathlib import Path
    from powerview.core import schema
    from powerview.ingestion import report
    from powerview.core.outcome import Fault, FileOutcome, Status
    args = sys.argv[1:]
    files = [args[i + 1] for i, a in enumerate(args) if a == "--tsvFile"]
    report_file = args[args.index("--report-file") + 1]
    with open(os.environ["FAKE_CALLS"], "a") as out:
        out.write(json.dumps(args) + "\\n")
    mode = os.environ.get("FAKE_MODE", "ok")
    if mode == "crash":
        sys.exit(3)
    if mode == "moved-then-killed":  # the file reached parsed/, the process died before its report
        for f in files:
            os.makedirs(os.path.join(os.path.dirname(f), "parsed"), exist_ok=True)
            os.rename(f, os.path.join(os.path.dirname(f), "parsed", os.path.basename(f)))
        os.kill(os.getpid(), 9)
    started = report.utcnow()
    outcomes = []
    for f in files:
        st = os.stat(f)
        device, campaign, company = Path(f).parent.parts[-1:-4:-1]
        out = FileOutcome(f, company, campaign, device, file_id=f"{st.st_dev}:{st.st_ino}", nb_points=1)
        out.counters = {name: 0 for name in schema.COUNTER_NAMES}
        if mode == "influx-down":
            out.fail(Fault.INFLUXDB, "InfluxDB unreachable (file left in place)")
        elif mode == "skip":
            out.status, out.error = Status.SKIPPED, "taken by another process (or already moved): skipped"
        elif mode == "environment":
            out.fail(Fault.ENVIRONMENT, f"{f}: cannot read the file: Permission denied")
        else:
            folder = "error" if mode == "reject" else "parsed"
            d = os.path.join(os.path.dirname(f), folder)
            os.makedirs(d, exist_ok=True)
            os.rename(f, os.path.join(d, os.path.basename(f)))
            if mode == "reject":
                out.fail(Fault.FILE, "line 2: unknown file format")
            else:
                out.status = Status.SUCCESS
            out.destination = os.path.join(d, os.path.basename(f))
        outcomes.append(out)
    result = report.build(started, report.utcnow(), False, Path(os.environ["FAKE_DATA"]), outcomes)
    report.write_file(Path(report_file), result)
    sys.exit(report.exit_code(outcomes))
""")

FAKE_ANSIBLE = textwrap.dedent("""\
    import json, os, sys
    args = sys.argv[1:]
    extra = json.load(open(args[args.index("-e") + 1][1:]))
    with open(os.environ["FAKE_CALLS"], "a") as out:
        out.write(json.dumps({"argv": args, "extra_vars": extra, "cwd": os.getcwd()}) + "\\n")
    if os.environ.get("FAKE_MODE") == "slow":
        import time
        time.sleep(1.5)
    sys.exit(4 if os.environ.get("FAKE_MODE") == "crash" else 0)
""")


class Env:
    def __init__(self, tmp_path, **overrides):
        self.tmp = tmp_path
        self.data = tmp_path / "data"
        self.data.mkdir(exist_ok=True)
        self.calls = tmp_path / "calls.jsonl"
        self.playbook = tmp_path / "ga" / "playbooks" / "p.yml"
        self.playbook.parent.mkdir(parents=True, exist_ok=True)
        self.playbook.write_text("- hosts: localhost\n")
        values = {
            "POWERVIEW_DATA_DIR": str(self.data),
            "POWERVIEW_LOG_DIR": str(tmp_path / "logs"),
            "POWERVIEW_SPOOL_DIR": str(tmp_path / "spool"),
            "POWERVIEW_SETTLE_SECONDS": "0.5",
            "POWERVIEW_RETRY_BASE_SECONDS": "60",
            "POWERVIEW_MAX_ATTEMPTS": "3",
            "POWERVIEW_GRAFANA_PLAYBOOK": str(self.playbook),
        }
        values.update(overrides)
        self.settings = load(tmp_path / "none.env", environ=values)
        self.spool = Spool(self.settings.spool_dir).ensure()
        parser = tmp_path / "fake_parser.py"
        parser.write_text(FAKE_PARSER)
        ansible = tmp_path / "fake_ansible.py"
        ansible.write_text(FAKE_ANSIBLE)
        ansible_cmd = tmp_path / "ansible-playbook"
        ansible_cmd.write_text(f'#!/bin/sh\nexec {sys.executable} {ansible} "$@"\n')
        ansible_cmd.chmod(0o755)
        self.env = {
            "FAKE_CALLS": str(self.calls),
            "FAKE_MODE": "ok",
            "FAKE_DATA": str(self.data),
            "PATH": os.environ["PATH"],
        }
        self.tools = Tools(
            python=sys.executable,
            parser=parser,
            ansible_playbook=str(ansible_cmd),
            env=self.env,
            env_file=None,
            output=None,
            timeout_s=20,
        )
        self.runner = JobRunner(self.settings, self.spool, self.tools)

    def file(self, relative, text="x", age=0.0):
        path = self.data / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return path

    def queue(self, kind, **payload):
        job = Job.new(kind, {"action": "test", "user": "acme"}, **payload)
        self.spool.add(job)
        return job

    def call_log(self):
        if not self.calls.exists():
            return []
        return [json.loads(line) for line in self.calls.read_text().splitlines()]

    def uploads_log(self):
        path = self.settings.log_dir / uploadlog.LOG_NAME
        return path.read_text().splitlines() if path.exists() else []


@pytest.fixture
def env(tmp_path):
    return Env(tmp_path)


def files_of(call):
    return [call[i + 1] for i, a in enumerate(call) if a == "--tsvFile"]


def test_due_ingest_jobs_run_in_one_parser_call_and_are_done(env):
    a, b = env.file("acme/c1/SN1/a.tsv"), env.file("acme/c1/SN2/b b.tsv")
    ja, jb = env.queue(INGEST, path=str(a)), env.queue(INGEST, path=str(b))
    env.runner.run_due()
    [call] = env.call_log()
    assert files_of(call) == [str(a), str(b)]
    assert call[call.index("--dataFolder") + 1] == str(env.data)
    assert env.spool.pending() == []
    assert (a.parent / "parsed" / "a.tsv").exists()
    log = "\n".join(env.uploads_log())
    assert f"job={ja.id} result=parsed" in log and f"job={jb.id} result=parsed" in log


def test_a_file_queued_twice_is_given_once(env):
    a = env.file("acme/c1/SN1/a.tsv")
    env.queue(INGEST, path=str(a))
    env.queue(INGEST, path=str(a))
    env.runner.run_due()
    [call] = env.call_log()
    assert files_of(call) == [str(a)]
    assert env.spool.pending() == []


def test_a_file_already_gone_needs_no_parser(env):
    job = env.queue(INGEST, path=str(env.data / "acme/c1/SN1/gone.tsv"))
    env.runner.run_due()
    assert env.call_log() == [] and env.spool.pending() == []
    assert f"job={job.id} result=gone" in env.uploads_log()[-1]


def test_a_path_against_the_rules_is_refused_again_by_the_worker(env):
    bad = env.file("acme/c1/S N/a.tsv")
    env.queue(INGEST, path=str(bad))
    env.runner.run_due()
    assert env.call_log() == [] and bad.exists()
    assert "result=refused" in env.uploads_log()[-1]


def test_rejected_files_are_done(env):
    a = env.file("acme/c1/SN1/a.tsv")
    env.queue(INGEST, path=str(a))
    env.env["FAKE_MODE"] = "reject"
    env.runner.run_due()
    assert env.spool.pending() == [] and (a.parent / "error" / "a.tsv").exists()
    assert "result=rejected" in env.uploads_log()[-1]


def test_influxdb_down_keeps_the_job_with_a_backoff_and_holds_back_other_jobs(env):
    a = env.file("acme/c1/SN1/a.tsv")
    job = env.queue(INGEST, path=str(a))
    scan = env.queue(SCAN)
    provision = env.queue(PROVISION, company="acme")
    env.env["FAKE_MODE"] = "influx-down"
    before = time.time()
    env.runner.run_due()
    parser_calls = [c for c in env.call_log() if isinstance(c, list)]
    assert len(parser_calls) == 1  # the scan did not run the parser again
    assert a.exists()
    pending = {j.id: j for j in env.spool.pending()}
    assert set(pending) == {job.id, scan.id}  # provisioning does not need InfluxDB: it ran
    kept = pending[job.id]
    assert (kept.attempts, kept.waiting, kept.last_result) == (1, WAITING_INFLUXDB, "influxdb-unavailable")
    assert before + 59 <= kept.next_try <= time.time() + 61
    assert pending[scan.id].next_try >= before + 59 and pending[scan.id].attempts == 0
    assert provision.id not in pending


def test_once_influxdb_answers_the_waiting_jobs_run_at_once(env):
    a = env.file("acme/c1/SN1/a.tsv")
    env.queue(INGEST, path=str(a))
    env.env["FAKE_MODE"] = "influx-down"
    env.runner.run_due()
    assert env.spool.due() == []
    env.env["FAKE_MODE"] = "ok"
    b = env.file("acme/c1/SN1/b.tsv")
    env.queue(INGEST, path=str(b))  # a new upload: its run proves InfluxDB is back
    env.runner.run_due()
    assert env.spool.pending() == []
    assert (a.parent / "parsed" / "a.tsv").exists() and (b.parent / "parsed" / "b.tsv").exists()
    assert [files_of(c) for c in env.call_log()] == [[str(a)], [str(b)], [str(a)]]


def test_influxdb_jobs_are_never_given_up(env):
    a = env.file("acme/c1/SN1/a.tsv")
    env.queue(INGEST, path=str(a))
    env.env["FAKE_MODE"] = "influx-down"
    for _ in range(5):
        env.spool.retry(None)
        env.runner.run_due()
    [job] = env.spool.pending()
    assert job.attempts == 5 and env.spool.failed() == []


def test_other_failures_are_retried_then_given_up(tmp_path):
    env = Env(tmp_path, POWERVIEW_RETRY_BASE_SECONDS="0", POWERVIEW_MAX_ATTEMPTS="3")
    a = env.file("acme/c1/SN1/a.tsv")
    job = env.queue(INGEST, path=str(a))
    env.env["FAKE_MODE"] = "crash"
    env.runner.run_due()  # backoff 0: all three attempts in this run
    assert len(env.call_log()) == 3
    assert env.spool.pending() == []
    [failed] = env.spool.failed()
    assert (failed.id, failed.attempts) == (job.id, 3) and "exit 3" in failed.last_error
    assert a.exists()
    assert "result=failed" in env.uploads_log()[-1]


def test_a_file_left_in_place_after_exit_0_is_retried(env):
    a = env.file("acme/c1/SN1/a.tsv")
    env.queue(INGEST, path=str(a))
    env.env["FAKE_MODE"] = "skip"
    env.runner.run_due()
    [job] = env.spool.pending()
    assert job.attempts == 1 and job.last_result == "skipped"


def test_a_scan_takes_settled_files_and_comes_back_for_changing_ones(env):
    old = env.file("acme/c1/SN1/old.tsv")
    time.sleep(0.6)
    fresh = env.file("acme/c1/SN1/fresh.tsv")
    env.file("acme/c1/SN1/parsed/done.tsv")
    env.file("acme/c\x011/SN1/badname.tsv")
    first, second = env.queue(SCAN), env.queue(SCAN)
    env.runner.run_due()
    [call] = env.call_log()
    assert files_of(call) == [str(old)]
    assert fresh.exists() and (old.parent / "parsed" / "old.tsv").exists()
    [follow] = env.spool.pending()
    assert follow.kind == SCAN and follow.round == 1 and follow.id not in (first.id, second.id)
    assert follow.next_try > time.time()
    log = "\n".join(env.uploads_log())
    assert f"job={second.id} result=merged" in log and "1 still changing" in log
    time.sleep(0.6)
    env.runner.run_due()
    assert files_of(env.call_log()[-1]) == [str(fresh)]
    assert env.spool.pending() == []


def test_provisioning_passes_the_names_as_a_json_file(env):
    env.queue(PROVISION, company="acme", campaign=None)
    env.queue(PROVISION, company="acme", campaign="camp-1")
    (env.playbook.parent.parent / "ansible.cfg").write_text("[defaults]\n")
    env.runner.run_due()
    calls = env.call_log()
    assert [c["extra_vars"] for c in calls] == [
        {"company_name": "acme"},
        {"company_name": "acme", "campaign_name": "camp-1"},
    ]
    assert calls[0]["argv"][0] == str(env.playbook) and calls[0]["argv"][1] == "-e"
    assert calls[0]["cwd"] == str(env.playbook.parent.parent)  # where ansible.cfg is
    assert env.spool.pending() == []
    assert list(env.spool.tmp_dir.iterdir()) == []  # the extra-vars file is removed


def test_a_failed_playbook_is_retried(env):
    env.queue(PROVISION, company="acme")
    env.env["FAKE_MODE"] = "crash"
    env.runner.run_due()
    [job] = env.spool.pending()
    assert job.attempts == 1 and "exit 4" in job.last_error


def test_the_outcome_comes_from_the_report_with_its_reason(env):
    a = env.file("acme/c1/SN1/a.tsv")
    job = env.queue(INGEST, path=str(a))
    env.env["FAKE_MODE"] = "environment"
    env.runner.run_due()
    [pending] = env.spool.pending()
    assert pending.id == job.id and pending.last_result == "environment"
    assert "Permission denied" in pending.last_error
    assert any("result=retry" in line and "Permission denied" in line for line in env.uploads_log())


def test_a_file_replaced_before_the_parser_opened_it_ends_as_replaced(env):
    a = env.file("acme/c1/SN1/a.tsv")
    job = env.queue(INGEST, path=str(a))
    st = os.stat(a)
    os.unlink(a)
    env.file("acme/c1/SN1/a.tsv", "a new upload with the same name")
    from powerview.operations.jobrunner import Finished, ParserRun

    parsed = ParserRun(
        Finished(0, 0.1),
        {
            str(a): {
                "file": str(a),
                "file_id": "0:1",
                "status": "success",
                "destination": str(a.parent / "parsed" / "a.tsv"),
            }
        },
    )
    env.runner._file_outcome(job, a, st, parsed)
    assert env.spool.pending() == []
    assert any("result=replaced" in line for line in env.uploads_log())


def test_a_crash_without_report_is_retried_with_the_exit_code_named(env):
    a = env.file("acme/c1/SN1/a.tsv")
    env.queue(INGEST, path=str(a))
    env.env["FAKE_MODE"] = "crash"
    env.runner.run_due()
    [pending] = env.spool.pending()
    assert (
        pending.last_result == "error" and "exit 3" in pending.last_error and "without a report" in pending.last_error
    )


def test_a_file_in_parsed_without_a_report_is_parsed_not_a_retry(env):
    a = env.file("acme/c1/SN1/a.tsv")
    job = env.queue(INGEST, path=str(a))
    env.env["FAKE_MODE"] = "moved-then-killed"
    env.runner.run_due()
    assert env.spool.pending() == [] and (a.parent / "parsed" / "a.tsv").exists()
    [line] = [line for line in env.uploads_log() if f"job={job.id}" in line]
    assert "result=parsed" in line and "left no report" in line


def test_the_outcome_is_logged_before_the_job_leaves_the_queue(env):
    """A job gone from jobs/ always has its line in uploads.log (a kill in between loses no line)."""
    a = env.file("acme/c1/SN1/a.tsv")
    job = env.queue(INGEST, path=str(a))
    seen = []
    remove = env.spool.remove

    def observed_remove(j):
        seen.append("\n".join(env.uploads_log()))
        remove(j)

    env.spool.remove = observed_remove
    env.runner.run_due()
    assert len(seen) == 1 and f"job={job.id} result=parsed" in seen[0]


def test_serve_does_nothing_while_another_worker_holds_the_lock(env):
    a = env.file("acme/c1/SN1/a.tsv")
    env.queue(INGEST, path=str(a))
    fd = workerlock.try_lock(env.settings.spool_dir)
    try:
        assert workerlock.try_lock(env.settings.spool_dir) is None
        assert worker.serve(env.settings, None) == 0
    finally:
        workerlock.release(fd)
    assert len(env.spool.pending()) == 1 and a.exists()
    assert "another worker is running" in (env.settings.log_dir / "worker.log").read_text()


def test_the_worker_stays_for_a_job_due_soon_but_not_for_a_late_one(env):
    assert worker.wait_for_due(env.spool, 5) is False  # nothing pending: leave at once
    soon = Job.new(SCAN)
    soon.next_try = time.time() + 0.3
    env.spool.add(soon)
    started = time.monotonic()
    assert worker.wait_for_due(env.spool, 5) is True
    assert 0.25 <= time.monotonic() - started < 2
    soon.next_try = time.time() + 30
    env.spool.update(soon)
    started = time.monotonic()
    assert worker.wait_for_due(env.spool, 5) is False
    assert time.monotonic() - started < 0.5


def test_recorded_events_are_checked_and_their_jobs_run(env):
    a = env.file("acme/c1/SN1/a.tsv")
    event_id = env.spool.record_event(
        {
            "SFTPGO_ACTION": "upload",
            "SFTPGO_ACTION_PATH": str(a),
            "SFTPGO_ACTION_STATUS": "1",
            "SFTPGO_ACTION_USERNAME": "acme",
        }
    )
    env.runner.run_due()
    assert env.spool.events() == [] and env.spool.pending() == []
    assert (a.parent / "parsed" / "a.tsv").exists()
    log = env.uploads_log()
    assert f"job={event_id} result=queued" in log[0] and f"job={event_id} result=parsed" in log[1]


def test_events_are_checked_while_a_long_job_runs(env):
    import threading

    env.queue(PROVISION, company="acme")
    env.env["FAKE_MODE"] = "slow"
    late = env.file("acme/c1/SN1/late.tsv")
    timer = threading.Timer(
        0.4,
        env.spool.record_event,
        [{"SFTPGO_ACTION": "upload", "SFTPGO_ACTION_STATUS": "2", "SFTPGO_ACTION_PATH": str(late)}],
    )
    timer.start()
    env.runner.run_due()
    timer.join()
    log = env.uploads_log()
    assert "result=ignored" in log[0] and "result=provisioned" in log[1]  # logged during the playbook


def test_a_handed_over_descriptor_counts_only_if_it_is_the_locked_lock_file(env):
    spool_dir = env.settings.spool_dir
    fd = workerlock.try_lock(spool_dir)
    other = os.open(env.tmp / "calls.jsonl", os.O_RDWR | os.O_CREAT)
    try:
        assert workerlock.holds_lock(fd, spool_dir)
        assert not workerlock.holds_lock(other, spool_dir)  # some other file
        second = os.open(workerlock.lock_path(spool_dir), os.O_RDWR)
        assert not workerlock.holds_lock(second, spool_dir)  # the lock file, but not locked by us
        os.close(second)
    finally:
        os.close(other)
        workerlock.release(fd)


def test_a_worker_pass_delivers_the_catalogue_outbox(tmp_path):
    """A publication queued while the config API was down reaches it at the worker's next pass
    (the systemd timer's `worker run`), even with no upload in between."""
    from powerview.delivery.outbox import Outbox

    from config_api_server import ConfigAPI

    with ConfigAPI(tmp_path / "api.sqlite3") as api:
        env_file = tmp_path / "w.env"
        env_file.write_text(
            f"POWERVIEW_SPOOL_DIR={tmp_path}/spool\nPOWERVIEW_LOG_DIR={tmp_path}/logs\n"
            f"POWERVIEW_DATA_DIR={tmp_path}\nCONFIG_API_URL={api.url}\n"
        )
        body = {
            "campaign": "c1",
            "channels": [
                {
                    "fieldId": "M1_U1_V",
                    "channelId": "M1_U1",
                    "channelUnit": "V",
                    "channelLabel": "U1",
                    "deviceMasterSn": "1",
                }
            ],
        }
        outbox = Outbox(tmp_path / "spool" / "outbox" / "catalogue")
        outbox.put({"bucket": "acme", "body": body, "file": "/x.tsv", "created": "2026-01-01T00:00:00Z"})
        settings = load(env_file, environ={})
        assert worker.serve(settings, env_file) == 0
        assert outbox.waiting() == []
        catalogue = requests.get(f"{api.url}/buckets/acme/channels", timeout=5).json()
        assert [c["fieldId"] for c in catalogue] == ["M1_U1_V"]


def test_a_job_scheduled_by_a_clock_a_year_ahead_runs_once_the_clock_is_fixed(tmp_path):
    """The clock jumped a year ahead during an outage and set the retry then; once the clock is
    fixed, `worker run` (a process) takes the job at once instead of waiting a year."""
    env_file = tmp_path / "w.env"
    env_file.write_text(
        f"POWERVIEW_SPOOL_DIR={tmp_path}/spool\nPOWERVIEW_LOG_DIR={tmp_path}/logs\nPOWERVIEW_DATA_DIR={tmp_path}/data\n"
    )
    spool = Spool(tmp_path / "spool").ensure()
    year = 365 * 86400
    late = Job.new(INGEST, {"action": "upload"}, path=str(tmp_path / "data/acme/c1/SN1/gone.tsv"))
    late.next_try, late.attempts = time.time() + year, 3
    spool.add(late)
    soon = Job.new(INGEST, {"action": "upload"}, path=str(tmp_path / "data/acme/c1/SN1/later.tsv"))
    soon.next_try = time.time() + 600  # a real backoff within the horizon: still waits
    spool.add(soon)
    result = samples.run_worker(env_file, "run")
    assert result.returncode == 0, result.stderr
    assert [job.id for job in spool.pending()] == [soon.id]
    log = (tmp_path / "logs" / uploadlog.LOG_NAME).read_text()
    assert f"job={late.id} result=gone" in log and soon.id not in log


def test_the_previous_releases_timer_command_still_runs_the_worker(tmp_path):
    """`python -m powerview.operations.worker run`, as the previous release's docs put it in
    systemd timers and cron, runs the due jobs (it must not import the module and exit 0)."""
    env_file = tmp_path / "w.env"
    env_file.write_text(
        f"POWERVIEW_SPOOL_DIR={tmp_path}/spool\nPOWERVIEW_LOG_DIR={tmp_path}/logs\nPOWERVIEW_DATA_DIR={tmp_path}/data\n"
    )
    spool = Spool(tmp_path / "spool").ensure()
    job = Job.new(INGEST, {"action": "upload"}, path=str(tmp_path / "data/acme/c1/SN1/gone.tsv"))
    spool.add(job)
    result = samples.run_worker(env_file, "run", module="powerview.operations.worker")
    assert result.returncode == 0, result.stderr
    assert spool.pending() == []
    assert f"job={job.id} result=gone" in (tmp_path / "logs" / uploadlog.LOG_NAME).read_text()
    listed = samples.run_worker(env_file, "list", module="powerview.operations.worker")
    assert listed.returncode == 0 and "0 pending job(s)" in listed.stderr
