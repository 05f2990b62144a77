"""The hook's decisions: which SFTPGo event becomes which job, and what is ignored or refused."""

from __future__ import annotations

import json

import pytest

from powerview.core.settings import load_worker as load
from powerview.operations import hook, uploadlog, workerlock
from powerview.operations.spool import INGEST, PROVISION, SCAN, Spool


@pytest.fixture
def env(tmp_path):
    data = tmp_path / "data"
    (data / "acme" / "c1" / "SN1").mkdir(parents=True)
    return {
        "POWERVIEW_DATA_DIR": str(data),
        "POWERVIEW_LOG_DIR": str(tmp_path / "logs"),
        "POWERVIEW_SPOOL_DIR": str(tmp_path / "spool"),
    }


@pytest.fixture
def settings(tmp_path, env):
    return load(tmp_path / "no.env", environ=env)


@pytest.fixture
def data(settings):
    return settings.data_dir


def tsv(data, relative, text="x"):
    path = data / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def upload(path, status="1", **extra):
    return {"action": "upload", "path": str(path), "status": status, "user": "acme", **extra}


def test_a_complete_upload_at_device_depth_is_queued(settings, data):
    path = tsv(data, "acme/c1/SN1/f.tsv")
    decision = hook.decide(upload(path), settings)
    assert decision.result == hook.QUEUED
    assert (decision.job.kind, decision.job.path) == (INGEST, str(path.resolve()))
    assert decision.job.event["user"] == "acme"


@pytest.mark.parametrize(
    "status, text", [("2", "generic error"), ("3", "quota exceeded"), ("0", "unknown status"), ("", "missing")]
)
def test_failed_or_partial_uploads_are_ignored(settings, data, status, text):
    path = tsv(data, "acme/c1/SN1/f.tsv")
    decision = hook.decide(upload(path, status), settings)
    assert (decision.result, decision.job) == (hook.IGNORED, None)
    assert text in decision.reason


@pytest.mark.parametrize(
    "relative, reason",
    [
        ("acme/c1/SN1/f.csv", "not a .tsv"),
        ("acme/c1/SN1/f.tsv.filepart", "not a .tsv"),
        ("acme/c1/SN1/parsed/f.tsv", "already processed"),
        ("acme/c1/SN1/error/f.tsv", "already processed"),
        ("acme/c1/f.tsv", "depth"),
        ("acme/c1/SN1/deeper/f.tsv", "depth"),
        ("acme/c1/SN1/.f.tsv", "hidden"),
    ],
)
def test_other_files_are_ignored(settings, data, relative, reason):
    path = tsv(data, relative)
    decision = hook.decide(upload(path), settings)
    assert (decision.result, decision.job) == (hook.IGNORED, None)
    assert reason in decision.reason


def test_a_file_gone_before_the_hook_ran_is_ignored(settings, data):
    decision = hook.decide(upload(data / "acme/c1/SN1/missing.tsv"), settings)
    assert decision.result == hook.IGNORED and "no such file" in decision.reason


@pytest.mark.parametrize("relative", ["acme/c1/SN1/../SN1/f.tsv", "acme/c1/SN1/../../../../etc/f.tsv"])
def test_dot_dot_is_refused(settings, data, relative):
    tsv(data, "acme/c1/SN1/f.tsv")
    decision = hook.decide(upload(f"{data}/{relative}"), settings)
    assert (decision.result, decision.job) == (hook.REFUSED, None)
    assert "'..'" in decision.reason


def test_outside_the_data_folder_is_refused(settings, tmp_path):
    outside = tmp_path / "elsewhere" / "a" / "b" / "c" / "f.tsv"
    outside.parent.mkdir(parents=True)
    outside.write_text("x")
    decision = hook.decide(upload(outside), settings)
    assert decision.result == hook.REFUSED and "outside" in decision.reason


def test_a_symlink_out_of_the_data_folder_is_refused(settings, data, tmp_path):
    secret = tmp_path / "secret.tsv"
    secret.write_text("x")
    link = data / "acme/c1/SN1/link.tsv"
    link.symlink_to(secret)
    decision = hook.decide(upload(link), settings)
    assert decision.result == hook.REFUSED and "outside" in decision.reason
    (data / "acme/c1/EVIL").symlink_to(tmp_path, target_is_directory=True)
    decision = hook.decide(upload(data / "acme/c1/EVIL/secret.tsv"), settings)
    assert decision.result == hook.REFUSED


@pytest.mark.parametrize(
    "company, campaign, device",
    [
        ("acme", "c1", "SN $(touch pwned)"),
        ("acme", "c\x1b[2Jid", "SN1"),
        ("acme", "{{ lookup('pipe', 'id') }}", "SN1"),
        ("acme", "c1", "SN é"),
        ("a'b", "c1", "SN1"),
        ("_internal", "c1", "SN1"),
        ("acme", "c1", "S N"),
    ],
)
def test_names_against_the_rules_are_refused(settings, data, company, campaign, device):
    path = tsv(data, f"{company}/{campaign}/{device}/f.tsv")
    decision = hook.decide(upload(path), settings)
    assert (decision.result, decision.job) == (hook.REFUSED, None)
    assert "name" in decision.reason


