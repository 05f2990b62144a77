"""Issue 17, item 1: no tenant takeover through add-user, through the real ansible-playbook and
the Grafana stand-in, in both tenancies.

The two companies and their first users are set up by the function the playbooks' module calls
(`actions.run`, the same code, without ansible-playbook's start-up); every step under test goes
through the real ansible-playbook: users added by add_grafana_user_to_team.yml and deleted by
delete_grafana_resources.yml, as the worker and the operator run them. The findings: beta adding acme's `bob` reset his password and email and made
him a member of both; acme adding `user_beta` (beta's default user) gave it access to acme;
deleting acme with user_name=<beta's user> deleted that user, leaving beta's data source
influxdb_beta_<login> without its user.
"""

from __future__ import annotations

import json

import pytest
import requests
from test_grafana_playbooks import ADMIN, PROJECT, Lab

from powerview.onboarding.grafana import actions
from powerview.onboarding.grafana import settings as grafana_settings

from stand_ins.grafana import MAIN_ORG_ID

BOB_ACME = {
    "team_name": "acme",
    "user_login": "bob",
    "user_email": "bob@acme.example",
    "user_name": "Bob of acme",
    "user_password": "acme-bob-password",
}
BOB_BETA = {**BOB_ACME, "team_name": "beta", "user_email": "bob@beta.example", "user_password": "beta-bob-password"}
CAROL_BETA = {
    "team_name": "beta",
    "user_login": "carol",
    "user_email": "carol@beta.example",
    "user_password": "beta-carol-password",
}


class TenancyLab(Lab):
    def __init__(self, tmp, tenancy):
        super().__init__(tmp)
        self.tenancy = tenancy

    def env(self, **overrides):
        return super().env(GRAFANA_TENANCY=self.tenancy, **overrides)

    def holds(self, company: str, login: str) -> bool:
        """Whether `login` is in company's team (team tenancy) or organisation (org tenancy)."""
        g = self.grafana
        user = g.user_by_login(login)
        if self.tenancy == "org":
            org = g.org_by_name(company)
            return bool(org and user and org["id"] in g.user_orgs(user["id"]))
        team = g.team_by_name(company)
        return bool(team and user and user["id"] in g.team_members[team["id"]])

    def datasources(self, company: str) -> dict:
        g = self.grafana
        if self.tenancy == "org":
            return {d["name"]: d for d in g.state(g.org_by_name(company)["id"]).datasources.values()}
        return {d["name"]: d for d in g.datasources.values()}


@pytest.fixture(scope="module", params=["team", "org"])
def lab(request, tmp_path_factory):
    """acme (with bob) and beta (with carol), provisioned by what the playbooks' module runs."""
    lab = TenancyLab(tmp_path_factory.mktemp(f"owners-{request.param}"), request.param)
    settings = grafana_settings.load(lab.env_file, environ=lab.env())
    templates = PROJECT / "grafana-automation" / "templates"
    for company in ("acme", "beta"):
        (lab.data / company).mkdir()
        token = {"influx_token": f"tok-{company}", "influx_token_id": f"id-{company}"}
        actions.run("company_present", company=company, templates_dir=templates, settings=settings, **token)
    for user in (BOB_ACME, CAROL_BETA):
        company, token = user["team_name"], {"influx_token": "tok-user", "influx_token_id": "id-user"}
        fields = {k: v for k, v in user.items() if k != "team_name"}
        actions.run("user_present", company=company, templates_dir=templates, settings=settings, **token, **fields)
    yield lab
    lab.stop()


def _acme_bob_state(lab):
    bob = lab.grafana.user_by_login("bob")
    return dict(bob), lab.grafana.passwords[bob["id"]]


