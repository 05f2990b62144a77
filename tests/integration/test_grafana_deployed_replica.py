"""A company provisioned as the deployed playbooks left it (fheslouin/powerview; the replica is
GrafanaStandIn.seed_deployed_company, then edited by the customer) goes through what happens to it
after the switch-over: a campaign folder made over SFTP (the real on-upload.sh, the real worker, the
real create_grafana_resources.yml through ansible-playbook), a create by hand with campaign_name as
the guide says, a rerun, --check --diff; it comes out identical: dashboard panels and title,
permissions, data source type, clientId and token, users. Then force_company=true adopts without
changing any of it, and refresh_dashboard=true re-renders the dashboard keeping the customer's
panel, title and permissions. A new company beside it gets the dashboard of issue 15 (B)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import samples
from deployment import make_deployment
from samples import wait_for
from stand_ins.grafana import GrafanaStandIn
from stand_ins.influxdb2 import InfluxDB2StandIn


class Site:
    def __init__(self, root: Path):
        self.grafana = GrafanaStandIn().start()
        self.influx = InfluxDB2StandIn().start()
        self.project, self.srv = make_deployment(root, self.grafana, self.influx)
        self.root = root
        self.deployed = self.grafana.seed_deployed_company("acme", self.srv / "data", token="deployed-rw-token")

    def stop(self):
        self.grafana.stop()
        self.influx.stop()

    def hook(self, **variables: str) -> None:
        done = subprocess.run(
            ["env", "-i", *(f"{k}={v}" for k, v in variables.items()), str(self.project / "on-upload.sh")],
            capture_output=True,
            timeout=30,
            cwd="/",
        )
        assert done.returncode == 0, done.stderr

    def playbook(self, extra_vars: dict, *args: str) -> subprocess.CompletedProcess:
        """The create playbook by hand, as the guide's §4 says: from the deployment's folder."""
        vars_file = self.root / "vars.json"
        vars_file.write_text(json.dumps(extra_vars))
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.root),
            "LANG": "C.UTF-8",
            "ANSIBLE_HOME": str(self.root / "ansible-home"),
            "ANSIBLE_LOCAL_TEMP": str(self.root / "ansible-tmp"),
            "ANSIBLE_NOCOLOR": "1",
            "POWERVIEW_ENV_FILE": str(self.project / ".env"),
        }
        return subprocess.run(
            [
                str(Path(sys.executable).parent / "ansible-playbook"),
                str(self.project / "grafana-automation" / "playbooks" / "create_grafana_resources.yml"),
                "-e",
                f"@{vars_file}",
                *args,
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            cwd=self.project / "grafana-automation",
        )


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    samples.require_venv()
    site = Site(tmp_path_factory.mktemp("deployed-replica"))
    yield site
    site.stop()


@pytest.fixture(scope="module")
def deployed(site):
    """The replica's snapshot before anything of ours ran."""
    snapshot = site.grafana.company_snapshot("acme")
    assert snapshot["datasource"]["jsonData"]["clientId"] == "acme_acme"
    assert snapshot["dashboard"]["title"] == "Mesures acme" and len(snapshot["dashboard"]["panels"]) == 5
    return snapshot


def test_a_campaign_mkdir_through_the_real_hook_changes_nothing(site, deployed):
    campaign = site.srv / "data" / "acme" / "camp_2026"
    campaign.mkdir()
    site.hook(SFTPGO_ACTION="mkdir", SFTPGO_ACTION_PATH=str(campaign), SFTPGO_ACTION_USERNAME="acme")
    log = site.srv / "logs" / "uploads.log"
    wait_for(lambda: log.exists() and "result=provisioned" in log.read_text(), 180, "the provisioning job")
    assert re.search(r"path=\S*acme/camp_2026 job=\S+ result=provisioned", log.read_text())
    assert site.grafana.writes() == [] and site.grafana.company_snapshot("acme") == deployed
    assert [r for r in site.influx.requests if r.method not in ("GET", "HEAD")] == []


@pytest.mark.parametrize("run", ["by hand with campaign_name", "rerun"])
def test_a_create_by_hand_with_a_campaign_changes_nothing(site, deployed, run):
    done = site.playbook({"company_name": "acme", "campaign_name": "camp_2027"})
    assert done.returncode == 0, done.stdout + done.stderr
    assert "company-level steps skipped: marker present" in done.stdout
    assert site.grafana.writes() == [] and site.grafana.company_snapshot("acme") == deployed


