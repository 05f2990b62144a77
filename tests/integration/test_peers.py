"""Issue 17 (items 5-11) and issue 16's HTTP-status bug: PowerView against peers that are slow,
refuse, lie or leak, through the real programs (tsv_parser.py and the worker as processes, the
config API under uvicorn, a real InfluxDB 1.x, the InfluxDB 2 and 3 stand-ins)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests

import samples
from config_api_server import ConfigAPI, free_port
from servers import Influxd1
from stand_ins.influxdb3 import InfluxDB3StandIn

ROWS = [samples.row(f"02/03/26 10:{i:02d}:00", 230.0 + i, 231.0, 232.0, 10.0 * i, 0, 1) for i in range(40)]
GOOD = samples.v002(["0201"] * 7, samples.TRI_LABELS, ROWS)
POINTS = 40 * 6
SECRET = "pa55-in-url"


def parser(args: list[str], env_file: Path, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(samples.PROJECT_DIR / "tsv_parser.py"), *args, "--env-file", str(env_file)],
        env={"PATH": os.environ["PATH"], "LANG": "C.UTF-8"},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def report(tmp_path: Path) -> dict:
    [path] = sorted((tmp_path / "reports").glob("tsv_parser_*.json"))[-1:]
    return json.loads(path.read_text())


def env_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "test.env"
    path.write_text(
        text + f"\nTSV_REPORT_DIR={tmp_path / 'reports'}\nPOWERVIEW_SPOOL_DIR={tmp_path / 'spool'}\n"
        "TSV_INFLUX_RETRY_MAX_SECONDS=2\nTSV_DOWNSAMPLE_LEVELS=\n"
    )
    return path


def influx2_settings(influx2) -> str:
    return f"INFLUXDB_HOST={influx2.url}\nINFLUXDB_ORG=powerview\nINFLUXDB_ADMIN_TOKEN={influx2.admin_token}"


def closed_port_url() -> str:
    return f"http://127.0.0.1:{free_port()}"


# -- a peer that answers one byte at a time (item 5) -------------------------------------------


@contextmanager
def trickling_server(delay_s: float = 0.3):
    """Accepts, reads the request, then sends a valid-looking answer one byte every `delay_s`
    (never finishing within any test): each socket read gets a byte well within its timeout."""
    server = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()
    answer = b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 10000\r\n\r\n{"inserted": 1' + (
        b" " * 10000
    )

    def serve_one(conn: socket.socket) -> None:
        with conn:
            try:
                conn.recv(65536)
                for i in range(len(answer)):
                    if stop.wait(delay_s):
                        return
                    conn.sendall(answer[i : i + 1])
            except OSError:
                return

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            threading.Thread(target=serve_one, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(5)
        server.close()


def test_a_trickling_config_api_cannot_hold_the_parser(influx2, tmp_path):
    root = tmp_path / "data"
    target = samples.place(root, "acme", "c1", "0201", "f.tsv", GOOD)
    with trickling_server() as url:
        settings = env_file(tmp_path, f"{influx2_settings(influx2)}\nCONFIG_API_URL={url}\nCONFIG_API_TIMEOUT=1")
        started = time.monotonic()
        result = parser(["--dataFolder", str(root)], settings, timeout=30)
        elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    assert elapsed < 15, elapsed
    [entry] = report(tmp_path)["files"]
    assert entry["status"] == "success" and entry["catalogue"] == "queued"
    assert (target.parent / "parsed" / "f.tsv").exists()
    assert "no complete answer within 1 s" in result.stderr
    assert len(list((tmp_path / "spool" / "outbox" / "catalogue").glob("*.json"))) == 1


def test_a_trickling_config_api_cannot_hold_the_worker_nor_make_a_parsed_file_a_retry(influx2, tmp_path):
    root = tmp_path / "data"
    target = samples.place(root, "acme", "c1", "0201", "f.tsv", GOOD)
    spool = tmp_path / "spool"
    (spool / "jobs").mkdir(parents=True)
    job = {"version": 1, "id": "20260101T000000.000000Z-0000abcd", "kind": "ingest", "path": str(target)}
    job.update(created=1.0, next_try=1.0, event={"action": "upload"})
    (spool / "jobs" / f"{job['id']}.json").write_text(json.dumps(job))
    with trickling_server() as url:
        settings = env_file(
            tmp_path,
            f"{influx2_settings(influx2)}\nCONFIG_API_URL={url}\nCONFIG_API_TIMEOUT=1\n"
            f"POWERVIEW_DATA_DIR={root}\nPOWERVIEW_LOG_DIR={tmp_path / 'logs'}\nPOWERVIEW_JOB_TIMEOUT_SECONDS=60",
        )
        started = time.monotonic()
        result = samples.run_worker(settings, "run", timeout=45, env={"PATH": os.environ["PATH"], "LANG": "C.UTF-8"})
        elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    assert elapsed < 25, elapsed
    assert (target.parent / "parsed" / "f.tsv").exists() and not list((spool / "jobs").glob("*.json"))
    log = (tmp_path / "logs" / "uploads.log").read_text()
    assert f"job={job['id']} result=parsed" in log and "result=retry" not in log
    # the worker's own final delivery gave up within its deadline too, and released the lock
    assert "worker stop" in (tmp_path / "logs" / "worker.log").read_text()


# -- an unusable outbox (item 7), a password in the URL (item 8) --------------------------------


def test_an_unusable_spool_gives_catalogue_failed_and_names_the_folder(influx2, tmp_path):
    root = tmp_path / "data"
    samples.place(root, "acme", "c1", "0201", "f.tsv", GOOD)
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the spool should be (root cannot write under it either)")
    settings = env_file(tmp_path, f"{influx2_settings(influx2)}\nCONFIG_API_URL={closed_port_url()}")
    settings.write_text(settings.read_text().replace(f"POWERVIEW_SPOOL_DIR={tmp_path / 'spool'}", ""))
    settings.write_text(settings.read_text() + f"POWERVIEW_SPOOL_DIR={blocker / 'spool'}\n")
    result = parser(["--dataFolder", str(root)], settings)
    [entry] = report(tmp_path)["files"]
    assert entry["status"] == "success" and entry["catalogue"] == "failed", result.stderr
    assert f"outbox {blocker / 'spool' / 'outbox' / 'catalogue'} cannot be used" in result.stderr


class _Refusing:
    """A config API stand-in that refuses every publication with 422, echoing the request line."""

    def __enter__(self):
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                body = json.dumps({"detail": f"refused {self.path}"}).encode()
                self.send_response(422)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.parametrize("api", ["down", "refusing"])
def test_a_password_in_config_api_url_is_never_written_anywhere(influx2, tmp_path, api):
    root = tmp_path / "data"
    samples.place(root, "acme", "c1", "0201", "f.tsv", GOOD)
    with _Refusing() as refusing:
        base = closed_port_url() if api == "down" else refusing.url
        url = base.replace("http://", f"http://proxyuser:{SECRET}@")
        settings = env_file(tmp_path, f"{influx2_settings(influx2)}\nCONFIG_API_URL={url}")
        result = parser(["--dataFolder", str(root)], settings)
    [entry] = report(tmp_path)["files"]
    assert entry["catalogue"] == ("queued" if api == "down" else "failed"), result.stderr
    assert "***@127.0.0.1" in result.stderr  # the URL is named, without its password
    written = [result.stdout, result.stderr]
    for path in tmp_path.rglob("*"):
        if path.is_file() and path != settings:
            written.append(path.read_bytes().decode("utf-8", "replace"))
    assert not [text for text in written if SECRET in text]
    if api == "refusing":
        [reason] = (tmp_path / "spool" / "outbox" / "catalogue" / "rejected").glob("*.reason")
        assert "HTTP 422" in reason.read_text()


@pytest.mark.parametrize("version", ["1", "2", "3"])
def test_a_password_in_influxdb_host_is_never_written_anywhere(tmp_path, version):
    root = tmp_path / "data"
    target = samples.place(root, "acme", "c1", "0201", "f.tsv", GOOD)
    host = closed_port_url().replace("http://", f"http://proxyuser:{SECRET}@")
    settings = env_file(
        tmp_path, f"INFLUXDB_VERSION={version}\nINFLUXDB_HOST={host}\nINFLUXDB_ORG=o\nINFLUXDB_ADMIN_TOKEN=t"
    )
    result = parser(["--dataFolder", str(root)], settings)
    assert result.returncode == 75, result.stderr
    assert target.exists()
    written = [result.stdout, result.stderr, *(p.read_text() for p in (tmp_path / "reports").glob("*.json"))]
    assert not [text for text in written if SECRET in text]


# -- a file name with a newline (item 9) ---------------------------------------------------------


def test_a_file_name_with_a_newline_cannot_forge_a_log_line(influx2, tmp_path):
    root = tmp_path / "data"
    forged = "2026-01-01T00:00:00+0000 INFO every file ingested"
    samples.place(root, "acme", "c1", "0201", f"x\n{forged}\n.tsv", GOOD)
    settings = env_file(tmp_path, influx2_settings(influx2))
    result = parser(["--dataFolder", str(root)], settings)
    assert result.returncode == 1, result.stderr
    lines = result.stderr.splitlines()
    assert not [line for line in lines if line.startswith(forged)]
    assert any(f"x\\n{forged}\\n.tsv" in line for line in lines), result.stderr


# -- a message the config API refuses leaves the head of the outbox (item 10) -------------------


def test_a_message_the_config_api_cannot_store_is_set_aside_and_the_next_delivered(tmp_path):
    from powerview.delivery.outbox import Outbox

    def body(field: str, label: str) -> dict:
        channel = {"fieldId": field, "channelId": field[:-2], "channelUnit": "V", "channelLabel": label}
        return {"campaign": "c1", "channels": [{**channel, "deviceMasterSn": "1"}]}

    outbox = Outbox(tmp_path / "spool" / "outbox" / "catalogue")
    outbox.put({"bucket": "acme", "body": body("M1_U2_V", "U2"), "file": "/b.tsv", "created": "x"})
    # the oldest message: valid JSON (ASCII escapes) holding a lone surrogate the API cannot store
    bad = outbox.folder / "00000000000000000001-0000001-000000.json"
    bad.write_text(json.dumps({"bucket": "acme", "body": body("M1_U1_V", "\ud800"), "file": "/a.tsv"}))
    with ConfigAPI(tmp_path / "api.sqlite3") as api:
        settings = tmp_path / "w.env"
        settings.write_text(
            f"POWERVIEW_SPOOL_DIR={tmp_path}/spool\nPOWERVIEW_LOG_DIR={tmp_path}/logs\n"
            f"POWERVIEW_DATA_DIR={tmp_path}\nCONFIG_API_URL={api.url}\n"
        )
        result = samples.run_worker(settings, "run")
        assert result.returncode == 0, result.stderr
        catalogue = requests.get(f"{api.url}/buckets/acme/channels", timeout=5).json()
        assert "Internal Server Error" not in api.log.read_text()
    assert [c["fieldId"] for c in catalogue] == ["M1_U2_V"]
    assert outbox.waiting() == [] and outbox.was_rejected(bad)
    assert "HTTP 422" in (outbox.folder / "rejected" / (bad.name + ".reason")).read_text()


# -- issue 16: HTTP 413 and a missing database on every InfluxDB generation -----------------------


@pytest.fixture(scope="module")
def small_influxd1(influxd_binary):
    """A real InfluxDB 1.x whose [http] max-body-size is small: a whole file's batch is HTTP 413."""
    server = Influxd1(influxd_binary, max_body_size=3000)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def test_http_413_splits_the_batch_on_influxdb_1(small_influxd1, tmp_path):
    root = tmp_path / "data"
    company = f"acme{os.getpid()}x{int(time.time() * 1000) % 100000}"
    target = samples.place(root, company, "c1", "0201", "f.tsv", GOOD)
    settings = env_file(tmp_path, f"INFLUXDB_VERSION=1\nINFLUXDB_HOST={small_influxd1.url}")
    result = parser(["--dataFolder", str(root)], settings)
    assert result.returncode == 0, result.stderr
    assert (target.parent / "parsed" / "f.tsv").exists()
    assert "HTTP 413" in result.stderr
    rows = small_influxd1.query(company, 'SELECT * FROM "electrical"')
    assert sum(1 for row in rows for key, value in row.items() if key.startswith("M") and value is not None) == POINTS


