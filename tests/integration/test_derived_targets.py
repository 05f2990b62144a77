"""The real tsv_parser.py against the InfluxDB 2 stand-in (INFLUXDB_VERSION=2, the default) and
the InfluxDB 3 stand-in (INFLUXDB_VERSION=3), both answering /query from a real InfluxDB 1.x that
holds the same points: the derived buckets they receive hold the exact windows."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests

import derived_expected
import samples
from stand_ins.influxdb2 import InfluxDB2StandIn
from stand_ins.influxdb3 import InfluxDB3StandIn

NOW = datetime.now(UTC)
COMPANY = "demo_energie"
TAGS = (
    "campaign",
    "channel_id",
    "channel_label",
    "channel_name",
    "channel_unit",
    "device",
    "device_master_sn",
    "device_sn",
    "device_type",
    "device_subtype",
)


def expected(root: Path) -> dict:
    points = derived_expected.merged_points(sorted(root.glob("*/*/*/*.tsv")), root, NOW)[COMPANY]
    out = {}
    for level, seconds in derived_expected.LEVELS.items():
        for measurement, values in derived_expected.windows(points, seconds).items():
            for (field, tags, end), value in values.items():
                out[(f"{COMPANY}_{level}", measurement, field, tags, end)] = value
    return out


def parse(root: Path, tmp_path: Path, settings: str) -> dict:
    env_file = tmp_path / "test.env"
    env_file.write_text(
        settings + f"TSV_REPORT_DIR={tmp_path / 'reports'}\nPOWERVIEW_SPOOL_DIR={tmp_path / 'spool'}\n"
        "TSV_INFLUX_RETRY_MAX_SECONDS=2\n"
    )
    proc = samples.run_tsv_parser(root, env_file)
    assert proc.returncode == 1, proc.stderr  # the T202 sample is rejected
    report = json.loads(next((tmp_path / "reports").glob("tsv_parser_*.json")).read_text())
    assert [e.get("derived") for e in report["files"] if e["status"] == "success"] == ["updated"] * 3
    return report


def compare(got: dict, want: dict) -> None:
    assert set(got) == set(want)
    for key, value in want.items():
        assert got[key] == pytest.approx(value, rel=1e-12), key


def test_influxdb2_stand_in_receives_exact_derived_buckets(influxd1, tmp_path):
    root = samples.copy_tree(samples.EXAMPLES, tmp_path / "data")
    want = expected(root)
    with InfluxDB2StandIn(org="powerview", admin_token="admin-token-s3cret", influxql_backend=influxd1.url) as influx:
        parse(
            root,
            tmp_path,
            f"INFLUXDB_HOST={influx.url}\nINFLUXDB_ORG=powerview\nINFLUXDB_ADMIN_TOKEN={influx.admin_token}\n",
        )
        assert {f"{COMPANY}_1h", f"{COMPANY}_1d", f"{COMPANY}_1w"} <= set(influx.buckets)
        got = {}
        for level in derived_expected.LEVELS:
            for (measurement, tag_items, field, t_ns), point in influx.latest(f"{COMPANY}_{level}").items():
                got[(f"{COMPANY}_{level}", measurement, field, frozenset(tag_items), t_ns // 10**9)] = point.fields[
                    field
                ]
        compare(got, want)
        assert influx.schema(f"{COMPANY}_1h")[("electrical_count", "M02009001_U1_V")] == "integer"
        # /query: InfluxDB 2's v1 compatibility, with the token; a token of another bucket sees nothing
        answer = requests.get(
            influx.url + "/query",
            params={"db": COMPANY, "q": "SHOW DATABASES"},
            headers={"Authorization": f"Token {influx.admin_token}"},
            timeout=10,
        ).json()
        assert [COMPANY, f"{COMPANY}_1d", f"{COMPANY}_1h", f"{COMPANY}_1w"] == sorted(
            v[0] for v in answer["results"][0]["series"][0]["values"] if v[0].startswith(COMPANY)
        )
        assert (
            requests.get(influx.url + "/query", params={"db": COMPANY, "q": "SHOW DATABASES"}, timeout=10).status_code
            == 401
        )


def test_influxdb3_stand_in_receives_exact_derived_buckets(influxd1, tmp_path):
    root = samples.copy_tree(samples.EXAMPLES, tmp_path / "data")
    want = expected(root)
    with InfluxDB3StandIn(influxql_backend=influxd1.url) as influx:
        parse(
            root,
            tmp_path,
            f"INFLUXDB_VERSION=3\nINFLUXDB_HOST={influx.url}\nINFLUXDB_ADMIN_TOKEN={influx.admin_token}\n",
        )
        # every electrical* table was created with all the schema's tags before the first write
        for db in (COMPANY, f"{COMPANY}_1h", f"{COMPANY}_1d", f"{COMPANY}_1w"):
            for table in ("electrical", "electrical_min", "electrical_max", "electrical_count"):
                assert sorted(influx.tables[db][table]["tags"]) == sorted(TAGS)
        got = {}
        for level in derived_expected.LEVELS:
            db = f"{COMPANY}_{level}"
            for point in influx.points[db]:
                for field, value in point.fields.items():
                    got[(db, point.measurement, field, frozenset(point.tags.items()), point.time // 10**9)] = value
        compare(got, want)
        # slave points (no device_subtype) and master points live in the same tables
        raw_tags = {frozenset(p.tags) for p in influx.points[COMPANY]}
        assert frozenset(TAGS) in raw_tags and frozenset(TAGS) - {"device_subtype"} in raw_tags


def test_influxdb3_stand_in_refuses_a_new_tag_on_an_existing_table(tmp_path):
    """Why the tables are created first: written slave-first, a master point is refused."""
    with InfluxDB3StandIn() as influx:
        headers = {"Authorization": f"Bearer {influx.admin_token}"}
        slave = b"electrical,device_sn=2,device_type=slave M1_S2_Ch1_W=1.0 1700000000\n"
        master = b"electrical,device_sn=1,device_subtype=tri,device_type=master M1_U1_V=230.0 1700000000\n"
        write = influx.url + "/api/v2/write"
        assert (
            requests.post(
                write, params={"bucket": "db1", "precision": "s"}, data=slave, headers=headers, timeout=10
            ).status_code
            == 204
        )
        refused = requests.post(
            write, params={"bucket": "db1", "precision": "s"}, data=master, headers=headers, timeout=10
        )
        assert refused.status_code == 400 and "immutable" in refused.text
        assert requests.post(write, params={"bucket": "db1"}, data=slave, timeout=10).status_code == 401
