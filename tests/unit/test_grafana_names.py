"""Grafana names and uids of a company, the provisioning's helpers, and the dashboard template."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from powerview.onboarding.grafana.company import ProvisioningError, acl, check_name, contains
from powerview.onboarding.grafana.names import company_names, grafana_uid, user_names
from powerview.onboarding.grafana.render import flux_string, render_dashboard

PROJECT = Path(__file__).resolve().parents[2]
TEMPLATES = PROJECT / "grafana-automation" / "templates"

UID = re.compile(r"[A-Za-z0-9_-]{1,40}\Z")


def test_names_of_a_simple_company():
    names = company_names("companyX")
    assert names["team"] == "companyX" and names["folder_title"] == "companyX"
    assert names["datasource_name"] == "influxdb_companyX"
    assert names["dashboard_uid"] == "powerview_companyX"
    assert names["dashboard_title"] == "Mesures companyX"  # the deployed title
    assert names["user_login"] == "user_companyX" and names["user_name"] == "companyX Default"
    assert names["token_description"] == "powerview_token_for_bucket_companyX"


@pytest.mark.parametrize("company", ["a.b", "x" * 128, "acme-2024", "-lead", "z" * 31])
def test_uids_are_valid_and_stable_for_every_allowed_name(company):
    first, second = company_names(company), company_names(company)
    for key in ("folder_uid", "datasource_uid", "dashboard_uid"):
        assert UID.match(first[key]), first[key]
        assert first[key] == second[key]
    assert len({first["folder_uid"], first["dashboard_uid"], first["datasource_uid"]}) == 3


def test_hashed_uids_do_not_collide_for_close_names():
    assert grafana_uid("powerview_", "a.b") != grafana_uid("powerview_", "a-b")
    assert grafana_uid("powerview_", "x" * 100) != grafana_uid("powerview_", "x" * 101)


@pytest.mark.parametrize("bad", ["../x", "a b", ".hidden", "_x", "", "a/b", "$(id)"])
def test_bad_company_names_are_refused(bad):
    with pytest.raises(ValueError, match="not allowed"):
        company_names(bad)
    with pytest.raises(ProvisioningError, match="not allowed"):
        check_name("company", bad)


def test_name_check_accepts_good_names_and_non_strings_are_refused():
    assert check_name("company", "acme") == "acme" and check_name("campaign", "camp_1") == "camp_1"
    with pytest.raises(ProvisioningError, match="must be a string"):
        check_name("company", 123)
    with pytest.raises(ProvisioningError, match="campaign name"):
        check_name("campaign", "a\nb")


def test_flux_string_cannot_be_escaped():
    assert flux_string("acme") == '"acme"'
    assert flux_string('a"b') == '"a\\"b"'
    assert flux_string("a\\b") == '"a\\\\b"'
    assert flux_string("${x}") == '"\\${x}"'
    assert flux_string("a\nb") == '"a\\nb"'


def test_acl_and_contains_helpers():
    listed = [
        {"teamId": 3, "permission": 1, "inherited": False},
        {"role": "Viewer", "permission": 1, "inherited": True, "teamId": 0, "userId": 0},
    ]
    assert acl(listed) == [("team", "3", 1)]
    assert acl([{"role": "Viewer", "permission": 1}]) == [("role", "Viewer", 1)]
    assert contains({"a": 1, "b": {"c": 2, "d": 3}}, {"b": {"c": 2}})
    assert not contains({"a": 1}, {"a": 2})
    assert not contains({"a": [1, 2]}, {"a": [1]})


def render(bucket: str, uid: str = "powerview_x", title: str = "Mesures x", client_id: str = "x") -> dict:
    return render_dashboard(
        TEMPLATES,
        "influxdb-adecwatts-datasource",
        {
            "dashboard_uid": uid,
            "dashboard_title": title,
            "bucket": bucket,
            "datasource_uid": "ds_uid",
            "datasource_id": 12,
            "datasource_type": "influxdb-adecwatts-datasource",
            "client_id": client_id,
            "config_datasource_uid": "json_uid",
        },
    )


@pytest.mark.parametrize("company", ["acme", "a.b-c_d", "x" * 128, "-lead"])
def test_dashboard_renders_valid_json_for_allowed_names(company):
    names = company_names(company)
    dash = render(company, names["dashboard_uid"], names["dashboard_title"], f"{company}_{company}")
    assert dash["uid"] == names["dashboard_uid"] and dash["title"] == f"Mesures {company}"
    assert [v["name"] for v in dash["templating"]["list"]] == ["campaign", "config"]
    campaign, config = dash["templating"]["list"]
    assert f'bucket: "{company}"' in campaign["query"]["query"]
    assert config["datasource"] == {"type": "marcusolsson-json-datasource", "uid": "json_uid"}
    assert (
        config["query"]["urlPath"]
        == f"/clients/{company}_{company}/series-config/configs?campaign=${{campaign:percentencode}}"
    )
    panels = {p["id"]: p for p in dash["panels"]}
    assert [(i, panels[i]["type"]) for i in (1, 2, 3, 4)] == [
        (1, "timeseries"),
        (2, "adecwatts-series-config-panel"),
        (3, "row"),
        (4, "piechart"),
    ]
    for panel_id, placeholder in ((1, '["__visible"]'), (4, '["__visible_energy_mean"]')):
        query = panels[panel_id]["targets"][0]["query"]
        assert query.startswith("// powerview_config=${config}\n") and placeholder in query
        assert f'from(bucket: "{company}")' in query and "r.campaign == ${campaign:json}" in query
        assert panels[panel_id]["datasource"] == {"type": "influxdb-adecwatts-datasource", "uid": "ds_uid"}
    assert panels[2]["title"] == "Configuration des voies"
    assert panels[2]["options"] == {
        "forcedBucket": company,
        "forcedClientId": f"{company}_{company}",
        "forcedDatasourceId": 12,
        "forcedMeasurement": "electrical",
    }


def test_dashboard_escapes_a_hostile_name_anyway():
    hostile = 'x") |> drop() //${evil}\\'
    dash = render(hostile, title=f'Mesures {hostile}"}}', client_id=f'{hostile}"')
    assert dash["title"] == f'Mesures {hostile}"}}'
    query = dash["panels"][0]["targets"][0]["query"]
    assert 'from(bucket: "x\\") |> drop() //\\${evil}\\\\")' in query
    assert 'from(bucket: "x")' not in query
    assert dash["templating"]["list"][1]["query"]["urlPath"].startswith(f'/clients/{hostile}"/')


def test_names_of_a_users_view_are_the_deployed_ones_and_valid_uids_for_long_names():
    names = user_names("acme", "jdoe")
    assert names == {
        "datasource_name": "influxdb_acme_jdoe",
        "datasource_uid": "pvdsu_acme_jdoe",
        "dashboard_uid": "powerview_acme_jdoe",
        "dashboard_title": "Mesures acme (jdoe)",
        "client_id": "acme_jdoe",
    }
    # never the company's own data source uid, even where the deployed names collide (acme_x)
    assert user_names("acme", "x")["datasource_uid"] != company_names("acme_x")["datasource_uid"]
    long = user_names("x" * 128, "y" * 128)
    assert UID.match(long["datasource_uid"]) and UID.match(long["dashboard_uid"])
    assert long == user_names("x" * 128, "y" * 128)
    with pytest.raises(ValueError, match="user name"):
        user_names("acme", "a/b")
