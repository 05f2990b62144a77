"""powerview-downsample and the derived step's faults, against a real InfluxDB 1.x: a backfill
of raw data ingested with the derived step off gives the exact windows; a server gone or
answering HTML leaves the windows queued in the outbox, done by the next run; a torn or
corrupt record never blocks the others."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from powerview.core.outcome import FileOutcome, Status
from powerview.core.settings import load_parser as load
from powerview.delivery import derived
from powerview.delivery.influx import InfluxUnavailable
from powerview.delivery.influx_targets import Influx1Writer, open_query_client
from powerview.ingestion import ingest, layout
from powerview.ingestion.formats import RowRules

import derived_expected
import faults
import samples

try:
    from .derived_corpus import stored_windows
except ImportError:
    from derived_corpus import stored_windows

NOW = datetime.now(UTC)


def outcome(**fields) -> FileOutcome:
    return FileOutcome(**{"file": "/f.tsv", "bucket": "acme", "campaign": "c", "device_folder_sn": "0201", **fields})


def examples_tree(tmp_path: Path) -> tuple[Path, str]:
    root = samples.copy_tree(samples.EXAMPLES, tmp_path / "data")
    company = f"demo{uuid.uuid4().hex[:8]}"
    (root / "demo_energie").rename(root / company)
    return root, company


def settings_for(server_url: str, tmp_path: Path, **extra):
    env = {
        "INFLUXDB_VERSION": "1",
        "INFLUXDB_HOST": server_url,
        "POWERVIEW_SPOOL_DIR": str(tmp_path / "spool"),
        "TSV_INFLUX_RETRY_MAX_SECONDS": "0.5",
        **extra,
    }
    return load(tmp_path / "absent.env", environ=env), env


def ingest_raw(root: Path, settings) -> list[dict]:
    writer = Influx1Writer(settings.influx)
    try:
        options = ingest.RunOptions(root, RowRules.for_now(date(2021, 1, 1), "UTC", now=NOW), 5000, dry_run=False)
        entries, error = ingest.run([layout.locate(root, p) for p in layout.discover(root)], options, writer)
        assert error is None
        return entries
    finally:
        writer.close()


def derived_state(server, company: str) -> dict:
    """{(level, measurement, field, tags, end): value} of every derived bucket of `company`."""
    return {
        (level, *key): value
        for level in derived_expected.LEVELS
        for key, value in stored_windows(server, company, level).items()
    }


def expected_state(root: Path, company: str) -> dict:
    points = derived_expected.merged_points(sorted(root.glob("*/*/*/*.tsv")), root, NOW)[company]
    out = {}
    for level, seconds in derived_expected.LEVELS.items():
        for m, values in derived_expected.windows(points, seconds).items():
            for (field, tags, end), value in values.items():
                out[(level, m, field, tags, end)] = value
    return out


def assert_same(got: dict, want: dict) -> None:
    assert set(got) == set(want)
    for key, value in want.items():
        assert got[key] == pytest.approx(value, rel=1e-12), key


def run_downsample(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "powerview.cli.downsample", *args],
        capture_output=True,
        text=True,
        env={"PATH": os.environ["PATH"], **env},
        cwd=samples.PROJECT_DIR,
        timeout=120,
    )


def test_backfill_gives_the_exact_windows_and_dry_run_writes_nothing(influxd1, tmp_path):
    root, company = examples_tree(tmp_path)
    want = expected_state(root, company)  # before the files move to parsed/
    settings, env = settings_for(influxd1.url, tmp_path, TSV_DOWNSAMPLE_LEVELS="")
    ingest_raw(root, settings)
    off = run_downsample(env, "--bucket", company)
    assert off.returncode == 2 and "no level to recompute" in off.stderr
    del env["TSV_DOWNSAMPLE_LEVELS"]

    dry = run_downsample(env, "--bucket", company, "--start", "2026-03-01", "--end", "2026-03-10", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert f"-- read {company}, write {company}_1h" in dry.stdout
    assert f"-- read {company}_1h, write {company}_1d" in dry.stdout
    assert "GROUP BY time(1h), * fill(none);" in dry.stdout
    assert not any(f"{company}_" in row["name"] for row in influxd1.query(None, "SHOW DATABASES"))

    done = run_downsample(env, "--bucket", company, "--start", "2026-03-01", "--levels", "1h,1d", "--levels", "1w")
    assert done.returncode == 0, done.stderr
    got = derived_state(influxd1, company)
    assert len(got) > 100
    assert_same(got, want)
    again = run_downsample(env, "--all", "--start", "2026-03-01")  # every raw bucket, this one included
    assert again.returncode == 0, again.stderr
    assert derived_state(influxd1, company) == got


@pytest.mark.parametrize(
    "args, message",
    [
        ((), "give --bucket NAME"),
        (("--bucket", "x", "--all"), "give --bucket NAME"),
        (("--bucket", "bad\nname"), "not allowed"),
        (("--bucket", "x", "--start", "yesterday"), "not a date"),
        (("--bucket", "x", "--start", "2026-02-01", "--end", "2026-01-01"), "--start must be before --end"),
        (("--bucket", "x", "--levels", "1m"), "unknown level '1m'"),
    ],
)
def test_downsample_refuses_bad_arguments(tmp_path, monkeypatch, args, message):
    from click.testing import CliRunner

    from powerview.cli.downsample import main

    monkeypatch.setenv("INFLUXDB_VERSION", "1")
    monkeypatch.setenv("INFLUXDB_HOST", "http://127.0.0.1:9")
    result = CliRunner().invoke(main, list(args))
    assert result.exit_code == 2, result.output
    assert message in result.output


def test_downsample_against_a_server_gone_says_unavailable(tmp_path):
    proc = run_downsample(
        {"INFLUXDB_VERSION": "1", "INFLUXDB_HOST": "http://127.0.0.1:9", "TSV_INFLUX_RETRY_MAX_SECONDS": "0"},
        "--bucket",
        "x",
    )
    assert proc.returncode == 75
    assert "unreachable" in proc.stderr


@pytest.fixture
def html_server():
    with faults.html_server() as url:
        yield url


def test_an_html_answer_is_an_outage_not_data(html_server, tmp_path):
    settings, _ = settings_for(html_server, tmp_path)
    client = open_query_client(settings.influx)
    with pytest.raises(InfluxUnavailable, match="not JSON"):
        client.raw("db", "SHOW DATABASES")


def test_outage_leaves_windows_queued_then_the_next_run_does_them(influxd1, html_server, tmp_path):
    root, company = examples_tree(tmp_path)
    want = expected_state(root, company)
    settings, _ = settings_for(influxd1.url, tmp_path)
    entries = ingest_raw(root, settings)
    successes = [e for e in entries if e.status == "success"]
    assert len(successes) == 3
    outbox = tmp_path / "spool" / "outbox" / "derived"

    # the query side answers HTML (a proxy in front of a dead InfluxDB): raw outcome unchanged
    broken = open_query_client(settings_for(html_server, tmp_path)[0].influx)
    writer = Influx1Writer(settings.influx)
    derived.after_ingest(settings, writer, entries, broken)
    assert [e.derived for e in successes] == ["queued"] * 3
    assert {e.status for e in successes} == {"success"}
    assert len(list(outbox.glob("*.json"))) == 3
    # a torn temporary file (kill -9 during a record's write) and a corrupt record
    (outbox / ".tmp-abcdef").write_text('{"bucket": "x"')
    (outbox / ("0" * 32 + ".json")).write_text("{not json")

    # the next run (no new file) does the pending windows
    derived.after_ingest(settings, writer, [], open_query_client(settings.influx))
    writer.close()
    # .tmp/: where the shared outbox writes its records; .tmp-abcdef: an earlier version's, ignored
    assert sorted(p.name for p in outbox.iterdir()) == [".tmp", ".tmp-abcdef", "0" * 32 + ".bad"]
    assert list((outbox / ".tmp").iterdir()) == []
    assert_same(derived_state(influxd1, company), want)


def test_unwritable_outbox_still_updates_when_influxdb_answers(influxd1, tmp_path):
    root, company = examples_tree(tmp_path)
    settings, _ = settings_for(influxd1.url, tmp_path)
    entries = ingest_raw(root, settings)
    spool = tmp_path / "spool"
    spool.mkdir()
    (spool / "outbox").write_text("a file where the folder should be")
    writer = Influx1Writer(settings.influx)
    derived.after_ingest(settings, writer, entries, open_query_client(settings.influx))
    assert [e.derived for e in entries if e.status == "success"] == ["updated"] * 3
    # and when InfluxDB is gone as well, the entry says so: nothing pretends to be queued
    gone, _ = settings_for("http://127.0.0.1:9", tmp_path)
    derived.after_ingest(gone, writer, entries, open_query_client(gone.influx))
    writer.close()
    assert [e.derived for e in entries if e.status == "success"] == ["failed"] * 3


def test_levels_off(tmp_path):
    settings, _ = settings_for("http://127.0.0.1:9", tmp_path, TSV_DOWNSAMPLE_LEVELS="")
    entries = [outcome(status=Status.SUCCESS), outcome(status=Status.ERROR)]
    derived.after_ingest(settings, None, entries)
    assert entries[0].derived == "off" and entries[1].derived is None


def test_after_an_outage_the_spans_are_queued_without_waiting(tmp_path):
    settings, _ = settings_for("http://127.0.0.1:9", tmp_path, TSV_INFLUX_RETRY_MAX_SECONDS="60")
    entries = [
        outcome(
            status=Status.SUCCESS,
            file="f",
            device_master_sn="0201",
            time_min="2026-01-03T10:00:00Z",
            time_max="2026-01-03T11:00:00Z",
            channels={"M0201_U1": {"field": "M0201_U1_V"}},
        ),
        outcome(status=Status.RETRY, file="g"),
        outcome(
            status=Status.SUCCESS,
            file="h",
            time_min="not a time",
            time_max="x",
            device_master_sn="0201",
            channels={"M0201_U1": {"field": "M0201_U1_V"}},
        ),
    ]
    started = time.monotonic()
    derived.after_ingest(settings, None, entries)
    assert time.monotonic() - started < 5  # no retry budget spent on a server just found down
    assert [e.derived for e in entries] == ["queued", None, "failed"]
    assert len(list((tmp_path / "spool" / "outbox" / "derived").glob("*.json"))) == 1
