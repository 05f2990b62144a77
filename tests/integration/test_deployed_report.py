"""What the deployed parser's readers see, on a real InfluxDB 1.x (INFLUXDB_VERSION=1), through the
real tsv_parser.py: every deployed report key at run, file and channel level, each written file's
points counted back (exactly, for one file into an empty database), the meta bucket's deployed
tags and fields, campaign names as people type them, unit-less labels. A small HTTP relay in
front of the real server plays the faults the count must survive: a server that loses part of
what it acknowledged (the shortfall is a warning) and a query outage (the count stays null)."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import deployed_report
import pytest
import report_contract
import requests

import samples
from samples import TRI_LABELS, place, row, v002

M = "02001283"
SLAVELESS = "02001171"
CAMPAIGN = "Campagne été 2025"


def tri(*times: str, base: float = 230.0) -> str:
    return v002([M] * 7, TRI_LABELS, [row(t, base + i, 231, 229.5, 10 + i, 0, -1.5) for i, t in enumerate(times)])


class Relay:
    """Forwards every request to the real InfluxDB 1.x; `drop_last_line` makes /write lose the
    last line of each body while still answering 204, `fail_selects` answers 503 to SELECTs."""

    def __init__(self, target: str):
        self.target, self.drop_last_line, self.fail_selects = target.rstrip("/"), False, False
        relay = self

        class Handler(BaseHTTPRequestHandler):
            def _forward(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.path.startswith("/write") and relay.drop_last_line:
                    body = b"".join(body.splitlines(keepends=True)[:-1])
                if (
                    relay.fail_selects
                    and self.path.startswith("/query")
                    and "SELECT" in requests.utils.unquote(self.path.replace("+", " "))
                ):
                    self.send_response(503)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                headers = {k: v for k, v in self.headers.items() if k.lower() in ("content-type", "authorization")}
                answer = requests.request(
                    self.command, relay.target + self.path, data=body, headers=headers, timeout=30
                )
                self.send_response(answer.status_code)
                self.send_header("Content-Type", answer.headers.get("Content-Type", "application/json"))
                self.send_header("Content-Length", str(len(answer.content)))
                self.end_headers()
                self.wfile.write(answer.content)

            do_GET = do_POST = _forward

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def env_file(tmp_path: Path, url: str, meta: str) -> Path:
    path = tmp_path / "parser.env"
    path.write_text(
        f"INFLUXDB_VERSION=1\nINFLUXDB_HOST={url}\nTSV_META_BUCKET={meta}\n"
        f"TSV_REPORT_DIR={tmp_path / 'reports'}\nPOWERVIEW_SPOOL_DIR={tmp_path / 'spool'}\n"
        "TSV_INFLUX_RETRY_MAX_SECONDS=2\nTSV_DOWNSAMPLE_LEVELS=\n"
    )
    return path


def parser(tmp_path: Path, env: Path, *args: str):
    samples.require_venv()
    command = [sys.executable, str(samples.PROJECT_DIR / "tsv_parser.py"), *args, "--env-file", str(env)]
    return subprocess.run(command, capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"}, timeout=120)


def reports(tmp_path: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((tmp_path / "reports").glob("tsv_parser_*.json"))]


def by_name(report: dict) -> dict[str, dict]:
    return {Path(f["file_path"]).name: f for f in report["files"]}


@pytest.fixture
def names():
    suffix = uuid.uuid4().hex[:8]
    return f"acme{suffix}", f"meta{suffix}"


def test_command_line_and_scan_leave_the_deployed_report_and_meta(influxd1, tmp_path, names):
    company, meta = names
    root = tmp_path / "data"
    first = place(root, company, CAMPAIGN, M, "a.tsv", tri("02/03/26 10:00:00", "02/03/26 10:10:00"))
    env = env_file(tmp_path, influxd1.url, meta)

    # one file into an empty database, the deployed way: -d DIR -t FILE
    result = parser(tmp_path, env, "-d", str(root), "-t", str(first))
    assert result.returncode == 0, result.stderr
    [report] = reports(tmp_path)
    deployed_report.assert_deployed_keys(report)
    report_contract.assert_valid(report)
    assert (report["status"], report["base_folder"], report["run_id"]) == (
        "success",
        str(root.resolve()),
        report["start_time"],
    )
    entry = by_name(report)["a.tsv"]
    assert entry["campaign"] == CAMPAIGN and entry["nb_points"] == 12
    assert entry["nb_points_expected"] == entry["nb_points_in_influx"] == 12  # exactly, into an empty database
    assert (entry["time_start"], entry["time_end"]) == ("2026-03-02T10:00:00+00:00", "2026-03-02T10:10:00+00:00")
    assert entry["channels"][f"M{M}_Ch1"]["channel_unit"] == "W" and entry["channels"][f"M{M}_Ch1"]["column_idx"] == 4
    tag_values = influxd1.query(company, 'SHOW TAG VALUES FROM "electrical" WITH KEY = "campaign"')
    assert [r["value"] for r in tag_values] == [CAMPAIGN]

    # a scan: an enclosing file of the same device (its count holds a.tsv's points too), another
    # campaign with an apostrophe, a channel without a unit
    place(root, company, CAMPAIGN, M, "around.tsv", tri("02/03/26 09:55:00", "02/03/26 10:15:00", base=100))
    place(root, company, "L'usine", M, "u.tsv", tri("02/03/26 10:00:00"))
    place(
        root,
        company,
        "L'usine",
        SLAVELESS,
        "nounit.tsv",
        v002([SLAVELESS] * 3, ["Ph 1 V", "minipince"], [row("02/03/26 10:00:00", 230, 7.25)]),
    )
    place(root, company, 'Zone=1, bâtiment "B"', M, "z.tsv", tri("02/03/26 10:00:00"))  # line-protocol escapes
    place(root, company, CAMPAIGN, M, "bad.tsv", "garbage\n")
    result = parser(tmp_path, env, "--dataFolder", str(root))
    assert result.returncode == 1, result.stderr  # bad.tsv is rejected
    report = reports(tmp_path)[-1]
    deployed_report.assert_deployed_keys(report)
    report_contract.assert_valid(report)
    assert report["status"] == "partial_failure" and report["nb_files_failed"] == 1
    entries = by_name(report)
    around, usine, nounit = entries["around.tsv"], entries["u.tsv"], entries["nounit.tsv"]
    assert around["nb_points_expected"] == 12 and around["nb_points_in_influx"] == 24  # >= : a.tsv's inside
    assert usine["campaign"] == "L'usine" and usine["nb_points_in_influx"] == usine["nb_points_expected"] == 6
    assert nounit["status"] == "success" and nounit["nb_points_in_influx"] == 2
    assert any("has no unit" in w for w in nounit["warnings"]) and "has no unit" in result.stderr
    assert nounit["channels"][f"M{SLAVELESS}_Ch1"]["channel_unit"] == ""
    assert entries["bad.tsv"]["nb_points_in_influx"] is None
    for entry in (around, usine, nounit):
        assert not [w for w in entry["warnings"] if "count" in w]
    fields = {r["fieldKey"] for r in influxd1.query(company, 'SHOW FIELD KEYS FROM "electrical"')}
    assert f"M{SLAVELESS}_Ch1_" in fields  # the deployed field of a unit-less channel
    units = influxd1.query(
        company,
        f'SHOW TAG VALUES FROM "electrical" WITH KEY = "channel_unit" WHERE "channel_id" = \'M{SLAVELESS}_Ch1\'',
    )
    assert units == []
    campaigns = influxd1.query(company, 'SHOW TAG VALUES FROM "electrical" WITH KEY = "campaign"')
    assert sorted(r["value"] for r in campaigns) == sorted([CAMPAIGN, "L'usine", 'Zone=1, bâtiment "B"'])
    assert entries["z.tsv"]["nb_points_in_influx"] == entries["z.tsv"]["nb_points_expected"] == 6

    # the meta bucket: the deployed tags and fields, and ours
    runs = influxd1.query(meta, 'SELECT * FROM "tsv_parser_run" GROUP BY *')
    assert sorted(r["status"] for r in runs) == ["partial_failure", "success"]
    assert {r["base_folder"] for r in runs} == {str(root.resolve())}
    for r in runs:
        assert deployed_report.RUN_META_FIELDS <= {k for k, v in r.items() if v is not None}
    files = influxd1.query(meta, 'SELECT * FROM "tsv_parser_file" GROUP BY *')
    assert deployed_report.FILE_META_TAGS | deployed_report.FILE_META_FIELDS <= files[0].keys()
    by_file = {r["file_name"]: r for r in files}
    assert by_file["a.tsv"]["nb_channels"] == 6 and by_file["nounit.tsv"]["nb_channels"] == 2
    assert by_file["a.tsv"]["campaign"] == CAMPAIGN and by_file["u.tsv"]["campaign"] == "L'usine"
    assert by_file["bad.tsv"]["status"] == "error"


def test_a_server_that_loses_points_shows_a_shortfall_warning(influxd1, tmp_path, names):
    company, meta = names
    relay = Relay(influxd1.url)
    relay.drop_last_line = True  # acknowledges every write, keeps all but its last line
    try:
        root = tmp_path / "data"
        place(root, company, CAMPAIGN, M, "a.tsv", tri("02/03/26 10:00:00", "02/03/26 10:10:00"))
        result = parser(tmp_path, env_file(tmp_path, relay.url, meta), "-d", str(root))
    finally:
        relay.close()
    assert result.returncode == 0, result.stderr  # the count is a check: the outcome stays
    entry = by_name(reports(tmp_path)[0])["a.tsv"]
    assert entry["status"] == "success" and entry["destination"].endswith("/parsed/a.tsv")
    assert (entry["nb_points_expected"], entry["nb_points_in_influx"]) == (12, 11)
    [warning] = [w for w in entry["warnings"] if "count incomplete" in w]
    assert "12 points expected, 11 found" in warning and CAMPAIGN in warning
    assert "WARNING" in result.stderr and "12 points expected, 11 found" in result.stderr


def test_a_query_outage_during_the_count_leaves_it_null(influxd1, tmp_path, names):
    company, meta = names
    relay = Relay(influxd1.url)
    relay.fail_selects = True
    try:
        root = tmp_path / "data"
        place(root, company, CAMPAIGN, M, "a.tsv", tri("02/03/26 10:00:00"))
        place(root, company, CAMPAIGN, M, "b.tsv", tri("02/03/26 11:00:00"))
        result = parser(tmp_path, env_file(tmp_path, relay.url, meta), "-d", str(root))
    finally:
        relay.close()
    assert result.returncode == 0, result.stderr
    report = reports(tmp_path)[0]
    assert report["status"] == "success"
    for entry in report["files"]:
        assert entry["status"] == "success" and Path(entry["destination"]).exists()
        assert entry["nb_points_expected"] == 6 and entry["nb_points_in_influx"] is None
        assert any("not counted back" in w and "unavailable" in w for w in entry["warnings"])
    rows = influxd1.query(company, 'SELECT * FROM "electrical"')
    assert sum(v is not None for r in rows for k, v in r.items() if k.startswith("M")) == 12  # the data is in


def test_a_campaign_named_by_people_goes_end_to_end_through_the_hook(influxd1, tmp_path, names):
    """`env -i SFTPGO_ACTION=... on-upload.sh` for the mkdirs and the upload, the real worker and
    tsv_parser.py, the real InfluxDB 1.x: the campaign tag is the folder's name, exactly."""
    import test_on_upload as hook_test

    from stand_ins.influxdb2 import InfluxDB2StandIn

    company, meta = names
    unused = InfluxDB2StandIn(org="powerview", admin_token="unused").start()  # Project's defaults only
    try:
        project = hook_test.Project(
            tmp_path, unused, INFLUXDB_VERSION="1", INFLUXDB_HOST=influxd1.url, TSV_META_BUCKET=meta
        )
        project.mkdir(company)
        project.mkdir(f"{company}/{CAMPAIGN}")
        assert "result=queued" in project.event_line(project.data / company / CAMPAIGN)
        path = project.file(f"{company}/{CAMPAIGN}/{M}/T302_1.tsv", tri("02/03/26 10:00:00", "02/03/26 10:10:00"))
        project.upload(path, user=company)
        samples.wait_for(lambda: (path.parent / "parsed" / path.name).exists(), 60, "the file in parsed/")
        samples.wait_for(project.idle, 30, "idle")
    finally:
        unused.stop()
    record = json.loads((project.records / f"{company}__{CAMPAIGN}.json").read_text())
    assert record == {"company_name": company, "campaign_name": CAMPAIGN}
    campaigns = influxd1.query(company, 'SHOW TAG VALUES FROM "electrical" WITH KEY = "campaign"')
    assert [r["value"] for r in campaigns] == [CAMPAIGN]
    [entry] = project.reports_entries()
    assert entry["campaign"] == CAMPAIGN and entry["nb_points_in_influx"] == entry["nb_points_expected"] == 12
    files = influxd1.query(meta, 'SELECT * FROM "tsv_parser_file" GROUP BY *')
    assert [r["campaign"] for r in files] == [CAMPAIGN]


