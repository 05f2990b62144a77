"""The real playbook and the real manage_influx_tokens.py on a company the deployed system
provisioned: its read+write token is adopted (never a second token beside it) until
`manage_influx_tokens.py --migrate` replaces it; then the playbook keeps the read-only one."""

from __future__ import annotations

import subprocess
import sys

import pytest
from deployed_tokens import deployed_datasource, deployed_token
from test_grafana_playbooks import PROJECT, Lab


@pytest.fixture()
def deployed_lab(tmp_path):
    lab = Lab(tmp_path)
    auth = deployed_token(lab.influx, "acme")
    deployed_datasource(lab.grafana, "acme", "acme", auth["token"], own=True)
    (lab.data / "acme").mkdir()
    yield lab, auth
    lab.stop()


def described(lab: Lab) -> list[dict]:
    return [a for a in lab.influx.authorizations if a["description"] == "powerview_token_for_bucket_acme"]


def datasource_token(lab: Lab) -> str:
    ds = lab.grafana.datasource_by_name("influxdb_acme")
    return lab.grafana.datasource_secrets[ds["id"]]["token"]


def test_provisioning_keeps_the_deployed_token_until_the_migration(deployed_lab):
    lab, auth = deployed_lab
    check = lab.run("create_grafana_resources.yml", {"company_name": "acme", "force_company": True}, "--check")
    assert check.rc == 0, check.output
    assert "create InfluxDB token" not in check.stdout
    run = lab.run("create_grafana_resources.yml", {"company_name": "acme", "force_company": True})
    assert run.rc == 0, run.output
    assert [a["id"] for a in described(lab)] == [auth["id"]]  # no second token
    assert datasource_token(lab) == auth["token"]
    assert auth["token"] not in run.output

    migrate = subprocess.run(
        [sys.executable, str(PROJECT / "manage_influx_tokens.py"), "--migrate", "--bucket", "acme"],
        env=lab.env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert migrate.returncode == 0, migrate.stderr
    [new] = described(lab)
    assert new["id"] != auth["id"] and {p["action"] for p in new["permissions"]} == {"read"}
    assert datasource_token(lab) == new["token"]
    assert migrate.stdout.startswith("acme: done;")

    again = lab.run("create_grafana_resources.yml", {"company_name": "acme", "force_company": True})
    assert again.rc == 0, again.output
    assert [a["id"] for a in described(lab)] == [new["id"]]
    assert datasource_token(lab) == new["token"]
