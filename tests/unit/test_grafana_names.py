"""Grafana names and uids of a company, the provisioning's helpers, and the dashboard template."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from powerview.grafana.company import ProvisioningError, acl, check_name, contains
from powerview.grafana.render import flux_string, render_dashboard
from powerview.grafana_names import company_names, grafana_uid, user_names

PROJECT = Path(__file__).resolve().parents[2]
TEMPLATES = PROJECT / "grafana-automation" / "templates"

UID = re.compile(r"[A-Za-z0-9_-]{1,40}\Z")


def test_names_of_a_simple_company():
    names = company_names("companyX")
    assert names["team"] == "companyX" and names["folder_title"] == "companyX"
    assert names["datasource_name"] == "influxdb_companyX"
    assert names["dashboard_uid"] == "powerview_companyX"
    assert names["dashboard_title"] == "Overview companyX"
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


def render(bucket: str, uid: str = "powerview_x", title: str = "Overview x") -> dict:
    return render_dashboard(
        TEMPLATES,
        "influxdb-adecwatts-datasource",
        {
            "dashboard_uid": uid,
            "dashboard_title": title,
            "bucket": bucket,
            "datasource_uid": "ds_uid",
            "datasource_type": "influxdb-adecwatts-datasource",
        },
    )


@pytest.mark.parametrize("company", ["acme", "a.b-c_d", "x" * 128, "-lead"])
def test_dashboard_renders_valid_json_for_allowed_names(company):
    names = company_names(company)
    dash = render(company, names["dashboard_uid"], names["dashboard_title"])
    assert dash["uid"] == names["dashboard_uid"] and dash["title"] == f"Overview {company}"
    assert [v["name"] for v in dash["templating"]["list"]] == ["campaign", "device_master_sn", "channel_id"]
    titles = [p["title"] for p in dash["panels"]]
    assert titles == [
        "Phase voltages",
        "Power per channel",
        "Energy per channel over the range",
        "Time of the last point",
    ]
    for panel in dash["panels"]:
        query = panel["targets"][0]["query"]
        assert f'from(bucket: "{company}")' in query
        assert panel["datasource"] == {"type": "influxdb-adecwatts-datasource", "uid": "ds_uid"}
    assert "integral(unit: 1h)" in dash["panels"][2]["targets"][0]["query"]
    assert 'r.channel_unit == "V"' in dash["panels"][0]["targets"][0]["query"]
    assert "last()" in dash["panels"][3]["targets"][0]["query"]
    for variable in dash["templating"]["list"]:
        assert f'bucket: "{company}"' in variable["query"]


def test_dashboard_escapes_a_hostile_name_anyway():
    hostile = 'x") |> drop() //${evil}\\'
    dash = render(hostile, title=f'Overview {hostile}"}}')
    assert dash["title"] == f'Overview {hostile}"}}'
    query = dash["panels"][0]["targets"][0]["query"]
    assert 'from(bucket: "x\\") |> drop() //\\${evil}\\\\")' in query
    assert 'from(bucket: "x")' not in query


def test_names_of_a_users_view_are_the_deployed_ones_and_valid_uids_for_long_names():
    names = user_names("acme", "jdoe")
    assert names == {
        "datasource_name": "influxdb_acme_jdoe",
        "datasource_uid": "pvdsu_acme_jdoe",
        "dashboard_uid": "powerview_acme_jdoe",
        "dashboard_title": "Overview acme (jdoe)",
        "client_id": "acme_jdoe",
    }
    # never the company's own data source uid, even where the deployed names collide (acme_x)
    assert user_names("acme", "x")["datasource_uid"] != company_names("acme_x")["datasource_uid"]
    long = user_names("x" * 128, "y" * 128)
    assert UID.match(long["datasource_uid"]) and UID.match(long["dashboard_uid"])
    assert long == user_names("x" * 128, "y" * 128)
    with pytest.raises(ValueError, match="user name"):
        user_names("acme", "a/b")