def test_check_and_diff_show_that_nothing_would_change(site, deployed):
    done = site.playbook({"company_name": "acme", "campaign_name": "camp_2027"}, "--check", "--diff")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "nothing to change" in done.stdout and "changed=0" in done.stdout
    assert site.grafana.writes() == [] and site.grafana.company_snapshot("acme") == deployed


def test_force_company_adopts_the_deployed_resources_as_they_are(site, deployed):
    done = site.playbook({"company_name": "acme", "force_company": True}, "--check", "--diff")
    assert done.returncode == 0 and site.grafana.writes() == [], done.stdout + done.stderr
    plan = done.stdout.split("Changes a real run would make")[1].split("TASK [")[0]
    # the InfluxDB stand-in holds no bucket acme (the token is issue 15 G's business): nothing in Grafana
    assert re.findall(r'^\s+"(.*)",?$', plan, re.M) == ["create bucket acme", "create InfluxDB token for bucket acme"]
    done = site.playbook({"company_name": "acme", "force_company": True})
    assert done.returncode == 0, done.stdout + done.stderr
    after = site.grafana.company_snapshot("acme")
    # the clientId, type and token the series configurations and the dashboards depend on
    assert after["datasource"] == deployed["datasource"]
    assert after["dashboard"] == deployed["dashboard"]
    assert after["dashboard_acl"] == deployed["dashboard_acl"] and after["folder_acl"] == deployed["folder_acl"]
    assert after["users"] == deployed["users"] and after["team_members"] == deployed["team_members"]
    assert site.grafana.user_by_login("user_acme") is None  # never a second default user
    assert not (site.srv / "secrets").exists() or not list((site.srv / "secrets").iterdir())


def test_refresh_dashboard_re_renders_and_keeps_the_customers_panel_title_and_permissions(site, deployed):
    done = site.playbook({"company_name": "acme", "refresh_dashboard": True})
    assert done.returncode == 0, done.stdout + done.stderr
    after = site.grafana.company_snapshot("acme")
    dashboard = after["dashboard"]
    assert dashboard["title"] == "Mesures acme" and after["dashboard_acl"] == deployed["dashboard_acl"]
    panels = {p["id"]: p for p in dashboard["panels"]}
    assert panels[5] == deployed["dashboard"]["panels"][4]  # the customer's, where it was (below ours)
    assert panels[2]["type"] == "adecwatts-series-config-panel"
    assert panels[2]["options"]["forcedClientId"] == "acme_acme"  # the deployed clientId, kept
    assert panels[2]["options"]["forcedDatasourceId"] == site.deployed["datasource_id"]
    assert panels[1]["targets"][0]["datasource"]["uid"] == site.deployed["datasource_uid"]
    config = next(v for v in dashboard["templating"]["list"] if v["name"] == "config")
    assert config["query"]["urlPath"] == "/clients/acme_acme/series-config/configs?campaign=${campaign:percentencode}"
    assert after["datasource"] == deployed["datasource"] and after["users"] == deployed["users"]


def test_a_new_company_gets_the_dashboard_of_the_deployed_features(site):
    (site.srv / "data" / "newco").mkdir()
    done = site.playbook({"company_name": "newco", "campaign_name": "camp_1"})
    assert done.returncode == 0, done.stdout + done.stderr
    g = site.grafana
    ds = g.datasource_by_name("influxdb_newco")
    dash = g.dashboards["powerview_newco"]["dashboard"]
    assert dash["title"] == "Mesures newco"
    variables = {v["name"]: v for v in dash["templating"]["list"]}
    assert list(variables) == ["campaign", "config"]
    assert variables["config"]["datasource"]["type"] == "marcusolsson-json-datasource"
    assert (
        variables["config"]["query"]["urlPath"]
        == "/clients/newco/series-config/configs?campaign=${campaign:percentencode}"
    )
    panels = {p["id"]: p for p in dash["panels"]}
    assert (panels[1]["type"], panels[4]["type"], panels[2]["type"]) == (
        "timeseries",
        "piechart",
        "adecwatts-series-config-panel",
    )
    for panel_id in (1, 4):
        query = panels[panel_id]["targets"][0]["query"]
        assert query.startswith("// powerview_config=${config}\n") and 'from(bucket: "newco")' in query
        assert panels[panel_id]["datasource"] == {"type": ds["type"], "uid": ds["uid"]}
    assert panels[2]["options"] == {
        "forcedBucket": "newco",
        "forcedClientId": ds["jsonData"]["clientId"],
        "forcedDatasourceId": ds["id"],
        "forcedMeasurement": "electrical",
    }
    team = g.team_by_name("newco")
    user = g.user_by_login("user_newco")
    assert g.dashboard_acl["powerview_newco"] == [
        {"teamId": team["id"], "permission": 1},
        {"userId": user["id"], "permission": 2},
    ]
    assert g.company_snapshot("acme")["datasource"]["jsonData"]["clientId"] == "acme_acme"


