"""The acceptance check (powerview-acceptance, docs/acceptance.md) run end to end, as an operator
runs it, against a throw-away deployment: the real on-upload.sh, worker, tsv_parser.py and
ansible-playbook, the real config API under uvicorn, the InfluxDB 2 and Grafana stand-ins."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

import samples
from config_api_server import ConfigAPI
from deployment import make_deployment
from stand_ins.grafana import GrafanaStandIn
from stand_ins.influxdb2 import InfluxDB2StandIn

LINE = re.compile(r"(PASS|FAIL|SKIP) (A\d) (.+?) — (.+)\Z")


def acceptance(project: Path, *args: str) -> tuple[int, list[tuple[str, str, str, str]], str]:
    result = subprocess.run(
        [sys.executable, "-m", "powerview.cli.acceptance", "--project", str(project), "--timeout", "90", *args],
        capture_output=True,
        text=True,
        timeout=400,
        cwd=samples.PROJECT_DIR,
    )
    lines = result.stdout.splitlines()
    parsed = [LINE.match(line) for line in lines]
    assert all(parsed), f"lines not in the PASS|FAIL|SKIP A<n> <what> — <why> form: {lines}"
    return result.returncode, [m.groups() for m in parsed], result.stdout + result.stderr


@pytest.fixture
def stand_ins(tmp_path: Path):
    with GrafanaStandIn() as grafana, InfluxDB2StandIn() as influx, ConfigAPI(tmp_path / "config.db") as api:
        yield grafana, influx, api


def test_every_check_passes_and_the_test_company_is_removed(tmp_path, stand_ins):
    grafana, influx, api = stand_ins
    project, srv = make_deployment(tmp_path, grafana, influx, CONFIG_API_URL=api.url)
    code, checks, output = acceptance(project)

    assert code == 0, output
    assert [c for c in checks if c[0] == "FAIL"] == []
    assert [c[1] for c in checks if c[0] == "SKIP"] == ["A1"], output
    assert {c[1] for c in checks if c[0] == "PASS"} == {f"A{n}" for n in (0, 2, 3, 4, 5, 6, 7, 8, 9)}
    company = re.search(r"pvaccept_[0-9a-f]{8}", output).group()
    assert any(c[1] == "A8" and c[2].startswith(f"user_{company} opens") for c in checks if c[0] == "PASS")
    assert any(c[1] == "A3" and "catalogue" in c[2] for c in checks if c[0] == "PASS")

    # what it made, it removed: Grafana, InfluxDB (bucket, token), the data folder
    assert not grafana.teams and not grafana.folders and not grafana.dashboards and not grafana.datasources
    assert grafana.user_by_login(f"user_{company}") is None
    assert company not in influx.buckets and "powerview_meta" in influx.buckets
    assert not [a for a in influx.authorizations if company in (a.get("description") or "")]
    assert list((srv / "data").iterdir()) == []
    # ... and it went through the real pieces: SFTPGo's events, the worker's jobs
    log = (srv / "logs" / "uploads.log").read_text()
    assert f"action=provision user={company} path={company}/campaign_acceptance" in log
    assert log.count("result=parsed") == 4 and log.count("result=rejected") == 1


def test_grafana_down_fails_a0_alone_and_touches_nothing(tmp_path, stand_ins):
    grafana, influx, api = stand_ins
    project, srv = make_deployment(tmp_path, grafana, influx, CONFIG_API_URL=api.url)
    grafana.stop()
    code, checks, output = acceptance(project)

    assert code == 1, output
    failed = [c for c in checks if c[0] == "FAIL"]
    assert failed == [
        (
            "FAIL",
            "A0",
            "Grafana answers",
            f"cannot connect to {grafana.url}/api/health (connection refused or timed out)",
        )
    ], output
    assert {c[1] for c in checks if c[0] == "SKIP"} == {f"A{n}" for n in range(1, 10)}
    assert all(c[3] == "the deployment is not reachable (see A0)" for c in checks if c[0] == "SKIP" and c[1] != "A1")
    assert list((srv / "data").iterdir()) == [] and not (srv / "spool").exists()
    assert not [name for name in influx.buckets if name.startswith("pvaccept")]


def test_a_worker_that_cannot_start_fails_a2_and_the_cleanup_says_what_may_come_back(tmp_path, stand_ins):
    grafana, influx, api = stand_ins
    project, srv = make_deployment(
        tmp_path, grafana, influx, CONFIG_API_URL=api.url, POWERVIEW_VENV="/nonexistent/venv"
    )
    result = subprocess.run(
        [sys.executable, "-m", "powerview.cli.acceptance", "--project", str(project), "--timeout", "3"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=samples.PROJECT_DIR,
    )
    checks = [LINE.match(line).groups() for line in result.stdout.splitlines()]

    assert result.returncode == 1, result.stdout + result.stderr
    company = re.search(r"pvaccept_[0-9a-f]{8}", result.stdout).group()
    failed = [c[:3] for c in checks if c[0] == "FAIL"]
    assert failed == [
        ("FAIL", "A2", f"mkdir {company}/campaign_acceptance runs the provisioning"),
        ("FAIL", "A0", f"cleanup of {company} in the worker's queue"),
    ], result.stdout
    why = {c[2]: c[3] for c in checks}
    assert why[f"mkdir {company}/campaign_acceptance runs the provisioning"].startswith(
        f"no outcome for the provisioning of {company}/campaign_acceptance in uploads.log after 3 s: "
        "is the worker running?"
    )
    assert (
        "1 event(s) recorded by on-upload.sh were never read: the worker is not running"
        in why[f"cleanup of {company} in the worker's queue"]
    )
    assert [c[1] for c in checks if c[0] == "SKIP"] == ["A1"] + [f"A{n}" for n in range(3, 10)]
    # nothing was provisioned; what the run made is gone; the event waits in the spool
    assert not grafana.teams and list((srv / "data").iterdir()) == []
    assert len(list((srv / "spool" / "incoming").glob("*.event"))) == 1
