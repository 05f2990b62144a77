#!/usr/bin/env python3
"""Throughput and peak memory of the parser, on a generated realistic file, and its cost against
a minimal serializer.

    python3 bench/bench_ingest.py [--rows 100000] [--repeat 3]

Generates a tri master + four slave modules file (31 columns, 30 values a row), then measures:
  1. the ratio, in this process, on the same file and the same sink (a local HTTP server in
     another process that answers 204 and discards), with the same influxdb-client writer:
     - minimal serializer: split each line, timestamp through a per-hour cache, values copied as
       they are, the same line-protocol prefixes, batches of 5000 lines (no checks, no report);
     - parser: `ingest.run` on a copy of the file (claim, sha256, reader, checks, statistics,
       line protocol, writes, move to parsed/);
     best of --repeat runs each, alternated; the ratio parser / minimal is what docs quote;
  2. each in its own process (so that peak memory is that run's own):
     - parse only: reader -> rows, values checked and converted;
     - end to end: `tsv_parser.py --tsvFile ...`, process start included.
Figures are recorded in docs/utilisation-parseur.md.
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
from datetime import UTC, datetime, timedelta
from operator import add
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
import os, sys, threading
from http.server import BaseHTTPRequestHandler, HTTPServer
# the sink lives as long as the bench: it exits when its stdin (a pipe from the bench) closes
threading.Thread(target=lambda: (sys.stdin.read(), os._exit(0)), daemon=True).start()
class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_POST(self):
        n = int(self.headers.get("Content-Length", 0))
        while n > 0:
            n -= len(self.rfile.read(min(n, 1 << 20)))
        self.send_response(204); self.send_header("Content-Length", "0"); self.end_headers()
    def do_GET(self):  # GET /ping, as an InfluxDB answers it
        self.send_response(204); self.send_header("Content-Length", "0"); self.end_headers()
    def log_message(self, *a): pass
s = HTTPServer(("127.0.0.1", 0), H)
print(s.server_address[1], flush=True)
s.serve_forever()
"""

