"""Issue 16, item 1: the InfluxDB 2 writer over the project's HTTP layer, without influxdb-client.

Against the InfluxDB 2 stand-in (its status codes follow InfluxDB 2's, see its docstring): the
calls a run makes for a new bucket, a bucket another process made meanwhile, an unknown
organization, an outage on the look-up; a parser run that loads neither influxdb-client nor
requests; a kept-alive connection the server closed; influxdb-client's ApiException still
classified for the token tool."""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from powerview.core.settings import ConfigError
from powerview.delivery.influx import InfluxUnavailable, with_retries
from powerview.delivery.influx_http import Connection

import samples

ROWS = [samples.row(f"02/03/26 10:{i:02d}:00", 230.0 + i, 231.0, 232.0, 10.0 * i, 0, 1) for i in range(20)]
GOOD = samples.v002(["0201"] * 7, samples.TRI_LABELS, ROWS)
POINTS = 20 * 6


def settings_file(tmp_path: Path, influx2, extra: str = "") -> Path:
    path = tmp_path / "test.env"
    path.write_text(
        f"INFLUXDB_HOST={influx2.url}\nINFLUXDB_ORG=powerview\nINFLUXDB_ADMIN_TOKEN={influx2.admin_token}\n"
        f"TSV_REPORT_DIR={tmp_path / 'reports'}\nPOWERVIEW_SPOOL_DIR={tmp_path / 'spool'}\n"
        f"TSV_INFLUX_RETRY_MAX_SECONDS=0\nTSV_DOWNSAMPLE_LEVELS=\n{extra}"
    )
    return path


def parser(tmp_path: Path, settings: Path, *python_options: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            sys.executable,
            *python_options,
            str(samples.PROJECT_DIR / "tsv_parser.py"),
            "--dataFolder",
            str(tmp_path / "data"),
        ]
        + ["--env-file", str(settings)],
        env={"PATH": os.environ["PATH"], "LANG": "C.UTF-8"},
        capture_output=True,
        text=True,
        timeout=60,
    )


def calls(influx2) -> list[tuple[str, str, int]]:
    return [(r.method, r.path, r.status) for r in influx2.requests]


def test_a_new_bucket_is_looked_up_created_in_the_organization_then_written(influx2, tmp_path):
    """The calls influxdb-client made, now in plain HTTP: look-up (404: InfluxDB 2's answer to a
    by-name-and-org look-up that finds nothing), the organization's ID, creation with that ID,
    then every batch to /api/v2/write?org=&bucket=&precision=s with the Token header."""
    target = samples.place(tmp_path / "data", "acme", "c1", "0201", "f.tsv", GOOD)
    result = parser(tmp_path, settings_file(tmp_path, influx2, "TSV_BATCH_SIZE=30\n"))
    assert result.returncode == 0, result.stderr
    assert (target.parent / "parsed" / "f.tsv").exists()
    seen = calls(influx2)
    assert seen[:4] == [
        ("GET", "/ping", 204),
        ("GET", "/api/v2/buckets", 404),
        ("GET", "/api/v2/orgs", 200),
        ("POST", "/api/v2/buckets", 201),
    ]
    lookup, orgs, creation = influx2.requests[1:4]
    assert lookup.query == {"name": "acme", "org": "powerview"}
    assert orgs.query == {"org": "powerview"}
    assert json.loads(creation.body) == {"orgID": influx2.org_id, "name": "acme", "retentionRules": []}
    writes = [r for r in influx2.requests if r.path == "/api/v2/write" and r.query.get("bucket") == "acme"]
    assert len(writes) == POINTS // 30 and all(r.status == 204 for r in writes)
    assert all(r.query == {"org": "powerview", "bucket": "acme", "precision": "s"} for r in writes)
    assert all(r.headers["Authorization"] == f"Token {influx2.admin_token}" for r in writes)
    assert sum(len(p.fields) for p in influx2.points("acme")) == POINTS
    lookups = [r.query["name"] for r in influx2.requests if r.path == "/api/v2/buckets" and r.method == "GET"]
    assert lookups == ["acme", "powerview_meta"]  # each bucket once: known once created
    assert seen.count(("GET", "/api/v2/orgs", 200)) == 1  # and so is the organization's ID


def test_a_bucket_another_process_made_meanwhile_is_used(influx2, tmp_path):
    """Between the look-up and the creation another parser creates the bucket: InfluxDB 2 answers
    422 "bucket with name acme already exists"; the file is ingested all the same."""
    target = samples.place(tmp_path / "data", "acme", "c1", "0201", "f.tsv", GOOD)

    def other_process(method: str, path: str) -> None:
        if method == "POST" and path == "/api/v2/buckets" and "acme" not in influx2.buckets:
            influx2._add_bucket("acme", "user", 0)

    influx2.on_request = other_process
    result = parser(tmp_path, settings_file(tmp_path, influx2))
    assert result.returncode == 0, result.stderr
    assert ("POST", "/api/v2/buckets", 422) in calls(influx2)
    assert (target.parent / "parsed" / "f.tsv").exists()
    assert sum(len(p.fields) for p in influx2.points("acme")) == POINTS


def test_an_unknown_organization_is_a_configuration_error_and_the_file_stays(influx2, tmp_path):
    target = samples.place(tmp_path / "data", "acme", "c1", "0201", "f.tsv", GOOD)
    settings = settings_file(tmp_path, influx2)
    settings.write_text(settings.read_text().replace("INFLUXDB_ORG=powerview", "INFLUXDB_ORG=nope"))
    result = parser(tmp_path, settings)
    assert result.returncode == 2, result.stderr
    assert "InfluxDB organization 'nope' not found" in result.stderr and "check INFLUXDB_ORG" in result.stderr
    assert target.exists() and not (target.parent / "error").exists()
    assert "Traceback" not in result.stderr


