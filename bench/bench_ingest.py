#!/usr/bin/env python3
"""End-to-end cost of the parser against a minimal serializer, throughput and peak memory.

    python3 bench/bench_ingest.py [--rows 60000] [--repeat 5] [--no-in-process]

Generates a tri master + four slave modules file (31 columns, 30 values a row; 60,000 rows = 1.8 M
points by default), starts a discarding InfluxDB in another process (bench/sink.py: answers 204 to
writes, and the run's other calls, the count-back included, as InfluxDB 2 does), then measures:

  1. THE HEADLINE, end to end, each contender in its own process, process start included:
     - the parser: `tsv_parser.py --dataFolder D --tsvFile F` on a fresh copy of the file, with
       the settings of a normal run (InfluxDB 2, buckets looked up, count-back, report, meta
       bucket, file moved to parsed/; the derived buckets off, measured by bench_derived.py);
     - the minimal serializer: bench/minimal_serializer.py (standard library, the same lines to the
       same sink in batches of 5000, no checks);
     alternated, --repeat times each, best time of each; ratio = parser / minimal (goal 1.3x).
     Peak memory (max RSS) of each parser process.
  2. (unless --no-in-process) the same two in this process (ingest.run against the minimal loop,
     with the project's InfluxDB 2 writer to the same sink, and with the bytes dropped): the
     computing cost without process start.
  3. parse only, in its own process: reader -> rows, values checked and converted.
Figures are recorded in docs/utilisation-parseur.md ("Performances mesurées").
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
BENCH = Path(__file__).resolve().parent
MASTER = "02001171"
SLAVES = ["04000466", "04000477", "04001293", "04001344"]
COMPANY, CAMPAIGN = "bench", "campaign"


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


def line_prefixes(source: Path) -> list[str]:
    """The line-protocol prefix of every column, as the parser computes them (once per file)."""
    from datetime import date

    from powerview.core import schema
    from powerview.ingestion import lineprotocol
    from powerview.ingestion.formats import RowRules, open_device_file

    with open(source, encoding="utf-8", newline="\n") as fh:
        header = open_device_file(fh, RowRules.for_now(date(2021, 1, 1))).header
    return [
        lineprotocol.line_prefix(
            schema.MEASUREMENT, schema.channel_tags(CAMPAIGN, header.master_sn, header.master_type, ch), ch.field
        )
        for ch in header.channels
    ]


# -- the sink --------------------------------------------------------------------------------


def start_sink() -> tuple[subprocess.Popen, str]:
    sink = subprocess.Popen(
        [sys.executable, str(BENCH / "sink.py")], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert sink.stdout is not None
    return sink, f"http://127.0.0.1:{int(sink.stdout.readline())}"


def stop_sink(sink: subprocess.Popen) -> None:
    sink.kill()
    sink.wait()


# -- one process, timed ------------------------------------------------------------------------


@dataclass
class Run:
    """One process: wall seconds (start included), CPU seconds (user, system), peak RSS in KiB."""

    wall: float
    user: float
    system: float
    rss: int
    code: int
    out: str

    @property
    def cpu(self) -> float:
        return self.user + self.system


def run_process(argv: list[str], env: dict[str, str] | None = None) -> Run:
    """Run one process to its end; wait4 gives the CPU time and peak memory of that one alone."""
    out_file = tempfile.TemporaryFile()
    err_file = tempfile.TemporaryFile()
    started = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdout=out_file, stderr=err_file, cwd=PROJECT)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    proc.returncode = code = os.waitstatus_to_exitcode(status)
    out_file.seek(0)
    err_file.seek(0)
    if code != 0:
        sys.stderr.write(err_file.read().decode(errors="replace")[-3000:])
    return Run(wall, usage.ru_utime, usage.ru_stime, usage.ru_maxrss, code, out_file.read().decode())


def parser_env(url: str, work: Path) -> dict[str, str]:
    """A normal run's settings (InfluxDB 2, buckets created when missing, count-back, report,
    meta bucket); the derived buckets are off (bench_derived.py measures them)."""
    return {
        "PATH": os.environ["PATH"],
        "INFLUXDB_HOST": url,
        "INFLUXDB_ORG": "bench",
        "INFLUXDB_ADMIN_TOKEN": "bench",
        "TSV_DOWNSAMPLE_LEVELS": "",
        "POWERVIEW_SPOOL_DIR": str(work / "spool"),
        "TSV_REPORT_DIR": str(work / "reports"),
        "TSV_LOG_LEVEL": "WARNING",
        "POWERVIEW_ENV_FILE": str(work / "empty.env"),
    }


def run_parser(source: Path, work: Path, url: str, n: int) -> Run:
    """One `tsv_parser.py --tsvFile` on a fresh copy of the file."""
    data = work / f"data{n}"
    target = data / COMPANY / CAMPAIGN / MASTER / source.name
    target.parent.mkdir(parents=True)
    shutil.copyfile(source, target)
    argv = [sys.executable, str(PROJECT / "tsv_parser.py"), "--dataFolder", str(data), "--tsvFile", str(target)]
    run = run_process(argv, parser_env(url, work))
    if run.code != 0:
        raise SystemExit(f"tsv_parser.py exited {run.code}")
    if not (target.parent / "parsed" / source.name).exists():
        raise SystemExit("the file was not moved to parsed/")
    shutil.rmtree(data)
    return run


# glibc's allocator told to keep freed memory: no page faults on the minimal serializer's
# batch-sized buffers (see end_to_end)
NO_TRIM = {"MALLOC_MMAP_THRESHOLD_": str(1 << 22), "MALLOC_TRIM_THRESHOLD_": str(1 << 26)}


def run_minimal(source: Path, prefixes_path: Path, url: str, env: dict[str, str] | None = None) -> Run:
    argv = [
        sys.executable,
        str(BENCH / "minimal_serializer.py"),
        str(source),
        url,
        COMPANY,
        "bench",
        "bench",
        str(prefixes_path),
    ]
    run = run_process(argv, {**os.environ, **env} if env else None)
    if run.code != 0:
        raise SystemExit(f"minimal_serializer.py exited {run.code}")
    return run


def end_to_end(source: Path, work: Path, nb_values: int, repeat: int) -> None:
    prefixes_path = work / "prefixes.json"
    prefixes_path.write_text(json.dumps(line_prefixes(source)))
    (work / "empty.env").write_text("")
    sink, url = start_sink()
    minimal: list[Run] = []
    parser: list[Run] = []
    try:
        for n in range(repeat):
            minimal.append(run_minimal(source, prefixes_path, url))
            assert int(minimal[-1].out) == nb_values, (minimal[-1].out, nb_values)
            parser.append(run_parser(source, work, url, n))
            report = max((work / "reports").glob("*.json"), key=lambda p: p.stat().st_mtime)
            entry = json.loads(report.read_text())["files"][0]
            counts = (entry["nb_points"], entry["nb_points_in_influx"])
            assert counts[0] == nb_values <= counts[1] and not entry["warnings"], (counts, entry["warnings"])
        # for the record: the minimal serializer spends much of its time in page faults (glibc
        # gives its 750 KB batch buffers back to the system after each batch, then faults them in
        # again); the same program without them, as a lower bound
        untrimmed = [run_minimal(source, prefixes_path, url, NO_TRIM) for _ in range(repeat)]
    finally:
        stop_sink(sink)
    wall_m, wall_p = min(r.wall for r in minimal), min(r.wall for r in parser)
    pairs = sorted(p.wall / m.wall for m, p in zip(minimal, parser))
    print(
        f"END TO END (own process, start included, best of {repeat}): minimal serializer {wall_m:.2f} s "
        f"({nb_values / wall_m:,.0f} points/s), tsv_parser.py {wall_p:.2f} s ({nb_values / wall_p:,.0f} points/s): "
        f"RATIO {wall_p / wall_m:.2f}x (goal 1.3x); median of the {repeat} alternated pairs "
        f"{statistics.median(pairs):.2f}x, worst {pairs[-1]:.2f}x"
    )
    for name, runs in (("minimal", minimal), ("parser ", parser)):
        best = min(runs, key=lambda r: r.cpu)
        print(
            f"  {name}: CPU {best.cpu:.2f} s (user {best.user:.2f} s, system {best.system:.2f} s, best run), "
            f"peak RSS {max(r.rss for r in runs) / 1024:.0f} MB"
        )
    cpu_ratio = min(r.cpu for r in parser) / min(r.cpu for r in minimal)
    print(
        f"  CPU ratio {cpu_ratio:.2f}x; every run (wall s, minimal/parser): "
        + ", ".join(f"{m.wall:.2f}/{p.wall:.2f}" for m, p in zip(minimal, parser))
    )
    best = min(untrimmed, key=lambda r: r.wall)
    print(
        f"  for the record, the minimal serializer without page faults on its buffers ({' '.join(NO_TRIM)} "
        f"set): {best.wall:.2f} s, CPU {best.cpu:.2f} s (user {best.user:.2f} s, system {best.system:.2f} s): "
        f"parser / that = {wall_p / best.wall:.2f}x wall, {min(r.cpu for r in parser) / best.cpu:.2f}x CPU"
    )


# -- in this process -------------------------------------------------------------------------


class NullWriter:
    """Takes the bytes and drops them: the serializing cost alone, without HTTP."""

    def write(self, bucket: str, body: bytes) -> None:
        pass

    def ensure_bucket(self, bucket: str) -> None:
        pass

    def close(self) -> None:
        pass


def minimal_serializer(path: Path, prefixes: list[str], writer, batch_lines: int = 5000) -> int:
    """The minimal loop of bench/minimal_serializer.py, in this process, through `writer`."""
    from minimal_serializer import serialize  # bench/ is this script's folder

    return serialize(str(path), prefixes, lambda body: writer.write(COMPANY, body), batch_lines)


def user_s() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_utime


def compare_in_process(work: Path, source: Path, writer, repeat: int) -> dict[str, float]:
    """Best wall and best user-CPU times of the minimal loop and of the parser (ingest.run) on the
    same file, sink and writer, alternated."""
    from datetime import date

    from powerview.ingestion import ingest, layout
    from powerview.ingestion.formats import RowRules

    rules = RowRules.for_now(date(2021, 1, 1))
    prefixes = line_prefixes(source)
    best = {"minimal": math.inf, "parser": math.inf, "minimal_user": math.inf, "parser_user": math.inf}
    try:
        for n in range(repeat):
            t0, u0 = time.perf_counter(), user_s()
            points_minimal = minimal_serializer(source, prefixes, writer)
            best["minimal"] = min(best["minimal"], time.perf_counter() - t0)
            best["minimal_user"] = min(best["minimal_user"], user_s() - u0)

            root = work / f"run{n}"
            target = root / COMPANY / CAMPAIGN / MASTER / source.name
            target.parent.mkdir(parents=True)
            shutil.copyfile(source, target)
            options = ingest.RunOptions(root, rules, 5000, dry_run=False)
            t0, u0 = time.perf_counter(), user_s()
            entries, _ = ingest.run([layout.locate(root, target)], options, writer)
            best["parser"] = min(best["parser"], time.perf_counter() - t0)
            best["parser_user"] = min(best["parser_user"], user_s() - u0)
            assert entries[0].status == "success", entries[0].error
            assert entries[0].nb_points == points_minimal, (entries[0].nb_points, points_minimal)
            shutil.rmtree(root)
    finally:
        writer.close()
    return best


def report_ratio(what: str, best: dict[str, float], repeat: int) -> None:
    print(
        f"{what}: user CPU minimal loop {best['minimal_user']:.2f} s, ingest.run {best['parser_user']:.2f} s: "
        f"ratio {best['parser_user'] / best['minimal_user']:.2f}x; wall {best['minimal']:.2f} s / "
        f"{best['parser']:.2f} s: {best['parser'] / best['minimal']:.2f}x  [best of {repeat}]"
    )


def in_process(source: Path, work: Path, repeat: int) -> None:
    """In this process: no start-up. User CPU is the stable measure here; wall times (and the
    system time in them) depend on the allocator's state left by what ran before."""
    from powerview.core.settings import Env, influx_settings
    from powerview.delivery.influx_targets import Influx2Writer

    sink, url = start_sink()
    try:
        env = Env({"INFLUXDB_HOST": url, "INFLUXDB_ORG": "bench", "INFLUXDB_ADMIN_TOKEN": "bench"})
        writer = Influx2Writer(influx_settings(env))
        report_ratio("in process, to the sink  ", compare_in_process(work / "http", source, writer, repeat), repeat)
    finally:
        stop_sink(sink)
    report_ratio("in process, bytes dropped", compare_in_process(work / "null", source, NullWriter(), repeat), repeat)