@pytest.mark.parametrize("campaign", ["Campagne été 2025", "L'usine", "c`id` $(touch pwned) ;x", "Zone=1, bâtiment B"])
def test_campaign_names_people_type_are_queued_with_the_exact_name(settings, data, campaign):
    path = tsv(data, f"acme/{campaign}/SN1/f.tsv")
    decision = hook.decide(upload(path), settings)
    assert decision.result == hook.QUEUED and decision.job.path == str(path)
    decision = hook.decide({"action": "mkdir", "path": str(path.parent.parent)}, settings)
    assert decision.result == hook.QUEUED
    assert (decision.job.company, decision.job.campaign) == ("acme", campaign)


def test_odd_file_names_are_data_not_code(settings, data):
    path = tsv(data, "acme/c1/SN1/a $(touch pwned) `id` \"q\" 's'.tsv")
    decision = hook.decide(upload(path), settings)
    assert decision.result == hook.QUEUED and decision.job.path == str(path)


def test_rename_queues_the_target(settings, data):
    final = tsv(data, "acme/c1/SN1/f.tsv")
    event = {"action": "rename", "path": str(final) + ".filepart", "target": str(final)}
    decision = hook.decide(event, settings)
    assert (decision.result, decision.job.path) == (hook.QUEUED, str(final))
    event = {"action": "rename", "path": str(final), "target": str(final) + ".old"}
    assert hook.decide(event, settings).result == hook.IGNORED


@pytest.mark.parametrize("event", [{"action": "upload"}, {}])
def test_upload_without_path_or_no_action_is_a_scan(settings, event):
    decision = hook.decide(event, settings)
    assert decision.result == hook.QUEUED and decision.job.kind == SCAN


def test_post_disconnect_variables_are_read():
    event = hook.read_event(
        {"SFTPGO_CONNECTION_USERNAME": "acme", "SFTPGO_CONNECTION_PROTOCOL": "SSH", "SFTPGO_CONNECTION_IP": "10.0.0.1"}
    )
    assert event == {"user": "acme", "protocol": "SSH", "ip": "10.0.0.1"}


@pytest.mark.parametrize(
    "relative, expected",
    [
        ("acme", {"company": "acme", "campaign": None}),
        ("acme/c1", {"company": "acme", "campaign": "c1"}),
    ],
)
def test_mkdir_of_a_company_or_campaign_queues_provisioning(settings, data, relative, expected):
    (data / relative).mkdir(parents=True, exist_ok=True)
    decision = hook.decide({"action": "mkdir", "path": str(data / relative)}, settings)
    assert decision.result == hook.QUEUED and decision.job.kind == PROVISION
    assert {"company": decision.job.company, "campaign": decision.job.campaign} == expected


@pytest.mark.parametrize("relative", ["", "acme/c1/SN1", "acme/c1/SN1/parsed"])
def test_mkdir_elsewhere_is_ignored(settings, data, relative):
    (data / relative).mkdir(parents=True, exist_ok=True)
    decision = hook.decide({"action": "mkdir", "path": str(data / relative)}, settings)
    assert (decision.result, decision.job) == (hook.IGNORED, None)


@pytest.mark.parametrize(
    "relative", ["x$(touch pwned)", "Acme corp", "acme/c\x7f1", "acme/{% x %}", "acme/.hidden", "_internal"]
)
def test_mkdir_with_bad_names_is_refused(settings, data, relative):
    (data / relative).mkdir(parents=True, exist_ok=True)
    decision = hook.decide({"action": "mkdir", "path": str(data / relative)}, settings)
    assert (decision.result, decision.job) == (hook.REFUSED, None)


def test_mkdir_out_of_the_data_folder_is_refused(settings, data, tmp_path):
    decision = hook.decide({"action": "mkdir", "path": str(data / "acme" / ".." / "..")}, settings)
    assert decision.result == hook.REFUSED
    decision = hook.decide({"action": "mkdir", "path": str(tmp_path / "other")}, settings)
    assert decision.result == hook.REFUSED


@pytest.mark.parametrize("action", ["download", "delete", "rmdir", "first-upload", "ssh_cmd"])
def test_other_actions_are_ignored(settings, data, action):
    path = tsv(data, "acme/c1/SN1/f.tsv")
    decision = hook.decide({"action": action, "path": str(path), "status": "1"}, settings)
    assert (decision.result, decision.job) == (hook.IGNORED, None)


def test_handle_stores_the_job_with_the_event_id_and_logs_one_line(settings, data):
    path = tsv(data, "acme/c1/SN1/f.tsv")
    environ = {
        "SFTPGO_ACTION": "upload",
        "SFTPGO_ACTION_PATH": str(path),
        "SFTPGO_ACTION_STATUS": "1",
        "SFTPGO_ACTION_USERNAME": "acme",
    }
    spool = Spool(settings.spool_dir).ensure()
    decision = hook.handle(environ, settings, spool, "20260101T000000.000000Z-abcd")
    [job] = spool.pending()
    assert job.id == decision.job.id == "20260101T000000.000000Z-abcd" and job.path == str(path)
    [line] = (settings.log_dir / uploadlog.LOG_NAME).read_text().splitlines()
    assert f"job={job.id}" in line and "result=queued" in line and "action=upload" in line and "user=acme" in line


