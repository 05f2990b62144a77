"""Every reader's test cases, one folder each: tests/formats/<family>/<case>/

    input.tsv       the device file, byte for byte
    expected.json   what the reader makes of it: header, rows and summary — or the file fault
    options.json    (optional) {"v002_timezone": "Europe/Paris"}

The rules are fixed (valid from 2021-01-01, "now" is 2027-01-01 UTC) so that the expectations
never age. A new case without expected.json fails; `POWERVIEW_WRITE_CASES=1` writes the missing
ones from what the reader does today: read them line by line before committing them.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from powerview.ingestion.formats import FileFault, RowRules, open_device_file

HERE = Path(__file__).resolve().parent
CASES = sorted(path.parent for path in HERE.glob("*/*/input.tsv"))
NOW = datetime(2027, 1, 1, tzinfo=UTC)


def outcome(case: Path) -> dict:
    options = json.loads((case / "options.json").read_text()) if (case / "options.json").exists() else {}
    rules = RowRules.for_now(date(2021, 1, 1), options.get("v002_timezone", "UTC"), now=NOW)
    try:
        with open(case / "input.tsv", encoding="utf-8-sig", errors="replace", newline="\n") as stream:
            device = open_device_file(stream, rules)
            rows = [[ts, texts] for ts, texts in device.rows]
            summary = device.rows.summary()
    except FileFault as fault:
        return {"fault": {"message": fault.message, "line": fault.line, "rule": fault.rule}}
    header = device.header
    return {
        "header": {
            "format": header.format,
            "master_sn": header.master_sn,
            "master_type": header.master_type,
            "timezone": header.timezone,
            "meta": header.meta,
            "warnings": list(header.warnings),
            "channels": [
                [ch.column, ch.channel_id, ch.field, ch.label, ch.name, ch.unit, ch.device_sn, ch.device_type]
                for ch in header.channels
            ],
        },
        "rows": rows,
        "summary": {
            "counters": {
                name: getattr(summary.counters, name) for name in ("nb_rows", *summary.counters.COUNTER_NAMES)
            },
            "time_min": summary.time_min,
            "time_max": summary.time_max,
            "stats": [st.as_dict() for st in summary.stats],
            "warnings": summary.warnings,
            "samples": summary.samples,
        },
    }


def test_every_family_has_cases():
    assert {case.parent.name for case in CASES} >= {"t302_v002", "t302_v003", "unknown"}


@pytest.mark.parametrize("case", CASES, ids=[f"{c.parent.name}/{c.name}" for c in CASES])
def test_case(case: Path):
    got = json.loads(json.dumps(outcome(case), allow_nan=False))  # tuples -> lists; must be valid JSON
    expected_file = case / "expected.json"
    if not expected_file.exists():
        if os.environ.get("POWERVIEW_WRITE_CASES") == "1":
            expected_file.write_text(json.dumps(got, indent=1, ensure_ascii=False) + "\n")
            pytest.skip(f"wrote {expected_file}: review it before committing")
        pytest.fail(f"{expected_file} is missing (POWERVIEW_WRITE_CASES=1 writes it from today's reading)")
    assert got == json.loads(expected_file.read_text())
