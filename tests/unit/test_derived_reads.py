"""How the derived recompute reads InfluxDB: per-channel statements without GROUP BY *, the tags
of each channel's one series taken from the SHOW SERIES that ends the same request, a second
request with GROUP BY * for any channel that has several series (or whose keys do not read
back), and the form encoding of a POSTed query (the real-server side is in
tests/integration/test_derived_round_trips.py)."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest

from powerview.delivery import derived_reads, windows
from powerview.delivery.influx import InfluxRejected
from powerview.delivery.influx_http import form_encode

SPAN = windows.Span("acme", "c", "0201", 0, 3599, ("M0201_Ch1_W", "M0201_U1_V"), ("M0201_Ch1", "M0201_U1"))
CH1 = "electrical,campaign=c,channel_id=M0201_Ch1,channel_label=Ch1,device_master_sn=0201"
U1 = "electrical,campaign=c,channel_id=M0201_U1,channel_label=U1,device_master_sn=0201"


class Client:
    """Answers each request from `answer(statements)`; remembers every request."""

    single_statement = False

    def __init__(self, answer):
        self.answer, self.requests = answer, []

    def raw(self, db, influxql, write=False):
        statements = influxql.split("; ")
        self.requests.append((db, statements))
        results = [dict(self.answer(s), statement_id=i) for i, s in enumerate(statements)]
        for result in results:
            if result.get("error"):  # what QueryClient.raw does with a statement error
                raise InfluxRejected(f"InfluxQL on {db}: {result['error']}")
        return {"results": results}


def show(*keys):
    return {"series": [{"columns": ["key"], "values": [[k] for k in keys]}]}


def rows(field, value):
    return {"series": [{"name": "electrical", "columns": ["time", f"count_{field}"], "values": [[0, value]]}]}


def read(client):
    return derived_reads.read_raw(client, SPAN, lambda grouped: windows.count_statements(SPAN, "1h", 0, 3600, grouped))


def test_one_series_a_channel_is_one_request_without_group_by_star():
    def answer(statement):
        if statement.startswith("SHOW SERIES"):
            return show(CH1, U1)
        return rows("M0201_Ch1_W", 6) if "M0201_Ch1" in statement else rows("M0201_U1_V", 5)

    client = Client(answer)
    results = read(client)
    [(db, statements)] = client.requests
    assert db == "acme" and len(statements) == 3
    assert not any("GROUP BY time(1h), *" in s for s in statements)
    assert statements[-1] == (
        'SHOW SERIES FROM "electrical" WHERE "campaign" = \'c\' AND "device_master_sn" = \'0201\''
    )
    counts = windows.counts_from_raw(derived_reads.series_of(results), 3600)
    tags = (("campaign", "c"), ("channel_id", "M0201_Ch1"), ("channel_label", "Ch1"), ("device_master_sn", "0201"))
    assert counts[(tags, 3600, "M0201_Ch1_W")] == 6
    assert {key[0][2] for key in counts} == {("channel_label", "Ch1"), ("channel_label", "U1")}


def test_a_channel_with_two_series_is_read_again_with_group_by_star():
    relabelled = CH1.replace("channel_label=Ch1", "channel_label=Voie\\ 1")

    def answer(statement):
        if statement.startswith("SHOW SERIES"):
            return show(CH1, relabelled, U1)
        if "GROUP BY time(1h), *" in statement:  # the regrouped statement: one series each
            return {
                "series": [
                    {"name": "electrical", "tags": {"channel_label": label}, "columns": ["time", "c"], "values": []}
                    for label in ("Ch1", "Voie 1")
                ]
            }
        return rows("M0201_U1_V", 5)

    client = Client(answer)
    results = read(client)
    assert [len(statements) for _, statements in client.requests] == [3, 1]
    [again] = client.requests[1][1]
    assert "\"channel_id\" = 'M0201_Ch1'" in again and again.endswith("GROUP BY time(1h), * fill(none)")
    assert [one["tags"]["channel_label"] for one in results[0]["series"]] == ["Ch1", "Voie 1"]
    assert results[1]["series"][0]["tags"]["channel_label"] == "U1"


def test_rows_of_a_channel_without_a_listed_series_are_read_again():
    client = Client(lambda s: show(U1) if s.startswith("SHOW") else rows("x", 1))
    read(client)
    assert [len(statements) for _, statements in client.requests] == [3, 1]


def test_a_server_that_refuses_show_series_is_read_with_group_by_star_from_then_on():
    def answer(statement):
        if statement.startswith("SHOW SERIES"):
            return {"error": "not implemented: SHOW SERIES"}
        return rows("M0201_U1_V", 5)

    client = Client(answer)
    client.show_series = True
    assert len(read(client)) == 2
    assert [len(statements) for _, statements in client.requests] == [3, 2]
    assert all(", *" in statement for statement in client.requests[1][1])
    client.requests.clear()
    read(client)
    assert [len(statements) for _, statements in client.requests] == [2]  # no second attempt


def test_a_refused_statement_is_an_error_and_keeps_show_series():
    client = Client(lambda s: {"error": "field type conflict"} if "M0201_U1" in s else show(CH1))
    client.show_series = True
    with pytest.raises(InfluxRejected, match="field type conflict"):
        read(client)
    assert client.show_series is True and len(client.requests) == 2


def test_series_keys_read_back_with_their_escapes():
    key = "electrical,campaign=c,channel_id=M1_Ch1,channel_name=Ph\\ 1\\,\\ a\\=b,device_master_sn=1"
    [tags] = derived_reads.series_by_channel(show(key, "electrical_min" + key[len("electrical") :]), ["electrical"])[
        "M1_Ch1"
    ]
    assert dict(tags)["channel_name"] == "Ph 1, a=b"
    # a backslash of its own cannot be told from an escape: the device is read with GROUP BY *
    assert derived_reads.series_by_channel(show("electrical,campaign=c\\\\,channel_id=M1_Ch1"), ["electrical"]) is None
    assert derived_reads.series_by_channel(show("electrical,campaign"), ["electrical"]) is None
    assert derived_reads.series_by_channel({}, ["electrical"]) == {}


def test_influxdb3_gets_the_grouped_statements_and_no_show_series():
    client = Client(lambda s: rows("M0201_Ch1_W", 1))
    client.single_statement = True
    wide = derived_reads.for_client(SPAN, client)  # one statement over every field: a request each there
    derived_reads.read_raw(client, wide, lambda grouped: windows.count_statements(wide, "1h", 0, 3600, grouped))
    assert [statements for _, statements in client.requests] == [windows.count_statements(wide, "1h", 0, 3600)]
    assert "GROUP BY time(1h), *" in client.requests[0][1][0]


def test_form_encoding_is_urlencode_byte_for_byte():
    for text in ('SELECT mean("a b") FROM "x" WHERE "c" = \'é ü ☃ %&=+;~-._\'', "".join(map(chr, range(1, 2000)))):
        params = {"q": text, "db": "acme_1d", "epoch": "s"}
        assert form_encode(params) == urlencode(params).encode()