def test_another_companys_login_is_refused_before_any_write_naming_both(lab):
    g = lab.grafana
    before_user, before_password = _acme_bob_state(lab)
    writes = len(g.writes())
    run = lab.run("add_grafana_user_to_team.yml", BOB_BETA)
    assert run.rc != 0, run.output
    assert "Grafana user bob belongs to company acme" in run.output and "not to company beta" in run.output
    assert len(g.writes()) == writes  # nothing written in Grafana (the ownership is checked at ping)
    assert _acme_bob_state(lab) == (before_user, before_password)  # password, email, name unchanged
    assert g.check_password("bob", "acme-bob-password") and not g.check_password("bob", "beta-bob-password")
    assert lab.holds("acme", "bob") and not lab.holds("beta", "bob")
    assert "influxdb_beta_bob" not in lab.datasources("beta") and "beta_bob" not in lab.config_api.clients
    # beta's credentials reach nothing of acme: bob's own password is acme's alone
    answer = requests.get(f"{g.url}/api/user", auth=("bob", "beta-bob-password"), timeout=10)
    assert answer.status_code == 401


def test_another_companys_default_user_is_refused(lab):
    g = lab.grafana
    writes = len(g.writes())
    run = lab.run(
        "add_grafana_user_to_team.yml",
        {"team_name": "acme", "user_login": "user_beta", "user_email": "ub@acme.example", "user_password": "x" * 12},
    )
    assert run.rc != 0, run.output
    assert "Grafana user user_beta belongs to company beta" in run.output and "not to company acme" in run.output
    assert len(g.writes()) == writes
    assert lab.holds("beta", "user_beta") and not lab.holds("acme", "user_beta")
    password = (lab.secrets / "grafana_user_beta.password").read_text().strip()
    assert g.check_password("user_beta", password)
    if lab.tenancy == "org":  # org tenancy: beta's default user still sees no acme data source
        org = g.org_by_name("acme")["id"]
        denied = requests.get(
            f"{g.url}/api/datasources",
            auth=("user_beta", password),
            headers={"X-Grafana-Org-Id": str(org)},
            timeout=10,
        )
        assert denied.status_code == 401


def test_the_owner_may_still_change_its_users_password(lab):
    g = lab.grafana
    run = lab.run("add_grafana_user_to_team.yml", {**BOB_ACME, "user_password": "acme-bob-new-password"})
    assert run.rc == 0, run.output
    assert g.check_password("bob", "acme-bob-new-password")
    record = json.loads((lab.secrets / "grafana_user_owners.json").read_text())
    assert record[str(g.user_by_login("bob")["id"])] == {"company": "acme", "login": "bob"}
    assert (lab.secrets / "grafana_user_owners.json").stat().st_mode & 0o777 == 0o600


def test_deleting_a_company_with_another_companys_user_keeps_that_user(lab):
    """Last: acme is deleted with user_name=carol (beta's user), then with bob (acme's own)."""
    g = lab.grafana
    carol = g.user_by_login("carol")
    run = lab.run("delete_grafana_resources.yml", {"company_name": "acme", "user_name": "carol"})
    assert run.rc == 0, run.output
    assert g.user_by_login("carol") == carol and g.check_password("carol", "beta-carol-password")
    assert "Grafana user carol belongs to company beta" in run.output and "kept" in run.output
    assert lab.holds("beta", "carol") and "influxdb_beta_carol" in lab.datasources("beta")
    assert (lab.secrets / "grafana_carol.password").exists() is False  # beta gave the password: no file
    assert lab.config_api.clients.get("beta_carol") == "beta"
    # acme is gone; bob, acme's own and held by no other company, is deleted with acme's next deletion
    assert g.user_by_login("bob") is not None
    gone = lab.run("delete_grafana_resources.yml", {"company_name": "acme", "user_name": "bob"})
    assert gone.rc == 0, gone.output
    assert g.user_by_login("bob") is None
    record = json.loads((lab.secrets / "grafana_user_owners.json").read_text())
    assert "bob" not in [entry["login"] for entry in record.values()]
    assert MAIN_ORG_ID in g.orgs and g.user_by_login("carol") is not None
    assert ADMIN[0] in [u["login"] for u in g.users.values()]
