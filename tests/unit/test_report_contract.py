"""The report contract: the typed shape (outcome.RunReport, FileReport, ChannelReport), its JSON
Schema for other programs (docs/rapport.schema.json), and real reports checked against it: a dry
run on the shipped examples here, real runs on InfluxDB 1.x in test_deployed_report.py."""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sys

import deployed_report
import pytest
import report_contract
from test_worker import FAKE_PARSER

from powerview.core import schema
from powerview.core.outcome import ChannelReport, FileReport, RunReport

from samples import PROJECT_DIR

DEFS = report_contract.SCHEMA["$defs"]
LEVELS = [
    ("run", RunReport, report_contract.SCHEMA),
    ("file", FileReport, DEFS["file"]),
    ("channel", ChannelReport, DEFS["channel"]),
]


@pytest.fixture(scope="module")
def dry_run_report(tmp_path_factory):
    data = tmp_path_factory.mktemp("examples") / "data"
    shutil.copytree(PROJECT_DIR / "examples" / "data", data)
    done = subprocess.run(
        [sys.executable, str(PROJECT_DIR / "tsv_parser.py"), "--dataFolder", str(data), "--dry-run"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "POWERVIEW_ENV_FILE": os.devnull},
    )
    assert done.returncode == 1, done.stderr  # the MV_T202_V002 sample is rejected
    return json.loads(done.stdout)


@pytest.mark.parametrize(("level", "typed", "described"), LEVELS, ids=[lv[0] for lv in LEVELS])
def test_the_schema_and_the_typed_contract_name_the_same_keys(level, typed, described):
    assert list(described["properties"]) == list(typed.__annotations__), level  # the same keys, in order
    assert set(described["required"]) == typed.__required_keys__, level
    assert described["additionalProperties"] is False


def test_every_deployed_key_is_required_and_so_are_the_counters():
    assert deployed_report.RUN_KEYS <= set(report_contract.SCHEMA["required"])
    assert deployed_report.FILE_KEYS <= set(DEFS["file"]["required"])
    assert deployed_report.CHANNEL_KEYS <= set(DEFS["channel"]["required"])
    assert set(schema.COUNTER_NAMES) <= set(DEFS["file"]["required"])


def test_a_dry_run_on_the_shipped_examples_follows_the_schema(dry_run_report):
    report_contract.assert_valid(dry_run_report)
    assert {f["status"] for f in dry_run_report["files"]} == {"success", "error"}
    assert all(f["channels"] for f in dry_run_report["files"] if f["status"] == "success")


@pytest.mark.parametrize("mode", ["ok", "reject", "influx-down", "skip", "environment"])
def test_the_worker_tests_fake_parser_writes_reports_that_follow_the_schema(tmp_path, mode):
    parser = tmp_path / "fake_parser.py"
    parser.write_text(FAKE_PARSER)
    upload = tmp_path / "data" / "acme" / "camp" / "0201" / "a.tsv"
    upload.parent.mkdir(parents=True)
    upload.write_text("x")
    report_file = tmp_path / "report.json"
    env = {"FAKE_CALLS": str(tmp_path / "calls"), "FAKE_MODE": mode, "FAKE_DATA": str(tmp_path / "data")}
    done = subprocess.run(
        [sys.executable, str(parser), "--tsvFile", str(upload), "--report-file", str(report_file)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **env},
    )
    report = json.loads(report_file.read_text())
    report_contract.assert_valid(report)
    assert done.returncode == report["exit_code"] == {"influx-down": 75, "reject": 1, "environment": 73}.get(mode, 0)


@pytest.mark.parametrize(
    ("change", "where"),
    [
        (lambda r: r.pop("run_id"), "(top): 'run_id' is a required property"),
        (lambda r: r.update(status="done"), "status: 'done' is not one of"),
        (lambda r: r["files"][0].pop("file_path"), "files/0: 'file_path' is a required property"),
        (lambda r: r["files"][0].update(status="ok"), "files/0/status: 'ok' is not one of"),
        (lambda r: r["files"][0].update(surprise=1), "files/0: Additional properties are not allowed ('surprise'"),
        (lambda r: r["files"][0].update(nb_points=-1), "files/0/nb_points: -1 is less than the minimum of 0"),
        (
            lambda r: next(iter(r["files"][0]["channels"].values())).update(min="1"),
            "'1' is not of type 'number', 'null'",
        ),
        (lambda r: next(iter(r["files"][0]["channels"].values())).pop("column_idx"), "'column_idx' is a required"),
    ],
)
def test_the_check_names_what_breaks_the_contract(dry_run_report, change, where):
    broken = copy.deepcopy(dry_run_report)
    broken["files"].sort(key=lambda f: f["status"] != "success")  # a file with channels first
    change(broken)
    found = report_contract.problems(broken)
    assert any(where in problem for problem in found), found
