"""How many requests the derived recompute costs, and in which shape per InfluxDB generation,
against a real InfluxDB 1.x (directly, and behind the InfluxDB 3 stand-in): a daily file's span
is one read of the raw bucket (several statements), one read of the level below for the weekly
fold, and one write per derived bucket; InfluxDB 3 gets one statement per request (its /query
refuses more). Every window is compared with a computation made here from the points written."""

from __future__ import annotations

import math
import uuid
from datetime import UTC, datetime

import pytest
import requests

from powerview.core.settings import load_parser
from powerview.delivery import derived, windows
from powerview.delivery.influx_targets import Influx1Writer, open_query_client, open_writer

from stand_ins.influxdb3 import InfluxDB3StandIn

DAY = 86400
START = int(datetime(2026, 1, 1, tzinfo=UTC).timestamp())  # a Thursday: a week starts here
CHANNELS = ("M1_Ch1", "M1_S2_Ch1")


def points(days: int) -> dict[tuple[str, int], float]:
    """{(channel, time): value}: one point every 20 minutes on each channel."""
    return {
        (channel, t): round(((t // 1200) * 37 + k * 11) % 4000 / 7, 3)
        for k, channel in enumerate(CHANNELS)
        for t in range(START, START + days * DAY, 1200)
    }


def lines(company: str, values: dict[tuple[str, int], float]) -> str:
    return "".join(
        f"electrical,campaign=c1,channel_id={channel},device_master_sn=M1 {channel}_W={value} {t}\n"
        for (channel, t), value in values.items()
    )


def expected(values: dict[tuple[str, int], float], seconds: int, start: int, end: int) -> dict[tuple, tuple]:
    """{(field, window end): (mean, min, max, count)} of the windows touching [start, end]."""
    groups: dict[tuple, list[float]] = {}
    first, last = windows.window_bounds(start, end, seconds)
    for (channel, t), value in values.items():
        if first <= t < last:
            groups.setdefault((f"{channel}_W", t - t % seconds + seconds), []).append(value)
    return {k: (math.fsum(v) / len(v), min(v), max(v), len(v)) for k, v in groups.items()}


def stored(server, db: str) -> dict[tuple, tuple]:
    out: dict[tuple, dict] = {}
    for measurement, agg in (("electrical", 0), ("electrical_min", 1), ("electrical_max", 2), ("electrical_count", 3)):
        for row in server.query(db, f'SELECT * FROM "{measurement}"'):
            for key, value in row.items():
                if key.endswith("_W") and value is not None:
                    out.setdefault((key, row["time"]), {})[agg] = value
    return {k: tuple(v[i] for i in range(4)) for k, v in out.items()}


def span(company: str, start: int, end: int) -> windows.Span:
    return windows.Span(company, "c1", "M1", start, end, tuple(f"{c}_W" for c in CHANNELS), CHANNELS)


class Counting:
    """Counts the /query requests of a query client and the writes of a writer."""

    def __init__(self, client, writer):
        self.reads: list[tuple[str, int]] = []  # (database, statements)
        self.queries: list[str] = []
        self.writes: list[str] = []
        raw, write = client.raw, writer.write

        def counted_raw(db, influxql, write=False):
            self.reads.append((db, influxql.count("SELECT")))
            self.queries.append(influxql)
            return raw(db, influxql, write)

        def counted_write(bucket, data):
            self.writes.append(bucket)
            return write(bucket, data)

        client.raw, writer.write = counted_raw, counted_write


def settings_for(tmp_path, **environ):
    return load_parser(tmp_path / "absent.env", environ={"POWERVIEW_SPOOL_DIR": str(tmp_path / "spool"), **environ})


@pytest.fixture()
def on_influxd1(influxd1, tmp_path):
    """(a new company, the 1.x writer, the InfluxQL client) on the real InfluxDB 1.x."""
    settings = settings_for(tmp_path, INFLUXDB_VERSION="1", INFLUXDB_HOST=influxd1.url)
    writer, client = Influx1Writer(settings.influx), open_query_client(settings.influx)
    yield f"trips{uuid.uuid4().hex[:8]}", writer, client
    writer.close()
    client.close()


def test_a_daily_file_costs_two_reads_and_one_write_per_level_with_exact_windows(influxd1, on_influxd1):
    company, writer, client = on_influxd1
    values = points(7)
    writer.write(company, lines(company, values).encode())
    for day in range(7):  # every day in turn, as the uploads would
        derived.recompute(
            span(company, START + day * DAY, START + day * DAY + DAY - 1200), ("1h", "1d", "1w"), client, writer
        )
    counting = Counting(client, writer)
    last = START + 6 * DAY
    derived.recompute(span(company, last, last + DAY - 1200), ("1h", "1d", "1w"), client, writer)
    # one read of the raw bucket (1h aggregates + 1w counts, a statement per channel each), the
    # day folded in memory, one read of _1d for the week (a statement per channel), one write per level
    assert counting.reads == [(company, 2 * len(CHANNELS)), (f"{company}_1d", len(CHANNELS))]
    assert counting.writes == [f"{company}_1h", f"{company}_1d", f"{company}_1w"]
    # each channel has one series: no GROUP BY *, the tags from the SHOW SERIES ending each request
    assert all("GROUP BY *" not in q and ", *" not in q for q in counting.queries)
    assert all(q.rpartition("; ")[2].startswith("SHOW SERIES FROM") for q in counting.queries)
    for level, seconds in (("1h", 3600), ("1d", DAY), ("1w", 7 * DAY)):
        got, want = stored(influxd1, f"{company}_{level}"), expected(values, seconds, START, START + 7 * DAY - 1)
        assert set(got) == set(want), level
        for key, (mean, low, high, count) in want.items():
            assert got[key][1:] == (low, high, count), (level, key)
            assert math.isclose(got[key][0], mean, rel_tol=1e-12), (level, key)


def test_a_part_of_a_day_folds_the_stored_day_checked_against_the_raw_counts(influxd1, on_influxd1):
    company, writer, client = on_influxd1
    values = points(2)
    writer.write(company, lines(company, values).encode())
    derived.recompute(span(company, START, START + 2 * DAY - 1200), ("1h", "1d"), client, writer)
    counting = Counting(client, writer)
    derived.recompute(span(company, START + DAY + 3600, START + DAY + 7200), ("1h", "1d"), client, writer)
    # the raw read carries the 1h aggregates and the 1d counts; the day is read from _1h
    assert counting.reads == [(company, 2 * len(CHANNELS)), (f"{company}_1h", len(CHANNELS))]
    got, want = stored(influxd1, f"{company}_1d"), expected(values, DAY, START, START + 2 * DAY - 1)
    assert set(got) == set(want) and all(got[k][3] == want[k][3] for k in want)


def test_a_channel_with_two_series_is_read_again_with_group_by_star(influxd1, on_influxd1):
    """A label changed in the middle of the day: the first channel has two series. Its
    statements are read again with GROUP BY * (one more request on the raw bucket and one on
    _1d), and every window of each series is exact."""
    company, writer, client = on_influxd1
    values = points(1)
    label = {key: ("Voie 1" if key[0] == CHANNELS[0] and key[1] >= START + DAY // 2 else "Ch1") for key in values}
    escaped = {key: text.replace(" ", "\\ ") for key, text in label.items()}
    body = "".join(
        f"electrical,campaign=c1,channel_id={channel},channel_label={escaped[channel, t]},"
        f"device_master_sn=M1 {channel}_W={value} {t}\n"
        for (channel, t), value in values.items()
    )
    writer.write(company, body.encode())
    counting = Counting(client, writer)
    derived.recompute(span(company, START, START + DAY - 1200), ("1h", "1d", "1w"), client, writer)
    # the raw read (no GROUP BY *), the first channel again with it (1h and 1w counts), the same for _1d
    assert counting.reads == [(company, 4), (company, 2), (f"{company}_1d", 2), (f"{company}_1d", 1)]
    assert [", *" in q or "GROUP BY *" in q for q in counting.queries] == [False, True, False, True]
    for level, seconds in (("1h", 3600), ("1d", DAY), ("1w", 7 * DAY)):
        want: dict[tuple, list[float]] = {}
        for (channel, t), value in values.items():
            want.setdefault((f"{channel}_W", label[channel, t], t - t % seconds + seconds), []).append(value)
        got: dict[tuple, dict] = {}
        for measurement in ("electrical", "electrical_min", "electrical_max", "electrical_count"):
            for row in influxd1.query(f"{company}_{level}", f'SELECT * FROM "{measurement}"'):
                for field in (f"{c}_W" for c in CHANNELS):
                    if row.get(field) is not None:
                        got.setdefault((field, row["channel_label"], row["time"]), {})[measurement] = row[field]
        assert set(got) == set(want), level
        for key, group in want.items():
            stored_window = got[key]
            assert (stored_window["electrical_min"], stored_window["electrical_max"]) == (min(group), max(group))
            assert stored_window["electrical_count"] == len(group), (level, key)
            assert math.isclose(stored_window["electrical"], math.fsum(group) / len(group), rel_tol=1e-12)
    assert {name for _, name, _ in got} == {"Ch1", "Voie 1"}


def test_influxdb3_gets_one_statement_per_request(influxd1, tmp_path):
    company = f"trips{uuid.uuid4().hex[:8]}"
    values = points(1)
    with InfluxDB3StandIn(influxql_backend=influxd1.url) as influx:
        # what the server answers to several statements (influxdb3_server http.rs)
        refused = requests.get(
            influx.url + "/query",
            params={"db": company, "q": "SHOW DATABASES; SHOW DATABASES"},
            headers={"Authorization": f"Bearer {influx.admin_token}"},
            timeout=10,
        )
        assert refused.status_code == 500 and b"only one InfluxQl statement" in refused.content
        probed = len(influx.requests)
        settings = settings_for(
            tmp_path, INFLUXDB_VERSION="3", INFLUXDB_HOST=influx.url, INFLUXDB_ADMIN_TOKEN=influx.admin_token
        )
        writer, client = open_writer(settings.influx), open_query_client(settings.influx)
        try:
            writer.write(company, lines(company, values).encode())
            counting = Counting(client, writer)
            derived.recompute(span(company, START, START + DAY - 1200), ("1h", "1d", "1w"), client, writer)
        finally:
            writer.close()
            client.close()
        # 1h over every channel at once, the 1w counts, the fold of _1d: a request each
        assert counting.reads == [(company, 1), (company, 1), (f"{company}_1d", 1)]
        assert not [r for r in influx.requests[probed:] if r[1] == "/query" and r[2] != 200]
    got = {}
    for point in influx.points[f"{company}_1h"]:
        for field, value in point.fields.items():
            got.setdefault((field, point.time // 10**9), {})[point.measurement] = value
    want = expected(values, 3600, START, START + DAY - 1)
    assert {k: v["electrical_count"] for k, v in got.items()} == {k: v[3] for k, v in want.items()}
