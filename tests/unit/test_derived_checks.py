"""The fold's count check, the recompute lock and the layout-change check, on their own (the
real-server behaviour is in tests/integration/test_derived_fold_and_lock.py and
test_layout_change.py)."""

from __future__ import annotations

import multiprocessing
import time

import pytest

from powerview.core.outcome import FileOutcome, Status
from powerview.delivery import derived, layout_change, windows

TAGS = (("campaign", "c"), ("channel_id", "M1_U1"), ("device_master_sn", "1"))


def span() -> windows.Span:
    return windows.Span("acme", "c", "1", 0, 86400 * 2 - 1, ("M1_U1_V",), ("M1_U1",))


def test_count_query_counts_the_raw_points_per_window():
    query = windows.count_query(span(), "1d", 0, 2 * 86400)
    assert query == (
        'SELECT count("M1_U1_V") AS "count_M1_U1_V" FROM "electrical" WHERE "campaign" = \'c\' AND '
        "\"device_master_sn\" = '1' AND \"channel_id\" = 'M1_U1' AND time >= '1970-01-01T00:00:00Z' "
        "AND time < '1970-01-03T00:00:00Z' GROUP BY time(1d), * fill(none)"
    )


def test_a_missing_lower_window_is_a_mismatch():
    answer = [{"tags": dict(TAGS), "columns": ["time", "count_M1_U1_V"], "values": [[0, 144], [86400, 6]]}]
    raw = windows.counts_from_raw(answer, 86400)
    assert raw == {(TAGS, 86400, "M1_U1_V"): 144, (TAGS, 2 * 86400, "M1_U1_V"): 6}
    full = [(TAGS, 86400, "M1_U1_V", {"count": 144}), (TAGS, 2 * 86400, "M1_U1_V", {"count": 6})]
    assert windows.count_mismatch(full, raw) is None
    partial = [(TAGS, 86400, "M1_U1_V", {"count": 126}), (TAGS, 2 * 86400, "M1_U1_V", {"count": 6})]
    assert "(126 of 144 raw points)" in windows.count_mismatch(partial, raw)
    absent = full[:1]  # a whole window missing from the level below
    assert "1 window(s)" in windows.count_mismatch(absent, raw)


def _hold(spool, seconds):
    with derived.BucketLocks(spool)("acme"):
        time.sleep(seconds)


def test_the_lock_makes_a_second_recompute_wait(tmp_path, caplog):
    holder = multiprocessing.get_context("fork").Process(target=_hold, args=(tmp_path, 1.0))
    holder.start()
    deadline = time.monotonic() + 10
    while not (tmp_path / "locks" / "derived" / "acme.lock").exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.2)
    started = time.monotonic()
    with caplog.at_level("INFO"), derived.BucketLocks(tmp_path)("acme"):
        waited = time.monotonic() - started
    holder.join()
    assert waited > 0.3
    assert "waiting for another recompute" in caplog.text
    with derived.BucketLocks(tmp_path)("other"):  # another bucket never waits
        pass


def test_an_unusable_lock_folder_does_not_stop_the_recompute(tmp_path, caplog):
    (tmp_path / "locks").write_text("a file where the folder should be")
    locks = derived.BucketLocks(tmp_path)
    with caplog.at_level("WARNING"):
        with locks("acme"):
            pass
        with locks("acme"):
            pass
    assert caplog.text.count("recomputing without it") == 1
    with pytest.raises(ValueError):
        with locks("../x"):
            pass


def outcome(**fields) -> FileOutcome:
    base = {
        "file": "/d/acme/c/1/f.tsv",
        "bucket": "acme",
        "campaign": "c'x",
        "device_folder_sn": "1",
        "status": Status.SUCCESS,
        "device_master_sn": "1",
        "time_min": "2025-11-28T03:20:00Z",
        "time_max": "2025-11-30T03:00:00Z",
        "channels": {"M1_U1": {"field": "M1_U1_V"}, "M1_Ch1": {"field": 'M1_Ch1_"W'}},
    }
    return FileOutcome(**{**base, **fields})


def test_the_layout_check_is_one_query_over_the_file_range():
    query = layout_change.check_query(outcome())
    assert query.count("SELECT") == 1
    assert "\"campaign\" = 'c\\'x'" in query and 'count("M1_Ch1_\\"W")' in query
    assert "time >= '2025-11-28T03:20:00Z' AND time <= '2025-11-30T03:00:00Z'" in query
    assert "GROUP BY time(1d), *" in query
    assert layout_change.check_query(outcome(status=Status.ERROR)) is None


def test_two_series_of_one_field_on_one_day_are_a_layout_change():
    day = 1764288000  # 2025-11-28
    mono = {"device_subtype": "mono", "channel_label": "Ch1"}
    tri = {"device_subtype": "tri", "channel_label": "Ch1"}
    answer = [
        {"tags": mono, "columns": ["time", "M1_U1_V", "M1_Ch1_W"], "values": [[day, 3, None], [day + 86400, 5, 5]]},
        {"tags": tri, "columns": ["time", "M1_U1_V", "M1_Ch1_W"], "values": [[day + 86400, 7, None]]},
        {"tags": {**tri, "device_subtype": ""}, "columns": ["time", "M1_S2_Ch1_W"], "values": [[day, 1]]},
    ]
    found = layout_change.changes(answer)
    assert list(found) == ["M1_U1_V"]
    entry = outcome()
    sentence = layout_change.describe(entry, found)
    assert "between 2025-11-29T00:00:00Z and 2025-11-30T00:00:00Z" in sentence
    assert "1 field(s) of device 1 (M1_U1_V)" in sentence and "device_subtype: mono / tri" in sentence
    assert layout_change.changes(answer[:1]) == {}  # one layout: nothing to say
