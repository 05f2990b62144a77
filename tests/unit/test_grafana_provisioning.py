"""powerview.onboarding.grafana against the Grafana and config-API stand-ins, without ansible-playbook:
idempotence, check mode, diffs, both tenancies, the isolation that `org` tenancy gives, the
client-id registration, and bad input."""

from __future__ import annotations

import dataclasses
import json
import stat
from pathlib import Path

import pytest
import requests

from powerview.core.settings import ConfigError
from powerview.onboarding.grafana import actions
from powerview.onboarding.grafana.client import GrafanaError
from powerview.onboarding.grafana.company import ProvisioningError
from powerview.onboarding.grafana.config_api import ConfigApiError
from powerview.onboarding.grafana.render import TemplateError, flux_string, influxql_identifier, influxql_string
from powerview.onboarding.grafana.settings import GrafanaSettings, load

from config_api_server import free_port
from faults import html_server
from stand_ins.grafana import MAIN_ORG_ID

ADMIN = ("admin", "admin-password")
PROJECT = Path(__file__).resolve().parents[2]
TEMPLATES = PROJECT / "grafana-automation" / "templates"


def make_settings(grafana, tmp_path: Path, **overrides) -> GrafanaSettings:
    base = GrafanaSettings(
        url=grafana.url,
        username=ADMIN[0],
        password=ADMIN[1],
        influx_org="powerview",
        influx_url_for_grafana="http://influxdb:8086",
        data_dir=tmp_path / "data",
        secrets_dir=tmp_path / "secrets",
        templates_dir=TEMPLATES,
    )
    return dataclasses.replace(base, **overrides)


def create(s, company="acme", check=False, token="tok-1", token_id="id-1", **kw):
    return actions.run(
        "company_present", check=check, company=company, influx_token=token, influx_token_id=token_id, settings=s, **kw
    )


def as_user(grafana, login, password, method, path, org=None, **kw):
    headers = {"X-Grafana-Org-Id": str(org)} if org is not None else {}
    return requests.request(method, grafana.url + path, auth=(login, password), headers=headers, timeout=10, **kw)


def default_password(s, company):
    return (s.secrets_dir / f"grafana_user_{company}.password").read_text().strip()


# ---- team tenancy (the deployed layout) ----------------------------------------------------


def test_team_create_links_everything_then_second_run_writes_nothing(grafana, tmp_path):
    s = make_settings(grafana, tmp_path)
    (s.data_dir / "acme").mkdir(parents=True)
    first = create(s)
    assert first["changed"]
    for line in (
        "create team acme",
        "create folder acme",
        "create data source influxdb_acme",
        "save dashboard powerview_acme",
        "create user user_acme",
        "add user_acme to team acme",
    ):
        assert line in first["changes"]
    team = grafana.team_by_name("acme")
    ds = grafana.datasource_by_name("influxdb_acme")
    assert ds["uid"] == "pvds_acme" and ds["type"] == "influxdb-adecwatts-datasource"
    # what the production plugin reads (facts of the deployed playbooks); clientId = the company
    assert {
        k: ds["jsonData"][k]
        for k in (
            "version",
            "organization",
            "defaultBucket",
            "httpMode",
            "clientId",
            "seriesConfigApiUrl",
            "channelsList",
            "triphasicList",
            "virtualSeries",
            "httpHeaderName1",
            "readOnly",
        )
    } == {
        "version": "Flux",
        "organization": "powerview",
        "defaultBucket": "acme",
        "httpMode": "POST",
        "clientId": "acme",
        "seriesConfigApiUrl": "/api/datasources/proxy/25",
        "channelsList": [],
        "triphasicList": [],
        "virtualSeries": [],
        "httpHeaderName1": "Authorization",
        "readOnly": True,
    }
    assert grafana.datasource_secrets[ds["id"]] == {"token": "tok-1", "httpHeaderValue1": "Token tok-1"}
    assert grafana.folder_acl["pvfolder_acme"] == [{"teamId": team["id"], "permission": 1}]
    user = grafana.user_by_login("user_acme")
    # as deployed: the team views the dashboard, the default user edits it
    assert grafana.dashboard_acl["powerview_acme"] == [
        {"teamId": team["id"], "permission": 1},
        {"userId": user["id"], "permission": 2},
    ]
    assert user["id"] in grafana.team_members[team["id"]]
    assert (s.data_dir / "acme" / ".company.created").is_file()
    path = s.secrets_dir / "grafana_user_acme.password"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and stat.S_IMODE(s.secrets_dir.stat().st_mode) == 0o700
    assert grafana.check_password("user_acme", default_password(s, "acme"))
    assert default_password(s, "acme") not in json.dumps(first)

    writes = len(grafana.writes())
    again = create(s)
    assert again["changed"] is False and again["changes"] == []
    assert len(grafana.writes()) == writes


def test_check_mode_writes_nothing_and_lists_everything(grafana, tmp_path):
    s = make_settings(grafana, tmp_path)
    (s.data_dir / "newco").mkdir(parents=True)
    plan = create(s, company="newco", check=True, token=None, token_id=None)
    assert grafana.writes() == []
    assert not s.secrets_dir.exists() and not (s.data_dir / "newco" / ".company.created").exists()
    assert plan["changed"] and plan["diff"]["after"]["team newco"] == "present"
    assert "create team newco" in plan["changes"] and "write the company marker" in " ".join(plan["changes"])
    # once provisioned, check mode announces nothing
    create(s, company="newco")
    assert create(s, company="newco", check=True)["changes"] == []


def test_an_existing_data_source_keeps_its_values_and_its_token(grafana, tmp_path):
    s = make_settings(grafana, tmp_path)
    create(s)
    ds = grafana.datasource_by_name("influxdb_acme")
    ds["jsonData"]["channelsList"] = ["U1_V"]  # set by a user through the plugin's editor
    ds["jsonData"]["clientId"] = "acme_acme"  # as the deployed playbook set it
    assert create(s)["changes"] == []
    # another token from manage_influx_tokens.py: the data source keeps its own (issue 15)
    assert create(s, token="tok-2", token_id="id-2")["changes"] == []
    ds = grafana.datasource_by_name("influxdb_acme")
    assert ds["jsonData"]["channelsList"] == ["U1_V"] and ds["jsonData"]["clientId"] == "acme_acme"
    assert grafana.datasource_secrets[ds["id"]]["token"] == "tok-1"
    # what it lacks is added, nothing else changes
    del ds["jsonData"]["seriesConfigApiUrl"]
    grafana.datasource_secrets[ds["id"]].pop("token")
    fixed = create(s, token="tok-2", token_id="id-2")
    assert fixed["changes"] == ["add to data source influxdb_acme what it lacks (seriesConfigApiUrl, secret token)"]
    ds = grafana.datasource_by_name("influxdb_acme")
    assert ds["jsonData"]["seriesConfigApiUrl"] == "/api/datasources/proxy/25"
    assert ds["jsonData"]["clientId"] == "acme_acme" and ds["jsonData"]["powerviewTokenId"] == "id-1"
    assert grafana.datasource_secrets[ds["id"]] == {"token": "tok-2", "httpHeaderValue1": "Token tok-1"}
    assert "tok-2" not in json.dumps(fixed)


