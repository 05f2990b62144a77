"""The Grafana playbooks run by the real ansible-playbook against the Grafana and InfluxDB 2 stand-ins.

Each playbook run is a subprocess with a clean environment: its own data folder, secrets folder
and settings file, so nothing of the developer's machine leaks in. Runs take seconds each:
the scenarios share runs where they can.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import stat
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

import samples
from stand_ins.grafana import GrafanaStandIn
from stand_ins.influxdb2 import InfluxDB2StandIn

PROJECT = Path(__file__).resolve().parents[2]
PLAYBOOKS = PROJECT / "grafana-automation" / "playbooks"
ADMIN = ("admin", "admin-password")
SA_TOKEN = "sa-token"


def _ansible_playbook() -> str:
    beside = Path(sys.executable).parent / "ansible-playbook"
    found = str(beside) if beside.exists() else shutil.which("ansible-playbook")
    if not found:
        samples.missing("ansible-playbook not installed (pip install -r requirements.txt)")
    return found


@dataclass
class Run:
    rc: int
    stdout: str
    stderr: str

    @property
    def recap(self) -> dict[str, int]:
        match = re.search(r"^localhost\s*:\s*(.*)$", self.stdout, re.M)
        assert match, f"no PLAY RECAP in the output:\n{self.stdout}\n{self.stderr}"
        return {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", match.group(1))}

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


class Lab:
    """A Grafana stand-in, an InfluxDB 2 stand-in and the folders of one PowerView host."""

    def __init__(self, tmp: Path, **grafana_kwargs):
        self.tmp = tmp
        self.grafana = GrafanaStandIn(**grafana_kwargs).start()
        self.influx = InfluxDB2StandIn().start()
        self.data = tmp / "data"
        self.secrets = tmp / "secrets"
        self.data.mkdir()
        self.env_file = tmp / "powerview.env"
        self.env_file.write_text("# empty: every setting comes from the environment of each run\n")

    def stop(self) -> None:
        self.grafana.stop()
        self.influx.stop()

    def env(self, **overrides: str) -> dict[str, str]:
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.tmp),
            "LANG": "C.UTF-8",
            "ANSIBLE_HOME": str(self.tmp / "ansible-home"),
            "ANSIBLE_LOCAL_TEMP": str(self.tmp / "ansible-tmp"),
            "ANSIBLE_NOCOLOR": "1",
            "POWERVIEW_ENV_FILE": str(self.env_file),
            "POWERVIEW_DATA_DIR": str(self.data),
            "POWERVIEW_SECRETS_DIR": str(self.secrets),
            "GRAFANA_URL": self.grafana.url,
            "GRAFANA_USERNAME": ADMIN[0],
            "GRAFANA_PASSWORD": ADMIN[1],
            "INFLUXDB_HOST": self.influx.url,
            "INFLUXDB_ORG": self.influx.org,
            "INFLUXDB_ADMIN_TOKEN": self.influx.admin_token,
            "INFLUXDB_URL_FOR_GRAFANA": "http://influxdb:8086",
            "TSV_INFLUX_RETRY_MAX_SECONDS": "2",
        }
        env.update(overrides)
        return {k: v for k, v in env.items() if v is not None}

    def run(self, playbook: str, extra_vars: dict, *args: str, cwd: Path = PROJECT / "grafana-automation",
            **env: str) -> Run:
        """Run a playbook as the hook's worker does: from grafana-automation/ (its ansible.cfg),
        names in a JSON file (-e @file), never on a command line."""
        vars_file = self.tmp / "vars.json"
        vars_file.write_text(json.dumps(extra_vars))
        proc = subprocess.run([_ansible_playbook(), str(PLAYBOOKS / playbook), "-e", f"@{vars_file}", *args],
                              env=self.env(**env), capture_output=True, text=True, timeout=300, cwd=cwd)
        return Run(proc.returncode, proc.stdout, proc.stderr)

    def create(self, company: str, *args: str, cwd: Path = PROJECT / "grafana-automation", **env: str) -> Run:
        return self.run("create_grafana_resources.yml", {"company_name": company}, *args, cwd=cwd, **env)

    def influx_writes(self) -> list:
        return [r for r in self.influx.requests if r.method not in ("GET", "HEAD")]


def flux(lab: Lab, token: str, query: str) -> requests.Response:
    return requests.post(f"{lab.influx.url}/api/v2/query", params={"org": lab.influx.org},
                         headers={"Authorization": f"Token {token}", "Content-Type": "application/vnd.flux"},
                         data=query.encode(), timeout=10)


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    lab = Lab(tmp_path_factory.mktemp("grafana-lab"))
    yield lab
    lab.stop()


@pytest.fixture(scope="module")
def acme(lab):
    """Company acme provisioned once (its data folder exists, as when the hook calls)."""
    (lab.data / "acme").mkdir()
    run = lab.create("acme")
    assert run.rc == 0, run.output
    return run


@pytest.fixture()
def fresh_lab(tmp_path):
    lab = Lab(tmp_path)
    yield lab
    lab.stop()


# ---- create -----------------------------------------------------------------------------------

def test_create_makes_every_resource_and_links_them(lab, acme):
    g = lab.grafana
    assert acme.recap["failed"] == 0 and acme.recap["changed"] >= 8
    assert "hosts list is empty" not in acme.stderr           # grafana-automation/ansible.cfg was read
    team = g.team_by_name("acme")
    assert team is not None
    folder = g.folders["pvfolder_acme"]
    assert folder["title"] == "acme"

    ds = g.datasource_by_name("influxdb_acme")
    assert ds["type"] == "influxdb-adecwatts-datasource"          # the production plugin by default
    assert ds["url"] == "http://influxdb:8086"                      # INFLUXDB_URL_FOR_GRAFANA
    assert ds["access"] == "proxy" and ds["isDefault"] is False
    assert ds["jsonData"]["version"] == "Flux"
    assert ds["jsonData"]["organization"] == "powerview"
    assert ds["jsonData"]["defaultBucket"] == "acme"

    dash = g.dashboards["powerview_acme"]
    assert dash["folderUid"] == "pvfolder_acme"
    assert dash["dashboard"]["title"] == "Overview acme"
    targets = [t for p in dash["dashboard"]["panels"] for t in p["targets"]]
    assert targets and all(t["datasource"]["uid"] == ds["uid"] for t in targets)
    assert all('from(bucket: "acme")' in t["query"] for t in targets)
    names = [v["name"] for v in dash["dashboard"]["templating"]["list"]]
    assert names == ["campaign", "device_master_sn", "channel_id"]

    # the team, and only the team, views the folder and the dashboard (admins always can)
    assert g.folder_acl["pvfolder_acme"] == [{"teamId": team["id"], "permission": 1}]
    assert g.dashboard_acl["powerview_acme"] == [{"teamId": team["id"], "permission": 1}]

    user = g.user_by_login("user_acme")
    assert user["name"] == "acme Default"
    assert user["id"] in g.team_members[team["id"]]


def test_datasource_token_reads_its_bucket_and_nothing_else(lab, acme):
    ds = lab.grafana.datasource_by_name("influxdb_acme")
    token = lab.grafana.datasource_secrets[ds["id"]]["token"]
    assert ds["jsonData"]["powerviewTokenId"] == next(
        a["id"] for a in lab.influx.authorizations if a["token"] == token)
    # GET never shows the secret: only secureJsonFields
    seen = requests.get(f"{lab.grafana.url}/api/datasources/name/influxdb_acme", auth=ADMIN, timeout=10).json()
    assert seen["secureJsonFields"] == {"token": True} and token not in json.dumps(seen)

    auth = next(a for a in lab.influx.authorizations if a["token"] == token)
    assert auth["description"] == "powerview_token_for_bucket_acme"
    # the company bucket and its derived buckets (issue 10), nothing else
    assert sorted((p["action"], p["resource"]["type"], p["resource"]["id"]) for p in auth["permissions"]) == \
        sorted(("read", "buckets", lab.influx.buckets[name]["id"]) for name in ("acme", "acme_1h", "acme_1d", "acme_1w"))

    requests.post(f"{lab.influx.url}/api/v2/buckets", json={"name": "other_company", "orgID": lab.influx.org_id},
                  headers={"Authorization": f"Token {lab.influx.admin_token}"}, timeout=10).raise_for_status()
    assert flux(lab, token, 'from(bucket: "acme") |> range(start: -1h)').status_code == 200
    assert flux(lab, token, 'from(bucket: "other_company") |> range(start: -1h)').status_code == 404
    # every panel query of the dashboard runs with the data source's token
    for panel in lab.grafana.dashboards["powerview_acme"]["dashboard"]["panels"]:
        assert flux(lab, token, panel["targets"][0]["query"]).status_code == 200, panel["title"]
    # read only: writing with it is refused
    write = requests.post(f"{lab.influx.url}/api/v2/write", params={"org": "powerview", "bucket": "acme"},
                          headers={"Authorization": f"Token {token}"}, data=b"electrical v=1 1", timeout=10)
    assert write.status_code == 403


def test_default_user_password_written_once_and_never_printed(lab, acme):
    path = lab.secrets / "grafana_user_acme.password"
    password = path.read_text().strip()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(lab.secrets.stat().st_mode) == 0o700
    assert len(password) >= 32
    assert lab.grafana.check_password("user_acme", password)
    assert password not in acme.output
    for secret in (ADMIN[1], lab.influx.admin_token,
                   *[s.get("token", "") for s in lab.grafana.datasource_secrets.values()]):
        assert secret and secret not in acme.output


def test_marker_written(lab, acme):
    assert (lab.data / "acme" / ".company.created").is_file()


def test_second_run_changes_nothing(lab, acme):
    before = len(lab.grafana.writes())
    auths = len(lab.influx.authorizations)
    password = (lab.secrets / "grafana_user_acme.password").read_text()
    # every company-level step again (marker ignored): all lookups, no write
    again = lab.run("create_grafana_resources.yml", {"company_name": "acme", "force_company": True})
    assert again.rc == 0, again.output
    assert again.recap["changed"] == 0, again.stdout
    assert len(lab.grafana.writes()) == before
    assert len(lab.influx.authorizations) == auths          # the token was reused
    assert (lab.secrets / "grafana_user_acme.password").read_text() == password
    assert len([t for t in lab.grafana.teams.values() if t["name"] == "acme"]) == 1
    assert len([d for d in lab.grafana.datasources.values() if d["name"] == "influxdb_acme"]) == 1


def test_campaign_run_with_marker_skips_company_steps_and_restores_the_dashboard(lab, acme):
    requests.delete(f"{lab.grafana.url}/api/dashboards/uid/powerview_acme", auth=ADMIN, timeout=10).raise_for_status()
    before = len(lab.grafana.writes())
    run = lab.run("create_grafana_resources.yml", {"company_name": "acme", "campaign_name": "camp_2"})
    assert run.rc == 0, run.output
    new_writes = [(w["method"], w["path"]) for w in lab.grafana.writes()[before:]]
    assert new_writes == [("POST", "/api/dashboards/db"), ("POST", "/api/dashboards/uid/powerview_acme/permissions")]
    assert "company-level steps skipped" in run.stdout
    assert "powerview_acme" in lab.grafana.dashboards


def test_marker_with_missing_resources_asks_for_force_then_force_repairs(lab, acme):
    g = lab.grafana
    old_team = g.team_by_name("acme")
    members = set(g.team_members[old_team["id"]])
    requests.delete(f"{g.url}/api/teams/{old_team['id']}", auth=ADMIN, timeout=10).raise_for_status()
    stopped = lab.create("acme")
    assert stopped.rc != 0
    assert "lacks the team" in stopped.output and "force_company=true" in stopped.output
    repaired = lab.run("create_grafana_resources.yml", {"company_name": "acme", "force_company": True})
    assert repaired.rc == 0, repaired.output
    team = g.team_by_name("acme")
    assert team["id"] != old_team["id"] and g.team_members[team["id"]] == members
    assert g.folder_acl["pvfolder_acme"] == [{"teamId": team["id"], "permission": 1}]
    assert g.dashboard_acl["powerview_acme"] == [{"teamId": team["id"], "permission": 1}]


def test_token_rotated_by_an_operator_is_pushed_to_the_datasource(lab, acme):
    rotate = subprocess.run([sys.executable, str(PROJECT / "manage_influx_tokens.py"), "--bucket", "acme", "--rotate"],
                            env=lab.env(), capture_output=True, text=True, timeout=60)
    assert rotate.returncode == 0, rotate.stderr
    new_token = rotate.stdout.strip()
    run = lab.run("create_grafana_resources.yml", {"company_name": "acme", "force_company": True})
    assert run.rc == 0, run.output
    ds = lab.grafana.datasource_by_name("influxdb_acme")
    assert lab.grafana.datasource_secrets[ds["id"]]["token"] == new_token
    assert run.recap["changed"] == 1   # the data source update alone


# ---- add_grafana_user_to_team -------------------------------------------------------------------

def test_add_user_to_team_creates_then_changes_nothing(lab, acme):
    user_vars = {"team_name": "acme", "user_login": "jdoe", "user_email": "jdoe@example.com",
                 "user_name": "Jane Doe", "user_password": "correct horse battery"}
    run = lab.run("add_grafana_user_to_team.yml", user_vars)
    assert run.rc == 0, run.output
    g = lab.grafana
    user = g.user_by_login("jdoe")
    assert user["email"] == "jdoe@example.com" and user["name"] == "Jane Doe"
    assert user["id"] in g.team_members[g.team_by_name("acme")["id"]]
    assert g.check_password("jdoe", "correct horse battery")
    assert "correct horse battery" not in run.output

    again = lab.run("add_grafana_user_to_team.yml", user_vars)
    assert again.rc == 0 and again.recap["changed"] == 0, again.output

    changed = lab.run("add_grafana_user_to_team.yml", {**user_vars, "user_password": "another long one"})
    assert changed.rc == 0 and changed.recap["changed"] == 1, changed.output
    assert g.check_password("jdoe", "another long one")


def test_add_user_without_password_stores_a_random_one(lab, acme):
    run = lab.run("add_grafana_user_to_team.yml", {"team_name": "acme", "user_login": "ops",
                                                    "user_email": "ops@example.com"})
    assert run.rc == 0, run.output
    path = lab.secrets / "grafana_ops.password"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert lab.grafana.check_password("ops", path.read_text().strip())


def test_add_user_to_missing_team_fails_clearly(lab, acme):
    run = lab.run("add_grafana_user_to_team.yml", {"team_name": "nobody", "user_login": "x",
                                                    "user_email": "x@example.com"})
    assert run.rc != 0
    assert "Team nobody not found" in run.output
    assert lab.grafana.user_by_login("x") is None


# ---- delete ---------------------------------------------------------------------------------------

def test_delete_removes_everything_but_the_bucket_and_can_run_again(lab, acme):
    (lab.data / "beta").mkdir()
    created = lab.create("beta")
    assert created.rc == 0, created.output
    g = lab.grafana
    token = g.datasource_secrets[g.datasource_by_name("influxdb_beta")["id"]]["token"]
    # a second dashboard in the folder goes too
    requests.post(f"{g.url}/api/dashboards/db", auth=ADMIN, timeout=10, json={
        "dashboard": {"uid": "beta_extra", "title": "Extra"}, "folderUid": "pvfolder_beta"}).raise_for_status()

    before = len(g.writes())
    check = lab.run("delete_grafana_resources.yml", {"company_name": "beta", "user_name": "user_beta"}, "--check")
    assert check.rc == 0, check.output
    assert len(g.writes()) == before and g.team_by_name("beta") and "beta_extra" in g.dashboards
    for planned in ("delete dashboard beta_extra", "delete dashboard powerview_beta", "delete folder pvfolder_beta",
                    "delete data source influxdb_beta", "delete team beta", "delete user user_beta"):
        assert planned in check.stdout
    assert (lab.data / "beta" / ".company.created").exists()

    run = lab.run("delete_grafana_resources.yml", {"company_name": "beta", "user_name": "user_beta"})
    assert run.rc == 0, run.output
    assert g.team_by_name("beta") is None
    assert "pvfolder_beta" not in g.folders
    assert "powerview_beta" not in g.dashboards and "beta_extra" not in g.dashboards
    assert g.datasource_by_name("influxdb_beta") is None
    assert g.user_by_login("user_beta") is None
    assert not (lab.secrets / "grafana_user_beta.password").exists()
    assert not (lab.data / "beta" / ".company.created").exists()
    assert "beta" in lab.influx.buckets                                  # the data stays
    assert flux(lab, token, 'from(bucket: "beta") |> range(start: -1h)').status_code == 200
    # the other company is untouched
    assert g.team_by_name("acme") and "powerview_acme" in g.dashboards and g.datasource_by_name("influxdb_acme")

    again = lab.run("delete_grafana_resources.yml", {"company_name": "beta", "user_name": "user_beta"})
    assert again.rc == 0, again.output
    assert again.recap["changed"] == 0


# ---- check mode, names, authentication ----------------------------------------------------------

def test_check_mode_on_a_fresh_company_changes_nothing(fresh_lab):
    (fresh_lab.data / "newco").mkdir()
    run = fresh_lab.create("newco", "--check", cwd=PROJECT)     # as an operator runs it, from the project
    assert run.rc == 0, run.output
    assert fresh_lab.grafana.writes() == []
    assert fresh_lab.influx_writes() == []
    assert "newco" not in fresh_lab.influx.buckets
    assert not any(a["description"].endswith("newco") for a in fresh_lab.influx.authorizations)
    assert not (fresh_lab.data / "newco" / ".company.created").exists()
    assert not fresh_lab.secrets.exists()
    for planned in ("create bucket newco", "create team newco", "create folder newco",
                    "create data source influxdb_newco", "save dashboard powerview_newco", "create user user_newco"):
        assert planned in run.stdout


def test_check_mode_on_a_provisioned_company_announces_nothing(lab, acme):
    before = len(lab.grafana.writes()), len(lab.influx_writes())
    quiet = lab.create("acme", "--check", "-e", "force_company=true")
    assert quiet.rc == 0, quiet.output
    assert quiet.recap["changed"] == 0, quiet.stdout
    assert "nothing to change" in quiet.stdout
    assert (len(lab.grafana.writes()), len(lab.influx_writes())) == before


BAD_NAMES = ["../x", "a b", "$(touch /tmp/pwned_by_powerview)", ".hidden", "", "_internal", "x" * 129, "a\"b", "a/b"]


@pytest.mark.parametrize("name", BAD_NAMES)
def test_bad_company_names_fail_before_any_api_call(lab, name):
    grafana_before, influx_before = len(lab.grafana.requests), len(lab.influx.requests)
    run = lab.create(name)
    assert run.rc != 0
    assert "not allowed" in run.output or "name" in run.output
    assert len(lab.grafana.requests) == grafana_before
    assert len(lab.influx.requests) == influx_before
    assert not Path("/tmp/pwned_by_powerview").exists()


def test_bad_campaign_name_and_missing_company_fail_before_any_api_call(lab):
    grafana_before, influx_before = len(lab.grafana.requests), len(lab.influx.requests)
    bad_campaign = lab.run("create_grafana_resources.yml", {"company_name": "acme", "campaign_name": "x;rm -rf"})
    assert bad_campaign.rc != 0 and "campaign name" in bad_campaign.output
    missing = lab.run("create_grafana_resources.yml", {"campaign_name": "c1"})
    assert missing.rc != 0 and "company_name is required" in missing.output
    bad_delete = lab.run("delete_grafana_resources.yml", {"company_name": "../etc"})
    assert bad_delete.rc != 0
    assert len(lab.grafana.requests) == grafana_before and len(lab.influx.requests) == influx_before


def test_api_token_for_org_calls_basic_auth_for_users_plain_influxdb_type(fresh_lab):
    (fresh_lab.data / "tokco").mkdir()
    # -vvv shows every module's arguments and results: the secrets must still not appear
    run = fresh_lab.create("tokco", "-vvv", GRAFANA_API_TOKEN=SA_TOKEN, GRAFANA_DATASOURCE_TYPE="influxdb")
    assert run.rc == 0, run.output
    g = fresh_lab.grafana
    assert g.datasource_by_name("influxdb_tokco")["type"] == "influxdb"
    org_calls = [r for r in g.requests if r["path"].startswith(("/api/teams", "/api/folders", "/api/datasources",
                                                                  "/api/dashboards"))]
    assert org_calls and {r["auth"] for r in org_calls} == {"bearer"}
    user_calls = [r for r in g.requests if r["path"].startswith(("/api/admin", "/api/users"))]
    assert user_calls and {r["auth"] for r in user_calls} == {"basic"}
    assert g.user_by_login("user_tokco")["id"] in g.team_members[g.team_by_name("tokco")["id"]]
    ds_token = g.datasource_secrets[g.datasource_by_name("influxdb_tokco")["id"]]["token"]
    password = (fresh_lab.secrets / "grafana_user_tokco.password").read_text().strip()
    basic = base64.b64encode(f"{ADMIN[0]}:{ADMIN[1]}".encode()).decode()
    for secret in (SA_TOKEN, ADMIN[1], basic, fresh_lab.influx.admin_token, ds_token, password):
        assert secret not in run.output


def test_api_token_alone_provisions_all_but_the_user(fresh_lab):
    run = fresh_lab.create("solo", GRAFANA_API_TOKEN=SA_TOKEN, GRAFANA_USERNAME="", GRAFANA_PASSWORD="")
    assert run.rc == 0, run.output
    g = fresh_lab.grafana
    assert g.team_by_name("solo") and "powerview_solo" in g.dashboards and g.datasource_by_name("influxdb_solo")
    assert g.user_by_login("user_solo") is None
    assert "needs basic auth of a" in run.stdout
    assert {r["auth"] for r in g.requests if r["path"] != "/api/health"} == {"bearer"}


def test_wrong_credentials_and_grafana_down_fail_with_a_clear_message(fresh_lab):
    refused = fresh_lab.create("acme", GRAFANA_PASSWORD="Wr0ng-pa55word")
    assert refused.rc != 0
    assert "HTTP 401" in refused.output and "GRAFANA_USERNAME and GRAFANA_PASSWORD" in refused.output
    assert "Wr0ng-pa55word" not in refused.output
    missing = fresh_lab.create("acme", GRAFANA_USERNAME="", GRAFANA_PASSWORD="", GRAFANA_API_TOKEN="")
    assert missing.rc != 0
    assert "missing Grafana credentials" in missing.output and "GRAFANA_API_TOKEN" in missing.output
    assert fresh_lab.grafana.requests[-1]["path"] == "/api/org"      # nothing called after the refusal
    fresh_lab.grafana.stop()
    down = fresh_lab.create("acme")
    assert down.rc != 0 and "/api/health" in down.output
    assert fresh_lab.grafana.writes() == []


def test_influxdb_down_stops_before_the_datasource(fresh_lab):
    fresh_lab.influx.stop()
    run = fresh_lab.create("acme")
    assert run.rc != 0
    assert "manage_influx_tokens" in run.output and "unavailable" in run.output.lower()
    assert fresh_lab.grafana.datasource_by_name("influxdb_acme") is None
