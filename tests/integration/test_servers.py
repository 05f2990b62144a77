"""The integration harness itself: real servers start, accept line protocol,
and give back exactly what was written."""

from __future__ import annotations

import os
import socket
import stat
import sys
import textwrap
import time
from pathlib import Path

import pytest
import requests
from influxdb_client import InfluxDBClient
from influxdb_client.client.write_api import SYNCHRONOUS

try:
    from .servers import Influxd1, ServerStartError, VictoriaMetrics
except ImportError:
    from servers import Influxd1, ServerStartError, VictoriaMetrics


# --------------------------------------------------------------------------
# InfluxDB 1.x
# --------------------------------------------------------------------------

ESCAPED_LINE = (
    rb"electrical,campaign=c1,channel_id=M1_U1,channel_name=Ph\ 1,"
    rb"comma=a\,b,equals=a\=b M1_U1_V=231.5,M1_U1_PF=0.30000000000000004 "
    rb"1700000000"
)


def test_influxd1_escaped_tag_values_and_exact_floats(influxd1):
    influxd1.create_db("harness_escape")
    resp = influxd1.write("harness_escape", ESCAPED_LINE + b"\n", precision="s")
    assert resp.status_code == 204, resp.text

    rows = influxd1.query("harness_escape", "SELECT * FROM electrical")
    assert rows == [
        {
            "_measurement": "electrical",
            "time": 1700000000,
            "M1_U1_V": 231.5,
            "M1_U1_PF": 0.30000000000000004,
            "campaign": "c1",
            "channel_id": "M1_U1",
            "channel_name": "Ph 1",
            "comma": "a,b",
            "equals": "a=b",
        }
    ]
    # the unescaped values are real tag values: they select the point
    selected = influxd1.query(
        "harness_escape",
        "SELECT M1_U1_V FROM electrical WHERE channel_name = 'Ph 1' AND comma = 'a,b' AND equals = 'a=b'",
    )
    assert [(r["time"], r["M1_U1_V"]) for r in selected] == [(1700000000, 231.5)]


def test_influxd1_precision_ms(influxd1):
    influxd1.create_db("harness_precision")
    resp = influxd1.write("harness_precision", b"m v=1.25 1700000000123", precision="ms")
    assert resp.status_code == 204, resp.text
    rows = influxd1.query("harness_precision", "SELECT v FROM m", epoch="ms")
    assert [(r["time"], r["v"]) for r in rows] == [(1700000000123, 1.25)]


def test_influxd1_refuses_malformed_line_with_400(influxd1):
    influxd1.create_db("harness_bad")
    resp = influxd1.write("harness_bad", b"electrical,channel_id=M1_U1 garbage 1700000000")
    assert resp.status_code == 400
    assert "unable to parse" in resp.json()["error"]
    assert influxd1.query("harness_bad", "SELECT * FROM electrical") == []


def test_influxd1_partial_write_keeps_good_lines_and_answers_400(influxd1):
    """InfluxDB 1.x stores the parseable lines of a batch and still says 400."""
    influxd1.create_db("harness_partial")
    body = b"m,t=a f=1.5 1700000000\nm,t=b garbage\nm,t=c f=3.5 1700000002\n"
    resp = influxd1.write("harness_partial", body)
    assert resp.status_code == 400
    assert "partial write" in resp.json()["error"]
    rows = influxd1.query("harness_partial", "SELECT f, t FROM m")
    assert [(r["time"], r["t"], r["f"]) for r in rows] == [(1700000000, "a", 1.5), (1700000002, "c", 3.5)]


def test_influxd1_unknown_database_is_404(influxd1):
    resp = influxd1.write("harness_no_such_db", b"m v=1 1700000000")
    assert resp.status_code == 404
    assert "database not found" in resp.json()["error"]


