"""The whole flow of ARCHITECTURE.md with every real piece that runs here: SFTPGo's calls to the
real on-upload.sh, the real worker, the real create_grafana_resources.yml through the real
ansible-playbook, manage_influx_tokens.py, tsv_parser.py — against the Grafana and InfluxDB 2
stand-ins. A campaign folder appears, then a logger uploads a file: the company gets its Grafana
resources, the file's points land in its bucket, and the datasource's token reads them."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import requests

import samples
from deployment import make_deployment
from samples import wait_for
from stand_ins.grafana import GrafanaStandIn
from stand_ins.influxdb2 import InfluxDB2StandIn


@pytest.fixture
def deployment(tmp_path: Path):
    with GrafanaStandIn() as grafana, InfluxDB2StandIn() as influx:
        project, srv = make_deployment(tmp_path, grafana, influx)
        yield project, srv, grafana, influx


def sftpgo(project: Path, **variables: str) -> float:
    started = time.monotonic()
    result = subprocess.run(
        ["env", "-i", *(f"{k}={v}" for k, v in variables.items()), str(project / "on-upload.sh")],
        capture_output=True,
        timeout=30,
        cwd="/",
    )
    assert result.returncode == 0, result.stderr
    return time.monotonic() - started


def test_campaign_folder_then_upload_gives_grafana_resources_and_readable_points(deployment):
    project, srv, grafana, influx = deployment
    campaign = srv / "data" / "acme" / "camp_2026"
    campaign.mkdir(parents=True)
    assert sftpgo(project, SFTPGO_ACTION="mkdir", SFTPGO_ACTION_PATH=str(campaign)) < 2

    device = campaign / "02009001"
    device.mkdir()
    upload = device / "T302_260303_031500.tsv"
    shutil.copy(samples.EXAMPLES / "demo_energie/audit_2026/02009001/T302_260303_031500.tsv", upload)
    assert (
        sftpgo(
            project,
            SFTPGO_ACTION="upload",
            SFTPGO_ACTION_PATH=str(upload),
            SFTPGO_ACTION_STATUS="1",
            SFTPGO_ACTION_USERNAME="acme",
        )
        < 2
    )

    wait_for(
        lambda: (device / "parsed" / upload.name).exists()
        and grafana.dashboards.get("powerview_acme")
        and not list((srv / "spool" / "jobs").glob("*.json"))
        # the job file goes before its line is written: wait for the lines too
        and "result=provisioned" in (srv / "logs" / "uploads.log").read_text()
        and "result=parsed" in (srv / "logs" / "uploads.log").read_text(),
        180,
        "provisioning and ingestion",
    )
    uploads_log = (srv / "logs" / "uploads.log").read_text()
    assert "action=provision path=acme/camp_2026" in uploads_log and "result=provisioned" in uploads_log
    assert "result=parsed" in uploads_log
    assert len(influx.points("acme")) == 870

    team = grafana.team_by_name("acme")
    datasource = grafana.datasource_by_name("influxdb_acme")
    assert team and datasource and datasource["jsonData"]["defaultBucket"] == "acme"
    assert grafana.user_by_login("user_acme")["id"] in grafana.team_members[team["id"]]
    assert (srv / "data" / "acme" / ".company.created").exists()

    # the datasource's token reads the company's points, and cannot write
    token = grafana.datasource_secrets[datasource["id"]]["token"]
    answer = requests.post(
        f"{influx.url}/api/v2/query",
        params={"org": influx.org},
        headers={"Authorization": f"Token {token}", "Content-Type": "application/vnd.flux"},
        data='from(bucket: "acme") |> range(start: 0)',
        timeout=10,
    )
    assert answer.status_code == 200 and "M02009001_U1_V" in answer.text
    refused = requests.post(
        f"{influx.url}/api/v2/write",
        params={"org": influx.org, "bucket": "acme"},
        headers={"Authorization": f"Token {token}"},
        data=b"x f=1 1",
        timeout=10,
    )
    assert refused.status_code == 403

    password_file = srv / "secrets" / "grafana_user_acme.password"
    for secret in (srv / "secrets").iterdir():  # the password and the record of user owners (issue 17)
        assert secret.stat().st_mode & 0o077 == 0, secret
    assert password_file.read_text().strip() not in (srv / "logs" / "worker.log").read_text()
    report = json.loads(next((srv / "logs" / "reports").glob("*.json")).read_text())
    assert report["files"][0]["status"] == "success"
