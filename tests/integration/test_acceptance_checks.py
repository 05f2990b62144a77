"""The acceptance check's A2 resource checks against the Grafana and InfluxDB 2 stand-ins, with
the resources made through the public APIs (no playbook: fast): every check passes on a complete
company, and a deleted data source fails exactly its own line."""

from __future__ import annotations

import requests

from powerview.acceptance import plan as acceptance
from powerview.acceptance.settings import load_acceptance
from powerview.core.settings import load_tokens
from powerview.onboarding.grafana.names import company_names
from powerview.onboarding.influx_tokens import TokenManager, connect

from stand_ins.grafana import GrafanaStandIn


def provision(grafana: GrafanaStandIn, influx2, company: str, data_dir) -> None:
    """What create_grafana_resources.yml leaves, made by hand through the same APIs."""
    n = company_names(company)
    admin = requests.Session()
    admin.auth = ("admin", "admin-password")
    url = grafana.url
    admin.post(f"{url}/api/teams", json={"name": n["team"]}, timeout=5).raise_for_status()
    admin.post(
        f"{url}/api/folders", json={"title": n["folder_title"], "uid": n["folder_uid"]}, timeout=5
    ).raise_for_status()
    admin.post(
        f"{url}/api/datasources",
        json={
            "name": n["datasource_name"],
            "uid": n["datasource_uid"],
            "type": "influxdb",
            "access": "proxy",
            "jsonData": {"defaultBucket": company},
            "secureJsonData": {"token": "t"},
        },
        timeout=5,
    ).raise_for_status()
    admin.post(
        f"{url}/api/dashboards/db",
        json={"dashboard": {"uid": n["dashboard_uid"], "title": n["dashboard_title"]}, "folderUid": n["folder_uid"]},
        timeout=5,
    ).raise_for_status()
    settings = load_tokens(
        None, {"INFLUXDB_HOST": influx2.url, "INFLUXDB_ORG": influx2.org, "INFLUXDB_ADMIN_TOKEN": influx2.admin_token}
    )
    with connect(settings.influx) as client:
        TokenManager(client, influx2.org, budget_s=5).ensure(company)
    (data_dir / company).mkdir()
    (data_dir / company / ".company.created").touch()


def a2_lines(tmp_path, influx2, grafana, company: str) -> list[str]:
    settings = load_acceptance(
        None,
        {
            "INFLUXDB_HOST": influx2.url,
            "INFLUXDB_ORG": influx2.org,
            "INFLUXDB_ADMIN_TOKEN": influx2.admin_token,
            "GRAFANA_URL": grafana.url,
            "GRAFANA_USERNAME": "admin",
            "GRAFANA_PASSWORD": "admin-password",
            "POWERVIEW_DATA_DIR": str(tmp_path / "data"),
            "POWERVIEW_LOG_DIR": str(tmp_path / "logs"),
        },
    )
    lines: list[str] = []
    run = acceptance.Plan(settings, tmp_path, None, 5.0, lambda check: lines.append(check.line()), company=company)
    run.a2_resources()
    return lines


def test_a_complete_company_passes_every_a2_check(tmp_path, influx2):
    company = "pvaccept_0000a20c"
    (tmp_path / "data").mkdir()
    with GrafanaStandIn() as grafana:
        provision(grafana, influx2, company, tmp_path / "data")
        lines = a2_lines(tmp_path, influx2, grafana, company)
    assert len(lines) == 6 and all(line.startswith("PASS A2 ") for line in lines), lines


def test_a_deleted_data_source_fails_its_line_and_no_other(tmp_path, influx2):
    company = "pvaccept_0000a2d5"
    (tmp_path / "data").mkdir()
    with GrafanaStandIn() as grafana:
        provision(grafana, influx2, company, tmp_path / "data")
        requests.delete(
            f"{grafana.url}/api/datasources/name/influxdb_{company}", auth=("admin", "admin-password"), timeout=5
        ).raise_for_status()
        lines = a2_lines(tmp_path, influx2, grafana, company)
    failed = [line for line in lines if not line.startswith("PASS")]
    assert failed == [
        f"FAIL A2 Grafana data source influxdb_{company} — GET /api/datasources/name/influxdb_{company} "
        "answered HTTP 404 Data source not found"
    ], lines


def public_address_line(tmp_path, grafana: GrafanaStandIn) -> list[str]:
    settings = load_acceptance(
        None,
        {
            "INFLUXDB_HOST": "http://127.0.0.1:9",
            "INFLUXDB_ORG": "powerview",
            "INFLUXDB_ADMIN_TOKEN": "t",
            "GRAFANA_URL": grafana.url,
            "GRAFANA_USERNAME": "admin",
            "GRAFANA_PASSWORD": "admin-password",
            "POWERVIEW_DATA_DIR": str(tmp_path / "data"),
            "POWERVIEW_LOG_DIR": str(tmp_path / "logs"),
        },
    )
    lines: list[str] = []
    acceptance.Plan(settings, tmp_path, None, 5.0, lambda check: lines.append(check.line())).grafana_public_address()
    return lines


def test_the_deployed_public_address_passes(tmp_path):
    with GrafanaStandIn() as grafana:  # the deployed root URL, as Grafana resolves it
        assert public_address_line(tmp_path, grafana) == [
            "PASS A0 Grafana public address — http://powerview.adecwatts.fr/"
        ]


def test_a_localhost_root_url_fails(tmp_path):
    # Grafana's own default (%(protocol)s://%(domain)s:%(http_port)s/ with domain localhost), then a
    # loopback address
    for app_url in ("http://localhost:3000/", "http://127.0.0.1:8088/", "http://[::1]:3000/"):
        with GrafanaStandIn(app_url=app_url) as grafana:
            (line,) = public_address_line(tmp_path, grafana)
        assert line.startswith(f"FAIL A0 Grafana public address — Grafana's root URL is {app_url} (a local address)")
        assert "set GRAFANA_ROOT_URL and GRAFANA_DOMAIN in .env" in line
