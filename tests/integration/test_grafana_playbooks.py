"""The wiring of the Grafana playbooks: the real ansible-playbook, the module powerview_grafana,
manage_influx_tokens.py, against the Grafana, InfluxDB 2 and config-API stand-ins.

The provisioning logic itself (every resource, idempotence, check mode, tenancies, bad input) is
tested without Ansible in tests/unit/test_grafana_provisioning.py; here a few runs show that the
playbooks pass the variables, the check mode, the secrets (never printed) and the failures through.
Each run is a subprocess with a clean environment; runs take about two seconds each.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

import samples
from config_api_server import ConfigAPI
from stand_ins.grafana import MAIN_ORG_ID, GrafanaStandIn
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
        # the real powerview-config-api, a SQLite file of this lab's own
        self.config_api = ConfigAPI(tmp / "config-api.sqlite3", token="cfg-token").start()
        self.data = tmp / "data"
        self.secrets = tmp / "secrets"
        self.data.mkdir()
        self.env_file = tmp / "powerview.env"
        self.env_file.write_text("# empty: every setting comes from the environment of each run\n")

    def stop(self) -> None:
        self.grafana.stop()
        self.influx.stop()
        self.config_api.stop()

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
            "CONFIG_API_URL": self.config_api.url,
            "CONFIG_API_TOKEN": "cfg-token",
        }
        env.update(overrides)
        return {k: v for k, v in env.items() if v is not None}

    def run(
        self, playbook: str, extra_vars: dict, *args: str, cwd: Path = PROJECT / "grafana-automation", **env: str
    ) -> Run:
        """Run a playbook as the hook's worker does: from grafana-automation/ (its ansible.cfg),
        names in a JSON file (-e @file), never on a command line."""
        vars_file = self.tmp / "vars.json"
        vars_file.write_text(json.dumps(extra_vars))
        proc = subprocess.run(
            [_ansible_playbook(), str(PLAYBOOKS / playbook), "-e", f"@{vars_file}", *args],
            env=self.env(**env),
            capture_output=True,
            text=True,
            timeout=300,
            cwd=cwd,
        )
        return Run(proc.returncode, proc.stdout, proc.stderr)

    def create(self, company: str, *args: str, cwd: Path = PROJECT / "grafana-automation", **env: str) -> Run:
        return self.run("create_grafana_resources.yml", {"company_name": company}, *args, cwd=cwd, **env)

    def influx_writes(self) -> list:
        return [r for r in self.influx.requests if r.method not in ("GET", "HEAD")]


def flux(lab: Lab, token: str, query: str) -> requests.Response:
    return requests.post(
        f"{lab.influx.url}/api/v2/query",
        params={"org": lab.influx.org},
        headers={"Authorization": f"Token {token}", "Content-Type": "application/vnd.flux"},
        data=query.encode(),
        timeout=10,
    )


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


# ---- team tenancy (the default) -----------------------------------------------------------------


def test_create_wires_token_module_and_settings(lab, acme):
    g = lab.grafana
    assert acme.recap["failed"] == 0 and acme.recap["changed"] == 2, acme.stdout  # the token, the company
    assert "hosts list is empty" not in acme.stderr and "WARNING" not in acme.stderr  # ansible.cfg read, no noise
    team = g.team_by_name("acme")
    ds = g.datasource_by_name("influxdb_acme")
    assert ds["type"] == "influxdb-adecwatts-datasource" and ds["url"] == "http://influxdb:8086"
    assert ds["jsonData"]["organization"] == "powerview" and ds["jsonData"]["clientId"] == "acme"
    token = g.datasource_secrets[ds["id"]]["token"]
    auth = next(a for a in lab.influx.authorizations if a["token"] == token)
    assert auth["description"] == "powerview_token_for_bucket_acme" and ds["jsonData"]["powerviewTokenId"] == auth["id"]
    # the company bucket and its derived buckets (issue 10), nothing else
    assert sorted((p["action"], p["resource"]["id"]) for p in auth["permissions"]) == sorted(
        ("read", lab.influx.buckets[name]["id"]) for name in ("acme", "acme_1h", "acme_1d", "acme_1w")
    )
    assert g.dashboards["powerview_acme"]["folderUid"] == "pvfolder_acme"
    assert g.user_by_login("user_acme")["id"] in g.team_members[team["id"]]
    assert lab.config_api.clients == {"acme": "acme"}
    assert (lab.data / "acme" / ".company.created").is_file()
    password = (lab.secrets / "grafana_user_acme.password").read_text().strip()
    assert g.check_password("user_acme", password)
    for secret in (password, ADMIN[1], lab.influx.admin_token, token, "cfg-token"):
        assert secret not in acme.output
    assert "acme: team acme, folder pvfolder_acme" in acme.stdout


def test_second_run_changes_nothing(lab, acme):
    before = len(lab.grafana.writes()), len(lab.influx.authorizations)
    again = lab.run("create_grafana_resources.yml", {"company_name": "acme", "force_company": True})
    assert again.rc == 0 and again.recap["changed"] == 0, again.output
    assert (len(lab.grafana.writes()), len(lab.influx.authorizations)) == before


JDOE = {
    "team_name": "acme",
    "user_login": "jdoe",
    "user_email": "jdoe@example.com",
    "user_name": "Jane Doe",
    "user_password": "correct horse battery",
}


def test_add_user_to_team(lab, acme):
    run = lab.run("add_grafana_user_to_team.yml", JDOE)
    assert run.rc == 0 and run.recap["changed"] == 1, run.output  # the token is reused: not a change
    g = lab.grafana
    team = g.team_by_name("acme")
    jdoe = g.user_by_login("jdoe")
    assert jdoe["id"] in g.team_members[team["id"]]
    assert g.check_password("jdoe", "correct horse battery") and "correct horse battery" not in run.output
    # the user's view: its data source (the bucket's read-only token, its own client id), its dashboard
    company_ds = g.datasource_by_name("influxdb_acme")
    ds = g.datasource_by_name("influxdb_acme_jdoe")
    assert ds["type"] == company_ds["type"] and ds["url"] == "http://influxdb:8086"
    assert ds["jsonData"]["clientId"] == "acme_jdoe" and ds["jsonData"]["defaultBucket"] == "acme"
    token = g.datasource_secrets[ds["id"]]["token"]
    assert token == g.datasource_secrets[company_ds["id"]]["token"] and token not in run.output
    assert ds["jsonData"]["powerviewTokenId"] == company_ds["jsonData"]["powerviewTokenId"]
    dash = g.dashboards["powerview_acme_jdoe"]
    assert dash["folderUid"] == "pvfolder_acme" and ds["uid"] in json.dumps(dash["dashboard"])
    assert g.dashboard_acl["powerview_acme_jdoe"] == [
        {"teamId": team["id"], "permission": 1},
        {"userId": jdoe["id"], "permission": 2},
    ]
    assert lab.config_api.clients["acme_jdoe"] == "acme"
    assert "jdoe is a member of team acme; data source influxdb_acme_jdoe (client id acme_jdoe)" in run.stdout


def test_add_user_takes_the_deployed_variables_and_a_random_password(lab, acme):
    """The deployed playbook's call: team_name alone (the user user_<team_name>, as deployed: here
    the company's default user, adopted as it is), then *_override variables; a new user without a
    password gets a random one (the deployed playbook's fixed ChangeMe123! is never used)."""
    g = lab.grafana
    default = g.user_by_login("user_acme")
    password_before = g.passwords[default["id"]]
    alone = lab.run("add_grafana_user_to_team.yml", {"team_name": "acme"})
    assert alone.rc == 0, alone.output
    assert g.passwords[default["id"]] == password_before and g.user_by_login("user_acme")["name"] == default["name"]
    assert g.datasource_by_name("influxdb_acme_user_acme") and "powerview_acme_user_acme" in g.dashboards

    run = lab.run(
        "add_grafana_user_to_team.yml",
        {"team_name": "acme", "user_login_override": "mdupont", "user_email_override": "m.dupont@example.com"},
    )
    assert run.rc == 0, run.output
    user = g.user_by_login("mdupont")
    assert user["email"] == "m.dupont@example.com" and user["id"] in g.team_members[g.team_by_name("acme")["id"]]
    password = (lab.secrets / "grafana_mdupont.password").read_text().strip()
    assert len(password) >= 32 and g.check_password("mdupont", password) and password not in run.output
    assert not g.check_password("mdupont", "ChangeMe123!")
    assert g.datasource_by_name("influxdb_acme_mdupont")["jsonData"]["clientId"] == "acme_mdupont"

    given = lab.run(
        "add_grafana_user_to_team.yml",
        {"team_name": "acme", "company_user_login_override": "vlead", "user_password_override": "s3cret-from-file"},
    )
    assert given.rc == 0 and g.check_password("vlead", "s3cret-from-file"), given.output
    assert not (lab.secrets / "grafana_vlead.password").exists() and "s3cret-from-file" not in given.output


def test_delete_check_then_delete(lab, acme):
    g = lab.grafana
    if g.datasource_by_name("influxdb_acme_jdoe") is None:  # this test alone: add the user first
        assert lab.run("add_grafana_user_to_team.yml", JDOE).rc == 0
    before = len(g.writes())
    check = lab.run("delete_grafana_resources.yml", {"company_name": "acme", "user_name": "user_acme"}, "--check")
    assert check.rc == 0 and len(g.writes()) == before, check.output
    assert "delete folder pvfolder_acme" in check.stdout and "delete user user_acme" in check.stdout
    assert "delete data source influxdb_acme_jdoe" in check.stdout
    run = lab.run("delete_grafana_resources.yml", {"company_name": "acme", "user_name": "user_acme"})
    assert run.rc == 0 and run.recap["changed"] == 1, run.output
    assert g.team_by_name("acme") is None and g.datasource_by_name("influxdb_acme") is None
    assert g.datasource_by_name("influxdb_acme_jdoe") is None and "powerview_acme_jdoe" not in g.dashboards
    assert "acme" in lab.influx.buckets and not {"acme", "acme_jdoe"} & set(lab.config_api.clients)
    assert "the InfluxDB bucket acme and its data are kept" in run.stdout


def test_check_mode_on_a_fresh_company_changes_nothing(fresh_lab):
    (fresh_lab.data / "newco").mkdir()
    run = fresh_lab.create("newco", "--check", "--diff", cwd=PROJECT)  # as an operator runs it, from the project
    assert run.rc == 0, run.output
    assert "WARNING" not in run.stderr, run.stderr  # the project's ansible.cfg read: no inventory warning
    assert fresh_lab.grafana.writes() == [] and fresh_lab.influx_writes() == []
    assert not (fresh_lab.data / "newco" / ".company.created").exists() and not fresh_lab.secrets.exists()
    assert fresh_lab.config_api.clients == {}
    for planned in (
        "create bucket newco",
        "create InfluxDB token for bucket newco",
        "create team newco",
        "create data source influxdb_newco",
        "save dashboard powerview_newco",
        "create user user_newco",
        "register client id newco in the config API",
    ):
        assert planned in run.stdout
    assert '+    "team newco": "present"' in run.stdout or '"team newco": "present"' in run.stdout


def test_bad_name_and_missing_arguments_fail_before_any_api_call(fresh_lab):
    run = fresh_lab.create("$(touch /tmp/pwned_by_powerview)")
    assert run.rc != 0 and "company name" in run.output
    missing = fresh_lab.run("add_grafana_user_to_team.yml", {"user_login": "x", "user_email": "x@example.com"})
    assert missing.rc != 0 and "team_name is required" in missing.output
    other = fresh_lab.run("add_grafana_user_to_team.yml", {"team_name": "acme", "company_name_override": "beta"})
    assert other.rc != 0 and "company_name_override=beta differs from team_name=acme" in other.output
    assert fresh_lab.grafana.requests == [] and fresh_lab.influx.requests == []
    assert not Path("/tmp/pwned_by_powerview").exists()


def test_wrong_credentials_and_influxdb_down_fail_with_a_clear_message(fresh_lab):
    refused = fresh_lab.create("acme", GRAFANA_PASSWORD="Wr0ng-pa55word")
    assert refused.rc != 0
    assert "HTTP 401" in refused.output and "GRAFANA_USERNAME and GRAFANA_PASSWORD" in refused.output
    assert "Wr0ng-pa55word" not in refused.output and fresh_lab.influx.requests == []
    fresh_lab.influx.stop()
    down = fresh_lab.create("acme")
    assert down.rc != 0
    assert "manage_influx_tokens" in down.output and "unavailable" in down.output.lower()
    assert fresh_lab.grafana.writes() == []


# ---- org tenancy --------------------------------------------------------------------------------


def test_org_tenancy_create_then_delete(fresh_lab):
    lab, g = fresh_lab, fresh_lab.grafana
    (lab.data / "orgco").mkdir()
    # -vvv shows every module's arguments and results: the secrets must still not appear
    run = lab.create("orgco", "-vvv", GRAFANA_TENANCY="org", GRAFANA_API_TOKEN=SA_TOKEN)
    assert run.rc == 0, run.output
    org = g.org_by_name("orgco")
    st = g.state(org["id"])
    ds = next(iter(st.datasources.values()))
    assert ds["name"] == "influxdb_orgco" and "powerview_orgco" in st.dashboards
    user = g.user_by_login("user_orgco")
    assert g.user_orgs(user["id"]) == {org["id"]: "Viewer"}
    assert not g.state(MAIN_ORG_ID).datasources
    password = (lab.secrets / "grafana_user_orgco.password").read_text().strip()
    basic = base64.b64encode(f"{ADMIN[0]}:{ADMIN[1]}".encode()).decode()
    for secret in (
        SA_TOKEN,
        ADMIN[1],
        basic,
        lab.influx.admin_token,
        st.datasource_secrets[ds["id"]]["token"],
        password,
    ):
        assert secret not in run.output
    assert {r["org"] for r in g.requests if r["path"].startswith("/api/datasources")} == {str(org["id"])}

    gone = lab.run("delete_grafana_resources.yml", {"company_name": "orgco"}, GRAFANA_TENANCY="org")
    assert gone.rc == 0 and gone.recap["changed"] == 1, gone.output
    assert g.org_by_name("orgco") is None and g.user_orgs(user["id"]) == {} and g.user_by_login("user_orgco")
    assert "orgco" in lab.influx.buckets and MAIN_ORG_ID in g.orgs
