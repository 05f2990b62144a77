"""The derived buckets' pure parts (windows, queries, the exact fold, line protocol, merging), the
settings of issue 10, and the 1.x / 3.x writers' answers to each HTTP status."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests

from powerview.core import schema
from powerview.core.outcome import FileOutcome, Status
from powerview.core.settings import ConfigError
from powerview.core.settings import load_parser as load
from powerview.delivery import derived, windows
from powerview.delivery.influx import InfluxRejected, InfluxUnavailable
from powerview.delivery.influx_targets import Influx1Writer, Influx3Writer, open_writer
from powerview.delivery.influxql import quote_ident, quote_string


def epoch(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp())


def span(**kw) -> windows.Span:
    base = dict(
        bucket="acme",
        campaign="camp.1",
        device_master_sn="0201",
        start=epoch("2026-01-03T10:20:00"),
        end=epoch("2026-01-03T12:00:00"),
        fields=("M0201_Ch1_W", "M0201_U1_V"),
        channels=("M0201_Ch1", "M0201_U1"),
    )
    return windows.Span(**{**base, **kw})


def test_windows_are_epoch_aligned_weeks_start_on_thursday():
    start, end = windows.window_bounds(epoch("2026-01-03T10:20:00"), epoch("2026-01-07T23:59:59"), 604800)
    assert datetime.fromtimestamp(start, UTC).strftime("%A %H:%M") == "Thursday 00:00"
    assert (start, end) == (epoch("2026-01-01T00:00:00"), epoch("2026-01-08T00:00:00"))
    assert windows.window_bounds(epoch("2026-01-03T12:00:00"), epoch("2026-01-03T12:00:00"), 3600) == (
        epoch("2026-01-03T12:00:00"),
        epoch("2026-01-03T13:00:00"),
    )


def test_raw_query_one_statement_per_channel_with_every_aggregate():
    first, last = windows.window_bounds(span().start, span().end, 3600)
    query = windows.recompute_query(span(), "1h", first, last)
    statements = query.split("; ")
    assert len(statements) == 2
    assert statements[0] == (
        'SELECT mean("M0201_Ch1_W") AS "mean_M0201_Ch1_W", min("M0201_Ch1_W") AS "min_M0201_Ch1_W", '
        'max("M0201_Ch1_W") AS "max_M0201_Ch1_W", count("M0201_Ch1_W") AS "count_M0201_Ch1_W" FROM "electrical" '
        "WHERE \"campaign\" = 'camp.1' AND \"device_master_sn\" = '0201' AND \"channel_id\" = 'M0201_Ch1' "
        "AND time >= '2026-01-03T10:00:00Z' AND time < '2026-01-03T13:00:00Z' GROUP BY time(1h), * fill(none)"
    )
    with pytest.raises(ValueError):
        windows.recompute_query(span(), "1h", first + 1, last)


def test_plan_folds_coarser_levels_from_the_finer_one():
    steps = list(windows.plan(span(), ("1w", "1h", "1d")))
    assert [(level, db) for level, db, *_ in steps] == [("1h", "acme"), ("1d", "acme_1h"), ("1w", "acme_1d")]
    assert [(level, db) for level, db, *_ in windows.plan(span(), ("1w",))] == [("1w", "acme")]
    fold = steps[1][2]
    assert 'FROM "electrical", "electrical_min", "electrical_max", "electrical_count"' in fold
    assert "time > '2026-01-03T00:00:00Z' AND time <= '2026-01-04T00:00:00Z' GROUP BY *" in fold


def test_chunks_bound_every_query():
    long = span(start=epoch("2020-01-01T00:00:00"), end=epoch("2026-01-01T00:00:00"))
    chunks = list(windows.chunks(long, "1h"))
    assert all(b - a <= 3600 * schema.LEVEL_BY_NAME["1h"].chunk for a, b in chunks)
    assert chunks[0][0] == long.start and chunks[-1][1] == long.end + 3600
    assert all(b == c for (_, b), (c, _) in zip(chunks, chunks[1:]))


@pytest.mark.parametrize(
    "bad",
    [
        dict(campaign="a\nb"),
        dict(device_master_sn="x\ny"),
        dict(bucket="_sys"),
        dict(fields=()),
        dict(fields=("a\nb",), channels=()),
        dict(start=10, end=5),
        dict(channels=("only_one",)),
    ],
)
def test_names_and_shapes_are_checked_before_any_query(bad):
    with pytest.raises(ValueError):
        span(**bad).check()


def test_quoting():
    assert quote_string("a'b\\c") == "'a\\'b\\\\c'"
    assert quote_ident('x"y') == '"x\\"y"'
    with pytest.raises(ValueError):
        quote_string("a\nb")


def raw_series(tags, rows):
    return {
        "name": "electrical",
        "tags": tags,
        "columns": ["time", "mean_F", "min_F", "max_F", "count_F", "mean_G", "min_G", "max_G", "count_G"],
        "values": rows,
    }


def test_raw_answer_to_lines_stamped_at_the_window_end():
    series = [
        raw_series(
            {"campaign": "c 1", "device_subtype": ""},
            [[3600, 2.0, 1, 3, 2, None, None, None, 0], [7200, None, None, None, 0, 5, 5, 5, 1]],
        )
    ]
    lines = list(windows.derived_lines(windows.aggregates_from_raw(series, 3600)))
    assert lines == [
        "electrical,campaign=c\\ 1 F=2.0 7200\n",
        "electrical_min,campaign=c\\ 1 F=1.0 7200\n",
        "electrical_max,campaign=c\\ 1 F=3.0 7200\n",
        "electrical_count,campaign=c\\ 1 F=2i 7200\n",
        "electrical,campaign=c\\ 1 G=5.0 10800\n",
        "electrical_min,campaign=c\\ 1 G=5.0 10800\n",
        "electrical_max,campaign=c\\ 1 G=5.0 10800\n",
        "electrical_count,campaign=c\\ 1 G=1i 10800\n",
    ]


def lower(name, rows):
    return {"name": name, "tags": {"campaign": "c"}, "columns": ["time", "F"], "values": rows}


def test_fold_is_the_exact_weighted_mean():
    # two hours of one day: 1 point of 10.0, then 3 points averaging 2.0 (min 1, max 3)
    series = [
        lower("electrical", [[3600, 10.0], [7200, 2.0]]),
        lower("electrical_min", [[3600, 10.0], [7200, 1.0]]),
        lower("electrical_max", [[3600, 10.0], [7200, 3.0]]),
        lower("electrical_count", [[3600, 1], [7200, 3]]),
    ]
    [(tags, end, field, values)] = windows.aggregates_from_lower(series, 86400)
    assert (tags, end, field) == ((("campaign", "c"),), 86400, "F")
    assert values == {"mean": 4.0, "min": 1.0, "max": 10.0, "count": 4}  # (10 + 3 x 2) / 4, not (10 + 2) / 2


def test_fold_refuses_windows_without_counts():
    with pytest.raises(windows.Incomplete):
        windows.aggregates_from_lower([lower("electrical", [[3600, 1.0]])], 86400)


def test_pending_spans_of_a_device_are_merged_when_close():
    day = 86400
    a = span(start=0, end=day)
    b = span(start=3 * day, end=4 * day, fields=("M0201_Ch2_W",), channels=("M0201_Ch2",))
    far = span(start=30 * day, end=31 * day)
    other = span(device_master_sn="0202", fields=("M0202_Ch1_W",), channels=("M0202_Ch1",))
    merged = derived.merge([(Path("a"), a), (Path("far"), far), (Path("b"), b), (Path("o"), other)])
    by_paths = {tuple(p.name for p in paths): s for paths, s in merged}
    assert set(by_paths) == {("a", "b"), ("far",), ("o",)}
    ab = by_paths[("a", "b")]
    assert (ab.start, ab.end) == (0, 4 * day)
    assert ab.fields == ("M0201_Ch1_W", "M0201_Ch2_W", "M0201_U1_V")
    assert ab.channels == ("M0201_Ch1", "M0201_Ch2", "M0201_U1")


def test_span_of_a_report_entry():
    entry = FileOutcome(
        file="/f.tsv",
        bucket="acme",
        campaign="c",
        device_folder_sn="0201",
        status=Status.SUCCESS,
        device_master_sn="0201",
        time_min="2026-01-03T10:20:00Z",
        time_max="2026-01-03T12:00:00Z",
        channels={"M0201_U1": {"field": "M0201_U1_V"}, "M0201_Ch1": {"field": "M0201_Ch1_W"}},
    )
    got = derived.span_of(entry)
    assert (got.start, got.end) == (epoch("2026-01-03T10:20:00"), epoch("2026-01-03T12:00:00"))
    assert got.fields == ("M0201_Ch1_W", "M0201_U1_V") and got.channels == ("M0201_Ch1", "M0201_U1")
    entry.status = Status.ERROR
    assert derived.span_of(entry) is None


# ---------------------------------------------------------------- settings


def test_settings_of_issue_10(tmp_path):
    none = tmp_path / "none.env"
    assert load(none, environ={}).downsample_levels == ("1h", "1d", "1w")
    assert load(none, environ={"TSV_DOWNSAMPLE_LEVELS": ""}).downsample_levels == ()
    assert load(none, environ={"TSV_DOWNSAMPLE_LEVELS": " 1d , 1h,1d"}).downsample_levels == ("1d", "1h")
    with pytest.raises(ConfigError, match="unknown level '2h'"):
        load(none, environ={"TSV_DOWNSAMPLE_LEVELS": "1h,2h"})
    with pytest.raises(ConfigError, match="INFLUXDB_VERSION must be 1, 2 or 3"):
        load(none, environ={"INFLUXDB_VERSION": "4"})
    v1 = load(none, environ={"INFLUXDB_VERSION": "1", "INFLUXDB_HOST": "http://x:8086"})
    v1.influx.require()  # no org, no token needed
    with pytest.raises(ConfigError, match="INFLUXDB_ADMIN_TOKEN"):
        load(none, environ={"INFLUXDB_VERSION": "3", "INFLUXDB_HOST": "http://x:8181"}).influx.require()
    assert isinstance(open_writer(v1.influx), Influx1Writer)


# ---------------------------------------------------------------- writers and HTTP statuses


class _Fixed(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _answer(self):
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        self.server.seen.append((self.command, self.path, self.headers.get("Authorization")))
        status, body = self.server.answers.get(self.path.split("?")[0], (204, b""))
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer

    def log_message(self, *args):
        pass


@pytest.fixture
def fixed_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Fixed)
    server.answers, server.seen = {}, []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def writer_for(server, version: str, tmp_path, **env):
    settings = load(
        tmp_path / "none.env",
        environ={
            "INFLUXDB_VERSION": version,
            "INFLUXDB_HOST": f"http://127.0.0.1:{server.server_address[1]}",
            "INFLUXDB_ADMIN_TOKEN": "tok",
            "TSV_INFLUX_RETRY_MAX_SECONDS": "0.3",
            **env,
        },
    )
    return open_writer(settings.influx, settings.meta_bucket)


@pytest.mark.parametrize(
    "status, error, match",
    [
        (400, InfluxRejected, "partial write"),
        (401, ConfigError, "INFLUXDB_V1_USER"),
        (404, ConfigError, "does not exist"),
        (503, InfluxUnavailable, "gave up"),
    ],
)
def test_influx1_writer_maps_each_status(fixed_server, tmp_path, status, error, match):
    fixed_server.answers["/query"] = (200, b'{"results":[{"statement_id":0}]}')
    fixed_server.answers["/write"] = (status, json.dumps({"error": "partial write: x"}).encode())
    writer = writer_for(fixed_server, "1", tmp_path, INFLUXDB_V1_USER="pv", INFLUXDB_V1_PASSWORD="pw")
    with pytest.raises(error, match=match):
        writer.write("acme", b"m f=1 1\n")
    writer.close()
    create = next(s for s in fixed_server.seen if s[1].startswith("/query"))
    assert create[0] == "POST" and create[2].startswith("Basic ")


def test_influx3_writer_creates_database_and_tables_then_writes(fixed_server, tmp_path):
    fixed_server.answers["/api/v3/configure/database"] = (409, b'{"error": "already exists"}')
    fixed_server.answers["/api/v3/configure/table"] = (200, b"")
    writer = writer_for(fixed_server, "3", tmp_path)
    assert isinstance(writer, Influx3Writer)
    writer.write("acme", b"m f=1 1\n")
    writer.write("acme", b"m f=2 2\n")
    writer.close()
    paths = [path.split("?")[0] for _, path, _ in fixed_server.seen]
    # the is-this-InfluxDB check once, with the token (InfluxDB 3 may want it on /ping)
    assert paths == ["/ping", "/api/v3/configure/database"] + ["/api/v3/configure/table"] * 4 + ["/api/v2/write"] * 2
    assert {auth for *_, auth in fixed_server.seen} == {"Bearer tok"}


@pytest.mark.parametrize("version", ["1", "3"])
def test_a_web_server_is_not_taken_for_influxdb_by_the_1x_and_3x_writers(fixed_server, tmp_path, version):
    fixed_server.answers["/ping"] = (404, b"<html>Not Found</html>")
    writer = writer_for(fixed_server, version, tmp_path)
    with pytest.raises(ConfigError, match="does not look like an InfluxDB: GET /ping answered HTTP 404"):
        writer.write("acme", b"m f=1 1\n")
    writer.close()
    assert [path for _, path, _ in fixed_server.seen] == ["/ping"]  # nothing created, nothing written


KILLER = r"""
import sys
from powerview.delivery.derived import Outbox, Span
outbox = Outbox(sys.argv[1])
i = 0
print("ready", flush=True)
while True:
    i += 1
    outbox.add(Span("acme", "c", "0201", i, i + 86400, tuple(f"M0201_Ch{k}_W" for k in range(200))))
