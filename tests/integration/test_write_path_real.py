"""The write path against real servers: InfluxDB 1.x parses our line protocol and stores the exact
values (InfluxQL read-back); VictoriaMetrics takes influxdb-client's /api/v2/write from the real
tsv_parser.py. Expectations come from tests/expected.py, an independent reading of the files."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from powerview.ingestion import ingest, layout
from powerview.ingestion.formats import RowRules

import expected
import samples

NOW = datetime.now(UTC)
EXPECTED_REJECTS = {
    "T202_251022_121951.tsv",
    "T302_260109_120045.tsv",
    "T302_260109_133915.tsv",
    "T202_260303_031500.tsv",
}


class Influx1Writer:
    """Sends each batch to InfluxDB 1.x's /write (db = a per-test prefix + bucket) and insists on 204."""

    def __init__(self, server, prefix: str):
        self.server, self.prefix, self.databases = server, prefix, set()
        self.nb_requests = 0

    def db(self, bucket: str) -> str:
        return self.prefix + bucket

    def write(self, bucket: str, body: bytes) -> None:
        if bucket not in self.databases:
            self.server.create_db(self.db(bucket))
            self.databases.add(bucket)
        response = self.server.write(self.db(bucket), body, precision="s")
        assert response.status_code == 204, response.text
        self.nb_requests += 1

    def close(self) -> None:
        pass


def read_back(server, db: str) -> dict:
    stored = {}
    for row in server.query(db, "SELECT * FROM electrical GROUP BY *"):
        # GROUP BY * lists every tag key of the measurement: "" where a series has no such tag
        tags = frozenset(
            (k, v) for k, v in row.items() if k not in ("_measurement", "time") and not k.startswith("M") and v != ""
        )
        for key, value in row.items():
            if key.startswith("M") and value is not None:
                stored[(key, tags, row["time"])] = float(value)
    return stored


@pytest.mark.parametrize("source", samples.data_sources())
def test_influxdb1_stores_exactly_what_the_files_say(influxd1, tmp_path, source):
    root = samples.copy_tree(source, tmp_path / "data")
    want = expected.expected_by_bucket(root, NOW)
    writer = Influx1Writer(influxd1, f"t{uuid.uuid4().hex[:8]}_")
    options = ingest.RunOptions(root, RowRules.for_now(date(2021, 1, 1), "UTC", now=NOW), 5000, dry_run=False)
    locations = [layout.locate(root, p) for p in layout.discover(root)]
    entries, config_error = ingest.run(locations, options, writer)
    assert config_error is None

    for entry in entries:
        name = Path(entry.file).name
        folder = "error" if name in EXPECTED_REJECTS else "parsed"
        assert entry.status == ("error" if folder == "error" else "success"), entry.error
        assert Path(entry.destination) == Path(entry.file).parent / folder / name
        assert Path(entry.destination).exists() and not Path(entry.file).exists()
    assert not list(layout.discover(root))

    assert set(writer.databases) == set(want)
    for bucket, points in want.items():
        stored = read_back(influxd1, writer.db(bucket))
        assert len(stored) == len(points)
        assert stored == points, f"bucket {bucket}: stored points differ from the files"


def test_influxdb1_accepts_our_escaping_of_odd_labels(influxd1, tmp_path):
    labels = ["Ph 1 V", "Voie, 2=a W", 'Ï "quoted" kWh', "x=y,z k W/m2"]
    content = samples.v002(["0201"] * 5, labels, [samples.row("02/03/26 10:00:00", 230.5, -0.0, 0, 1e-7)])
    root = tmp_path / "data"
    samples.place(root, "acme", "camp.1", "0201", "odd.tsv", content)
    writer = Influx1Writer(influxd1, f"t{uuid.uuid4().hex[:8]}_")
    options = ingest.RunOptions(root, RowRules.for_now(date(2021, 1, 1), now=NOW), 5000, dry_run=False)
    entries, _ = ingest.run([layout.locate(root, p) for p in layout.discover(root)], options, writer)
    assert entries[0].status == "success", entries[0].error
    rows = influxd1.query(writer.db("acme"), "SELECT * FROM electrical GROUP BY *")
    by_name = {row["channel_name"]: row for row in rows}
    assert set(by_name) == {"Ph 1", "Voie, 2=a", 'Ï "quoted"', "x=y,z k"}
    assert by_name["Ph 1"]["M0201_U1_V"] == 230.5
    assert by_name["Voie, 2=a"]["M0201_Ch1_W"] == 0
    assert by_name['Ï "quoted"']["channel_unit"] == "kWh" and by_name['Ï "quoted"']["M0201_Ch2_kWh"] == 0
    assert by_name["x=y,z k"]["channel_unit"] == "W/m2" and by_name["x=y,z k"]["M0201_Ch3_W/m2"] == 1e-7
    assert {row["campaign"] for row in rows} == {"camp.1"}
    assert all(row["time"] == int(datetime(2026, 3, 2, 10, tzinfo=UTC).timestamp()) for row in rows)


def test_tsv_parser_writes_through_the_influxdb_2_write_api_to_victoria_metrics(victoria_metrics, tmp_path):
    """The real command, its InfluxDB 2 writer (/api/v2/write?org=&bucket=&precision=s), a real server."""
    root = samples.copy_tree(samples.PROJECT_DIR / "examples" / "data", tmp_path / "data")
    campaign = f"audit_{uuid.uuid4().hex[:8]}"  # VictoriaMetrics has no buckets: a campaign of our own
    (root / "demo_energie" / "audit_2026").rename(root / "demo_energie" / campaign)
    want = expected.expected_by_bucket(root, NOW)["demo_energie"]
    env_file = tmp_path / "test.env"
    env_file.write_text(
        f"INFLUXDB_HOST={victoria_metrics.url}\nINFLUXDB_ORG=powerview\n"
        "INFLUXDB_ADMIN_TOKEN=unused-by-vm\nTSV_INFLUX_CREATE_BUCKETS=false\n"
        f"TSV_REPORT_DIR={tmp_path / 'reports'}\n"
        "TSV_DOWNSAMPLE_LEVELS=\n"
    )  # VictoriaMetrics speaks no InfluxQL: no derived buckets
    proc = samples.run_tsv_parser(root, env_file)
    assert proc.returncode == 1, proc.stderr  # the unsupported T202 sample is rejected
    assert len(list((tmp_path / "reports").glob("tsv_parser_*.json"))) == 1
    assert sorted(p.name for p in root.rglob("parsed/*.tsv")) == [
        "T302_260303_031500.tsv",
        "T302_260303_031500_UTC.tsv",
        "T302_260303_120300.tsv",
    ]

    stored: dict = {}
    for series in victoria_metrics.export(f'{{__name__=~"electrical_.*",campaign="{campaign}"}}'):
        labels = dict(series["metric"])
        field = labels.pop("__name__").removeprefix("electrical_")
        tags = frozenset(labels.items())
        for value, ms in zip(series["values"], series["timestamps"]):
            stored.setdefault((field, tags, ms // 1000), set()).add(value)
    assert set(stored) == set(want)
    # VictoriaMetrics keeps both samples of a repeated timestamp: each must be the file's value
    assert all(values == {want[key]} for key, values in stored.items())

    meta = victoria_metrics.export(f'{{__name__="tsv_parser_file_nb_points",campaign="{campaign}"}}')
    points_by_file = {m["metric"]["file_name"]: (m["metric"]["status"], m["values"][-1]) for m in meta}
    assert points_by_file["T302_260303_031500_UTC.tsv"] == ("success", 864)
    assert points_by_file["T202_260303_031500.tsv"] == ("error", 0)