def test_recorded_events_become_jobs_and_log_lines_then_go(settings, data):
    spool = Spool(settings.spool_dir).ensure()
    good = tsv(data, "acme/c1/SN1/f.tsv")
    ids = [
        spool.record_event(
            {
                "SFTPGO_ACTION": "upload",
                "SFTPGO_ACTION_PATH": str(good),
                "SFTPGO_ACTION_STATUS": "1",
                "HOME": "/root",
                "SFTPGO_DATA_PROVIDER__PASSWORD": "x",
            }
        ),
        spool.record_event({"SFTPGO_ACTION": "upload", "SFTPGO_ACTION_PATH": str(good), "SFTPGO_ACTION_STATUS": "2"}),
        spool.record_event({"SFTPGO_ACTION": "mkdir", "SFTPGO_ACTION_PATH": f"{data}/../x"}),
    ]
    assert [p.name for p in spool.events()] == [f"{i}.event" for i in ids]
    assert b"PASSWORD" not in spool.events()[0].read_bytes() and b"HOME" not in spool.events()[0].read_bytes()
    assert hook.process_events(spool, settings) == 3
    assert spool.events() == []
    assert [j.id for j in spool.pending()] == [ids[0]]
    lines = (settings.log_dir / uploadlog.LOG_NAME).read_text().splitlines()
    assert ["result=queued" in lines[0], "result=ignored" in lines[1], "result=refused" in lines[2]] == [True] * 3


def test_an_event_file_as_the_shell_writes_it(tmp_path):
    path = tmp_path / "e.event"
    path.write_bytes(b"SFTPGO_ACTION=upload\0SFTPGO_ACTION_PATH=/d/a\nb=c \xff.tsv\0OTHER=1\0")
    assert Spool.read_event(path) == {"SFTPGO_ACTION": "upload", "SFTPGO_ACTION_PATH": "/d/a\nb=c \udcff.tsv"}


def test_an_event_that_cannot_be_checked_is_set_aside(settings, data, monkeypatch):
    spool = Spool(settings.spool_dir).ensure()
    event_id = spool.record_event(
        {"SFTPGO_ACTION": "upload", "SFTPGO_ACTION_PATH": "/x.tsv", "SFTPGO_ACTION_STATUS": "1"}
    )

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(hook, "decide", broken)
    assert hook.process_events(spool, settings) == 0
    assert spool.events() == [] and (spool.failed_dir / f"{event_id}.event").exists()
    assert "disk full" in (settings.log_dir / uploadlog.LOG_NAME).read_text()


def test_main_records_the_event_and_starts_the_worker(settings, monkeypatch):
    for name, value in (
        ("POWERVIEW_DATA_DIR", settings.data_dir),
        ("POWERVIEW_LOG_DIR", settings.log_dir),
        ("POWERVIEW_SPOOL_DIR", settings.spool_dir),
    ):
        monkeypatch.setenv(name, str(value))
    kicks = []
    monkeypatch.setattr(workerlock, "kick", lambda *args: kicks.append(args))
    assert hook.main({"SFTPGO_ACTION": "mkdir", "SFTPGO_ACTION_PATH": "/x"}) == 0
    [event] = Spool(settings.spool_dir).events()
    assert Spool.read_event(event) == {"SFTPGO_ACTION": "mkdir", "SFTPGO_ACTION_PATH": "/x"}
    assert len(kicks) == 1


def test_log_values_cannot_forge_lines():
    line = uploadlog.format_line(action="upload", path='/d/a "b"\nX result=queued.tsv', result="ignored")
    assert line.count("\n") == 1 and line.endswith("\n")
    fields = line.split(" ", 1)[1]
    assert fields.startswith("action=upload path=") and fields.rstrip().endswith("result=ignored")
    assert json.dumps('/d/a "b"\nX result=queued.tsv') in line


def test_main_returns_0_even_on_configuration_errors(tmp_path, monkeypatch):
    monkeypatch.setenv("POWERVIEW_SETTLE_SECONDS", "soon")
    monkeypatch.setenv("POWERVIEW_SPOOL_DIR", str(tmp_path / "spool"))
    assert hook.main({"SFTPGO_ACTION": "upload"}) == 0
    assert not (tmp_path / "spool").exists()


def test_an_upload_named_parsed_is_ignored_as_the_deployed_hook_did(settings, data):
    path = tsv(data, "acme/c1/SN1/PARSED_T302_260303_031500.tsv")
    decision = hook.decide(upload(path), settings)
    assert (decision.result, decision.job) == (hook.IGNORED, None)
    assert "PARSED_" in decision.reason
    # only the prefix: a name merely containing it is ingested
    other = tsv(data, "acme/c1/SN1/T302_PARSED_1.tsv")
    assert hook.decide(upload(other), settings).result == hook.QUEUED