"""


def test_kill_9_while_recording_leaves_only_whole_records(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    proc = subprocess.Popen(
        [sys.executable, "-c", KILLER, str(tmp_path)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert proc.stdout.readline().strip() == "ready"
    # kill it in the middle of its writes, once it has made a few (however slow a loaded machine is)
    deadline = time.monotonic() + 60
    while len(derived.Outbox(tmp_path).pending()) <= 3 and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    outbox = derived.Outbox(tmp_path)
    records = outbox.pending()
    assert len(records) > 3
    for path in records:
        assert outbox.load(path).bucket == "acme"  # every visible record is whole
    # a torn record can only be a temporary file in .tmp/ (never read)
    assert all(p.name == ".tmp" or p.suffix == ".json" for p in outbox.dir.iterdir())
    assert all(p.suffix == ".tmp" for p in (outbox.dir / ".tmp").iterdir())


def test_records_queued_by_the_previous_version_are_still_read(tmp_path):
    """The previous version wrote <spool>/outbox/derived/<ns>-<pid>-<digest>.json (and its
    temporary files as .tmp-* beside them): the shared outbox reads them, oldest first."""
    folder = tmp_path / "outbox" / "derived"
    folder.mkdir(parents=True)
    old = {"version": 1, "bucket": "acme", "campaign": "c", "device_master_sn": "0201", "start": 10, "end": 20}
    (folder / "00001764000000000000-4242-0123456789abcdef.json").write_text(
        json.dumps({**old, "fields": ["M0201_Ch1_W"], "channels": ["M0201_Ch1"]}, sort_keys=True)
    )
    (folder / ".tmp-x1y2z3").write_text('{"bucket": "acm')  # torn by a kill -9 of the old version
    outbox = derived.Outbox(tmp_path)
    new = outbox.add(windows.Span("acme", "c", "0201", 30, 40, ("M0201_Ch2_W",), ("M0201_Ch2",)))
    records = outbox.pending()
    assert [p.name for p in records] == ["00001764000000000000-4242-0123456789abcdef.json", new.name]
    spans = [outbox.load(p) for p in records]
    assert [(s.start, s.fields, s.channels) for s in spans] == [
        (10, ("M0201_Ch1_W",), ("M0201_Ch1",)),
        (30, ("M0201_Ch2_W",), ("M0201_Ch2",)),
    ]
    assert json.loads(new.read_text())["version"] == 1  # the same record format, still readable by the old version


def test_the_catalogue_rebuild_uses_the_shared_influxql_client(fixed_server, tmp_path):
    """INFLUXDB_VERSION decides the authentication (1.x: basic auth, not a token) and a 503 is
    retried, as for every other InfluxDB call; 404 on the buckets API means 1.x: SHOW DATABASES."""
    from dataclasses import replace

    from powerview.delivery.catalogue_rebuild import bucket_names
    from powerview.delivery.influx_targets import open_query_client

    fixed_server.answers["/api/v2/buckets"] = (404, b"404 page not found")
    fixed_server.answers["/query"] = (
        200,
        b'{"results":[{"statement_id":0,"series":[{"name":"databases","columns":["name"],'
        b'"values":[["zeta"],["acme"]]}]}]}',
    )
    settings = load(
        tmp_path / "none.env",
        environ={
            "INFLUXDB_VERSION": "1",
            "INFLUXDB_HOST": f"http://127.0.0.1:{fixed_server.server_address[1]}",
            "INFLUXDB_V1_USER": "pv",
            "INFLUXDB_V1_PASSWORD": "pw",
        },
    )
    client = open_query_client(replace(settings.influx, retry_max_s=5.0))
    client.session.mount("http://", _FailOnce())
    assert bucket_names(client, None) == ["acme", "zeta"]
    client.close()
    assert [path.split("?")[0] for _, path, _ in fixed_server.seen] == ["/api/v2/buckets", "/query"]
    assert {auth for *_, auth in fixed_server.seen} == {"Basic cHY6cHc="}


class _FailOnce(requests.adapters.HTTPAdapter):
    """The first request finds the server unreachable (a restart): the layer retries it."""

    failed = False

    def send(self, request, **kwargs):
        if not type(self).failed:
            type(self).failed = True
            raise requests.ConnectionError("connection refused (simulated)")
        return super().send(request, **kwargs)
