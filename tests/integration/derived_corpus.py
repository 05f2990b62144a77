"""The real corpus in a real InfluxDB 1.x (INFLUXDB_VERSION=1) with its derived buckets: a session
fixture (registered by conftest.py) shared by test_derived_real.py and test_dashboard_influxql.py,
and the helpers that read the derived buckets back."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from powerview.core.settings import load_parser as load
from powerview.delivery import derived
from powerview.delivery.influx_targets import Influx1Writer, open_query_client
from powerview.ingestion import ingest, layout
from powerview.ingestion.formats import RowRules

import derived_expected
import samples

NOW = datetime.now(UTC)


def read_derived(server, db: str, measurement: str) -> dict:
    """{(field, tags, time): value} of one derived measurement, device by device (narrow answers)."""
    stored = {}
    devices = [
        row["value"] for row in server.query(db, f'SHOW TAG VALUES FROM "{measurement}" WITH KEY = "device_master_sn"')
    ]
    for device in devices:
        answer = server.query_raw(
            db, f"SELECT /^M{device}_/ FROM \"{measurement}\" WHERE device_master_sn = '{device}' GROUP BY *"
        )
        for series in answer["results"][0].get("series", []):
            tags = frozenset((k, v) for k, v in series["tags"].items() if v != "")
            columns = series["columns"]
            for row in series["values"]:
                for key, value in zip(columns[1:], row[1:]):
                    if value is not None:
                        stored[(key, tags, row[0])] = float(value)
    return stored


def stored_windows(server, company: str, level: str) -> dict:
    """{(measurement, field, tags, end): value} of one derived bucket."""
    out = {}
    for m in ("electrical", "electrical_min", "electrical_max", "electrical_count"):
        try:
            rows = server.query(f"{company}_{level}", f'SELECT * FROM "{m}" GROUP BY *')
        except Exception:  # noqa: BLE001 - no such database: nothing stored
            continue
        for row in rows:
            tags = frozenset(
                (k, v)
                for k, v in row.items()
                if k not in ("_measurement", "time") and not k.startswith("M") and v != ""
            )
            for key, value in row.items():
                if key.startswith("M") and value is not None:
                    out[(m, key, tags, row["time"])] = value
    return out


def snapshot_all(server, buckets) -> dict:
    return {
        (bucket, level, m): read_derived(server, f"{bucket}_{level}", m)
        for bucket in buckets
        for level in derived_expected.LEVELS
        for m in ("electrical", "electrical_min", "electrical_max", "electrical_count")
    }


def assert_derived_exact(snapshot: dict, points_by_bucket: dict) -> int:
    checked = 0
    for bucket, points in points_by_bucket.items():
        for level, seconds in derived_expected.LEVELS.items():
            want = derived_expected.windows(points, seconds)
            for measurement, values in want.items():
                got = snapshot[(bucket, level, measurement)]
                assert set(got) == set(values), f"{bucket}_{level} {measurement}: other windows"
                for key, value in values.items():
                    if measurement == "electrical":
                        assert got[key] == pytest.approx(value, rel=1e-12, abs=1e-12), key
                    else:
                        assert got[key] == value, key
                checked += len(values)
    return checked


def corpus_with_unique_companies(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    source = samples.corpus_dir()
    if source is None:
        pytest.skip(samples.NO_CORPUS)  # data, not a server: never a failure
    root = samples.copy_tree(source, tmp_path / "data")
    suffix = uuid.uuid4().hex[:6]
    renamed = {}
    for company in sorted(p.name for p in root.iterdir() if p.is_dir()):
        (root / company).rename(root / f"{company}{suffix}")
        renamed[company] = f"{company}{suffix}"
    return root, renamed


@pytest.fixture(scope="session")
def corpus_in_influxd1(influxd1, tmp_path_factory) -> dict:
    """The real corpus in a real InfluxDB 1.x, twice: newest file first, one by one (as the hook
    runs the parser), then every file again through the real tsv_parser.py; the derived buckets
    read back after each pass. Shared by this module and test_dashboard_influxql.py."""
    tmp_path = tmp_path_factory.mktemp("corpus")
    root, renamed = corpus_with_unique_companies(tmp_path)
    spool = tmp_path / "spool"
    env = {
        "INFLUXDB_VERSION": "1",
        "INFLUXDB_HOST": influxd1.url,
        "POWERVIEW_SPOOL_DIR": str(spool),
        "TSV_INFLUX_RETRY_MAX_SECONDS": "2",
        "TSV_REPORT_DIR": str(tmp_path / "reports"),
    }
    settings = load(tmp_path / "absent.env", environ=env)
    files = sorted(root.glob("*/*/*/*.tsv"), key=lambda p: (p.name, str(p)), reverse=True)
    pristine = {p: p.read_bytes() for p in files}
    readings: dict = {}
    state = {
        "server": influxd1,
        "renamed": renamed,
        "outbox": spool / "outbox" / "derived",
        "pass1": derived_expected.merged_points(files, root, NOW, readings),
        "pass2": derived_expected.merged_points(sorted(files), root, NOW, readings),
    }

    # pass 1: newest first, one file at a time, as the hook's worker runs the parser
    writer = Influx1Writer(settings.influx)
    client = open_query_client(settings.influx)
    options = ingest.RunOptions(root, RowRules.for_now(date(2021, 1, 1), "UTC", now=NOW), 5000, dry_run=False)
    statuses = []
    try:
        for path in files:
            entries, config_error = ingest.run([layout.locate(root, path)], options, writer)
            assert config_error is None
            derived.after_ingest(settings, writer, entries, client)
            statuses.append((entries[0].status, entries[0].derived))
    finally:
        writer.close()
        client.close()
    state["statuses1"] = statuses
    state["outbox_after1"] = sorted(p.name for p in state["outbox"].glob("*.json"))
    state["snapshot1"] = snapshot_all(influxd1, renamed.values())

    # pass 2: every file again, through the real command (sorted order: another merge order)
    for path, content in pristine.items():
        path.write_bytes(content)
    env_file = tmp_path / "v1.env"
    env_file.write_text("".join(f"{k}={v}\n" for k, v in env.items()))
    state["proc"] = samples.run_tsv_parser(root, env_file)
    reports = list((tmp_path / "reports").glob("tsv_parser_*.json"))
    state["report"] = json.loads(reports[0].read_text()) if reports else None
    state["snapshot2"] = snapshot_all(influxd1, renamed.values())
    return state
