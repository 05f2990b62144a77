"""The deployed system's InfluxDB tokens and Grafana data sources, seeded on the stand-ins as the
deployed manage_influx_tokens.py and playbooks left them (facts from fheslouin/powerview):
description powerview_token_for_bucket_<company>; read and write on the company bucket, read on
<company>_1h/_1d/_1w; data source influxdb_<company> (or influxdb_<company>_<login>) of the plugin
type, clientId <company>_<login>, secureJsonData httpHeaderValue1 "Token <t>" and token <t>."""

from __future__ import annotations

import requests

from stand_ins.grafana import GrafanaStandIn, deployed_json_data
from stand_ins.influxdb2 import InfluxDB2StandIn

ADMIN = ("admin", "admin-password")
PLUGIN = "influxdb-adecwatts-datasource"
DERIVED = ("1h", "1d", "1w")


def _admin(influx: InfluxDB2StandIn) -> dict:
    return {"Authorization": f"Token {influx.admin_token}"}


def _bucket(influx: InfluxDB2StandIn, name: str) -> str:
    answer = requests.post(
        f"{influx.url}/api/v2/buckets",
        headers=_admin(influx),
        json={"orgID": influx.org_id, "name": name, "retentionRules": []},
        timeout=10,
    )
    answer.raise_for_status()
    return answer.json()["id"]


def deployed_token(influx: InfluxDB2StandIn, company: str) -> dict:
    """What `influx auth create --read-bucket RAW --write-bucket RAW --read-bucket DS...` made."""
    raw = _bucket(influx, company)
    derived = [_bucket(influx, f"{company}_{level}") for level in DERIVED]
    permissions = [{"action": a, "resource": {"type": "buckets", "id": raw}} for a in ("read", "write")]
    permissions += [{"action": "read", "resource": {"type": "buckets", "id": d}} for d in derived]
    answer = requests.post(
        f"{influx.url}/api/v2/authorizations",
        headers=_admin(influx),
        json={
            "orgID": influx.org_id,
            "description": f"powerview_token_for_bucket_{company}",
            "permissions": permissions,
        },
        timeout=10,
    )
    answer.raise_for_status()
    return answer.json()


def deployed_datasource(grafana: GrafanaStandIn, company: str, login: str, token: str, own: bool) -> None:
    """A data source as the deployed playbooks left it (created, then PUT to the plugin type)."""
    name = f"influxdb_{company}" if own else f"influxdb_{company}_{login}"
    body = {
        "name": name,
        "type": PLUGIN,
        "access": "proxy",
        "url": "http://influxdb:8086",
        "isDefault": False,
        "jsonData": deployed_json_data(company, f"{company}_{login}"),
        "secureJsonData": {"httpHeaderValue1": f"Token {token}", "token": token},
    }
    requests.post(f"{grafana.url}/api/datasources", auth=ADMIN, json=body, timeout=10).raise_for_status()