def test_influxd1_listens_on_loopback_only(influxd1):
    assert influxd1.url.startswith("http://127.0.0.1:")
    conf = influxd1.config_path.read_text()
    assert f'bind-address = "127.0.0.1:{influxd1.port}"' in conf
    assert f'bind-address = "127.0.0.1:{influxd1.rpc_port}"' in conf
    assert "/var/lib" not in conf
    assert str(influxd1.tmpdir) in conf


# --------------------------------------------------------------------------
# VictoriaMetrics
# --------------------------------------------------------------------------


def test_victoria_metrics_accepts_influxdb_client_write(victoria_metrics):
    with InfluxDBClient(url=victoria_metrics.url, token="x", org="x") as client:
        client.write_api(write_options=SYNCHRONOUS).write(
            bucket="acme",
            record="electrical,campaign=c1,channel_id=M1_U1 M1_U1_V=231.5 1700000000",
            write_precision="s",
        )

    series = victoria_metrics.export('{__name__="electrical_M1_U1_V",campaign="c1"}')
    assert series == [
        {
            # the v2 API's bucket is not stored: no "db" label
            "metric": {"__name__": "electrical_M1_U1_V", "campaign": "c1", "channel_id": "M1_U1"},
            "values": [231.5],
            "timestamps": [1700000000000],
        }
    ]


def test_victoria_metrics_field_per_series_and_unescaped_labels(victoria_metrics):
    line = (
        r"electrical,campaign=c2,channel_name=Ph\ 1,comma=a\,b,equals=a\=b "
        r"M1_U1_V=230.125,M1_U1_I=0.304 1700000060"
    )
    with InfluxDBClient(url=victoria_metrics.url, token="x", org="x") as client:
        client.write_api(write_options=SYNCHRONOUS).write(bucket="acme", record=line, write_precision="s")

    series = victoria_metrics.export('{campaign="c2"}')
    labels = {"campaign": "c2", "channel_name": "Ph 1", "comma": "a,b", "equals": "a=b"}
    assert series == [
        {"metric": {"__name__": "electrical_M1_U1_I", **labels}, "values": [0.304], "timestamps": [1700000060000]},
        {"metric": {"__name__": "electrical_M1_U1_V", **labels}, "values": [230.125], "timestamps": [1700000060000]},
    ]


def test_victoria_metrics_v1_write_db_becomes_label(victoria_metrics):
    resp = requests.post(
        victoria_metrics.url + "/write",
        params={"db": "acme", "precision": "s"},
        data=b"electrical,campaign=c3 M2_U1_V=229.75 1700000120",
        timeout=10,
    )
    assert resp.status_code == 204, resp.text
    series = victoria_metrics.export('{campaign="c3"}')
    assert series == [
        {
            "metric": {"__name__": "electrical_M2_U1_V", "campaign": "c3", "db": "acme"},
            "values": [229.75],
            "timestamps": [1700000120000],
        }
    ]


def test_victoria_metrics_skips_malformed_line_silently(victoria_metrics):
    before = victoria_metrics.invalid_influx_rows()
    resp = requests.post(
        victoria_metrics.url + "/write",
        params={"precision": "s"},
        data=b"electrical,campaign=c4 garbage 1700000000",
        timeout=10,
    )
    # unlike InfluxDB, VictoriaMetrics does not refuse it ...
    assert resp.status_code == 204
    # ... it drops it and counts it (the counter lags by up to ~1 s)
    deadline = time.monotonic() + 10
    while victoria_metrics.invalid_influx_rows() == before and time.monotonic() < deadline:
        time.sleep(0.1)
    assert victoria_metrics.invalid_influx_rows() == before + 1
    assert victoria_metrics.export('{campaign="c4"}') == []


