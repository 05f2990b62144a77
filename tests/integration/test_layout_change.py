"""A file whose header changes a device's channel layout over a time range that already holds
data is ingested with a warning naming the range, in the report and in the log (the real
tsv_parser.py against a real InfluxDB 1.x, the real corpus).

The corpus holds one: `T302_02001283_T302_260108_214031.tsv` was written by logger 02001283
set up as mono (U1, then Ch1...), while every other file of that folder is tri (U1-U3, then
Ch1...): over its range, the same fields hold the points of other inputs.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

import expected
import samples

NOW = datetime.now(UTC)
DEVICE = Path("acme") / "camp_base" / "02001283"
MONO = "T302_02001283_T302_260108_214031.tsv"
TRI = ["T302_251129_031459.tsv", "T302_251130_032039.tsv"]  # inside the mono file's range
DAY = 86400


def iso(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.fixture
def device_folder(tmp_path):
    source = samples.require_corpus()
    company = f"layout{uuid.uuid4().hex[:8]}"
    root = tmp_path / "data"
    folder = root / company / DEVICE.relative_to("acme")
    folder.mkdir(parents=True)
    return source / DEVICE, root, folder


def run(root: Path, tmp_path: Path, influxd1, step: str) -> tuple[list[dict], str]:
    env = tmp_path / "v1.env"
    reports = tmp_path / f"reports-{step}"
    env.write_text(
        f"INFLUXDB_VERSION=1\nINFLUXDB_HOST={influxd1.url}\nPOWERVIEW_SPOOL_DIR={tmp_path / 'spool'}\n"
        f"TSV_INFLUX_RETRY_MAX_SECONDS=2\nTSV_REPORT_DIR={reports}\n"
    )
    proc = samples.run_tsv_parser(root, env)
    assert proc.returncode == 0, proc.stderr
    (report,) = reports.glob("tsv_parser_*.json")
    return json.loads(report.read_text())["files"], proc.stderr


def expected_range(source: Path) -> tuple[str, int]:
    """The range the warning must name, computed apart: the days where a tri file and the mono
    file both hold points of a same field, within the mono file's range; and how many fields."""
    mono = expected.expected_points(source / MONO, "camp_base", NOW)
    low, high = min(t for _, _, t in mono), max(t for _, _, t in mono)
    mono_days = {(field, t // DAY) for field, _, t in mono}
    both = set()
    for name in TRI:
        for field, _, t in expected.expected_points(source / name, "camp_base", NOW):
            if low <= t <= high and (field, t // DAY) in mono_days:
                both.add((field, t // DAY))
    first = max(min(d for _, d in both) * DAY, low)
    last = min(max(d for _, d in both) * DAY + DAY, high + 1)
    return f"between {iso(first)} and {iso(last)}", len({f for f, _ in both})


def test_a_layout_change_over_stored_data_is_named_in_the_report_and_the_log(device_folder, tmp_path, influxd1):
    source, root, folder = device_folder
    for name in TRI:
        (folder / name).write_bytes((source / name).read_bytes())
    entries, _ = run(root, tmp_path, influxd1, "tri")
    assert [e["status"] for e in entries] == ["success", "success"]
    assert all("layout_change" not in e for e in entries)  # nothing stored before them

    # the same tri files again: same layout, no warning
    for name in TRI:
        (folder / name).write_bytes((source / name).read_bytes())
    entries, err = run(root, tmp_path, influxd1, "tri-again")
    assert all("layout_change" not in e for e in entries), entries[0].get("layout_change")
    assert "layout changed" not in err

    # the mono file, over the same days
    (folder / MONO).write_bytes((source / MONO).read_bytes())
    entries, err = run(root, tmp_path, influxd1, "mono")
    (entry,) = entries
    assert entry["status"] == "success"  # ingested: the file may be the right one
    sentence = entry["layout_change"]
    when, nb_fields = expected_range(source)
    assert when in sentence, (when, sentence)
    assert f"{nb_fields} field(s) of device 02001283" in sentence
    assert "device_subtype: mono / tri" in sentence
    assert sentence in entry["warnings"]
    assert f"{entry['file']}: {sentence}" in err  # the log line names the file and the range