def test_an_outage_of_the_bucket_lookup_leaves_the_file_in_place(influx2, tmp_path):
    target = samples.place(tmp_path / "data", "acme", "c1", "0201", "f.tsv", GOOD)
    influx2.fail_next("GET", "/api/v2/buckets", 503, count=5)
    result = parser(tmp_path, settings_file(tmp_path, influx2))
    assert result.returncode == 75, result.stderr
    assert "looking up bucket acme" in result.stderr and "HTTP 503" in result.stderr
    assert target.exists() and not (target.parent / "error").exists()
    assert "acme" not in influx2.buckets  # nothing created, nothing written


def test_a_parser_run_loads_neither_influxdb_client_nor_requests(influx2, tmp_path):
    """influxdb-client (and requests) stay with the token tool: a run's imports show neither."""
    target = samples.place(tmp_path / "data", "acme", "c1", "0201", "f.tsv", GOOD)
    result = parser(tmp_path, settings_file(tmp_path, influx2), "-X", "importtime")
    assert result.returncode == 0, result.stderr
    assert (target.parent / "parsed" / "f.tsv").exists()
    imported = {line.split("|")[-1].strip() for line in result.stderr.splitlines() if line.startswith("import time:")}
    assert "powerview.delivery.influx_targets" in imported  # the measure itself works
    assert {m.split(".")[0] for m in imported} & {"influxdb_client", "requests", "urllib3"} == set()


def test_the_token_tool_s_api_exception_is_still_classified():
    """with_retries classifies influxdb-client's ApiException (the token tool) by its status,
    though powerview.delivery.influx never imports that library."""
    from influxdb_client.rest import ApiException

    def refused():
        raise ApiException(status=401, reason="Unauthorized")

    with pytest.raises(ConfigError, match="INFLUXDB_ADMIN_TOKEN and INFLUXDB_ORG"):
        with_retries(refused, 5.0, "listing authorizations")

    def down():
        raise ApiException(status=503, reason="Service Unavailable")

    with pytest.raises(InfluxUnavailable, match="HTTP 503"):
        with_retries(down, 0.0, "listing authorizations")
    loaded = subprocess.run(
        [sys.executable, "-c", "import sys, powerview.delivery.influx; print('influxdb_client' in sys.modules)"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert loaded.stdout.strip() == "False"


def test_a_kept_alive_connection_closed_by_the_server_is_reopened_at_once(caplog):
    """A server that closes the connection after each answer (its keep-alive timeout): the next
    batch goes on a new connection at once, not after a retry's wait."""
    server = socket.create_server(("127.0.0.1", 0))
    connections = []

    def serve() -> None:
        for _ in range(3):
            conn, _ = server.accept()
            connections.append(conn)
            with conn:
                data = b""
                while b"\r\n\r\n" not in data:
                    data += conn.recv(65536)
                head, _, body = data.partition(b"\r\n\r\n")
                length = int(
                    next(
                        v
                        for k, _, v in (h.partition(b":") for h in head.split(b"\r\n"))
                        if k.lower() == b"content-length"
                    )
                )
                while len(body) < length:
                    body += conn.recv(65536)
                conn.sendall(b"HTTP/1.1 204 No Content\r\nConnection: keep-alive\r\n\r\n")
                conn.shutdown(socket.SHUT_RDWR)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    link = Connection(f"http://127.0.0.1:{server.getsockname()[1]}", ("token", "t"), timeout_s=5, budget_s=5)
    with caplog.at_level(logging.WARNING):
        statuses = [link.write("/api/v2/write", {"bucket": "b"}, b"m f=1 1\n", "writing") for _ in range(3)]
    link.close()
    thread.join(timeout=5)
    server.close()
    assert statuses == [204, 204, 204] and len(connections) == 3
    assert not [r for r in caplog.records if "retry" in r.getMessage()]


def test_an_influxdb_that_answers_a_byte_at_a_time_cannot_hold_the_parser(tmp_path):
    """Each socket read gets a byte in time, the whole answer never comes: TSV_INFLUX_TIMEOUT bounds
    the whole request on the standard library's transport too; the file stays for a later run."""
    server = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def trickle() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            with conn:
                conn.recv(65536)
                for byte in b"HTTP/1.1 204 No Content\r\nX-Influxdb-Version: 2.7\r\n" * 100:
                    if stop.wait(0.1):
                        break
                    try:
                        conn.sendall(bytes([byte]))
                    except OSError:
                        break

    thread = threading.Thread(target=trickle, daemon=True)
    thread.start()
    target = samples.place(tmp_path / "data", "acme", "c1", "0201", "f.tsv", GOOD)
    settings = tmp_path / "test.env"
    settings.write_text(
        f"INFLUXDB_HOST=http://127.0.0.1:{server.getsockname()[1]}\nINFLUXDB_ORG=o\nINFLUXDB_ADMIN_TOKEN=t\n"
        f"TSV_REPORT_DIR={tmp_path / 'reports'}\nPOWERVIEW_SPOOL_DIR={tmp_path / 'spool'}\n"
        "TSV_INFLUX_TIMEOUT=0.5\nTSV_INFLUX_RETRY_MAX_SECONDS=0\nTSV_DOWNSAMPLE_LEVELS=\n"
    )
    try:
        result = parser(tmp_path, settings)
    finally:
        stop.set()
        thread.join(timeout=5)
        server.close()
    assert result.returncode == 75, result.stderr
    assert "no complete answer within 0.5 s" in result.stderr
    assert target.exists() and not (target.parent / "error").exists()
