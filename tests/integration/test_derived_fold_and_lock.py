"""Derived windows against a real InfluxDB 1.x, through the real tsv_parser.py and
powerview-downsample processes, compared window by window with tests/derived_expected.py:

- a coarser level is never folded from a lower level that misses windows (1h enabled after a
  run with 1d,1w only): the counts are checked against the raw data, and the level is read from
  the raw data when they differ;
- two recomputes of the same windows (powerview-downsample with slow writes, the parser
  ingesting a corrected file meanwhile) never leave the stale one written last.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import uuid
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests

import derived_expected
import samples

try:
    from .derived_corpus import stored_windows
except ImportError:
    from derived_corpus import stored_windows

NOW = datetime.now(UTC)
DEVICE = Path("acme") / "camp_base" / "02001283"
DAY_A = "T302_251025_031739.tsv"  # 24/10/25 20:50 -> 25/10/25 03:00
DAY_B = "T302_251026_031500.tsv"  # 25/10/25 03:20 -> 26/10/25 03:00: day 25/10 is in both


def corpus_file(name: str) -> Path:
    source = samples.require_corpus()
    return source / DEVICE / name


def place(root: Path, company: str, name: str, content: bytes) -> Path:
    target = root / company / DEVICE.relative_to("acme") / name
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(content)
    return target


def env_file(tmp_path: Path, influx_url: str, name: str = "v1.env", **extra: str) -> Path:
    env = {
        "INFLUXDB_VERSION": "1",
        "INFLUXDB_HOST": influx_url,
        "POWERVIEW_SPOOL_DIR": str(tmp_path / "spool"),
        "TSV_INFLUX_RETRY_MAX_SECONDS": "2",
        "TSV_REPORT_DIR": str(tmp_path / "reports"),
        **extra,
    }
    path = tmp_path / name
    path.write_text("".join(f"{k}={v}\n" for k, v in env.items()))
    return path


def expected(points: dict, level: str) -> dict:
    return {
        (m, field, tags, end): value
        for m, values in derived_expected.windows(points, derived_expected.LEVELS[level]).items()
        for (field, tags, end), value in values.items()
    }


def assert_same(got: dict, want: dict, what: str) -> None:
    assert set(got) == set(want), f"{what}: {len(set(want) - set(got))} missing, {len(set(got) - set(want))} extra"
    for key, value in want.items():
        assert got[key] == pytest.approx(value, rel=1e-12, abs=1e-12), (what, key)


def test_a_level_enabled_later_is_not_folded_from_its_missing_windows(influxd1, tmp_path):
    company = f"fold{uuid.uuid4().hex[:8]}"
    root = tmp_path / "data"
    a = place(root, company, DAY_A, corpus_file(DAY_A).read_bytes())
    b_bytes = corpus_file(DAY_B).read_bytes()
    b = place(root, company, DAY_B, b_bytes)
    points = derived_expected.merged_points([a, b], root, NOW)[company]

    # a first run with the coarse levels only (1h off), both files
    first = samples.run_tsv_parser(root, env_file(tmp_path, influxd1.url, TSV_DOWNSAMPLE_LEVELS="1d,1w"))
    assert first.returncode == 0, first.stderr
    assert_same(stored_windows(influxd1, company, "1d"), expected(points, "1d"), "1d after the first run")
    assert stored_windows(influxd1, company, "1h") == {}

    # 1h enabled; the second day's file uploaded again: day 25/10 lacks A's hours in _1h
    b.write_bytes(b_bytes)
    second = samples.run_tsv_parser(root, env_file(tmp_path, influxd1.url, "all.env", TSV_DOWNSAMPLE_LEVELS="1h,1d,1w"))
    assert second.returncode == 0, second.stderr
    for level in ("1d", "1w"):
        assert_same(stored_windows(influxd1, company, level), expected(points, level), level)
    assert "lack points of the level below" in second.stderr
    hours, want_hours = stored_windows(influxd1, company, "1h"), expected(points, "1h")
    assert hours and set(hours) < set(want_hours)  # only B's hours: the others were never asked for
    assert_same(hours, {k: want_hours[k] for k in hours}, "1h")


# -- two recomputes of the same windows -----------------------------------------------------------


class HoldingProxy:
    """A proxy in front of InfluxDB that holds the first /write it sees until released (a slow
    write path), and passes everything else through."""

    def __init__(self, upstream: str):
        self.upstream = upstream
        self.first_write = threading.Event()
        self.release = threading.Event()
        self.held = False
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def _forward(self, method: str) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0) or 0))
                if method == "POST" and self.path.startswith("/write") and not outer.held:
                    outer.held = True
                    outer.first_write.set()
                    outer.release.wait(60)
                headers = {k: v for k, v in self.headers.items() if k.lower() in ("content-type", "authorization")}
                answer = requests.request(method, outer.upstream + self.path, data=body, headers=headers, timeout=60)
                self.send_response(answer.status_code)
                for key in ("Content-Type", "X-Influxdb-Version", "X-Influxdb-Build"):
                    if key in answer.headers:
                        self.send_header(key, answer.headers[key])
                self.send_header("Content-Length", str(len(answer.content)))
                self.end_headers()
                self.wfile.write(answer.content)

            def do_GET(self):  # noqa: N802
                self._forward("GET")

            def do_POST(self):  # noqa: N802
                self._forward("POST")

            def do_HEAD(self):  # noqa: N802
                self._forward("HEAD")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


def corrected(content: bytes) -> bytes:
    """The same file with every value changed (a corrected upload)."""
    lines = content.decode().split("\n")
    out = lines[:2]
    for line in lines[2:]:
        cells = line.split("\t")
        out.append("\t".join(cells[:1] + [f"{float(c) + 10.5:.2f}" if c.strip() else c for c in cells[1:]]))
    return "\n".join(out).encode()


def test_a_stale_recompute_never_writes_last(influxd1, tmp_path):
    company = f"race{uuid.uuid4().hex[:8]}"
    root = tmp_path / "data"
    original = corpus_file(DAY_B).read_bytes()
    path = place(root, company, DAY_B, original)
    settings = env_file(tmp_path, influxd1.url)
    assert samples.run_tsv_parser(root, settings).returncode == 0

    # the corrected file, and what the derived buckets must hold once it is in
    fixed = corrected(original)
    shutil.rmtree(path.parent / "parsed")
    path.write_bytes(fixed)
    points = derived_expected.merged_points([path], root, NOW)[company]
    assert (
        points
        != derived_expected.merged_points([place(tmp_path / "old", company, DAY_B, original)], tmp_path / "old", NOW)[
            company
        ]
    )

    proxy = HoldingProxy(influxd1.url)
    try:
        # powerview-downsample reads the old raw data, then its first write hangs in the proxy
        downsample = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "powerview.cli.downsample",
                "--bucket",
                company,
                "--start",
                "2025-10-20",
                "--end",
                "2025-11-01",
                "--env-file",
                str(env_file(tmp_path, proxy.url, "proxy.env")),
            ],
            env={"PATH": os.environ["PATH"]},
            cwd=samples.PROJECT_DIR,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert proxy.first_write.wait(60), downsample.communicate(timeout=5)
        # meanwhile the parser ingests the corrected file (straight to InfluxDB)
        parser = samples.run_tsv_parser(root, settings, wait=False)
        waited = threading.Event()

        def watch() -> None:
            for line in iter(parser.stderr.readline, b""):
                lines.append(line.decode())
                if b"waiting for another recompute" in line:
                    waited.set()
                    proxy.release.set()
            proxy.release.set()  # the parser ended: let the slow write through

        lines: list[str] = []
        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        assert parser.wait(120) == 0, "".join(lines)
        watcher.join(10)
        _, err = downsample.communicate(timeout=120)
        assert downsample.returncode == 0, err
    finally:
        proxy.close()
    for level in ("1h", "1d", "1w"):
        assert_same(stored_windows(influxd1, company, level), expected(points, level), level)
    assert waited.is_set(), "the parser waited for the running recompute of the same bucket"