def test_a_missing_database_on_influxdb_1_is_configuration_not_the_files_fault(influxd1, tmp_path):
    root = tmp_path / "data"
    target = samples.place(root, "nodb", "c1", "0201", "f.tsv", GOOD)
    settings = env_file(tmp_path, f"INFLUXDB_VERSION=1\nINFLUXDB_HOST={influxd1.url}\nTSV_INFLUX_CREATE_BUCKETS=false")
    result = parser(["--dataFolder", str(root)], settings)
    assert result.returncode == 2, result.stderr
    assert target.exists() and not (target.parent / "error").exists()


def test_http_413_splits_the_batch_on_influxdb_3(tmp_path):
    root = tmp_path / "data"
    target = samples.place(root, "acme", "c1", "0201", "f.tsv", GOOD)
    with InfluxDB3StandIn() as influx:
        influx.max_body_bytes = 3000
        settings = env_file(
            tmp_path, f"INFLUXDB_VERSION=3\nINFLUXDB_HOST={influx.url}\nINFLUXDB_ADMIN_TOKEN={influx.admin_token}"
        )
        result = parser(["--dataFolder", str(root)], settings)
        assert result.returncode == 0, result.stderr
        assert (target.parent / "parsed" / "f.tsv").exists()
        assert sum(len(p.fields) for p in influx.points["acme"] if p.measurement == "electrical") == POINTS
        assert ("POST", "/api/v2/write", 413) in influx.requests