def test_marker_present_writes_nothing_and_asks_for_force_when_resources_are_gone(grafana, tmp_path):
    s = make_settings(grafana, tmp_path)
    (s.data_dir / "acme").mkdir(parents=True)
    create(s)
    requests.delete(f"{grafana.url}/api/dashboards/uid/powerview_acme", auth=ADMIN, timeout=10).raise_for_status()
    before = len(grafana.writes())
    campaign = create(s, token=None, token_id=None, company_steps=False, campaign="camp_2")
    assert grafana.writes()[before:] == [] and campaign["changes"] == []
    assert "company-level steps skipped" in campaign["message"]
    assert any("dashboard powerview_acme is absent" in n and "force_company" in n for n in campaign["notes"])
    create(s)  # force: the dashboard is made again
    assert "powerview_acme" in grafana.dashboards
    requests.delete(
        f"{grafana.url}/api/teams/{grafana.team_by_name('acme')['id']}", auth=ADMIN, timeout=10
    ).raise_for_status()
    with pytest.raises(ProvisioningError, match="lacks the team.*force_company=true"):
        create(s, company_steps=False)
    create(s)  # force: the team is made again, members too
    team = grafana.team_by_name("acme")
    assert grafana.user_by_login("user_acme")["id"] in grafana.team_members[team["id"]]


def test_add_user_then_nothing_then_password_change(grafana, tmp_path, config_api):
    s = make_settings(grafana, tmp_path, config_api_url=config_api.url, config_api_token="cfg-token")
    create(s)
    args = dict(
        company="acme",
        user_login="jdoe",
        user_email="jdoe@example.com",
        user_name="Jane Doe",
        user_password="correct horse battery",
        influx_token="tok-1",
        influx_token_id="id-1",
        settings=s,
    )
    first = actions.run("user_present", **args)
    assert "create user jdoe" in first["changes"] and "add jdoe to team acme" in first["changes"]
    assert grafana.check_password("jdoe", "correct horse battery")
    assert config_api.clients == {"acme": "acme", "acme_jdoe": "acme"}
    assert actions.run("user_present", **args)["changes"] == []
    assert actions.run("user_present", check=True, **args)["changes"] == []
    changed = actions.run("user_present", **{**args, "user_password": "another long one"})
    assert changed["changes"] == ["set the password of jdoe"] and grafana.check_password("jdoe", "another long one")
    with pytest.raises(ProvisioningError, match="Team nobody not found"):
        actions.run("user_present", **{**args, "company": "nobody"})


def test_delete_check_then_delete_then_again(grafana, tmp_path, config_api):
    s = make_settings(grafana, tmp_path, config_api_url=config_api.url, config_api_token="cfg-token")
    (s.data_dir / "beta").mkdir(parents=True)
    create(s, company="beta")
    create(s, company="acme")
    requests.post(
        f"{grafana.url}/api/dashboards/db",
        auth=ADMIN,
        timeout=10,
        json={"dashboard": {"uid": "beta_extra", "title": "Extra"}, "folderUid": "pvfolder_beta"},
    ).raise_for_status()
    writes = len(grafana.writes())
    plan = actions.run("company_absent", check=True, company="beta", user_login="user_beta", settings=s)
    assert len(grafana.writes()) == writes and config_api.clients["beta"] == "beta"
    assert plan["changes"][:6] == [
        "delete dashboard beta_extra",
        "delete dashboard powerview_beta",
        "delete folder pvfolder_beta",
        "delete data source influxdb_beta",
        "delete team beta",
        "delete user user_beta",
    ]
    done = actions.run("company_absent", company="beta", user_login="user_beta", settings=s)
    assert done["changed"] and grafana.team_by_name("beta") is None and "pvfolder_beta" not in grafana.folders
    assert grafana.user_by_login("user_beta") is None and not (s.secrets_dir / "grafana_user_beta.password").exists()
    assert not (s.data_dir / "beta" / ".company.created").exists() and "beta" not in config_api.clients
    assert grafana.team_by_name("acme") and grafana.datasource_by_name("influxdb_acme") and config_api.clients["acme"]
    assert actions.run("company_absent", company="beta", user_login="user_beta", settings=s)["changed"] is False


def test_api_token_for_org_calls_basic_for_users_and_token_alone_skips_the_user(grafana, tmp_path):
    s = make_settings(grafana, tmp_path, api_token="sa-token")
    create(s)
    org_calls = [
        r
        for r in grafana.requests
        if r["path"].startswith(("/api/teams", "/api/folders", "/api/datasources", "/api/dashboards"))
    ]
    assert org_calls and {r["auth"] for r in org_calls} == {"bearer"}
    assert {r["auth"] for r in grafana.requests if r["path"].startswith(("/api/admin", "/api/users"))} == {"basic"}
    solo = create(dataclasses.replace(s, username=None, password=None), company="solo")
    assert grafana.user_by_login("user_solo") is None and "needs basic auth of a" in solo["notes"][0]


# ---- org tenancy: one organisation per company ------------------------------------------------


