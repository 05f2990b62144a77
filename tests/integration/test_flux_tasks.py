"""The switch-over of the derived buckets (issue 14 F): `powerview-downsample --disable-flux-tasks`
backfills, then sets the deployed version's tasks downsample_<bucket>_<level> inactive through the
InfluxDB 2 tasks API (stand-in answering /query from a real InfluxDB 1.x), and
`--enable-flux-tasks` is the rollback. The tasks are seeded as the deployed
manage_influx_tokens.py left them (one per company bucket and level, active)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

import samples
from stand_ins.influxdb2 import InfluxDB2StandIn

COMPANY = "demo_energie"
OTHER = "othercorp"
# the deployed task parameters (manage_influx_tokens.py DOWNSAMPLE_LEVELS): every, offset
DEPLOYED_LEVELS = {"1h": ("1h", "5m"), "1d": ("1d", "1h"), "1w": ("1w", "2h")}


def deployed_task(influx: InfluxDB2StandIn, bucket: str, level: str) -> str:
    every, offset = DEPLOYED_LEVELS[level]
    name = f"downsample_{bucket}_{level}"
    flux = (
        f'option task = {{name: "{name}", every: {every}, offset: {offset}}}\n\n'
        f'from(bucket: "{bucket}")\n  |> range(start: -task.every)\n'
        '  |> filter(fn: (r) => r._measurement == "electrical")\n'
        f"  |> aggregateWindow(every: {every}, fn: mean, createEmpty: false)\n"
        f'  |> to(bucket: "{bucket}_{level}", org: "{influx.org}")\n'
    )
    return influx.add_task(name, flux, every=every, offset=offset)


@pytest.fixture
def deployed(influxd1, tmp_path):
    """Raw data of COMPANY ingested with the derived step off; the deployed tasks of COMPANY and
    OTHER, active."""
    root = samples.copy_tree(samples.EXAMPLES, tmp_path / "data")
    with InfluxDB2StandIn(org="powerview", admin_token="admin-token-t4sks", influxql_backend=influxd1.url) as influx:
        env_file = tmp_path / "test.env"
        env_file.write_text(
            f"INFLUXDB_HOST={influx.url}\nINFLUXDB_ORG=powerview\nINFLUXDB_ADMIN_TOKEN={influx.admin_token}\n"
            f"TSV_DOWNSAMPLE_LEVELS=\nTSV_REPORT_DIR={tmp_path / 'reports'}\n"
            f"POWERVIEW_SPOOL_DIR={tmp_path / 'spool'}\nTSV_INFLUX_RETRY_MAX_SECONDS=2\n"
        )
        proc = samples.run_tsv_parser(root, env_file)
        assert proc.returncode == 1, proc.stderr  # the T202 sample is rejected
        assert f"{COMPANY}_1h" not in influx.buckets
        for bucket in (COMPANY, OTHER):
            for level in DEPLOYED_LEVELS:
                deployed_task(influx, bucket, level)
        influx.add_task("someone_elses_task", 'option task = {name: "someone_elses_task", every: 1h}\n', every="1h")
        influx.requests.clear()
        yield influx


def downsample(influx: InfluxDB2StandIn, *args: str) -> subprocess.CompletedProcess:
    env = {
        "PATH": os.environ["PATH"],
        "INFLUXDB_HOST": influx.url,
        "INFLUXDB_ORG": influx.org,
        "INFLUXDB_ADMIN_TOKEN": influx.admin_token,
        "TSV_INFLUX_RETRY_MAX_SECONDS": "2",
    }
    return subprocess.run(
        [sys.executable, "-m", "powerview.cli.downsample", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=samples.PROJECT_DIR,
        timeout=120,
    )


def statuses(influx: InfluxDB2StandIn) -> dict[str, str]:
    return {name: task["status"] for name, task in influx.tasks.items()}


def test_backfill_then_disable_then_rollback(deployed):
    influx = deployed
    start = ("--bucket", COMPANY, "--start", "2026-03-01")

    dry = downsample(influx, *start, "--disable-flux-tasks", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert f"-- read {COMPANY}, write {COMPANY}_1h" in dry.stdout
    for level in DEPLOYED_LEVELS:
        assert f"task downsample_{COMPANY}_{level} (" in dry.stderr
        assert "active -> would set inactive" in dry.stderr
    assert set(statuses(influx).values()) == {"active"}
    assert [r for r in influx.requests if r.method in ("PATCH", "POST") and r.path != "/api/v2/query"] == []

    done = downsample(influx, *start, "--disable-flux-tasks")
    assert done.returncode == 0, done.stderr
    assert statuses(influx) == {
        **{f"downsample_{COMPANY}_{level}": "inactive" for level in DEPLOYED_LEVELS},
        **{f"downsample_{OTHER}_{level}": "active" for level in DEPLOYED_LEVELS},
        "someone_elses_task": "active",
    }
    assert influx.points(f"{COMPANY}_1h") and influx.points(f"{COMPANY}_1w")
    # the backfill's writes all come before the first task is stopped (a failed backfill stops nothing)
    order = [(r.method, r.path) for r in influx.requests]
    first_patch = next(i for i, (m, p) in enumerate(order) if m == "PATCH")
    writes = [i for i, (m, p) in enumerate(order) if p == "/api/v2/write"]
    assert writes and max(writes) < first_patch
    assert sum(1 for m, p in order if m == "PATCH") == 3
    # the Flux scripts are untouched: re-enabling them restores the deployed behaviour
    assert "every: 1h, offset: 5m" in influx.tasks[f"downsample_{COMPANY}_1h"]["flux"]

    influx.requests.clear()
    again = downsample(influx, *start, "--disable-flux-tasks")
    assert again.returncode == 0, again.stderr
    assert again.stderr.count(": already inactive") == 3
    assert not [r for r in influx.requests if r.method == "PATCH"]

    rollback = downsample(influx, "--bucket", COMPANY, "--enable-flux-tasks")
    assert rollback.returncode == 0, rollback.stderr
    assert rollback.stderr.count("inactive -> set active") == 3
    assert set(statuses(influx).values()) == {"active"}


def test_absent_tasks_and_a_level_subset(deployed):
    influx = deployed
    done = downsample(influx, "--bucket", "nosuchcorp", "--enable-flux-tasks", "--levels", "1h,1d")
    assert done.returncode == 0, done.stderr
    assert "task downsample_nosuchcorp_1h: absent, nothing to do" in done.stderr
    assert "nosuchcorp_1w" not in done.stderr
    # only the levels PowerView keeps are stopped: a 1w task goes on feeding <bucket>_1w otherwise
    part = downsample(influx, "--bucket", COMPANY, "--start", "2026-03-01", "--levels", "1h", "--disable-flux-tasks")
    assert part.returncode == 0, part.stderr
    assert statuses(influx)[f"downsample_{COMPANY}_1h"] == "inactive"
    assert statuses(influx)[f"downsample_{COMPANY}_1d"] == "active"


def test_a_token_without_task_rights_is_named():
    with InfluxDB2StandIn(org="powerview", admin_token="admin-token-x") as influx:
        deployed_task(influx, COMPANY, "1h")
        influx.admin_token = "unknown-token"
        done = downsample(influx, "--bucket", COMPANY, "--enable-flux-tasks", "--levels", "1h")
    assert done.returncode == 2, done.stderr
    assert (
        "GET /api/v2/tasks: InfluxDB refused the credentials (HTTP 401): check INFLUXDB_ADMIN_TOKEN "
        "(with task rights) (unauthorized access)"
    ) in done.stderr


def test_the_task_options_need_influxdb_2(monkeypatch):
    from click.testing import CliRunner

    from powerview.cli.downsample import main

    monkeypatch.setenv("INFLUXDB_VERSION", "1")
    monkeypatch.setenv("INFLUXDB_HOST", "http://127.0.0.1:9")
    result = CliRunner().invoke(main, ["--bucket", "x", "--disable-flux-tasks"])
    assert result.exit_code == 2, result.output
    assert "exist on InfluxDB 2 only" in result.output
    both = CliRunner().invoke(main, ["--bucket", "x", "--disable-flux-tasks", "--enable-flux-tasks"])
    assert both.exit_code == 2 and "not both" in both.output