def test_a_missing_database_on_influxdb_3_is_configuration_not_the_files_fault(tmp_path):
    root = tmp_path / "data"
    target = samples.place(root, "acme", "c1", "0201", "f.tsv", GOOD)
    with InfluxDB3StandIn() as influx:
        influx.create_on_write = False
        settings = env_file(
            tmp_path,
            f"INFLUXDB_VERSION=3\nINFLUXDB_HOST={influx.url}\nINFLUXDB_ADMIN_TOKEN={influx.admin_token}\n"
            "TSV_INFLUX_CREATE_BUCKETS=false",
        )
        result = parser(["--dataFolder", str(root)], settings)
    assert result.returncode == 2, result.stderr
    assert "database 'acme' does not exist" in result.stderr
    assert target.exists() and not (target.parent / "error").exists()


def test_a_missing_bucket_on_influxdb_2_is_configuration_not_the_files_fault(influx2, tmp_path):
    root = tmp_path / "data"
    target = samples.place(root, "acme", "c1", "0201", "f.tsv", GOOD)
    settings = env_file(tmp_path, f"{influx2_settings(influx2)}\nTSV_INFLUX_CREATE_BUCKETS=false")
    result = parser(["--dataFolder", str(root)], settings)
    assert result.returncode == 2, result.stderr
    assert target.exists() and not (target.parent / "error").exists()


