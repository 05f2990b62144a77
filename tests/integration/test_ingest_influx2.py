"""tsv_parser.py against the InfluxDB 2 API stand-in: buckets, writes, outages, retries, moves,
the report and the meta bucket, and two processes on the same files."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from click.testing import CliRunner

from powerview.cli.parse import main
from powerview.ingestion import layout

import expected
import samples

EXAMPLES = samples.EXAMPLES
NOW = datetime.now(UTC)
CLEAN_ENV = {k: None for k in os.environ if k.startswith(("INFLUXDB_", "TSV_"))}


def run_cli(*args, env_file: Path, env=None):
    result = CliRunner().invoke(main, [*map(str, args), "--env-file", str(env_file)], env={**CLEAN_ENV, **(env or {})})
    return result


def stored(influx2, bucket: str) -> dict:
    """What InfluxDB keeps, in tests/expected.py's shape."""
    out = {}
    for (measurement, tags, field, ns), point in influx2.latest(bucket).items():
        assert measurement == "electrical"
        value = point.fields[field]
        assert isinstance(value, float), f"{field} stored as {type(value).__name__}"
        out[(field, frozenset(tags), ns // 1_000_000_000)] = value
    return out


def only_report(tmp_path: Path) -> dict:
    reports = list((tmp_path / "reports").glob("tsv_parser_*.json"))
    assert len(reports) == 1
    return json.loads(reports[0].read_text())


def test_every_file_in_its_folder_and_every_point_right(influx2, influx_env, tmp_path):
    """The shipped examples through the InfluxDB 2 API (the real corpus is checked value for value
    against a real InfluxDB 1.x in test_write_path_real.py and test_derived_real.py: through this
    pure-Python stand-in it would cost 40 s of the suite for no other path covered)."""
    root = samples.copy_tree(EXAMPLES, tmp_path / "data")
    want = expected.expected_by_bucket(root, NOW)
    files = list(layout.discover(root))
    result = run_cli("--dataFolder", root, env_file=influx_env)
    assert result.exit_code == 1, result.output  # each source holds files that must be rejected

    report = only_report(tmp_path)
    assert report["nb_files_total"] == len(files)
    for entry in report["files"]:
        path = Path(entry["file"])
        rejected = expected.expected_points(Path(entry["destination"]), entry["campaign"], NOW) is None
        assert entry["status"] == ("error" if rejected else "success"), entry["error"]
        assert Path(entry["destination"]) == path.parent / ("error" if rejected else "parsed") / path.name
        assert not path.exists()
    assert not list(layout.discover(root))

    for bucket, points in want.items():
        got = stored(influx2, bucket)
        assert got == points
    assert set(influx2.buckets) - {"_monitoring", "_tasks", "powerview_meta"} == set(want)
    assert report["nb_points_total"] == sum(len(influx2.points(b)) for b in want)


def test_cut_off_lines_are_never_written(influx2, influx_env, tmp_path):
    root = samples.copy_tree(EXAMPLES, tmp_path / "data")
    cut = root / "demo_energie/audit_2026/02009001/T302_260303_120300.tsv"
    last_line = cut.read_bytes().rsplit(b"\n", 1)[1].decode()
    cut_epoch = int(datetime.strptime(last_line[:17], "%d/%m/%y %H:%M:%S").replace(tzinfo=UTC).timestamp())
    run_cli("--dataFolder", root, "--tsvFile", cut, env_file=influx_env)
    times = {p.time // 1_000_000_000 for p in influx2.points("demo_energie")}
    assert times and cut_epoch not in times
    entry = only_report(tmp_path)["files"][0]
    assert entry["nb_truncated_rows"] == 1 and entry["status"] == "success"


def test_schema_tags_and_float_fields(influx2, influx_env, tmp_path):
    root = samples.copy_tree(EXAMPLES, tmp_path / "data")
    v003 = root / "demo_energie/audit_2026/02009002/T302_260303_031500_UTC.tsv"
    assert run_cli("--dataFolder", root, "--tsvFile", v003, env_file=influx_env).exit_code == 0
    points = influx2.points("demo_energie")
    slave = next(p for p in points if "M02009002_S04009010_Ch1_W" in p.fields)
    assert slave.tags == {
        "campaign": "audit_2026",
        "channel_id": "M02009002_S04009010_Ch1",
        "channel_unit": "W",
        "channel_label": "Ch1",
        "channel_name": "minipince",
        "device": "MV2",
        "device_type": "slave",
        "device_master_sn": "02009002",
        "device_sn": "04009010",
    }
    master = next(p for p in points if "M02009002_U1_V" in p.fields)
    assert master.tags["device_subtype"] == "mono" and master.tags["channel_label"] == "U1"
    assert set(influx2.schema("demo_energie").values()) == {"float"}


def test_meta_bucket_gets_one_point_per_file_and_one_per_run(influx2, influx_env, tmp_path):
    root = samples.copy_tree(EXAMPLES, tmp_path / "data")
    run_cli("--dataFolder", root, env_file=influx_env)
    meta = influx2.points("powerview_meta")
    files = [p for p in meta if p.measurement == "tsv_parser_file"]
    runs = [p for p in meta if p.measurement == "tsv_parser_run"]
    assert sorted(p.tags["file_name"] for p in files) == sorted(p.name for p in EXAMPLES.rglob("*.tsv"))
    rejected = next(p for p in files if p.tags["file_name"].startswith("T202"))
    assert rejected.tags["status"] == "error" and rejected.tags["bucket"] == "demo_energie"
    ok = next(p for p in files if p.tags["file_name"] == "T302_260303_120300.tsv")
    assert ok.fields["nb_truncated_rows"] == 1 and ok.fields["nb_points"] == 432
    assert len(runs) == 1
    assert runs[0].fields["nb_files_total"] == 4 and runs[0].fields["nb_files_failed"] == 1
    assert runs[0].fields["nb_points_total"] == 870 + 432 + 864


def test_the_token_never_appears_in_logs_or_reports(influx2, influx_env, tmp_path):
    root = samples.copy_tree(EXAMPLES, tmp_path / "data")
    result = run_cli("--dataFolder", root, "--log-level", "DEBUG", env_file=influx_env)
    assert influx2.admin_token not in result.output
    assert influx2.admin_token not in json.dumps(only_report(tmp_path))


def test_influxdb_down_leaves_every_file_in_place_then_a_later_run_ingests(influx2, influx_env, tmp_path):
    root = samples.copy_tree(EXAMPLES, tmp_path / "data")
    before = sorted(layout.discover(root))
    influx2.go_down()
    started = time.monotonic()
    result = run_cli("--dataFolder", root, env={"TSV_INFLUX_RETRY_MAX_SECONDS": "1"}, env_file=influx_env)
    assert result.exit_code == 75, result.output
    assert time.monotonic() - started < 10  # one retry budget, not one per file
    report = only_report(tmp_path)
    # once InfluxDB is found down, later files are not attempted: even the T202 sample waits
    assert [f["status"] for f in report["files"]] == ["retry"] * 4
    assert sorted(layout.discover(root)) == before
    assert not any(root.rglob("parsed")) and not any(root.rglob("error"))

    influx2.come_back()
    assert run_cli("--dataFolder", root, env_file=influx_env).exit_code == 1  # only T202 rejected
    assert not list(layout.discover(root))
    assert (
        stored(influx2, "demo_energie")
        == expected.expected_by_bucket(samples.copy_tree(EXAMPLES, tmp_path / "again"), NOW)["demo_energie"]
    )


def test_503_with_retry_after_is_retried_and_succeeds(influx2, influx_env, tmp_path):
    root = samples.copy_tree(EXAMPLES, tmp_path / "data")
    target = root / "demo_energie/audit_2026/02009002/T302_260303_031500_UTC.tsv"
    influx2.fail_next_writes(503, count=2, retry_after=0.6)
    started = time.monotonic()
    result = run_cli(
        "--dataFolder", root, "--tsvFile", target, env={"TSV_INFLUX_RETRY_MAX_SECONDS": "10"}, env_file=influx_env
    )
    assert result.exit_code == 0, result.output
    assert time.monotonic() - started >= 1.2  # Retry-After honoured twice
    writes = [r for r in influx2.requests if r.path == "/api/v2/write"]
    assert [r.status for r in writes][:3] == [503, 503, 204]
    assert len(influx2.points("demo_energie")) == 864
    assert (target.parent / "parsed" / target.name).exists()


def test_429_then_success(influx2, influx_env, tmp_path):
    root = samples.copy_tree(EXAMPLES, tmp_path / "data")
    target = root / "demo_energie/audit_2026/02009002/T302_260303_031500_UTC.tsv"
    influx2.fail_next_writes(429, count=1, retry_after=0)
    assert run_cli("--dataFolder", root, "--tsvFile", target, env_file=influx_env).exit_code == 0
    assert len(influx2.points("demo_energie")) == 864


def test_a_wrong_token_is_a_configuration_error_and_touches_nothing(influx2, influx_env, tmp_path):
    root = samples.copy_tree(EXAMPLES, tmp_path / "data")
    before = sorted(layout.discover(root))
    result = run_cli("--dataFolder", root, env={"INFLUXDB_ADMIN_TOKEN": "not-the-token-x9"}, env_file=influx_env)
    assert result.exit_code == 2
    assert "INFLUXDB_ADMIN_TOKEN" in result.output and "not-the-token-x9" not in result.output
    assert "Logging error" not in result.output
    assert sorted(layout.discover(root)) == before
    assert not any(root.rglob("parsed")) and not any(root.rglob("error"))


def test_gzip_when_asked(influx2, influx_env, tmp_path):
    root = samples.copy_tree(EXAMPLES, tmp_path / "data")
    target = root / "demo_energie/audit_2026/02009002/T302_260303_031500_UTC.tsv"
    assert (
        run_cli(
            "--dataFolder", root, "--tsvFile", target, env={"TSV_INFLUX_GZIP": "true"}, env_file=influx_env
        ).exit_code
        == 0
    )
    writes = [r for r in influx2.requests if r.path == "/api/v2/write"]
    assert writes and all(r.headers.get("Content-Encoding") == "gzip" for r in writes)
    assert len(influx2.points("demo_energie")) == 864


def test_batches_hold_about_the_configured_number_of_lines(influx2, influx_env, tmp_path):
    root = samples.copy_tree(EXAMPLES, tmp_path / "data")
    target = root / "demo_energie/audit_2026/02009002/T302_260303_031500_UTC.tsv"
    run_cli("--dataFolder", root, "--tsvFile", target, env={"TSV_BATCH_SIZE": "100"}, env_file=influx_env)
    sizes = [
        r.body.count(b"\n")
        for r in influx2.requests
        if r.path == "/api/v2/write" and r.query.get("bucket") == "demo_energie"
    ]
    assert sum(sizes) == 864 and len(sizes) == 9 and max(sizes) <= 100 + 5  # cut on row boundaries


def test_ingesting_a_file_again_writes_identical_points(influx2, influx_env, tmp_path):
    root = samples.copy_tree(EXAMPLES, tmp_path / "data")
    target = root / "demo_energie/audit_2026/02009001/T302_260303_031500.tsv"
    run_cli("--dataFolder", root, "--tsvFile", target, env_file=influx_env)
    first = stored(influx2, "demo_energie")
    shutil.copy(target.parent / "parsed" / target.name, target)
    assert run_cli("--dataFolder", root, "--tsvFile", target, env_file=influx_env).exit_code == 0
    assert stored(influx2, "demo_energie") == first
    assert len(influx2.points("demo_energie")) == 2 * 870
    assert (target.parent / "parsed" / "T302_260303_031500.1.tsv").exists()  # never overwritten


def test_two_processes_on_the_same_files_ingest_each_once(influx2, influx_env, tmp_path):
    root = tmp_path / "data"
    source = (EXAMPLES / "demo_energie/audit_2026/02009001/T302_260303_031500.tsv").read_bytes()
    for n in range(12):
        samples.place(root, "acme", "camp", "02009001", f"T302_{n:02d}.tsv", source)
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                str(samples.PROJECT_DIR / "tsv_parser.py"),
                "--dataFolder",
                str(root),
                "--env-file",
                str(influx_env),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={"PATH": os.environ["PATH"]},
        )
        for _ in range(3)
    ]
    codes = [p.wait(timeout=60) for p in procs]
    assert codes == [0, 0, 0], [p.stderr.read().decode()[-2000:] for p in procs]
    parsed = sorted(p.name for p in (root / "acme/camp/02009001/parsed").iterdir())
    assert parsed == [f"T302_{n:02d}.tsv" for n in range(12)]  # no suffix: nobody moved a file twice
    assert not (root / "acme/camp/02009001/error").exists()
    reports = [json.loads(p.read_text()) for p in (tmp_path / "reports").glob("*.json")]
    assert sum(r["nb_files_success"] for r in reports) == 12
    assert len(influx2.points("acme")) == 12 * 870


def test_a_dry_run_sends_nothing_to_influxdb(influx2, influx_env, tmp_path):
    root = samples.copy_tree(EXAMPLES, tmp_path / "data")
    result = run_cli("--dataFolder", root, "--dry-run", env_file=influx_env)
    assert result.exit_code == 1 and json.loads(result.stdout)["nb_points_total"] == 870 + 432 + 864
    assert influx2.requests == []
    assert not (tmp_path / "reports").exists()
    assert len(list(layout.discover(root))) == 4
