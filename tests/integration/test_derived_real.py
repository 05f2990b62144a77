"""Derived buckets against a real InfluxDB 1.x (INFLUXDB_VERSION=1): the real corpus ingested
newest file first, one by one (as the hook does), then all again through the real tsv_parser.py
(fixture corpus_in_influxd1, derived_corpus.py); every window of every level read back and
compared with means / minima / maxima / counts computed from the files by tests/expected.py (an
independent reading)."""

from __future__ import annotations

try:
    from .derived_corpus import assert_derived_exact
except ImportError:
    from derived_corpus import assert_derived_exact


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