@pytest.mark.parametrize("version", ["2", "3"])
def test_the_count_back_runs_on_influxdb_2_and_3(influxd1, tmp_path, names, version):
    """The same InfluxQL count through each generation's /query (stand-ins answering it from the
    real InfluxDB 1.x), with its own credentials."""
    from stand_ins.influxdb2 import InfluxDB2StandIn
    from stand_ins.influxdb3 import InfluxDB3StandIn

    company, meta = names
    root = tmp_path / "data"
    place(root, company, "L'usine", M, "a.tsv", tri("02/03/26 10:00:00", "02/03/26 10:10:00"))
    if version == "2":
        server = InfluxDB2StandIn(org="powerview", admin_token="admin-token-s3cret", influxql_backend=influxd1.url)
    else:
        server = InfluxDB3StandIn(influxql_backend=influxd1.url)
    with server as influx:
        env = tmp_path / "parser.env"
        env.write_text(
            f"INFLUXDB_VERSION={version}\nINFLUXDB_HOST={influx.url}\nINFLUXDB_ORG=powerview\n"
            f"INFLUXDB_ADMIN_TOKEN={influx.admin_token}\nTSV_META_BUCKET={meta}\n"
            f"TSV_REPORT_DIR={tmp_path / 'reports'}\nPOWERVIEW_SPOOL_DIR={tmp_path / 'spool'}\n"
            "TSV_INFLUX_RETRY_MAX_SECONDS=2\nTSV_DOWNSAMPLE_LEVELS=\n"
        )
        result = parser(tmp_path, env, "-d", str(root))
    assert result.returncode == 0, result.stderr
    [report] = reports(tmp_path)
    deployed_report.assert_deployed_keys(report)
    report_contract.assert_valid(report)
    entry = by_name(report)["a.tsv"]
    assert entry["campaign"] == "L'usine" and entry["nb_points_in_influx"] == entry["nb_points_expected"] == 12
    assert not [w for w in entry["warnings"] if "count" in w]