def test_org_tenancy_create_rerun_check_add_user_delete(grafana, tmp_path, config_api):
    s = make_settings(grafana, tmp_path, tenancy="org", config_api_url=config_api.url, config_api_token="cfg-token")
    plan = create(s, check=True, token=None, token_id=None)
    assert grafana.writes() == [] and "create organisation acme" in plan["changes"]
    assert "create data source influxdb_acme" in plan["changes"]
    first = create(s)
    org = grafana.org_by_name("acme")
    st = grafana.state(org["id"])
    ds = next(iter(st.datasources.values()))
    assert ds["name"] == "influxdb_acme" and ds["uid"] == "pvds_acme" and ds["jsonData"]["defaultBucket"] == "acme"
    assert "pvfolder_acme" in st.folders and "powerview_acme" in st.dashboards
    assert st.folder_acl["pvfolder_acme"] == [{"role": "Viewer", "permission": 1}]
    assert st.teams == {}  # no team in org tenancy
    # nothing of the company in the main organisation
    main = grafana.state(MAIN_ORG_ID)
    assert not main.datasources and not main.folders and not main.dashboards and not main.teams
    user = grafana.user_by_login("user_acme")
    assert grafana.user_orgs(user["id"]) == {org["id"]: "Viewer"}
    assert config_api.clients == {"acme": "acme"}
    assert first["org_id"] == org["id"]
    # rerun and check mode: nothing
    writes = len(grafana.writes())
    assert create(s)["changes"] == [] and create(s, check=True)["changes"] == []
    assert len(grafana.writes()) == writes
    # a user added by hand in the main org is moved: Viewer of acme, out of the main org
    requests.post(
        f"{grafana.url}/api/admin/users",
        auth=ADMIN,
        timeout=10,
        json={"login": "jdoe", "email": "jdoe@example.com", "password": "pw-12345678"},
    ).raise_for_status()
    added = actions.run(
        "user_present",
        company="acme",
        user_login="jdoe",
        user_email="jdoe@example.com",
        influx_token="tok-1",
        influx_token_id="id-1",
        settings=s,
    )
    jdoe = grafana.user_by_login("jdoe")
    assert grafana.user_orgs(jdoe["id"]) == {org["id"]: "Viewer"}
    assert "remove jdoe from the main organisation" in added["changes"]
    assert config_api.clients["acme_jdoe"] == "acme"
    # delete: the organisation (and its memberships) goes, the users and the main org stay
    create(s, company="beta")
    gone = actions.run("company_absent", company="acme", settings=s)
    assert gone["changes"][0].startswith("delete organisation acme")
    assert grafana.org_by_name("acme") is None and grafana.user_orgs(jdoe["id"]) == {}
    assert grafana.org_by_name("beta") and MAIN_ORG_ID in grafana.orgs
    assert grafana.user_by_login("user_beta") and "acme" not in config_api.clients
    assert actions.run("company_absent", company="acme", settings=s)["changed"] is False


def test_org_tenancy_add_user_needs_the_organisation(grafana, tmp_path):
    s = make_settings(grafana, tmp_path, tenancy="org")
    with pytest.raises(ProvisioningError, match="Organisation ghost not found"):
        actions.run("user_present", company="ghost", user_login="x", user_email="x@example.com", settings=s)
    assert grafana.user_by_login("x") is None


def _onboard_two(grafana, tmp_path, tenancy):
    s = make_settings(grafana, tmp_path, tenancy=tenancy)
    create(s, company="acme", token="tok-acme")
    create(s, company="beta", token="tok-beta")
    return s


def test_team_tenancy_leak_a_viewer_queries_another_companys_datasource(grafana, tmp_path):
    """The documented leak of team tenancy (Grafana OSS has no datasource permissions): beta's
    default user finds acme's datasource uid in its boot data and queries it, with acme's token."""
    s = _onboard_two(grafana, tmp_path, "team")
    login, password = "user_beta", default_password(s, "beta")
    listed = as_user(grafana, login, password, "GET", "/api/datasources").json()
    assert {d["name"]: d["uid"] for d in listed} == {"influxdb_acme": "pvds_acme", "influxdb_beta": "pvds_beta"}
    boot = as_user(grafana, login, password, "GET", "/api/frontend/settings").json()
    assert boot["datasources"]["influxdb_acme"]["uid"] == "pvds_acme"
    answer = as_user(
        grafana,
        login,
        password,
        "POST",
        "/api/ds/query",
        json={"queries": [{"refId": "A", "datasource": {"uid": "pvds_acme"}}]},
    )
    assert answer.status_code == 200
    assert grafana.queries[-1] == {
        "org": MAIN_ORG_ID,
        "datasource": "pvds_acme",
        "user": "user_beta",
        "token": "tok-acme",
    }


def test_org_tenancy_a_viewer_cannot_list_nor_query_another_companys_datasource(grafana, tmp_path):
    s = _onboard_two(grafana, tmp_path, "org")
    login, password = "user_beta", default_password(s, "beta")
    acme_org = grafana.org_by_name("acme")["id"]
    beta_org = grafana.org_by_name("beta")["id"]
    assert [d["name"] for d in as_user(grafana, login, password, "GET", "/api/datasources").json()] == ["influxdb_beta"]
    boot = as_user(grafana, login, password, "GET", "/api/frontend/settings").json()
    assert list(boot["datasources"]) == ["influxdb_beta"]
    own = as_user(
        grafana,
        login,
        password,
        "POST",
        "/api/ds/query",
        json={"queries": [{"refId": "A", "datasource": {"uid": "pvds_beta"}}]},
    )
    assert own.status_code == 200 and grafana.queries[-1]["token"] == "tok-beta"
    # acme's datasource has the same uid scheme: from beta's organisation it does not exist
    other = as_user(
        grafana,
        login,
        password,
        "POST",
        "/api/ds/query",
        json={"queries": [{"refId": "A", "datasource": {"uid": "pvds_acme"}}]},
    )
    assert other.status_code == 404
    # asking for acme's organisation: refused, for listing, boot data and queries
    for method, path, body in (
        ("GET", "/api/datasources", None),
        ("GET", "/api/frontend/settings", None),
        ("POST", "/api/ds/query", {"queries": [{"refId": "A", "datasource": {"uid": "pvds_acme"}}]}),
    ):
        refused = as_user(grafana, login, password, method, path, org=acme_org, json=body)
        assert refused.status_code in (401, 403), (path, refused.status_code)
    assert as_user(grafana, login, password, "GET", "/api/datasources", org=beta_org).status_code == 200
    assert all(q["token"] != "tok-acme" for q in grafana.queries)


# ---- the config API ---------------------------------------------------------------------------


