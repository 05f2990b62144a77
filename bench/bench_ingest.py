#!/usr/bin/env python3
"""Throughput and peak memory of the parser, on a generated realistic file.

    python3 bench/bench_ingest.py [--rows 100000] [--keep DIR]

Generates a tri master + four slave modules file (31 columns, 30 values a row), then measures,
each in its own process (so that peak memory is that run's own):
  1. parse only: reader -> rows, values checked and converted;
  2. end to end: `tsv_parser.py --tsvFile ...` -> line protocol -> HTTP to a local sink that
     answers 204 and discards (another process), as against InfluxDB on the same host.
Prints points per second and peak RSS. Figures are recorded in docs/utilisation-parseur.md.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
MASTER = "02001171"
SLAVES = ["04000466", "04000477", "04001293", "04001344"]


def generate(path: Path, rows: int) -> int:
    """Write the file; return the number of values."""
    rnd = random.Random(1)
    serials = [MASTER] * 7 + [s for s in SLAVES for _ in range(6)]
    labels = ["Ph 1 V", "Ph 2 V", "Ph 3 V", "Voie1 W", "Voie2 W", "Voie3 W"] + [f"Voie{i} W" for i in range(1, 7)] * 4
    t = datetime(2025, 8, 3, 3, 20)
    with open(path, "w") as fh:
        fh.write("\t".join(serials) + "\n" + "\t".join(["MV_T302_V002"] + labels) + "\n")
        for i in range(rows):
            volts = [f"{242 + math.sin(i / 50 + k):.2f}" for k in range(3)]
            powers = [f"{rnd.uniform(-10, 4000):.1f}" for _ in range(27)]
            fh.write(t.strftime("%d/%m/%y %H:%M:%S") + "\t" + "\t".join(volts + powers) + "\n")
            t += timedelta(seconds=10)
    return rows * 30


SINK = r"""
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer
class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_POST(self):
        n = int(self.headers.get("Content-Length", 0))
        while n > 0:
            n -= len(self.rfile.read(min(n, 1 << 20)))
        self.send_response(204); self.send_header("Content-Length", "0"); self.end_headers()
    def log_message(self, *a): pass
s = HTTPServer(("127.0.0.1", 0), H)
print(s.server_address[1], flush=True)
s.serve_forever()
"""

PARSE_ONLY = r"""
import sys, time, resource
from datetime import date
sys.path.insert(0, sys.argv[2])
from powerview.formats import open_table, RowRules
t0 = time.perf_counter()
n = 0
with open(sys.argv[1], encoding="utf-8-sig", errors="replace", newline="\n") as fh:
    table = open_table(fh, RowRules.for_now(date(2021, 1, 1)))
    for ts, values in table.rows():
        n += len(values) - values.count(None)
dt = time.perf_counter() - t0
print(n, dt, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def run_parse_only(path: Path) -> tuple[int, float, int]:
    out = subprocess.run([sys.executable, "-c", PARSE_ONLY, str(path), str(PROJECT)],
                         capture_output=True, text=True, check=True).stdout.split()
    return int(out[0]), float(out[1]), int(out[2])


def run_end_to_end(data: Path, path: Path) -> tuple[float, int]:
    sink = subprocess.Popen([sys.executable, "-c", SINK], stdout=subprocess.PIPE, text=True)
    try:
        port = int(sink.stdout.readline())
        env = {"PATH": os.environ["PATH"], "INFLUXDB_HOST": f"http://127.0.0.1:{port}", "INFLUXDB_ORG": "bench",
               "INFLUXDB_ADMIN_TOKEN": "bench", "TSV_INFLUX_CREATE_BUCKETS": "false",
               "TSV_REPORT_DIR": str(data.parent / "reports"), "TSV_LOG_LEVEL": "WARNING"}
        env_file = data.parent / "empty.env"
        env_file.write_text("")
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        t0 = time.perf_counter()
        subprocess.run([sys.executable, str(PROJECT / "tsv_parser.py"), "--dataFolder", str(data),
                        "--tsvFile", str(path), "--env-file", str(env_file)], env=env, check=True)
        dt = time.perf_counter() - t0
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        return dt, max(peak, before)
    finally:
        sink.kill()
        sink.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="powerview-bench-"))
    try:
        device = work / "data" / "bench" / "campaign" / MASTER
        device.mkdir(parents=True)
        path = device / "T302_bench.tsv"
        nb_values = generate(path, args.rows)
        size_mb = path.stat().st_size / 1e6
        print(f"file: {args.rows} rows x 30 values = {nb_values} points, {size_mb:.1f} MB")
        points, dt, rss = run_parse_only(path)
        assert points == nb_values, (points, nb_values)
        print(f"parse only : {points / dt:>10,.0f} points/s  ({dt:.2f} s)  peak RSS {rss / 1024:.0f} MB")
        dt, rss = run_end_to_end(work / "data", path)
        assert (device / "parsed" / path.name).exists(), "the file was not ingested"
        print(f"end to end : {nb_values / dt:>10,.0f} points/s  ({dt:.2f} s, process start included)"
              f"  peak RSS {rss / 1024:.0f} MB")
        print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPU(s) on the machine, one used by the parser")
    finally:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