# -- smaller findings (item 11) ------------------------------------------------------------------


@pytest.mark.parametrize("bucket", ["acme_1h", "powerview_meta"])
def test_downsample_refuses_a_derived_or_meta_bucket(tmp_path, bucket):
    settings = tmp_path / "d.env"
    settings.write_text(f"INFLUXDB_VERSION=1\nINFLUXDB_HOST={closed_port_url()}\n")
    result = subprocess.run(
        [str(Path(sys.executable).parent / "powerview-downsample"), "--bucket", bucket, "--env-file", str(settings)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2, result.stderr
    assert f"bucket name {bucket!r} is not allowed" in result.stderr


def test_a_database_deleted_under_the_running_api_does_not_block_the_next_start(tmp_path):
    db = tmp_path / "api.sqlite3"
    api = ConfigAPI(db).start()
    try:
        db.unlink()
        for suffix in ("-wal", "-shm"):
            Path(f"{db}{suffix}").unlink(missing_ok=True)
        health = requests.get(f"{api.url}/health", timeout=10)
        assert health.status_code == 503 and "does not exist" in health.json()["detail"]
        requests.get(f"{api.url}/buckets/acme/channels", timeout=10)
    finally:
        api.stop()
    assert not db.exists()  # no empty file left behind (an empty file is refused as not ours)
    with ConfigAPI(db) as again:  # starts, with a new database
        assert requests.get(f"{again.url}/health", timeout=10).json()["status"] == "ok"


def test_health_is_503_when_no_write_can_succeed(tmp_path):
    """A full disk, as the process sees it: RLIMIT_FSIZE below the health probe (Python ignores SIGXFSZ,
    so the write fails with EFBIG as it would with ENOSPC)."""
    import resource

    from powerview_config_api.store import Store

    db = tmp_path / "api.sqlite3"
    Store(db)  # created beforehand, as the deployed one is
    api = ConfigAPI(db)
    command = api.command()
    env = api.env()

    def no_room() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (40_000, 40_000))  # room for the -shm file (32 KiB)

    with open(api.log, "ab") as log:
        proc = subprocess.Popen(command, env=env, cwd=samples.PROJECT_DIR, stdout=log, stderr=log, preexec_fn=no_room)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                health = requests.get(f"{api.url}/health", timeout=2)
                break
            except requests.ConnectionError:
                assert time.monotonic() < deadline and proc.poll() is None, api.log.read_text()
                time.sleep(0.05)
        assert health.status_code == 503, health.text
        assert "cannot write" in health.json()["detail"]
    finally:
        proc.terminate()
        proc.wait(10)