def test_config_api_unset_is_skipped_and_a_foreign_bucket_is_a_failure(grafana, tmp_path, config_api):
    create(make_settings(grafana, tmp_path))
    assert config_api.served() == []
    s = make_settings(grafana, tmp_path, config_api_url=config_api.url, config_api_token="cfg-token")
    config_api.register("acme", "someone_else")
    with pytest.raises(ProvisioningError, match="registered with bucket someone_else"):
        create(s)
    wrong = make_settings(grafana, tmp_path, config_api_url=config_api.url, config_api_token="nope")
    config_api.reset()
    with pytest.raises(ConfigApiError, match="HTTP 401.*CONFIG_API_TOKEN") as failure:
        create(wrong)
    assert "nope" not in str(failure.value) and config_api.clients == {}
    down = make_settings(
        grafana, tmp_path, config_api_url=f"http://127.0.0.1:{free_port()}", config_api_token="cfg-token"
    )
    with pytest.raises(ConfigApiError, match="cannot be reached"):
        create(down)


# ---- bad input, bad servers ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "../x",
        "a b",
        "$(touch /tmp/pwned_by_powerview)",
        ".hidden",
        "",
        "_internal",
        "x" * 129,
        'a"b',
        "a/b",
        "a\nb",
        42,
    ],
)
def test_bad_company_names_fail_before_any_call(grafana, tmp_path, name):
    with pytest.raises(ProvisioningError, match="name"):
        actions.run("company_present", company=name, settings=make_settings(grafana, tmp_path))
    assert grafana.requests == []


@pytest.mark.parametrize(
    "args, message",
    [
        ({"campaign": "x\n;rm -rf"}, "campaign name"),
        ({"user_login": "../x"}, "user name"),
        ({"user_email": "not an email"}, "user_email must be an email"),
        ({"user_email": "a@b", "user_password": "short"}, "at least 8"),
    ],
)
def test_bad_arguments_fail_before_any_call(grafana, tmp_path, args, message):
    with pytest.raises(ProvisioningError, match=message):
        actions.run("ping", company="acme", settings=make_settings(grafana, tmp_path), **args)
    assert grafana.requests == []


def test_grafana_refusing_down_or_not_grafana(grafana, tmp_path):
    s = make_settings(grafana, tmp_path, password="Wr0ng-pa55word")
    with pytest.raises(GrafanaError, match="HTTP 401.*GRAFANA_USERNAME and GRAFANA_PASSWORD") as refused:
        create(s)
    assert "Wr0ng-pa55word" not in str(refused.value) and grafana.writes() == []
    with html_server() as url:  # a web server that is not Grafana (a proxy's page)
        with pytest.raises(GrafanaError, match="not JSON .*GRAFANA_URL"):
            create(make_settings(grafana, tmp_path, url=url))
    grafana.stop()
    with pytest.raises(GrafanaError, match="/api/health.*cannot be reached"):
        create(make_settings(grafana, tmp_path))


def test_influxql_type_needs_its_template(grafana, tmp_path):
    s = make_settings(grafana, tmp_path, datasource_type="influxdb")
    with pytest.raises(TemplateError, match="dashboard_influxql.json.j2 is missing"):
        actions.run("ping", company="acme", templates_dir=tmp_path / "none", settings=s)
    with pytest.raises(TemplateError, match="dashboard_influxql.json.j2 is missing"):
        create(s, templates_dir=tmp_path / "none")
    assert grafana.writes() == []
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "dashboard_influxql.json.j2").write_text(
        '{"uid": {{ dashboard_uid | to_json }}, "title": {{ dashboard_title | to_json }}, "panels": [{"targets": '
        '[{"datasource": {"uid": {{ datasource_uid | to_json }}}, "query": {{ ("SELECT mean(*) FROM "'
        ' ~ (bucket | pv_influxql_identifier) ~ ".\\"autogen\\".\\"electrical\\"") | to_json }}}]}]}'
    )
    create(s, templates_dir=templates)
    ds = grafana.datasource_by_name("influxdb_acme")
    assert ds["type"] == "influxdb"
    assert {k: ds["jsonData"][k] for k in ("version", "dbName", "httpMode", "httpHeaderName1")} == {
        "version": "InfluxQL",
        "dbName": "acme",
        "httpMode": "POST",
        "httpHeaderName1": "Authorization",
    }
    assert grafana.datasource_secrets[ds["id"]] == {"httpHeaderValue1": "Token tok-1"}
    query = grafana.dashboards["powerview_acme"]["dashboard"]["panels"][0]["targets"][0]["query"]
    assert query == 'SELECT mean(*) FROM "acme"."autogen"."electrical"'
    assert create(s, templates_dir=templates)["changes"] == []


def test_settings_are_checked(tmp_path):
    env = {"GRAFANA_URL": "http://g:3000", "GRAFANA_USERNAME": "a", "GRAFANA_PASSWORD": "p"}
    empty = tmp_path / "empty.env"
    empty.write_text("")
    assert load(empty, env).tenancy == "team"
    assert load(empty, {**env, "GRAFANA_TENANCY": "ORG"}).tenancy == "org"
    with pytest.raises(ConfigError, match="GRAFANA_TENANCY must be team or org"):
        load(empty, {**env, "GRAFANA_TENANCY": "teams"})
    with pytest.raises(ConfigError, match="GRAFANA_TENANCY=org needs GRAFANA_USERNAME"):
        load(empty, {"GRAFANA_API_TOKEN": "t", "GRAFANA_TENANCY": "org"})
    with pytest.raises(ConfigError, match="missing Grafana credentials"):
        load(empty, {})
    with pytest.raises(ConfigError, match="CONFIG_API_URL must be a URL"):
        load(empty, {**env, "CONFIG_API_URL": "config-api:8000"})
    assert "S3cret-pw" not in repr(load(empty, {**env, "GRAFANA_PASSWORD": "S3cret-pw", "GRAFANA_API_TOKEN": "tk"}))


def test_query_languages_escapes():
    assert flux_string('a"b${x}\n') == '"a\\"b\\${x}\\n"'
    assert influxql_string("it's") == "'it\\'s'"
    assert influxql_identifier('a"b') == '"a\\"b"'


# ---- migration between tenancies ----------------------------------------------------------------


def _fake_tokens(company, dry_run):
    return {
        "bucket": company,
        "action": "reuse",
        "bucket_exists": True,
        "changed": False,
        **({} if dry_run else {"id": f"id-{company}", "token": f"tok-{company}"}),
    }


