"""Derived buckets against a real InfluxDB 1.x (INFLUXDB_VERSION=1): the real corpus ingested
newest file first, one by one (as the hook does), then all again through the real tsv_parser.py
(fixture corpus_in_influxd1, derived_corpus.py); every window of every level read back and
compared with means / minima / maxima / counts computed from the files by tests/expected.py (an
independent reading)."""

from __future__ import annotations

from pathlib import Path

import expected

try:
    from .derived_corpus import NOW, assert_derived_exact
except ImportError:
    from derived_corpus import NOW, assert_derived_exact


def test_newest_first_one_by_one_leaves_exact_windows(corpus_in_influxd1):
    state = corpus_in_influxd1
    assert {d for s, d in state["statuses1"] if s == "success"} == {"updated"}
    assert sum(1 for s, _ in state["statuses1"] if s == "success") >= 50
    assert state["outbox_after1"] == []
    assert set(state["pass1"]) == set(state["renamed"].values())
    assert assert_derived_exact(state["snapshot1"], state["pass1"]) > 1000


def test_all_again_through_the_command_changes_nothing(corpus_in_influxd1):
    state = corpus_in_influxd1
    assert state["proc"].returncode == 1, state["proc"].stderr  # the corpus holds files that must be rejected
    by_status: dict[str, set] = {}
    for entry in state["report"]["files"]:
        by_status.setdefault(entry["status"], set()).add(entry.get("derived"))
    assert by_status["success"] == {"updated"}
    assert by_status["error"] == {None}
    assert assert_derived_exact(state["snapshot2"], state["pass2"]) > 1000
    # the corpus has no point written twice with two values: re-ingesting changes nothing at all
    assert state["pass1"] == state["pass2"]
    assert state["snapshot2"] == state["snapshot1"]
    assert not list(state["outbox"].glob("*.json"))


def test_only_the_files_over_another_layout_are_warned(corpus_in_influxd1):
    """Pass 2 ingests every file again over the whole corpus: a file is warned exactly when a
    field of its device holds points of the other layout on a same day within its range (the
    mono file of 02001283 and the tri files over its days), computed apart from the files."""
    state = corpus_in_influxd1
    day = 86400
    moved = {Path(e["destination"]): Path(e["file"]) for e in state["report"]["files"] if e["status"] == "success"}
    layouts: dict[tuple, dict[str, set]] = {}  # (company, campaign, device) -> {subtype: {(field, day)}}
    readings: dict[Path, tuple] = {}
    for path, original in sorted(moved.items()):  # read where pass 2 moved them
        company, campaign = original.parts[-4:-2]
        points = expected.expected_points(path, campaign, NOW)
        if not points:
            continue
        subtypes = {dict(tags).get("device_subtype") for _, tags, _ in points} - {None}
        device = {dict(tags)["device_master_sn"] for _, tags, _ in points}
        key = (company, campaign, device.pop())
        for subtype in subtypes:
            layouts.setdefault(key, {}).setdefault(subtype, set()).update((f, t // day) for f, _, t in points)
        readings[original] = (key, subtypes, points)
    want = set()
    for path, (key, subtypes, points) in readings.items():
        low, high = min(t for _, _, t in points), max(t for _, _, t in points)
        others = set().union(*(days for subtype, days in layouts.get(key, {}).items() if subtype not in subtypes))
        if any((f, t // day) in others for f, _, t in points if low <= t <= high):
            want.add(path.name)
    got = {Path(e["file"]).name for e in state["report"]["files"] if e.get("layout_change")}
    assert "T302_02001283_T302_260108_214031.tsv" in want and len(want) > 10
    assert got == want