PARSE_ONLY = r"""
import sys, time
from datetime import date
from powerview.ingestion.formats import open_device_file, RowRules
t0 = time.perf_counter()
n = 0
with open(sys.argv[1], encoding="utf-8-sig", errors="replace", newline="\n") as fh:
    device = open_device_file(fh, RowRules.for_now(date(2021, 1, 1)))
    for ts, texts in device.rows:
        n += len(texts) - texts.count(None)
    device.rows.summary()
print(n, time.perf_counter() - t0)
"""


def parse_only(path: Path, nb_values: int) -> None:
    run = run_process([sys.executable, "-c", PARSE_ONLY, str(path)])
    assert run.code == 0
    points, dt, rss = int(run.out.split()[0]), float(run.out.split()[1]), run.rss
    assert points == nb_values, (points, nb_values)
    print(f"parse only : {points / dt:>10,.0f} points/s  ({dt:.2f} s)  peak RSS {rss / 1024:.0f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=60_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--no-in-process", action="store_true", help="only the end-to-end measure and parse only")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="powerview-bench-"))
    try:
        source = work / "T302_bench.tsv"
        nb_values = generate(source, args.rows)
        size_mb = source.stat().st_size / 1e6
        print(f"file: {args.rows} rows x 30 values = {nb_values:,} points, {size_mb:.1f} MB")
        end_to_end(source, work, nb_values, args.repeat)
        if not args.no_in_process:
            in_process(source, work, args.repeat)
        parse_only(source, nb_values)
        load = os.getloadavg()
        print(
            f"python {sys.version.split()[0]}, {os.cpu_count()} CPU(s), load average {load[0]:.1f} {load[1]:.1f} "
            f"{load[2]:.1f}; each contender uses one CPU, the sink another"
        )
    finally:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
