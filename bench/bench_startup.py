#!/usr/bin/env python3
"""Start-up cost of the parser: what `tsv_parser.py` imports before it does anything.

    python3 bench/bench_startup.py [--repeat 7]

Runs, each in a fresh process, --repeat times (the best run is kept: the machine's other load
only ever adds):
  1. `python -X importtime tsv_parser.py --help`: the time its imports take (the sum of the
     top-level entries of -X importtime, the interpreter's own `site` and `encodings` included),
     and the wall time of the whole process;
  2. the same for the imports of a run (`powerview.cli.parse` plus what its main() imports: ingest,
     derived, catalogue, count-back, the InfluxDB clients...), which `--help` no longer pays;
  3. the wall time and peak memory (max RSS) of `tsv_parser.py --version`.
Figures are recorded in docs/utilisation-parseur.md ("Performances mesurées").
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
RUN_IMPORTS = (
    "import powerview.cli.parse, powerview.delivery.catalogue, powerview.delivery.countback, powerview.delivery.derived, powerview.ingestion.ingest, "
    "powerview.ingestion.layout, powerview.delivery.layout_change, powerview.core.logsafe, powerview.ingestion.report, powerview.ingestion.formats, "
    "powerview.delivery.influx, powerview.delivery.influx_targets, powerview.core.settings"
)


def imports_ms(stderr: str) -> float:
    """Sum of the top-level (not nested) cumulative times of -X importtime, in ms."""
    total = 0
    for line in stderr.splitlines():
        if not line.startswith("import time:"):
            continue
        _self, cumulative, name = line[len("import time:") :].split("|")
        if cumulative.strip().isdigit() and not name.startswith("  "):  # top level: one space only
            total += int(cumulative)
    return total / 1000


def measure(args: list[str], repeat: int) -> tuple[float, float, float]:
    """(best import ms, best wall ms, peak RSS MB) of `python -X importtime <args>`."""
    best_imports = best_wall = float("inf")
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    for _ in range(repeat):
        started = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-X", "importtime", *args], cwd=PROJECT, env=env, capture_output=True, text=True
        )
        wall = (time.perf_counter() - started) * 1000
        if proc.returncode != 0:
            raise SystemExit(f"{args}: exit {proc.returncode}: {proc.stderr[-2000:]}")
        best_imports = min(best_imports, imports_ms(proc.stderr))
        best_wall = min(best_wall, wall)
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return best_imports, best_wall, peak_mb


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    helped = measure(["tsv_parser.py", "--help"], args.repeat)
    run = measure(["-c", RUN_IMPORTS], args.repeat)
    version = measure(["tsv_parser.py", "--version"], args.repeat)
    print(f"tsv_parser.py --help   : imports {helped[0]:6.1f} ms, process {helped[1]:6.1f} ms (best of {args.repeat})")
    print(f"imports of a run       : imports {run[0]:6.1f} ms, process {run[1]:6.1f} ms")
    print(f"tsv_parser.py --version: process {version[1]:6.1f} ms; peak memory of these processes {version[2]:.0f} MB")


if __name__ == "__main__":
    main()
