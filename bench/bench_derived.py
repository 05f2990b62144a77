#!/usr/bin/env python3
"""Cost of keeping the derived buckets exact, against a real InfluxDB 1.x (Debian's influxd).

    python3 bench/bench_derived.py [--days 7] [--interval 600 --interval 10] [--repeat 5]

Generates one daily file per day of the 4-slave device (tri master + four slaves, 30 values a
row, one row every --interval seconds: 600, the corpus's daily files, and 10, a dense one, by
default), ingests the days before the last one (so the weekly window of the last day holds a
full week of raw data: the worst case), then, for the last daily file, measures (median of
--repeat runs):
  1. its raw ingestion (read, check, line protocol, /write);
  2. the recompute of its windows on every level (1h, 1d, 1w: one multi-statement InfluxQL
     read of the raw bucket, the weekly fold's read of the daily level, a write per level),
     and where its time goes: each read and each write as timed around the HTTP call, the
     rest being Python (JSON decoding, aggregates, line protocol);
  3. then `tsv_parser.py` on that file in its own process (ingestion, layout check, derived
     buckets, report): wall time and peak memory.
Figures are recorded in docs/buckets-derives.md.
"""

from __future__ import annotations

import argparse
import importlib.util
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from powerview.core.outcome import Status
from powerview.core.settings import load_parser
from powerview.delivery import derived
from powerview.delivery.influx_targets import Influx1Writer, open_query_client
from powerview.ingestion import ingest, layout
from powerview.ingestion.formats import RowRules

PROJECT = Path(__file__).resolve().parent.parent


def _influxd1_class():
    """The test suite's private influxd starter (tests/integration/servers.py), loaded by path."""
    spec = importlib.util.spec_from_file_location("servers", PROJECT / "tests" / "integration" / "servers.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.Influxd1


MASTER = "02001171"
SLAVES = ["04000466", "04000477", "04001293", "04001344"]


def daily_file(path: Path, day: datetime, interval: int) -> int:
    serials = [MASTER] * 7 + [s for s in SLAVES for _ in range(6)]
    labels = ["Ph 1 V", "Ph 2 V", "Ph 3 V", "Voie1 W", "Voie2 W", "Voie3 W"] + [f"Voie{i} W" for i in range(1, 7)] * 4
    rows = 86400 // interval
    with open(path, "w") as fh:
        fh.write("\t".join(serials) + "\n" + "\t".join(["MV_T302_V002"] + labels) + "\n")
        t = day
        for i in range(rows):
            values = [f"{230 + (i % 7) * 0.1:.2f}"] * 3 + [f"{(i * 37 + k * 11) % 4000:.1f}" for k in range(27)]
            fh.write(t.strftime("%d/%m/%y %H:%M:%S") + "\t" + "\t".join(values) + "\n")
            t += timedelta(seconds=interval)
    return rows * 30


def measure(days: int, interval: int, repeat: int) -> dict:
    """Raw ingestion and recompute of the last daily file (medians), then `tsv_parser.py` on it
    in its own process (wall time and peak memory, process start included)."""
    with tempfile.TemporaryDirectory() as tmp, _influxd1_class()() as server:
        root = Path(tmp) / "data"
        folder = root / "bench" / "week" / MASTER
        folder.mkdir(parents=True)
        first = datetime(2026, 1, 1, tzinfo=UTC)  # a Thursday: the weekly window starts here
        environ = {
            "INFLUXDB_VERSION": "1",
            "INFLUXDB_HOST": server.url,
            "POWERVIEW_SPOOL_DIR": str(Path(tmp) / "spool"),
        }
        settings = load_parser(Path(tmp) / "absent.env", environ=environ)
        options = ingest.RunOptions(root, RowRules.for_now(date(2021, 1, 1), "UTC"), 5000, dry_run=False)
        writer = Influx1Writer(settings.influx)
        client = open_query_client(settings.influx)
        calls = _time_calls(client, writer)
        raw_times, derived_times = [], []
        parts: dict[str, list[float]] = {}
        nb_points = lines = 0
        path = folder
        for day in range(days):
            last = day == days - 1
            for _attempt in range(repeat if last else 1):
                path = folder / f"T302_{(first + timedelta(days=day)).strftime('%y%m%d')}_000000.tsv"
                nb_points = daily_file(path, first + timedelta(days=day), interval)
                started = time.perf_counter()
                [outcome], _ = ingest.run([layout.locate(root, path)], options, writer)
                raw = time.perf_counter() - started
                assert outcome.status == Status.SUCCESS, outcome.error
                span = derived.span_of(outcome)
                calls.clear()
                started = time.perf_counter()
                lines = derived.recompute(span, settings.downsample_levels, client, writer)
                spent = time.perf_counter() - started
                if last:
                    raw_times.append(raw)
                    derived_times.append(spent)
                    for what, seconds in calls + [("python", spent - sum(s for _, s in calls))]:
                        parts.setdefault(what, []).append(seconds)
        writer.close()
        client.close()
        # the whole parser on the last day once more, as the worker runs it
        env_file = Path(tmp) / "bench.env"
        env_file.write_text("".join(f"{k}={v}\n" for k, v in environ.items()) + f"TSV_REPORT_DIR={tmp}/reports\n")
        daily_file(path, first + timedelta(days=days - 1), interval)
        started = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, str(PROJECT / "tsv_parser.py"), "--dataFolder", str(root), "--tsvFile", str(path)]
            + ["--env-file", str(env_file), "--log-level", "WARNING"],
            capture_output=True,
            text=True,
        )
        whole = time.perf_counter() - started
        assert proc.returncode == 0, proc.stderr
        peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {
        "points": nb_points,
        "rows": 86400 // interval,
        "raw": statistics.median(raw_times),
        "derived": statistics.median(derived_times),
        "lines": lines,
        "parts": {what: statistics.median(times) for what, times in parts.items()},
        "process": whole,
        "peak_mb": peak_mb,
    }