PARSE_ONLY = r"""
import sys, time, resource
from datetime import date
from powerview.ingestion.formats import open_device_file, RowRules
t0 = time.perf_counter()
n = 0
with open(sys.argv[1], encoding="utf-8-sig", errors="replace", newline="\n") as fh:
    device = open_device_file(fh, RowRules.for_now(date(2021, 1, 1)))
    for ts, texts in device.rows:
        n += len(texts) - texts.count(None)
    device.rows.summary()
dt = time.perf_counter() - t0
print(n, dt, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def run_parse_only(path: Path) -> tuple[int, float, int]:
    out = subprocess.run(
        [sys.executable, "-c", PARSE_ONLY, str(path)], capture_output=True, text=True, check=True, cwd=PROJECT
    ).stdout.split()
    return int(out[0]), float(out[1]), int(out[2])


class NullWriter:
    """Takes the bytes and drops them: the serializing cost alone, without HTTP."""

    def write(self, bucket: str, body: bytes) -> None:
        pass

    def ensure_bucket(self, bucket: str) -> None:
        pass

    def close(self) -> None:
        pass


class ClientWriter:
    """What powerview.delivery.influx.InfluxWriter does per batch (influxdb-client, synchronous write API,
    precision s), without its settings: one writer for both contenders."""

    def __init__(self, url: str):
        from influxdb_client import InfluxDBClient
        from influxdb_client.client.write_api import SYNCHRONOUS

        self.client = InfluxDBClient(url=url, token="bench", org="bench", timeout=30_000)
        self.api = self.client.write_api(write_options=SYNCHRONOUS)

    def write(self, bucket: str, body: bytes) -> None:
        self.api.write(bucket=bucket, org="bench", record=body, write_precision="s")

    def ensure_bucket(self, bucket: str) -> None:
        pass

    def close(self) -> None:
        self.api.close()
        self.client.close()


def minimal_serializer(path: Path, prefixes: list[str], writer, batch_lines: int = 5000) -> int:
    """The least a correct serializer of this file does: no checks, no statistics, no report."""
    from datetime import datetime

    hours: dict[str, int] = {}
    buffer: list[str] = []
    nb = nb_total = 0
    with open(path, encoding="utf-8", newline="\n") as fh:
        fh.readline()
        fh.readline()
        for line in fh:
            cells = line.rstrip("\n").split("\t")
            stamp = cells[0]
            base = hours.get(stamp[:11])
            if base is None:
                base = hours[stamp[:11]] = int(
                    datetime.strptime(stamp[:11], "%d/%m/%y %H").replace(tzinfo=UTC).timestamp()
                )
            suffix = f" {base + int(stamp[12:14]) * 60 + int(stamp[15:17])}\n"
            buffer.append(suffix.join(map(add, prefixes, cells[1:])) + suffix)
            nb += len(cells) - 1
            if nb >= batch_lines:
                writer.write("bench", "".join(buffer).encode())
                nb_total += nb
                nb = 0
                buffer.clear()
    if buffer:
        writer.write("bench", "".join(buffer).encode())
        nb_total += nb
    return nb_total


def compare_in_process(work: Path, source: Path, writer, repeat: int) -> tuple[float, float, int]:
    """Best times of the minimal serializer and of the parser (ingest.run) on the same file,
    sink and writer. Returns (minimal_s, parser_s, points)."""
    from datetime import date

    from powerview.core import schema
    from powerview.ingestion import ingest, layout, lineprotocol
    from powerview.ingestion.formats import RowRules, open_device_file

    rules = RowRules.for_now(date(2021, 1, 1))
    with open(source, encoding="utf-8", newline="\n") as fh:
        header = open_device_file(fh, rules).header
    campaign = source.parent.parent.name
    prefixes = [
        lineprotocol.line_prefix(
            schema.MEASUREMENT, schema.channel_tags(campaign, header.master_sn, header.master_type, ch), ch.field
        )
        for ch in header.channels
    ]
    best_minimal = best_parser = math.inf
    points = 0
    try:
        for n in range(repeat):
            t0 = time.perf_counter()
            points_minimal = minimal_serializer(source, prefixes, writer)
            best_minimal = min(best_minimal, time.perf_counter() - t0)

            root = work / f"run{n}"
            target = root / "bench" / campaign / MASTER / source.name
            target.parent.mkdir(parents=True)
            shutil.copyfile(source, target)
            options = ingest.RunOptions(root, rules, 5000, dry_run=False)
            t0 = time.perf_counter()
            entries, _ = ingest.run([layout.locate(root, target)], options, writer)
            best_parser = min(best_parser, time.perf_counter() - t0)
            assert entries[0].status == "success", entries[0].error
            points = entries[0].nb_points
            assert points == points_minimal, (points, points_minimal)
            shutil.rmtree(root)
    finally:
        writer.close()
    return best_minimal, best_parser, points


def report_ratio(what: str, minimal_s: float, parser_s: float, points: int, repeat: int) -> None:
    print(
        f"{what}: minimal serializer {points / minimal_s:>10,.0f} points/s ({minimal_s:.2f} s), parser "
        f"(ingest.run) {points / parser_s:>10,.0f} points/s ({parser_s:.2f} s): ratio {parser_s / minimal_s:.2f}x"
        f"  [best of {repeat}]"
    )


def run_end_to_end(data: Path, path: Path) -> tuple[float, int]:
    sink, url = start_sink()
    try:
        env = {
            "PATH": os.environ["PATH"],
            "INFLUXDB_HOST": url,
            "INFLUXDB_ORG": "bench",
            "INFLUXDB_ADMIN_TOKEN": "bench",
            "TSV_INFLUX_CREATE_BUCKETS": "false",
            "TSV_DOWNSAMPLE_LEVELS": "",  # measured on its own by bench_derived.py
            "POWERVIEW_SPOOL_DIR": str(data.parent / "spool"),
            "TSV_REPORT_DIR": str(data.parent / "reports"),
            "TSV_LOG_LEVEL": "WARNING",
        }
        env_file = data.parent / "empty.env"
        env_file.write_text("")
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        t0 = time.perf_counter()
        subprocess.run(
            [
                sys.executable,
                str(PROJECT / "tsv_parser.py"),
                "--dataFolder",
                str(data),
                "--tsvFile",
                str(path),
                "--env-file",
                str(env_file),
            ],
            env=env,
            check=True,
        )
        dt = time.perf_counter() - t0
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        return dt, max(peak, before)
    finally:
        sink.kill()
        sink.wait()


def start_sink() -> tuple[subprocess.Popen, str]:
    sink = subprocess.Popen([sys.executable, "-c", SINK], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    return sink, f"http://127.0.0.1:{int(sink.stdout.readline())}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="powerview-bench-"))
    try:
        device = work / "data" / "bench" / "campaign" / MASTER
        device.mkdir(parents=True)
        path = device / "T302_bench.tsv"
        nb_values = generate(path, args.rows)
        size_mb = path.stat().st_size / 1e6
        print(f"file: {args.rows} rows x 30 values = {nb_values} points, {size_mb:.1f} MB")
        print("same process, same file, same writer; ratio = parser time / minimal time (goal 1.2x, limit 1.5x)")
        sink, url = start_sink()
        try:
            timing = compare_in_process(work / "compare-http", path, ClientWriter(url), args.repeat)
        finally:
            sink.kill()
            sink.wait()
        assert timing[2] == nb_values, (timing[2], nb_values)
        report_ratio("to the HTTP sink", *timing, args.repeat)
        report_ratio(
            "bytes dropped   ", *compare_in_process(work / "compare-null", path, NullWriter(), args.repeat), args.repeat
        )
        points, dt, rss = run_parse_only(path)
        assert points == nb_values, (points, nb_values)
        print(f"parse only : {points / dt:>10,.0f} points/s  ({dt:.2f} s)  peak RSS {rss / 1024:.0f} MB")
        dt, rss = run_end_to_end(work / "data", path)
        assert (device / "parsed" / path.name).exists(), "the file was not ingested"
        print(
            f"end to end : {nb_values / dt:>10,.0f} points/s  ({dt:.2f} s, process start included)"
            f"  peak RSS {rss / 1024:.0f} MB"
        )
        print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPU(s) on the machine, one used by the parser")
    finally:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
