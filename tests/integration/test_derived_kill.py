"""A parser killed at any point of a run never leaves derived windows wrong for good (real
InfluxDB 1.x, the real corpus, the real tsv_parser.py and worker as processes).

Each file's span (derived buckets) and catalogue message are recorded before the file moves to
parsed/; after a kill -9 at a random point of a 61-file run, one more run (or the worker's next
pass) makes every window exact again: windows compared one by one with tests/derived_expected.py.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import time
from pathlib import Path

import pytest

import derived_expected
import samples
from stand_ins.base import StandIn

try:
    from .derived_corpus import NOW, assert_derived_exact, corpus_with_unique_companies, snapshot_all
except ImportError:
    from derived_corpus import NOW, assert_derived_exact, corpus_with_unique_companies, snapshot_all

KILLS = 2  # and a third in test_a_worker_pass_redoes_the_windows_of_a_killed_run
SEED = int(os.environ.get("POWERVIEW_KILL_SEED") or time.time())


class RecordingAPI(StandIn):
    """The config API's catalogue endpoint, recording each POST: (path, body)."""

    def __init__(self):
        super().__init__()
        self.posts: list[tuple[str, dict]] = []

    def handle(self, method, path, query, headers, body):
        if method != "POST":
            return 405, {"detail": "Method Not Allowed"}
        payload = json.loads(body)
        self.posts.append((path, payload))
        return 200, {"inserted": len(payload.get("channels", [])), "updated": 0}


@pytest.fixture(scope="module")
def api():
    with RecordingAPI() as server:
        yield server


def parsed_files(root: Path) -> list[Path]:
    return sorted(root.glob("*/*/*/parsed/*.tsv"))


def setup_round(tmp_path: Path, influxd1, api: RecordingAPI) -> dict:
    root, renamed = corpus_with_unique_companies(tmp_path)
    files = sorted(root.glob("*/*/*/*.tsv"))
    env = {
        "INFLUXDB_VERSION": "1",
        "INFLUXDB_HOST": influxd1.url,
        "POWERVIEW_SPOOL_DIR": str(tmp_path / "spool"),
        "TSV_INFLUX_RETRY_MAX_SECONDS": "2",
        "TSV_REPORT_DIR": str(tmp_path / "reports"),
        "CONFIG_API_URL": api.url,
    }
    env_file = tmp_path / "v1.env"
    env_file.write_text("".join(f"{k}={v}\n" for k, v in env.items()))
    readings: dict = {}
    points = derived_expected.merged_points(files, root, NOW, readings)
    return {
        "nb_ok": sum(1 for reading in readings.values() if reading),  # the files the parser ingests
        "root": root,
        "renamed": renamed,
        "env": env,
        "env_file": env_file,
        "points": points,
        "outbox": tmp_path / "spool" / "outbox" / "derived",
    }


def kill_when(proc: subprocess.Popen, root: Path, moved: int, extra_s: float) -> tuple[bool, int]:
    """kill -9 the parser once `moved` files are in parsed/ (then `extra_s` later); returns
    (whether it was still running, files in parsed/ at the kill)."""
    deadline = time.monotonic() + 120
    while proc.poll() is None and len(parsed_files(root)) < moved and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(extra_s)
    running = proc.poll() is None
    at_kill = len(parsed_files(root))
    if running:
        proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)
    return running, at_kill


def test_kill9_at_random_points_then_one_more_run_is_exact(influxd1, api, tmp_path):
    rng = random.Random(SEED)
    killed_mid_run = 0
    for round_no in range(KILLS):
        state = setup_round(tmp_path / f"round{round_no}", influxd1, api)
        root = state["root"]
        posts_before = len(api.posts)
        # a random point: after 1 to all the files the corpus ingests (then in the derived and
        # catalogue steps at the end), plus a random fraction of a file's time
        moved, extra = rng.randint(1, state["nb_ok"]), rng.uniform(0, 0.3)
        proc = samples.run_tsv_parser(root, state["env_file"], wait=False)
        running, at_kill = kill_when(proc, root, moved, extra)
        print(f"seed {SEED} round {round_no}: kill after {moved} file(s) + {extra:.2f} s: {at_kill} in parsed/")
        killed_mid_run += running and at_kill > 0
        parsed_at_kill = at_kill

        final = samples.run_tsv_parser(root, state["env_file"])
        # 1: rejected files left for this run; 0: the killed run had moved them all to error/
        assert final.returncode in (0, 1), final.stderr
        assert not list(state["outbox"].glob("*.json")), "every recorded span done by the next run"
        assert assert_derived_exact(snapshot_all(influxd1, state["renamed"].values()), state["points"]) > 1000
        # every file in parsed/ had its channels published once at least (the killed run's too)
        assert len(api.posts) - posts_before >= len(parsed_files(root)) >= parsed_at_kill
    assert killed_mid_run >= 1, f"seed {SEED}: no kill landed while files were being moved"


def test_a_worker_pass_redoes_the_windows_of_a_killed_run(influxd1, api, tmp_path):
    """Killed once every file is in parsed/ (its derived step under way): no later upload comes,
    and the worker's next pass (the timer's `run`, no job) recomputes what was recorded."""
    state = setup_round(tmp_path, influxd1, api)
    root = state["root"]
    proc = samples.run_tsv_parser(root, state["env_file"], wait=False)
    running, at_kill = kill_when(proc, root, state["nb_ok"], 0.0)
    assert running and at_kill == state["nb_ok"], "the kill must land after the moves, during the derived step"
    assert list(state["outbox"].glob("*.json")), "the killed run's spans are recorded"

    env_file = tmp_path / "worker.env"
    env_file.write_text(
        state["env_file"].read_text()
        + f"POWERVIEW_DATA_DIR={root}\nPOWERVIEW_LOG_DIR={tmp_path / 'logs'}\nPOWERVIEW_WORKER_LINGER_SECONDS=0\n"
    )
    worker = samples.run_worker(env_file, "run", timeout=300, env={"PATH": os.environ["PATH"]}, cwd=samples.PROJECT_DIR)
    assert worker.returncode == 0, worker.stderr
    assert "powerview.cli.downsample --pending" in worker.stderr
    assert not list(state["outbox"].glob("*.json"))
    assert assert_derived_exact(snapshot_all(influxd1, state["renamed"].values()), state["points"]) > 1000
