"""The deployed read+write tokens: adopted by the provisioning (never a second token beside them),
then replaced by `powerview-tokens --migrate` (read-only token, Grafana data sources, deletion).

The InfluxDB 2 and Grafana stand-ins are seeded as the deployed system left them: the token made
by the deployed manage_influx_tokens.py (description powerview_token_for_bucket_<company>, read
and write on the company bucket, read on its derived buckets) and the data sources the deployed
playbooks made with it (influxdb_<company>, influxdb_<company>_<login>: plugin type, jsonData,
secureJsonData httpHeaderValue1 "Token <t>" and token <t>).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest
import requests
from click.testing import CliRunner
from deployed_tokens import ADMIN, DERIVED, PLUGIN, deployed_datasource, deployed_token

from powerview.cli.tokens import main

from stand_ins.grafana import GrafanaStandIn
from stand_ins.influxdb2 import InfluxDB2StandIn


@dataclass
class Deployed:
    influx: InfluxDB2StandIn
    grafana: GrafanaStandIn
    tokens: dict[str, str]  # company -> the deployed token value
    ids: dict[str, str]  # company -> the deployed authorization id


@pytest.fixture()
def deployed():
    """Companies acme (own data source + user bob's) and beta (own data source)."""
    with InfluxDB2StandIn() as influx, GrafanaStandIn() as grafana:
        tokens, ids = {}, {}
        for company, users in (("acme", ("bob",)), ("beta", ())):
            auth = deployed_token(influx, company)
            tokens[company], ids[company] = auth["token"], auth["id"]
            deployed_datasource(grafana, company, company, auth["token"], own=True)
            for login in users:
                deployed_datasource(grafana, company, login, auth["token"], own=False)
        yield Deployed(influx, grafana, tokens, ids)


def env(lab: Deployed, **overrides) -> dict[str, str]:
    values = {
        "INFLUXDB_HOST": lab.influx.url,
        "INFLUXDB_ORG": "powerview",
        "INFLUXDB_ADMIN_TOKEN": lab.influx.admin_token,
        "INFLUXDB_URL": "",
        "TSV_INFLUX_RETRY_MAX_SECONDS": "1",
        "TSV_LOG_LEVEL": "INFO",
        "GRAFANA_URL": lab.grafana.url,
        "GRAFANA_USERNAME": ADMIN[0],
        "GRAFANA_PASSWORD": ADMIN[1],
        "GRAFANA_API_TOKEN": "",
        "GRAFANA_TENANCY": "team",
    }
    values.update(overrides)
    return values


def cli(lab: Deployed, tmp_path, *args: str):
    env_file = tmp_path / "empty.env"
    env_file.write_text("")
    return CliRunner().invoke(main, ["--env-file", str(env_file), *args], env=env(lab))


def works(lab: Deployed, token: str) -> bool:
    """The token opens InfluxDB (lists the buckets it may read)."""
    answer = requests.get(f"{lab.influx.url}/api/v2/buckets", headers={"Authorization": f"Token {token}"}, timeout=10)
    return answer.status_code == 200 and bool(answer.json()["buckets"])


def secrets_of(lab: Deployed, name: str) -> dict:
    ds = lab.grafana.datasource_by_name(name)
    assert ds is not None, name
    return lab.grafana.datasource_secrets[ds["id"]]


def described(lab: Deployed, company: str) -> list[dict]:
    return [a for a in lab.influx.authorizations if a["description"] == f"powerview_token_for_bucket_{company}"]


def perms(auth: dict) -> set[tuple[str, str]]:
    return {(p["action"], p["resource"]["id"]) for p in auth["permissions"]}


def read_only_on_all(lab: Deployed, company: str) -> set[tuple[str, str]]:
    buckets = lab.influx.buckets
    return {("read", buckets[n]["id"]) for n in [company] + [f"{company}_{lv}" for lv in DERIVED]}


# ---- the provisioning adopts the deployed token ------------------------------------------------
def test_provisioning_adopts_the_deployed_token_instead_of_making_a_second_one(deployed, tmp_path):
    plan = cli(deployed, tmp_path, "--bucket", "acme", "--json", "--dry-run")
    assert plan.exit_code == 0, plan.stderr
    assert json.loads(plan.stdout) == {
        "bucket": "acme",
        "bucket_exists": True,
        "action": "reuse",
        "id": deployed.ids["acme"],
        "changed": False,
        "deployed": True,
    }
    run = cli(deployed, tmp_path, "--bucket", "acme", "--json")
    assert run.exit_code == 0, run.stderr
    out = json.loads(run.stdout)
    assert (out["id"], out["token"], out["changed"], out["action"]) == (
        deployed.ids["acme"],
        deployed.tokens["acme"],
        False,
        "reuse",
    )
    assert [a["id"] for a in described(deployed, "acme")] == [deployed.ids["acme"]]
    assert "adopting it" in run.stderr and "--migrate" in run.stderr
    assert deployed.tokens["acme"] not in run.stderr


# ---- migration ---------------------------------------------------------------------------------
def test_dry_run_says_what_it_would_do_and_changes_nothing(deployed, tmp_path):
    before_auths = deployed.influx.authorizations
    before_ds = {d["name"]: dict(d) for d in deployed.grafana.datasources.values()}
    seeded = len(deployed.grafana.requests)
    run = cli(deployed, tmp_path, "--migrate", "--all", "--dry-run", "--json")
    assert run.exit_code == 0, run.stderr
    report = {r["bucket"]: r for r in json.loads(run.stdout)}
    assert set(report) == {"acme", "beta"}
    assert report["acme"]["status"] == "would migrate"
    assert report["acme"]["token_action"] == "would create"
    assert report["acme"]["datasources_updated"] == ["influxdb_acme", "influxdb_acme_bob"]
    assert report["acme"]["deployed_tokens"] == [deployed.ids["acme"]] and report["acme"]["deleted"] == []
    assert deployed.influx.authorizations == before_auths
    assert {d["name"]: d for d in deployed.grafana.datasources.values()} == before_ds
    assert not [r for r in deployed.grafana.requests[seeded:] if r["method"] != "GET"]


def test_migrate_one_company_puts_the_read_only_token_in_its_data_sources_then_deletes_the_deployed_one(
    deployed, tmp_path
):
    run = cli(deployed, tmp_path, "--migrate", "--bucket", "acme")
    assert run.exit_code == 0, run.stderr
    [new] = described(deployed, "acme")
    assert new["id"] != deployed.ids["acme"] and perms(new) == read_only_on_all(deployed, "acme")
    for name in ("influxdb_acme", "influxdb_acme_bob"):
        assert secrets_of(deployed, name) == {"httpHeaderValue1": f"Token {new['token']}", "token": new["token"]}
        ds = deployed.grafana.datasource_by_name(name)
        assert ds["type"] == PLUGIN and ds["jsonData"]["powerviewTokenId"] == new["id"]
        assert ds["jsonData"]["clientId"] == ("acme_acme" if name == "influxdb_acme" else "acme_bob")
        assert ds["jsonData"]["seriesConfigApiUrl"] == "/api/datasources/proxy/25"
    assert not works(deployed, deployed.tokens["acme"]) and works(deployed, new["token"])
    assert run.stdout.startswith("acme: done;") and deployed.ids["acme"] + " deleted" in run.stdout
    assert new["token"] not in run.output and deployed.tokens["acme"] not in run.output
    # beta was not asked for: untouched
    assert secrets_of(deployed, "influxdb_beta")["token"] == deployed.tokens["beta"]
    assert works(deployed, deployed.tokens["beta"])
    # a rerun finds nothing to do and writes nothing
    writes = len([r for r in deployed.grafana.requests if r["method"] != "GET"])
    again = cli(deployed, tmp_path, "--migrate", "--bucket", "acme")
    assert again.exit_code == 0 and again.stdout.startswith("acme: nothing to do")
    assert len([r for r in deployed.grafana.requests if r["method"] != "GET"]) == writes
    assert [a["id"] for a in described(deployed, "acme")] == [new["id"]]


def test_grafana_failing_halfway_keeps_the_old_token_working_and_a_rerun_finishes(deployed, tmp_path):
    # the second data source update (influxdb_acme_bob) gets a 500
    bob_uid = deployed.grafana.datasource_by_name("influxdb_acme_bob")["uid"]
    deployed.grafana.fail_next("PUT", f"/api/datasources/uid/{bob_uid}", 500)
    run = cli(deployed, tmp_path, "--migrate", "--bucket", "acme", "--json")
    assert run.exit_code == 75, run.output
    [report] = json.loads(run.stdout)
    assert report["status"] == "not done" and report["exit_code"] == 75
    assert "HTTP 500" in report["reason"] and "old token is kept" in report["reason"]
    assert report["deleted"] == []
    # the deployed token still works, and bob's data source still has it
    assert works(deployed, deployed.tokens["acme"])
    assert secrets_of(deployed, "influxdb_acme_bob")["token"] == deployed.tokens["acme"]
    [old, new] = sorted(described(deployed, "acme"), key=lambda a: a["id"] != deployed.ids["acme"])
    assert old["id"] == deployed.ids["acme"] and old["status"] == "active"
    assert secrets_of(deployed, "influxdb_acme")["token"] == new["token"]
    assert "not done (acme)" in run.stderr
    # rerun: adopts the read-only token made above, updates only bob's, then deletes the old one
    again = cli(deployed, tmp_path, "--migrate", "--bucket", "acme", "--json")
    assert again.exit_code == 0, again.output
    [report] = json.loads(again.stdout)
    assert (report["status"], report["token_action"], report["token_id"]) == ("done", "adopted", new["id"])
    assert report["datasources_updated"] == ["influxdb_acme_bob"]
    assert report["datasources_already"] == ["influxdb_acme"]
    assert report["deleted"] == [deployed.ids["acme"]]
    assert [a["id"] for a in described(deployed, "acme")] == [new["id"]]
    assert secrets_of(deployed, "influxdb_acme_bob")["token"] == new["token"]
    assert not works(deployed, deployed.tokens["acme"]) and works(deployed, new["token"])


def test_grafana_down_changes_nothing_and_exits_75(deployed, tmp_path):
    deployed.grafana.stop()
    run = cli(deployed, tmp_path, "--migrate", "--all")
    assert run.exit_code == 75
    assert "cannot be reached" in run.stderr and "nothing done" in run.stderr
    assert [a["id"] for a in described(deployed, "acme")] == [deployed.ids["acme"]]
    assert works(deployed, deployed.tokens["acme"])


def test_all_companies_one_refused_the_others_done(deployed, tmp_path):
    # beta's data source was removed by hand: nothing would take the read-only token
    requests.delete(f"{deployed.grafana.url}/api/datasources/name/influxdb_beta", auth=ADMIN, timeout=10)
    run = cli(deployed, tmp_path, "--migrate", "--all")
    assert run.exit_code == 2, run.output
    lines = dict(line.split(": ", 1) for line in run.stdout.splitlines())
    assert lines["acme"].startswith("done;")
    assert lines["beta"].startswith("not done;") and "no Grafana data source of company beta" in lines["beta"]
    assert works(deployed, deployed.tokens["beta"])
    assert not works(deployed, deployed.tokens["acme"])


def test_read_back_without_the_new_token_is_not_done(deployed, tmp_path, monkeypatch):
    # a Grafana that answers 200 but does not keep the update (e.g. a provisioned, read-only data source)
    original = deployed.grafana.update_datasource

    def ignores(auth_kind, who, query, data, uid):
        ds = deployed.grafana._ds_by("uid", uid)
        return 200, {
            "datasource": deployed.grafana._datasource_dto(ds),
            "id": ds["id"],
            "message": "Datasource updated",
        }

    monkeypatch.setattr(deployed.grafana, "update_datasource", ignores)
    run = cli(deployed, tmp_path, "--migrate", "--bucket", "beta")
    assert run.exit_code == 75, run.output
    assert "read back without the new token id" in run.stdout
    assert works(deployed, deployed.tokens["beta"])
    assert deployed.ids["beta"] in [a["id"] for a in described(deployed, "beta")]
    monkeypatch.setattr(deployed.grafana, "update_datasource", original)


def test_usage_errors(deployed, tmp_path):
    for args, message in (
        (("--migrate",), "Missing option '--bucket' (or --all)"),
        (("--migrate", "--all", "--bucket", "acme"), "not both"),
        (("--all", "--bucket", "acme"), "--all goes with --migrate only"),
        (("--migrate", "--bucket", "acme", "--write"), "--write does not apply"),
        (("--migrate", "--bucket", "acme", "--rotate"), "exclude each other"),
        (("--migrate", "--bucket", "../x"), "bucket name"),
    ):
        run = cli(deployed, tmp_path, *args)
        assert run.exit_code == 2, (args, run.output)
        assert message in run.output, (args, run.output)
    assert works(deployed, deployed.tokens["acme"])


# ---- rotation of a read-only token reaches the data sources ------------------------------------
def test_rotate_puts_the_new_token_in_the_data_sources_before_deleting_the_old_ones(deployed, tmp_path):
    assert cli(deployed, tmp_path, "--migrate", "--bucket", "acme").exit_code == 0
    [first] = described(deployed, "acme")
    plan = cli(deployed, tmp_path, "--rotate", "--bucket", "acme", "--dry-run", "--json")
    assert plan.exit_code == 0, plan.output
    [report] = json.loads(plan.stdout)
    assert report["status"] == "would rotate" and report["deployed_tokens"] == [first["id"]]
    assert [a["id"] for a in described(deployed, "acme")] == [first["id"]]
    run = cli(deployed, tmp_path, "--rotate", "--bucket", "acme")
    assert run.exit_code == 0, run.output
    [second] = described(deployed, "acme")
    assert second["id"] != first["id"] and perms(second) == read_only_on_all(deployed, "acme")
    for name in ("influxdb_acme", "influxdb_acme_bob"):
        assert secrets_of(deployed, name)["token"] == second["token"]
    assert not works(deployed, first["token"]) and works(deployed, second["token"])
    assert second["token"] not in run.output


def test_rotate_with_grafana_failing_keeps_the_old_token(deployed, tmp_path):
    assert cli(deployed, tmp_path, "--migrate", "--bucket", "acme").exit_code == 0
    [first] = described(deployed, "acme")
    bob_uid = deployed.grafana.datasource_by_name("influxdb_acme_bob")["uid"]
    deployed.grafana.fail_next("PUT", f"/api/datasources/uid/{bob_uid}", 500)
    run = cli(deployed, tmp_path, "--rotate", "--bucket", "acme")
    assert run.exit_code == 75, run.output
    assert "old token is kept" in run.stdout
    assert first["id"] in [a["id"] for a in described(deployed, "acme")]
    assert works(deployed, first["token"])
    assert secrets_of(deployed, "influxdb_acme_bob")["token"] == first["token"]