def _time_calls(client, writer) -> list[tuple[str, float]]:
    """Times every read (`read <database>`) and write (`write <bucket>`) of the recompute; the
    list is cleared before each recompute by the caller."""
    calls: list[tuple[str, float]] = []
    raw, write = client.raw, writer.write

    def timed_raw(db, influxql, write=False):
        started = time.perf_counter()
        try:
            return raw(db, influxql, write)
        finally:
            calls.append((f"read {db}", time.perf_counter() - started))

    def timed_write(bucket, body):
        started = time.perf_counter()
        try:
            return write(bucket, body)
        finally:
            calls.append((f"write {bucket}", time.perf_counter() - started))

    client.raw, writer.write = timed_raw, timed_write
    return calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--interval", type=int, action="append", help="seconds between rows (default: 600 and 10)")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    for interval in args.interval or [600, 10]:
        got = measure(args.days, interval, args.repeat)
        raw, rec = got["raw"], got["derived"]
        print(
            f"daily file of the 4-slave device, a row every {interval} s: {got['points']} points "
            f"({got['rows']} rows x 30), {args.days - 1} earlier day(s) in the database"
        )
        print(f"  raw ingestion     : {raw * 1000:7.1f} ms  ({got['points'] / raw:,.0f} points/s)")
        print(
            f"  derived recompute : {rec * 1000:7.1f} ms  (levels 1h,1d,1w; {got['lines']} lines written) "
            f"= {rec / raw:.2f} x the raw ingestion"
        )
        print(
            "    where it goes (medians): "
            + ", ".join(f"{what} {seconds * 1000:.1f} ms" for what, seconds in got["parts"].items())
        )
        print(
            f"  tsv_parser.py on it, process start and derived buckets included: {got['process']:.2f} s, "
            f"peak memory {got['peak_mb']:.0f} MB"
        )


if __name__ == "__main__":
    main()