def test_migration_team_to_org_and_back_keeps_uids_and_users(grafana, tmp_path, config_api):
    from powerview.onboarding.grafana.client import Grafana
    from powerview.onboarding.grafana.company import Run
    from powerview.onboarding.grafana.tenancy import companies_in, migrate

    team = make_settings(grafana, tmp_path, config_api_url=config_api.url, config_api_token="cfg-token")
    create(team, company="acme", token="tok-acme", token_id="id-acme")
    create(team, company="beta", token="tok-beta", token_id="id-beta")
    actions.run(
        "user_present",
        company="acme",
        user_login="jdoe",
        user_email="jdoe@example.com",
        user_password="correct horse battery",
        influx_token="tok-acme",
        influx_token_id="id-acme",
        settings=team,
    )
    requests.post(
        f"{grafana.url}/api/dashboards/db",
        auth=ADMIN,
        timeout=10,
        json={
            "dashboard": {"uid": "acme_custom", "title": "Custom", "panels": [{"title": "p"}]},
            "folderUid": "pvfolder_acme",
        },
    ).raise_for_status()
    g = Grafana(team)
    assert companies_in(Run(g), team, "team") == ["acme", "beta"]

    writes = len(grafana.writes())
    plan = migrate(Run(g, check=True), team, "acme", "org", tokens=_fake_tokens)
    assert len(grafana.writes()) == writes
    assert "create organisation acme" in plan["changes"] and "delete team acme" in plan["changes"]
    assert "copy dashboard acme_custom (Custom)" in plan["changes"]

    moved = migrate(Run(g), team, "acme", "org", tokens=_fake_tokens)
    assert sorted(moved["moved_users"]) == ["jdoe", "user_acme"]
    org = grafana.org_by_name("acme")
    st = grafana.state(org["id"])
    assert set(st.dashboards) == {"powerview_acme", "acme_custom", "powerview_acme_jdoe"}
    assert st.dashboards["acme_custom"]["dashboard"]["panels"] == [{"title": "p"}]
    assert {d["uid"] for d in st.datasources.values()} == {"pvds_acme", "pvdsu_acme_jdoe"}
    jdoe_id = grafana.user_by_login("jdoe")["id"]
    assert st.dashboard_acl["powerview_acme_jdoe"] == [
        {"role": "Viewer", "permission": 1},
        {"userId": jdoe_id, "permission": 2},
    ]
    assert grafana.datasource_by_name("influxdb_acme_jdoe") is None  # gone from the main organisation
    for login in ("jdoe", "user_acme"):
        assert grafana.user_orgs(grafana.user_by_login(login)["id"]) == {org["id"]: "Viewer"}
    assert grafana.team_by_name("acme") is None and "pvfolder_acme" not in grafana.folders
    assert grafana.datasource_by_name("influxdb_acme") is None
    assert grafana.team_by_name("beta") and grafana.datasource_by_name("influxdb_beta")  # beta untouched
    assert config_api.clients == {"acme": "acme", "beta": "beta", "acme_jdoe": "acme"}
    assert migrate(Run(g), team, "acme", "org", tokens=_fake_tokens)["changes"] == []  # done: nothing

    back = migrate(Run(g), team, "acme", "team", tokens=_fake_tokens)
    assert back["changed"] and grafana.org_by_name("acme") is None
    acme = grafana.team_by_name("acme")
    assert {"powerview_acme", "acme_custom", "powerview_acme_jdoe"} <= set(grafana.dashboards)
    assert grafana.datasource_by_name("influxdb_acme")["uid"] == "pvds_acme"
    assert grafana.datasource_by_name("influxdb_acme_jdoe")["jsonData"]["clientId"] == "acme_jdoe"
    assert grafana.dashboard_acl["powerview_acme_jdoe"] == [
        {"teamId": acme["id"], "permission": 1},
        {"userId": jdoe_id, "permission": 2},
    ]
    for login in ("jdoe", "user_acme"):
        user = grafana.user_by_login(login)
        assert user["id"] in grafana.team_members[acme["id"]] and MAIN_ORG_ID in grafana.user_orgs(user["id"])
    assert create(team, company="acme", token="tok-acme", token_id="id-acme")["changes"] == []


def test_migration_command_line(grafana, tmp_path, monkeypatch):
    from click.testing import CliRunner

    from powerview.cli import tenancy

    env_file = tmp_path / "pv.env"
    env_file.write_text(
        f"GRAFANA_URL={grafana.url}\nGRAFANA_USERNAME=admin\nGRAFANA_PASSWORD=admin-password\n"
        f"POWERVIEW_DATA_DIR={tmp_path / 'data'}\nPOWERVIEW_SECRETS_DIR={tmp_path / 'secrets'}\n"
    )
    create(make_settings(grafana, tmp_path))
    monkeypatch.setattr(tenancy, "BucketTokens", lambda env_file: _fake_tokens)
    runner = CliRunner()
    usage = runner.invoke(tenancy.main, ["to-org", "--env-file", str(env_file)])
    assert usage.exit_code == 2 and "--company NAME" in usage.output
    dry = runner.invoke(tenancy.main, ["to-org", "--all", "--dry-run", "--env-file", str(env_file)])
    assert dry.exit_code == 0, dry.output
    assert "acme: would create organisation acme" in dry.output and grafana.org_by_name("acme") is None
    bad = runner.invoke(tenancy.main, ["to-org", "--company", "../x", "--env-file", str(env_file)])
    assert bad.exit_code == 1 and "company name" in bad.output
    done = runner.invoke(tenancy.main, ["to-org", "--company", "acme", "--env-file", str(env_file)])
    assert done.exit_code == 0 and "acme: moved to org tenancy" in done.output and grafana.org_by_name("acme")


def test_a_failure_half_way_names_the_call_and_a_rerun_finishes(grafana, tmp_path, monkeypatch):
    from stand_ins.grafana import ApiError

    s = make_settings(grafana, tmp_path)
    (s.data_dir / "acme").mkdir(parents=True)

    def broken(*args, **kwargs):
        raise ApiError(500, "database is locked")

    monkeypatch.setattr(grafana, "create_datasource", broken)
    with pytest.raises(GrafanaError, match=r"HTTP 500 from POST /api/datasources: database is locked"):
        create(s)
    assert grafana.team_by_name("acme") and "pvfolder_acme" in grafana.folders  # done before the failure
    assert not (s.data_dir / "acme" / ".company.created").exists()  # not marked as done
    monkeypatch.undo()
    finished = create(s)
    assert "create team acme" not in finished["changes"] and "create data source influxdb_acme" in finished["changes"]
    assert (s.data_dir / "acme" / ".company.created").exists() and create(s)["changes"] == []


