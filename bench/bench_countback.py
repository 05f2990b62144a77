#!/usr/bin/env python3
"""Cost of the count-back (one InfluxQL `count(*)` per written file, powerview/delivery/countback.py)
against a real InfluxDB 1.x (Debian `influxd`), next to the file's own ingestion.

    python3 bench/bench_countback.py [--days 7] [--rows 8640]

Starts a throw-away influxd, then ingests `--days` daily files of one device (tri master + four
slave modules: 30 values a row, a row every 10 s: 8640 rows = one day), one after the other as the
hook does, into the same database (so the later counts run over a growing database); after each
file, times its write (`ingest.run`) and its count (`countback.count_points`, the statement the
parser runs). Prints the median and worst count time, and the count's share of a file's
write + count. Figures are recorded in docs/utilisation-parseur.md.
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(PROJECT), str(PROJECT / "tests"), str(PROJECT / "tests" / "integration")]

from powerview.core.settings import load_parser  # noqa: E402
from powerview.delivery import countback  # noqa: E402
from powerview.delivery.influx_targets import Influx1Writer, open_query_client  # noqa: E402
from powerview.ingestion import ingest, layout  # noqa: E402
from powerview.ingestion.formats import RowRules  # noqa: E402

from servers import Influxd1  # noqa: E402

MASTER = "02001171"
SLAVES = ["04000466", "04000477", "04001293", "04001344"]


def generate(path: Path, day: datetime, rows: int, seed: int) -> None:
    rnd = random.Random(seed)
    serials = [MASTER] * 7 + [s for s in SLAVES for _ in range(6)]
    labels = ["Ph 1 V", "Ph 2 V", "Ph 3 V", "Voie1 W", "Voie2 W", "Voie3 W"] + [f"Voie{i} W" for i in range(1, 7)] * 4
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as fh:
        fh.write("\t".join(serials) + "\n" + "\t".join(["MV_T302_V002"] + labels) + "\n")
        t = day
        for i in range(rows):
            volts = [f"{242 + math.sin(i / 50 + k):.2f}" for k in range(3)]
            powers = [f"{rnd.uniform(-10, 4000):.1f}" for _ in range(27)]
            fh.write(t.strftime("%d/%m/%y %H:%M:%S") + "\t" + "\t".join(volts + powers) + "\n")
            t += timedelta(seconds=10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--rows", type=int, default=8640)
    args = parser.parse_args()

    server = Influxd1()
    server.start()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp) / "data"
            env = {"INFLUXDB_VERSION": "1", "INFLUXDB_HOST": server.url, "TSV_DOWNSAMPLE_LEVELS": ""}
            settings = load_parser(Path(tmp) / "absent.env", environ=env)
            writer = Influx1Writer(settings.influx)
            client = open_query_client(settings.influx)
            options = ingest.RunOptions(root, RowRules.for_now(date(2021, 1, 1)), settings.batch_lines, False)
            writes, counts = [], []
            for day in range(args.days):
                start = datetime(2025, 8, 1, tzinfo=UTC) + timedelta(days=day)
                path = root / "bench" / "Campagne été 2025" / MASTER / f"T302_{start:%y%m%d}.tsv"
                generate(path, start, args.rows, day)
                began = time.perf_counter()
                [out], _ = ingest.run([layout.locate(root, path)], options, writer)
                writes.append(time.perf_counter() - began)
                [out] = countback.prepare([out])
                began = time.perf_counter()
                found = countback.count_points(
                    client, out.bucket, out.campaign, MASTER, out.time_start or "", out.time_end or ""
                )
                counts.append(time.perf_counter() - began)
                assert found == out.nb_points_expected, (found, out.nb_points_expected)
                print(
                    f"day {day + 1}: {out.nb_points} points written in {writes[-1]:.2f} s, "
                    f"counted back in {counts[-1] * 1000:.0f} ms",
                    flush=True,
                )
            writer.close()
            client.close()
    finally:
        server.stop()
    share = sum(counts) / (sum(counts) + sum(writes))
    print(
        f"count-back over {args.days} files of {args.rows} rows x 30 values: median "
        f"{statistics.median(counts) * 1000:.0f} ms, worst {max(counts) * 1000:.0f} ms; "
        f"{share:.1%} of write + count"
    )


if __name__ == "__main__":
    main()