def test_victoria_metrics_float_precision(victoria_metrics):
    """VictoriaMetrics keeps ~12 significant digits, not the full float64:
    compare with pytest.approx unless the value has few digits."""
    values = {"short": 231.125, "three_dec": 0.304, "long": 0.30000000000000004, "many": 1.2345678901234567}
    body = "\n".join(f"precision,k={k} v={v!r} 1700000000" for k, v in values.items())
    resp = requests.post(victoria_metrics.url + "/write", params={"precision": "s"}, data=body.encode(), timeout=10)
    assert resp.status_code == 204, resp.text
    got = {s["metric"]["k"]: s["values"][0] for s in victoria_metrics.export('{__name__="precision_v"}')}
    assert got["short"] == 231.125
    assert got["three_dec"] == 0.304
    assert got["long"] == pytest.approx(values["long"], rel=1e-11, abs=0)
    assert got["many"] == pytest.approx(values["many"], rel=1e-11, abs=0)


# --------------------------------------------------------------------------
# Process handling (no real server needed for these)
# --------------------------------------------------------------------------


def test_start_failure_reports_log_tail(tmp_path):
    fake = tmp_path / "influxd"
    fake.write_text("#!/bin/sh\necho 'fake influxd: cannot open config' >&2\nexit 3\n")
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    server = Influxd1(str(fake))
    with pytest.raises(ServerStartError) as info:
        server.start()
    message = str(info.value)
    assert "exited with code 3" in message
    assert "fake influxd: cannot open config" in message
    assert not server.running


_HUNG_SERVER = textwrap.dedent("""\
    #!{python}
    # Answers /health, ignores SIGTERM: stands in for a hung server.
    import http.server, signal, sys
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    addr = [a for a in sys.argv if a.startswith("-httpListenAddr=")][0]
    host, port = addr.split("=", 1)[1].rsplit(":", 1)

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200 if self.path == "/health" else 404)
            self.end_headers()
            self.wfile.write(b"OK")
        def log_message(self, *args):
            pass

    http.server.HTTPServer((host, int(port)), Handler).serve_forever()
    """)


def test_stop_kills_a_server_that_ignores_sigterm(tmp_path):
    fake = tmp_path / "victoria-metrics"
    fake.write_text(_HUNG_SERVER.format(python=sys.executable))
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    server = VictoriaMetrics(str(fake))
    server.stop_timeout = 0.5
    server.start()
    proc, port, tmpdir = server.proc, server.port, server.tmpdir
    assert server.running
    assert requests.get(server.url + "/health", timeout=5).status_code == 200

    started = time.monotonic()
    server.stop()
    assert time.monotonic() - started < 5
    assert proc.returncode == -9  # SIGKILL, SIGTERM was ignored
    assert not server.running
    with socket.socket() as sock:
        assert sock.connect_ex(("127.0.0.1", port)) != 0
    if os.environ.get("POWERVIEW_KEEP_SERVER_DIRS") != "1":
        assert not tmpdir.exists()


_STARTER = textwrap.dedent("""\
    import sys, time
    sys.path.insert(0, {tests!r})
    from servers import VictoriaMetrics
    server = VictoriaMetrics({binary!r})
    server.start()
    print(server.proc.pid, flush=True)
    time.sleep(600)
    """)


def test_a_test_run_killed_with_9_leaves_no_server_behind(tmp_path):
    """The process that started a server dies by kill -9 (no teardown runs): the server gets
    SIGTERM from the kernel (PR_SET_PDEATHSIG) and is gone."""
    import subprocess

    fake = tmp_path / "victoria-metrics"
    fake.write_text(
        _HUNG_SERVER.format(python=sys.executable).replace("signal.signal(signal.SIGTERM, signal.SIG_IGN)", "")
    )
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    starter = subprocess.Popen(
        [sys.executable, "-c", _STARTER.format(tests=str(Path(__file__).parent), binary=str(fake))],
        stdout=subprocess.PIPE,
        text=True,
    )
    server_pid = int(starter.stdout.readline())
    os.kill(server_pid, 0)  # running
    starter.kill()
    starter.wait(10)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(server_pid, 0)
        except ProcessLookupError:
            break
        if _is_zombie(server_pid):
            break
        time.sleep(0.05)
    else:
        pytest.fail(f"server {server_pid} outlived the process that started it")


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1].startswith("Z")
    except (OSError, IndexError):
        return True