def test_an_edited_dashboard_is_kept_and_a_refresh_keeps_the_customers_panels(grafana, tmp_path):
    s = make_settings(grafana, tmp_path)
    create(s)
    stored = grafana.dashboards["powerview_acme"]["dashboard"]
    rendered_panels = json.loads(json.dumps(stored["panels"]))
    mine = {"id": 5, "type": "stat", "title": "Mon total", "gridPos": {"h": 4, "w": 6, "x": 0, "y": 0}}
    stored["panels"] = [stored["panels"][0], mine]  # the customer removed three panels and added one
    stored["title"] = "Mes mesures"
    acl_before = list(grafana.dashboard_acl["powerview_acme"])
    assert create(s)["changes"] == []  # made once: never re-rendered
    refreshed = create(s, refresh_dashboard=True)
    assert refreshed["changes"] == ["save dashboard powerview_acme"]
    dash = grafana.dashboards["powerview_acme"]["dashboard"]
    assert dash["title"] == "Mes mesures" and grafana.dashboard_acl["powerview_acme"] == acl_before
    assert dash["panels"][:4] == rendered_panels
    kept = dash["panels"][4]
    assert {k: kept[k] for k in ("id", "type", "title")} == {"id": 5, "type": "stat", "title": "Mon total"}
    assert kept["gridPos"]["y"] >= max(p["gridPos"]["y"] + p["gridPos"]["h"] for p in rendered_panels)
    assert create(s, refresh_dashboard=True)["changes"] == []


def test_org_tenancy_never_deletes_an_organisation_that_is_not_powerviews(grafana, tmp_path):
    s = make_settings(grafana, tmp_path, tenancy="org")
    org_id = requests.post(f"{grafana.url}/api/orgs", auth=ADMIN, timeout=10, json={"name": "ops"}).json()["orgId"]
    requests.post(
        f"{grafana.url}/api/datasources",
        auth=ADMIN,
        timeout=10,
        headers={"X-Grafana-Org-Id": str(org_id)},
        json={"name": "prometheus", "type": "prometheus"},
    ).raise_for_status()
    with pytest.raises(ProvisioningError, match=r"holds data sources PowerView did not make \(prometheus\)"):
        actions.run("company_absent", company="ops", settings=s)
    assert grafana.org_by_name("ops")
    create(s, company="acme")
    requests.delete(
        f"{grafana.url}/api/orgs/{grafana.org_by_name('acme')['id']}/users/{grafana.admin_id}", auth=ADMIN, timeout=10
    ).raise_for_status()
    with pytest.raises(ProvisioningError, match=r"cannot be inspected \(HTTP 401\)"):
        actions.run("company_absent", company="acme", settings=s)
    create(s, company="acme")  # puts the admin back as a member
    assert actions.run("company_absent", company="acme", settings=s)["changed"]


# ---- a user's own view: data source and dashboard of add_grafana_user_to_team.yml ----------------


def add_user(s, login, company="acme", check=False, token="tok-1", token_id="id-1", **kw):
    return actions.run(
        "user_present",
        check=check,
        company=company,
        user_login=login,
        user_email=f"{login}@example.com",
        user_password="correct horse battery",
        influx_token=token,
        influx_token_id=token_id,
        settings=s,
        **kw,
    )


def test_team_user_view_is_made_once_then_nothing_and_check_mode_writes_nothing(grafana, tmp_path, config_api):
    s = make_settings(grafana, tmp_path, config_api_url=config_api.url, config_api_token="cfg-token")
    create(s)
    writes = len(grafana.writes())
    plan = add_user(s, "jdoe", check=True, token=None, token_id=None)  # --check: the token tool prints none
    assert len(grafana.writes()) == writes and grafana.user_by_login("jdoe") is None
    assert grafana.datasource_by_name("influxdb_acme_jdoe") is None and "acme_jdoe" not in config_api.clients
    for line in (
        "create user jdoe",
        "create data source influxdb_acme_jdoe",
        "save dashboard powerview_acme_jdoe",
        "set dashboard permissions of powerview_acme_jdoe (team acme View, jdoe Edit)",
        "register client id acme_jdoe in the config API",
    ):
        assert line in plan["changes"]
    assert add_user(s, "jdoe", check=True)["changed"] and len(grafana.writes()) == writes

    first = add_user(s, "jdoe")
    team = grafana.team_by_name("acme")
    jdoe = grafana.user_by_login("jdoe")
    ds = grafana.datasource_by_name("influxdb_acme_jdoe")
    company_ds = grafana.datasource_by_name("influxdb_acme")
    assert ds["uid"] == "pvdsu_acme_jdoe" and ds["type"] == company_ds["type"] and ds["url"] == company_ds["url"]
    # the company's settings, its own client id, and its owner (not secrets)
    assert ds["jsonData"] == {
        **company_ds["jsonData"],
        "clientId": "acme_jdoe",
        "powerviewCompany": "acme",
        "powerviewUser": "jdoe",
    }
    assert company_ds["jsonData"]["powerviewCompany"] == "acme" and company_ds["jsonData"]["powerviewUser"] == ""
    assert grafana.datasource_secrets[ds["id"]] == {"token": "tok-1", "httpHeaderValue1": "Token tok-1"}
    dash = grafana.dashboards["powerview_acme_jdoe"]
    assert dash["folderUid"] == "pvfolder_acme" and dash["dashboard"]["title"] == "Mesures acme (jdoe)"
    assert '"pvdsu_acme_jdoe"' in json.dumps(dash["dashboard"]) and '"pvds_acme"' not in json.dumps(dash["dashboard"])
    assert grafana.dashboard_acl["powerview_acme_jdoe"] == [
        {"teamId": team["id"], "permission": 1},
        {"userId": jdoe["id"], "permission": 2},
    ]
    assert grafana.dashboard_acl["powerview_acme"][0] == {"teamId": team["id"], "permission": 1}  # unchanged
    assert config_api.clients == {"acme": "acme", "acme_jdoe": "acme"}
    assert (first["datasource_name"], first["dashboard_uid"], first["client_id"]) == (
        "influxdb_acme_jdoe",
        "powerview_acme_jdoe",
        "acme_jdoe",
    )
    assert "tok-1" not in json.dumps(first) and "correct horse battery" not in json.dumps(first)
    assert "data source influxdb_acme_jdoe (client id acme_jdoe)" in first["message"]

    writes = len(grafana.writes())
    assert add_user(s, "jdoe")["changes"] == [] and add_user(s, "jdoe", check=True)["changes"] == []
    assert create(s)["changes"] == [] and len(grafana.writes()) == writes
    # a permission of ours removed by hand is added back, beside the ones added by hand
    manager = {"userId": grafana.admin_id, "permission": 4}
    grafana.dashboard_acl["powerview_acme_jdoe"] = [{"teamId": team["id"], "permission": 1}, manager]
    assert add_user(s, "jdoe")["changes"] == [
        "add missing dashboard permissions of powerview_acme_jdoe (team acme View, jdoe Edit)"
    ]
    assert grafana.dashboard_acl["powerview_acme_jdoe"] == [
        {"teamId": team["id"], "permission": 1},
        manager,
        {"userId": jdoe["id"], "permission": 2},
    ]
    # another token: the data source keeps its own
    assert add_user(s, "jdoe", token="tok-2", token_id="id-2")["changes"] == []
    assert grafana.datasource_secrets[ds["id"]]["token"] == "tok-1"


