"""The generated T302 device files of an acceptance run and what the plan expects of each."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta


@dataclass(frozen=True)
class Sample:
    """One generated device file and what the plan expects of it."""

    check: str  # A3 ... A7
    what: str
    device: str
    name: str
    content: str
    expect: str  # "parsed" | "rejected"
    points: int = 0  # points the parser must write (parsed files)
    counter: str | None = None  # report counter that must be > 0


LABELS = ["Ph 1 V", "Ph 2 V", "Ph 3 V", "Voie1 W", "Voie2 W", "Voie3 W"]


def _rows(day: datetime, n: int) -> list[list[str]]:
    return [
        [
            (day + timedelta(minutes=10 * i)).strftime("%d/%m/%y %H:%M:%S"),
            f"{230 + i * 0.1:.2f}",
            f"{231 + i * 0.1:.2f}",
            f"{232 + i * 0.1:.2f}",
            f"{100 + i}",
            "0.0",
            "0.0",
        ]
        for i in range(n)
    ]


def _v002(sn: str, rows: list[list[str]]) -> str:
    lines = ["\t".join([sn] * (len(LABELS) + 1)), "\t".join(["MV_T302_V002", *LABELS])]
    return "\n".join(lines + ["\t".join(r) for r in rows]) + "\n"


def _v003(sn: str, rows: list[list[str]]) -> str:
    header = {
        "DataTimeSettings": "UTC",
        "TimeZoneName": "Europe/Paris",
        "MasterType": "Tri",
        "FileVersion": 3,
        "MasterSN": sn,
    }
    body = ["\t".join([sn] * (len(LABELS) + 1)), "\t".join(["MV_T302_V003", *LABELS])]
    return (
        "\n".join(
            [
                "START_HEADER",
                json.dumps(header),
                "END_HEADER",
                "START_DATA",
                *body,
                *["\t".join(r) for r in rows],
                "END_DATA",
            ]
        )
        + "\n"
    )


def samples(now: datetime | None = None) -> list[Sample]:
    """The files of A3-A7: six 10-minute rows of yesterday (UTC), six channels each."""
    now = now or datetime.now(UTC)
    day = datetime(now.year, now.month, now.day) - timedelta(days=1)
    stamp = day.strftime("%y%m%d")
    rows = _rows(day, 6)
    width = len(LABELS)
    bad_time = [r[:] for r in rows]
    bad_time[2][0] = "31/02/99 25:61:00"
    bad_value = [r[:] for r in rows]
    bad_value[3][4] = "not-a-number"
    return [
        Sample(
            "A3",
            "V002 file",
            "09900001",
            f"T302_{stamp}_000001.tsv",
            _v002("09900001", rows),
            "parsed",
            points=6 * width,
        ),
        Sample(
            "A4",
            "V003 file",
            "09900002",
            f"T302_{stamp}_000002.tsv",
            _v003("09900002", rows),
            "parsed",
            points=6 * width,
        ),
        Sample(
            "A5",
            "invalid timestamp",
            "09900003",
            f"T302_{stamp}_000003.tsv",
            _v002("09900003", bad_time),
            "parsed",
            points=5 * width,
            counter="nb_invalid_timestamps",
        ),
        Sample(
            "A6",
            "invalid value",
            "09900004",
            f"T302_{stamp}_000004.tsv",
            _v002("09900004", bad_value),
            "parsed",
            points=6 * width - 1,
            counter="nb_invalid_values",
        ),
        Sample(
            "A7",
            "unsupported file",
            "09900005",
            f"T302_{stamp}_000005.tsv",
            "this is not a T302 file\nno header\tat all\n",
            "rejected",
        ),
    ]
