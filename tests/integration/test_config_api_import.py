"""`powerview-config-api import` (issue 14 E): a stand-in plays the deployed API 0.3.2, Grafana's
stand-in holds the data sources the deployed playbooks made (jsonData.clientId, defaultBucket),
and our real API under uvicorn receives the data. Dry run writes nothing; a second run changes
nothing; every clientId of Grafana answers 200 afterwards."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys

import pytest
import requests

import samples
from config_api_server import ConfigAPI
from stand_ins.grafana import GrafanaStandIn
from stand_ins.old_config_api import OldConfigApiStandIn

TOKEN = "import-t0ken"
U1 = {
    "fieldId": "M02001283_U1_V",
    "channelId": "M02001283_U1",
    "channelUnit": "V",
    "channelLabel": "U1",
    "deviceMasterSn": "02001283",
}
CH4 = {
    "fieldId": "M02001283_Ch4_W",
    "channelId": "M02001283_Ch4",
    "channelUnit": "W",
    "channelLabel": "Ch4",
    "deviceMasterSn": "02001283",
}
OLD_CONFIGS = {
    ("acme_acme", "camp_base"): [
        {**U1, "campaign": "camp_base", "displayName": "U1", "visible": True, "unit": "V", "order": 0, "color": None},
        {
            **CH4,
            "campaign": "camp_base",
            "displayName": "Pompe",
            "visible": False,
            "unit": "W",
            "order": 1,
            "color": "#ff0000",
        },
    ],
    ("acme_acme", "camp_old"): [{**U1, "campaign": "camp_old", "displayName": "Phase 1", "order": 3}],
    ("acme_jdupont", "camp_2"): [{**CH4, "campaign": "camp_2", "visible": False}],
}
OLD_CATALOGUE = {
    "acme": [{**U1, "campaign": "camp_base"}, {**CH4, "campaign": "camp_base"}, {**U1, "campaign": "camp_old"}]
}
# the data sources the deployed playbooks left (create_grafana_resources.yml, add_grafana_user_to_team.yml)
DATASOURCES = [
    ("influxdb_acme", {"defaultBucket": "acme", "clientId": "acme_acme"}),
    ("influxdb_acme_jdupont", {"defaultBucket": "acme", "clientId": "acme_jdupont"}),
    ("influxdb_beta", {"defaultBucket": "beta", "clientId": "beta_beta"}),
    ("series-config", {}),  # the JSON data source of the config API: no clientId
]


@pytest.fixture
def deployment(tmp_path):
    data = tmp_path / "data"
    for folder in ("acme/camp_base/02001283", "acme/camp_2/02001283", "beta/essai"):
        (data / folder).mkdir(parents=True)
    # the config-api-data volume as the old image left it: its own SQLite file at the top
    volume = tmp_path / "volume"
    (volume / "powerview-2").mkdir(parents=True)
    with sqlite3.connect(volume / "powerview-config-api.sqlite3") as old_db:
        old_db.execute("CREATE TABLE series_config (client_id TEXT, campaign TEXT, field_id TEXT)")
    old_bytes = (volume / "powerview-config-api.sqlite3").read_bytes()
    with (
        GrafanaStandIn() as grafana,
        OldConfigApiStandIn(OLD_CONFIGS, OLD_CATALOGUE) as old,
        ConfigAPI(volume / "powerview-2" / "config-api.sqlite3", token=TOKEN) as new,
    ):
        for name, json_data in DATASOURCES:
            requests.post(
                f"{grafana.url}/api/datasources",
                json={
                    "name": name,
                    "type": "influxdb",
                    "access": "proxy",
                    "url": "http://influxdb:8086",
                    "jsonData": json_data,
                },
                auth=("admin", "admin-password"),
                timeout=5,
            ).raise_for_status()
        env_file = tmp_path / "import.env"
        env_file.write_text(
            f"GRAFANA_URL={grafana.url}\nGRAFANA_USERNAME=admin\nGRAFANA_PASSWORD=admin-password\n"
            f"CONFIG_API_URL={new.url}\nCONFIG_API_TOKEN={TOKEN}\nPOWERVIEW_DATA_DIR={data}\n"
        )
        yield old, new, env_file
    assert (volume / "powerview-config-api.sqlite3").read_bytes() == old_bytes  # never touched


def run_import(env_file, *args) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "powerview_config_api", "import", "--env-file", str(env_file), *args],
        capture_output=True,
        text=True,
        env={"PATH": os.environ["PATH"], "PYTHONPATH": str(samples.PROJECT_DIR)},
        cwd=samples.PROJECT_DIR,
        timeout=60,
    )


def configs(new: ConfigAPI, client_id: str, campaign: str) -> dict[str, dict]:
    answer = requests.get(
        f"{new.url}/clients/{client_id}/series-config/configs", params={"campaign": campaign}, timeout=5
    )
    assert answer.status_code == 200, answer.text
    return {entry["fieldId"]: entry for entry in answer.json()}


def test_dry_run_then_import_then_nothing_left_to_do(deployment):
    old, new, env_file = deployment
    old_url = ("--from", old.url)

    dry = run_import(env_file, *old_url, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "3 client(s) in Grafana's data sources" in dry.stdout
    for client_id in ("acme_acme", "acme_jdupont", "beta_beta"):
        assert f"client {client_id} (bucket " in dry.stdout and "would register" in dry.stdout
        assert requests.get(f"{new.url}/clients/{client_id}", timeout=5).status_code == 404
    assert "acme_acme/camp_base: would save 1 setting(s), 1 unchanged" in dry.stdout
    assert requests.get(f"{new.url}/buckets/acme/channels", timeout=5).json() == []

    done = run_import(env_file, *old_url)
    assert done.returncode == 0, done.stderr
    assert "acme_acme/camp_base: saved 1 setting(s), 1 unchanged" in done.stdout  # as the dry run said
    # every clientId of Grafana is known: no deployed dashboard gets 404 after the switch
    for client_id, bucket in (("acme_acme", "acme"), ("acme_jdupont", "acme"), ("beta_beta", "beta")):
        assert requests.get(f"{new.url}/clients/{client_id}", timeout=5).json() == {
            "clientId": client_id,
            "bucket": bucket,
        }
    base = configs(new, "acme_acme", "camp_base")
    assert (base["M02001283_Ch4_W"]["displayName"], base["M02001283_Ch4_W"]["visible"]) == ("Pompe", False)
    assert (base["M02001283_Ch4_W"]["color"], base["M02001283_Ch4_W"]["saved"]) == ("#ff0000", True)
    assert base["M02001283_U1_V"]["saved"] is False  # the old values were the defaults: nothing to save
    # a campaign known only to the old catalogue, and one known only to the data folder
    assert configs(new, "acme_acme", "camp_old")["M02001283_U1_V"]["displayName"] == "Phase 1"
    assert configs(new, "acme_acme", "camp_old")["M02001283_U1_V"]["order"] == 3
    assert configs(new, "acme_jdupont", "camp_2")["M02001283_Ch4_W"]["visible"] is False
    assert configs(new, "acme_jdupont", "camp_base")["M02001283_Ch4_W"]["visible"] is True  # per client
    assert configs(new, "beta_beta", "essai") == {}
    assert {method for method, _, _ in old.requests} == {"GET"}

    again = run_import(env_file, *old_url)
    assert again.returncode == 0, again.stderr
    assert again.stdout.count(": already registered") == 3
    assert "registered\n" not in again.stdout.replace("already registered", "")
    assert "channel(s) to the catalogue" not in again.stdout
    assert [line for line in again.stdout.splitlines() if "setting(s)" in line and " saved 0 " not in line] == []


def test_the_old_api_down_is_named_and_the_rest_is_done(deployment):
    old, new, env_file = deployment
    old.stop()
    done = run_import(env_file, "--from", old.url)
    assert done.returncode == 1
    assert "cannot connect" in done.stderr
    assert requests.get(f"{new.url}/clients/acme_jdupont", timeout=5).status_code == 200  # still registered


def test_same_api_twice_is_refused(deployment):
    old, new, env_file = deployment
    done = run_import(env_file, "--from", new.url + "/")
    assert done.returncode == 2 and "--from and --to are the same API" in done.stderr