def test_user_view_needs_a_token_and_the_company_and_fails_before_any_write(grafana, tmp_path):
    s = make_settings(grafana, tmp_path)
    with pytest.raises(ProvisioningError, match="Team acme not found"):
        add_user(s, "jdoe")
    create(s)
    writes = len(grafana.writes())
    with pytest.raises(ProvisioningError, match="no InfluxDB token for data source influxdb_acme_jdoe"):
        add_user(s, "jdoe", token=None, token_id=None)
    assert len(grafana.writes()) == writes and grafana.user_by_login("jdoe") is None
    with pytest.raises(ProvisioningError, match="Team ghost not found"):
        actions.run("ping", company="ghost", require_company=True, settings=s)
    assert actions.run("ping", company="acme", require_company=True, settings=s)["changed"] is False


def test_org_user_view_lives_in_the_organisation_then_goes_with_it(grafana, tmp_path, config_api):
    s = make_settings(grafana, tmp_path, tenancy="org", config_api_url=config_api.url, config_api_token="cfg-token")
    create(s)
    writes = len(grafana.writes())
    with pytest.raises(ProvisioningError, match="Organisation ghost not found"):
        actions.run("ping", company="ghost", require_company=True, settings=s)
    assert actions.run("ping", company="acme", require_company=True, settings=s)["changed"] is False
    plan = add_user(s, "jdoe", check=True, token=None, token_id=None)
    assert len(grafana.writes()) == writes
    assert (
        "set dashboard permissions of powerview_acme_jdoe (the organisation's Viewers View, jdoe Edit)"
        in (plan["changes"])
    )
    add_user(s, "jdoe")
    org = grafana.org_by_name("acme")
    st = grafana.state(org["id"])
    jdoe = grafana.user_by_login("jdoe")
    ds = next(d for d in st.datasources.values() if d["name"] == "influxdb_acme_jdoe")
    assert ds["jsonData"]["clientId"] == "acme_jdoe" and ds["jsonData"]["powerviewUser"] == "jdoe"
    assert st.datasource_secrets[ds["id"]]["token"] == "tok-1"
    assert st.dashboards["powerview_acme_jdoe"]["folderUid"] == "pvfolder_acme"
    assert st.dashboard_acl["powerview_acme_jdoe"] == [
        {"role": "Viewer", "permission": 1},
        {"userId": jdoe["id"], "permission": 2},
    ]
    main = grafana.state(MAIN_ORG_ID)
    assert not main.datasources and not main.dashboards and grafana.user_orgs(jdoe["id"]) == {org["id"]: "Viewer"}
    writes = len(grafana.writes())
    assert add_user(s, "jdoe")["changes"] == [] and add_user(s, "jdoe", check=True)["changes"] == []
    assert create(s)["changes"] == [] and len(grafana.writes()) == writes
    # the organisation holds PowerView's data sources only: deleted, with the user's client id
    gone = actions.run("company_absent", company="acme", settings=s)
    assert "unregister client id acme_jdoe from the config API" in gone["changes"]
    assert grafana.org_by_name("acme") is None and config_api.clients == {}


def test_name_collisions_with_another_company_are_refused_naming_both(grafana, tmp_path, config_api):
    """Company acme's user x and company acme_x share the deployed names influxdb_acme_x,
    powerview_acme_x and the client id acme_x: what one owns, the other never changes."""
    s = make_settings(grafana, tmp_path, config_api_url=config_api.url, config_api_token="cfg-token")
    create(s, company="acme")
    create(s, company="acme_y", token="tok-y")
    add_user(s, "x")
    theirs = json.loads(json.dumps(grafana.datasource_by_name("influxdb_acme_x")))
    writes = len(grafana.writes())
    # company acme_x after user x of acme: refused before any write
    with pytest.raises(
        ProvisioningError,
        match=r"data source influxdb_acme_x belongs to user x of company acme, not to company acme_x",
    ):
        create(s, company="acme_x", token="tok-x")
    # user y of acme after company acme_y: refused before the user is made
    with pytest.raises(
        ProvisioningError,
        match=r"influxdb_acme_y belongs to company acme_y \(its own data source\), not to user y of company acme",
    ):
        add_user(s, "y")
    assert len(grafana.writes()) == writes and grafana.user_by_login("y") is None
    assert grafana.datasource_by_name("influxdb_acme_x") == theirs
    assert grafana.datasource_by_name("influxdb_acme_y")["jsonData"]["clientId"] == "acme_y"
    # a data source of that name made by hand: not PowerView's, refused as well
    requests.post(
        f"{grafana.url}/api/datasources", auth=ADMIN, timeout=10, json={"name": "influxdb_acme_z", "type": "prometheus"}
    ).raise_for_status()
    with pytest.raises(ProvisioningError, match="influxdb_acme_z belongs to nobody PowerView knows"):
        add_user(s, "z")
    assert grafana.datasource_by_name("influxdb_acme_z")["type"] == "prometheus"
    # the user's dashboard uid is company acme_x's too: in another company's folder, refused
    from powerview.onboarding.grafana.client import Grafana
    from powerview.onboarding.grafana.company import Company, Run

    company = Company(Run(Grafana(s)), s, "acme_x")
    with pytest.raises(ProvisioningError, match=r"dashboard powerview_acme_x is in folder acme \(pvfolder_acme\)"):
        company.ensure_dashboard("pvfolder_acme_x", "pvds_acme_x", None)
    # deleting company acme_x leaves user x of acme's data source, dashboard and client id alone
    gone = actions.run("company_absent", company="acme_x", settings=s)
    assert grafana.datasource_by_name("influxdb_acme_x") == theirs and "powerview_acme_x" in grafana.dashboards
    assert config_api.clients["acme_x"] == "acme"
    assert any("influxdb_acme_x belongs to user x of company acme" in n for n in gone["notes"])
    assert any("client id acme_x reads bucket acme, not acme_x: kept" in n for n in gone["notes"])