OVERRIDES = {
    "company_user_login_override": "jdupont",
    "company_user_email_override": "jean.dupont@beta.example",
    "company_user_password_override": "Not-The-Customers-1",
}


def test_a_deployed_default_user_with_an_overridden_login_is_adopted_with_or_without_the_variables(site):
    """beta was provisioned by the deployed playbook with company_user_login_override=jdupont
    (clientId beta_jdupont): force_company, with or without the override variables, adopts jdupont
    as it is (password and email the customer's) and makes no second default user."""
    site.grafana.seed_deployed_company("beta", site.srv / "data", token="beta-rw-token", login="jdupont")
    before = site.grafana.company_snapshot("beta")
    assert before["datasource"]["jsonData"]["clientId"] == "beta_jdupont"
    for extra in ({}, OVERRIDES):
        done = site.playbook({"company_name": "beta", "force_company": True, **extra})
        assert done.returncode == 0, done.stdout + done.stderr
        after = site.grafana.company_snapshot("beta")
        assert after["users"] == before["users"] and after["team_members"] == before["team_members"]
        assert after["datasource"] == before["datasource"] and after["dashboard"] == before["dashboard"]
        assert after["dashboard_acl"] == before["dashboard_acl"]
        assert site.grafana.check_password("jdupont", "ChangeMe123!")  # the deployed one, untouched
        assert site.grafana.user_by_login("user_beta") is None
        assert not (site.srv / "secrets" / "grafana_user_beta.password").exists()


def test_a_new_company_with_the_override_variables_gets_that_default_user(site):
    (site.srv / "data" / "gamma").mkdir()
    asked = {
        "company_user_login_override": "marie",
        "company_user_email_override": "marie@gamma.example",
        "company_user_password_override": "Gamma-Secret-42",
    }
    done = site.playbook({"company_name": "gamma", **asked})
    assert done.returncode == 0, done.stdout + done.stderr
    g = site.grafana
    marie = g.user_by_login("marie")
    assert (marie["name"], marie["email"]) == ("gamma Default", "marie@gamma.example")
    assert g.check_password("marie", "Gamma-Secret-42")
    assert marie["id"] in g.team_members[g.team_by_name("gamma")["id"]]
    assert {"userId": marie["id"], "permission": 2} in g.dashboard_acl["powerview_gamma"]
    assert g.user_by_login("user_gamma") is None
    assert not (site.srv / "secrets" / "grafana_marie.password").exists()  # the operator gave it
    assert "Gamma-Secret-42" not in done.stdout + done.stderr
    # a rerun with another password does not change the user's: it is adopted as it is
    (site.srv / "data" / "gamma" / ".company.created").unlink()
    again = site.playbook({"company_name": "gamma", **asked, "company_user_password_override": "Other-Secret-9"})
    assert again.returncode == 0, again.stdout + again.stderr
    assert g.check_password("marie", "Gamma-Secret-42")


def test_an_override_login_of_another_company_is_refused_before_any_write(site):
    (site.srv / "data" / "delta").mkdir()
    writes = len(site.grafana.writes())
    influx_writes = len([r for r in site.influx.requests if r.method not in ("GET", "HEAD")])
    done = site.playbook({"company_name": "delta", "company_user_login_override": "marie"})
    assert done.returncode != 0
    assert "Grafana user marie belongs to company gamma (recorded as its maker), not to company delta" in done.stdout
    assert site.grafana.writes()[writes:] == []
    assert len([r for r in site.influx.requests if r.method not in ("GET", "HEAD")]) == influx_writes
    assert site.grafana.team_by_name("delta") is None