def test_a_deployed_user_data_source_without_owner_markers_is_adopted(grafana, tmp_path):
    s = make_settings(grafana, tmp_path)
    create(s)
    deployed = {
        "name": "influxdb_acme_old",
        "type": "influxdb-adecwatts-datasource",
        "access": "proxy",
        "url": "http://influxdb:8086",
        "jsonData": {"version": "Flux", "defaultBucket": "acme", "clientId": "acme_old", "channelsList": ["U1"]},
        "secureJsonData": {"token": "tok-old", "httpHeaderValue1": "Token tok-old"},
    }
    requests.post(f"{grafana.url}/api/datasources", auth=ADMIN, timeout=10, json=deployed).raise_for_status()
    adopted = add_user(s, "old")
    assert [c for c in adopted["changes"] if "data source" in c] == [
        "add to data source influxdb_acme_old what it lacks (httpHeaderName1, httpMode, organization, readOnly, "
        "seriesConfigApiUrl, triphasicList, virtualSeries)"
    ]
    ds = grafana.datasource_by_name("influxdb_acme_old")
    assert "powerviewCompany" not in ds["jsonData"]  # known as the user's by its names
    assert ds["jsonData"]["channelsList"] == ["U1"] and ds["jsonData"]["clientId"] == "acme_old"
    assert grafana.datasource_secrets[ds["id"]]["token"] == "tok-old"
    dash = grafana.dashboards["powerview_acme_old"]["dashboard"]
    assert dash["title"] == "Mesures acme (old)" and '"forcedClientId": "acme_old"' in json.dumps(dash)


def test_delete_with_a_user_then_the_company_takes_its_users_views_and_no_one_elses(grafana, tmp_path, config_api):
    s = make_settings(grafana, tmp_path, config_api_url=config_api.url, config_api_token="cfg-token")
    create(s, company="acme")
    create(s, company="beta", token="tok-beta")
    add_user(s, "jdoe")
    add_user(s, "ann")
    add_user(s, "bob", company="beta", token="tok-beta")
    # made by the deployed playbook (no owner marker): recognised by bucket and client id
    requests.post(
        f"{grafana.url}/api/datasources",
        auth=ADMIN,
        timeout=10,
        json={"name": "influxdb_acme_old", "type": "x", "jsonData": {"defaultBucket": "acme", "clientId": "acme_old"}},
    ).raise_for_status()
    # a name with the company's prefix, not PowerView's: never deleted
    requests.post(
        f"{grafana.url}/api/datasources",
        auth=ADMIN,
        timeout=10,
        json={"name": "influxdb_acme_ops", "type": "prometheus"},
    ).raise_for_status()
    writes = len(grafana.writes())
    plan = actions.run("company_absent", check=True, company="acme", user_login="jdoe", settings=s)
    assert len(grafana.writes()) == writes and config_api.clients["acme_jdoe"] == "acme"
    for line in (
        "delete data source influxdb_acme_ann",
        "delete data source influxdb_acme_jdoe",
        "delete data source influxdb_acme_old",
        "delete dashboard powerview_acme_jdoe",
        "delete dashboard powerview_acme_ann",
        "delete data source influxdb_acme",
        "unregister client id acme_jdoe from the config API",
        "unregister client id acme_ann from the config API",
        "delete user jdoe",
    ):
        assert plan["changes"].count(line) == 1, line
    assert not any("influxdb_acme_ops" in line or "beta" in line for line in plan["changes"])

    done = actions.run("company_absent", company="acme", user_login="jdoe", settings=s)
    assert done["changes"] == plan["changes"]
    for name in ("influxdb_acme", "influxdb_acme_jdoe", "influxdb_acme_ann", "influxdb_acme_old"):
        assert grafana.datasource_by_name(name) is None, name
    assert not {"powerview_acme", "powerview_acme_jdoe", "powerview_acme_ann"} & set(grafana.dashboards)
    assert grafana.user_by_login("jdoe") is None and grafana.user_by_login("ann")  # only the user given
    assert grafana.datasource_by_name("influxdb_acme_ops")["type"] == "prometheus"
    # beta and its user's view: untouched
    bob = grafana.datasource_by_name("influxdb_beta_bob")
    assert bob and grafana.datasource_secrets[bob["id"]]["token"] == "tok-beta"
    assert {"powerview_beta", "powerview_beta_bob"} <= set(grafana.dashboards)
    assert config_api.clients == {"beta": "beta", "beta_bob": "beta"}
    assert add_user(s, "bob", company="beta", token="tok-beta")["changes"] == []
    assert actions.run("company_absent", company="acme", user_login="jdoe", settings=s)["changed"] is False


def test_a_colliding_dashboard_or_client_id_alone_is_refused_before_any_write(grafana, tmp_path, config_api):
    s = make_settings(grafana, tmp_path, config_api_url=config_api.url, config_api_token="cfg-token")
    create(s, company="acme")
    create(s, company="acme_x", token="tok-x")
    ds = grafana.datasource_by_name("influxdb_acme_x")
    requests.delete(f"{grafana.url}/api/datasources/uid/{ds['uid']}", auth=ADMIN, timeout=10).raise_for_status()
    writes = len(grafana.writes())
    with pytest.raises(ProvisioningError, match=r"dashboard powerview_acme_x is in folder acme_x \(pvfolder_acme_x\)"):
        add_user(s, "x")
    requests.delete(f"{grafana.url}/api/dashboards/uid/powerview_acme_x", auth=ADMIN, timeout=10).raise_for_status()
    writes += 1
    with pytest.raises(ProvisioningError, match="client id acme_x is registered with bucket acme_x, not acme"):
        add_user(s, "x")
    assert len(grafana.writes()) == writes and grafana.user_by_login("x") is None
    assert config_api.clients["acme_x"] == "acme_x"
