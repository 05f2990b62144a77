"""The command line without InfluxDB: dry runs, usage and configuration errors, exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import deployed_report
import pytest
import report_contract
from click.testing import CliRunner

from powerview.cli.parse import main

from samples import PROJECT_DIR, TRI_LABELS, place, row, v002

M = "02001283"
GOOD = v002(
    [M] * 7,
    TRI_LABELS,
    [
        row("02/03/26 10:00:00", 230.1, 231, 229.5, 10, 0, -1.5),
        row("02/03/26 10:10:00", 230.2, 231, 229.5, 11, 0, -1.5),
    ],
)


@pytest.fixture
def env_file(tmp_path: Path) -> Path:
    """An empty settings file: these tests must not read the developer's .env."""
    path = tmp_path / "test.env"
    path.write_text("")
    return path


def invoke(*args, env=None):
    clean = {k: None for k in os.environ if k.startswith(("INFLUXDB_", "TSV_"))}
    return CliRunner().invoke(main, list(args), env={**clean, **(env or {})})


def test_dry_run_reports_on_stdout_and_touches_nothing(data_root, env_file, tmp_path):
    good = place(data_root, "acme", "camp", M, "good.tsv", GOOD)
    bad = place(data_root, "acme", "camp", M, "bad.tsv", "")
    before = sorted(p for p in tmp_path.rglob("*"))
    result = invoke("--dataFolder", str(data_root), "--dry-run", "--env-file", str(env_file))
    assert result.exit_code == 1, result.output
    report = json.loads(result.stdout)
    assert report["dry_run"] is True
    assert report["nb_files_total"] == 2 and report["nb_files_success"] == 1 and report["nb_files_failed"] == 1
    assert report["nb_points_total"] == 12
    entry = next(f for f in report["files"] if f["file"].endswith("good.tsv"))
    assert entry["channels"][f"M{M}_Ch3"] == {
        "unit": "W",
        "label": "Ch3",
        "name": "Voie3",
        "device_sn": M,
        "device_type": "master",
        "field": f"M{M}_Ch3_W",
        "column_idx": 6,
        "device_master_sn": M,
        "channel_label": "Ch3",
        "channel_name": "Voie3",
        "channel_unit": "W",
        "nb_points": 2,
        "min": -1.5,
        "max": -1.5,
        "mean": -1.5,
    }
    assert entry["time_min"] == "2026-03-02T10:00:00Z" and entry["time_max"] == "2026-03-02T10:10:00Z"
    assert entry["destination"] is None and len(entry["sha256"]) == 64
    # the deployed check: nothing written, nothing counted
    assert entry["nb_points_expected"] == 12 and entry["nb_points_in_influx"] is None
    assert (entry["time_start"], entry["time_end"]) == ("2026-03-02T10:00:00+00:00", "2026-03-02T10:10:00+00:00")
    assert sorted(p for p in tmp_path.rglob("*")) == before  # no move, no report file
    assert good.exists() and bad.exists()


def test_a_clean_dry_run_exits_0(data_root, env_file):
    place(data_root, "acme", "camp", M, "good.tsv", GOOD)
    assert invoke("--data-folder", str(data_root), "--dry-run", "--env-file", str(env_file)).exit_code == 0


def test_data_folder_from_environment(data_root, env_file):
    place(data_root, "acme", "camp", M, "good.tsv", GOOD)
    result = invoke("--dry-run", "--env-file", str(env_file), env={"TSV_DATA_FOLDER": str(data_root)})
    assert result.exit_code == 0 and json.loads(result.stdout)["nb_files_total"] == 1


@pytest.mark.parametrize(
    "args,message",
    [
        ([], "missing option --dataFolder"),
        (["--dataFolder", "/nonexistent/x"], "not a directory"),
    ],
)
def test_usage_errors_exit_2(env_file, args, message):
    result = invoke(*args, "--dry-run", "--env-file", str(env_file))
    assert result.exit_code == 2 and message in result.output


def test_tsv_file_outside_or_at_wrong_depth_is_refused_and_nothing_runs(data_root, env_file, tmp_path):
    good = place(data_root, "acme", "camp", M, "good.tsv", GOOD)
    outside = tmp_path / "outside.tsv"
    outside.write_text(GOOD)
    result = invoke(
        "--dataFolder", str(data_root), "--tsvFile", str(good), "--tsvFile", str(outside), "--env-file", str(env_file)
    )
    assert result.exit_code == 2
    assert "outside the data folder" in result.output and "nothing was processed" in result.output
    shallow = data_root / "acme" / "shallow.tsv"
    shallow.write_text(GOOD)
    result = invoke("--dataFolder", str(data_root), "--tsvFile", str(shallow), "--env-file", str(env_file))
    assert result.exit_code == 2 and "depth" in result.output
    assert good.exists() and not (data_root / "acme/camp" / M / "parsed").exists()


@pytest.mark.parametrize("missing", ["INFLUXDB_HOST", "INFLUXDB_ORG", "INFLUXDB_ADMIN_TOKEN"])
def test_missing_influx_setting_is_named_and_exits_2(data_root, env_file, missing):
    good = place(data_root, "acme", "camp", M, "good.tsv", GOOD)
    env = {"INFLUXDB_HOST": "http://127.0.0.1:9", "INFLUXDB_ORG": "o", "INFLUXDB_ADMIN_TOKEN": "secret-token"}
    del env[missing]
    result = invoke("--dataFolder", str(data_root), "--env-file", str(env_file), env=env)
    assert result.exit_code == 2
    assert missing in result.output and "secret-token" not in result.output
    assert good.exists()


def test_env_file_is_read_and_the_environment_wins(data_root, tmp_path):
    place(data_root, "acme", "camp", M, "good.tsv", GOOD)
    env_file = tmp_path / "x.env"
    env_file.write_text(f"TSV_DATA_FOLDER={data_root}\nTSV_MIN_VALID_DATE=2030-01-01\n")
    result = invoke("--dry-run", "--env-file", str(env_file))
    assert json.loads(result.stdout)["files"][0]["nb_out_of_range_timestamps"] == 2
    result = invoke("--dry-run", "--env-file", str(env_file), env={"TSV_MIN_VALID_DATE": "2021-01-01"})
    assert json.loads(result.stdout)["files"][0]["nb_out_of_range_timestamps"] == 0


def test_bad_setting_is_a_one_line_error(data_root, tmp_path):
    env_file = tmp_path / "x.env"
    env_file.write_text("TSV_V002_TIMEZONE=Mars/Base\n")
    result = invoke("--dataFolder", str(data_root), "--dry-run", "--env-file", str(env_file))
    assert result.exit_code == 2 and "TSV_V002_TIMEZONE" in result.output


def test_unsafe_folder_names_reject_the_file(data_root, env_file):
    place(data_root, "acme", "camp\x1b[31m", M, "good.tsv", GOOD)
    result = invoke("--dataFolder", str(data_root), "--dry-run", "--env-file", str(env_file))
    report = json.loads(result.stdout)
    assert result.exit_code == 1
    assert report["files"][0]["status"] == "error" and "campaign name" in report["files"][0]["error"]


def test_the_report_holds_every_deployed_key_with_its_meaning(data_root, env_file):
    good = place(data_root, "acme", "Campagne été 2025", M, "good.tsv", GOOD)
    place(data_root, "acme", "Campagne été 2025", M, "bad.tsv", "")
    result = invoke("-d", str(data_root), "--dry-run", "--env-file", str(env_file))
    report = json.loads(result.stdout)
    deployed_report.assert_deployed_keys(report)
    report_contract.assert_valid(report)
    assert report["run_id"] == report["start_time"] and report["start_time"].endswith("+00:00")
    assert report["end_time"] >= report["start_time"] and report["base_folder"] == str(data_root.resolve())
    assert report["status"] == "partial_failure"  # one file in error
    entries = {Path(f["file_path"]).name: f for f in report["files"]}
    for entry in entries.values():
        assert entry["file_path"] == entry["file"]
        assert entry["campaign"] == "Campagne été 2025"
    ok, bad = entries["good.tsv"], entries["bad.tsv"]
    assert ok["file_path"] == str(good.resolve()) and ok["nb_channels"] == 6
    assert [bad[k] for k in ("nb_points_expected", "nb_points_in_influx", "time_start", "time_end")] == [None] * 4
    assert ok["channels"].keys() == {f"M{M}_U{i}" for i in (1, 2, 3)} | {f"M{M}_Ch{i}" for i in (1, 2, 3)}
    for channel in ok["channels"].values():
        assert (channel["channel_label"], channel["channel_name"], channel["channel_unit"]) == (
            channel["label"],
            channel["name"],
            channel["unit"],
        )
    u1 = ok["channels"][f"M{M}_U1"]
    assert (u1["column_idx"], u1["channel_label"], u1["channel_name"], u1["channel_unit"]) == (1, "U1", "Ph 1", "V")


def test_a_clean_run_status_is_success_as_deployed(data_root, env_file):
    place(data_root, "acme", "camp", M, "good.tsv", GOOD)
    report = json.loads(invoke("-d", str(data_root), "--dry-run", "--env-file", str(env_file)).stdout)
    assert report["status"] == "success"


def test_short_options_d_and_t_are_the_deployed_aliases(data_root, env_file):
    good = place(data_root, "acme", "camp", M, "good.tsv", GOOD)
    place(data_root, "acme", "camp", M, "other.tsv", GOOD)
    result = invoke("-d", str(data_root), "-t", str(good), "--dry-run", "--env-file", str(env_file))
    assert result.exit_code == 0, result.output
    assert [f["file_path"] for f in json.loads(result.stdout)["files"]] == [str(good.resolve())]


def test_help_lists_exit_codes():
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    for code in ("0 ", "1 ", "2 ", "75"):
        assert f"  {code}" in result.output
    assert "--dataFolder" in result.output and "--tsvFile" in result.output
    assert "-d, --dataFolder" in result.output and "-t, --tsvFile" in result.output


def test_runs_as_a_subprocess_with_logs_on_stderr(data_root, env_file):
    place(data_root, "acme", "camp", M, "good.tsv", GOOD)
    proc = subprocess.run(
        [
            sys.executable,
            str(PROJECT_DIR / "tsv_parser.py"),
            "--dataFolder",
            str(data_root),
            "--dry-run",
            "--env-file",
            str(env_file),
        ],
        capture_output=True,
        text=True,
        cwd="/",
        env={"PATH": os.environ["PATH"]},
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["nb_points_total"] == 12
    assert "good.tsv" in proc.stderr and "INFO" in proc.stderr
    version = subprocess.run(
        [sys.executable, str(PROJECT_DIR / "tsv_parser.py"), "--version"], capture_output=True, text=True
    )
    assert version.returncode == 0 and "tsv_parser.py" in version.stdout


def test_a_tsv_file_already_processed_by_another_run_is_skipped(data_root, env_file):
    good = place(data_root, "acme", "camp", M, "good.tsv", GOOD)
    (good.parent / "parsed").mkdir()
    good.rename(good.parent / "parsed" / good.name)
    result = invoke("--dataFolder", str(data_root), "--tsvFile", str(good), "--dry-run", "--env-file", str(env_file))
    assert result.exit_code == 0
    entry = json.loads(result.stdout)["files"][0]
    assert entry["status"] == "skipped" and "already processed" in entry["error"]
    typo = invoke(
        "--dataFolder",
        str(data_root),
        "--tsvFile",
        str(good.parent / "nope.tsv"),
        "--dry-run",
        "--env-file",
        str(env_file),
    )
    assert typo.exit_code == 2 and "no such file" in typo.output


def test_folder_named_after_another_serial_warns_and_tags_use_the_file(data_root, env_file):
    place(data_root, "acme", "camp", "02009999", "good.tsv", GOOD)
    entry = json.loads(invoke("--dataFolder", str(data_root), "--dry-run", "--env-file", str(env_file)).stdout)[
        "files"
    ][0]
    assert entry["device_folder_sn"] == "02009999" and entry["device_master_sn"] == M
    assert any("02009999" in w and M in w for w in entry["warnings"])
    assert all(cid.startswith(f"M{M}_") for cid in entry["channels"])


def test_the_folder_serial_warning_is_in_the_log_line_too(data_root, env_file):
    place(data_root, "acme", "camp", "02009999", "good.tsv", GOOD)
    result = invoke("--dataFolder", str(data_root), "--dry-run", "--env-file", str(env_file))
    [line] = [line for line in result.stderr.splitlines() if "good.tsv: " in line and " points " in line]
    assert f"warning: the folder is named 02009999 but the file's master is {M}" in line


def test_log_lines_clear_the_progress_bar_line_first():
    import io
    import logging

    from powerview.cli.common import StderrHandler as _TerminalHandler

    stream = io.StringIO()
    handler = _TerminalHandler(stream)
    record = logging.LogRecord("powerview", logging.INFO, __file__, 1, "a line", None, None)
    handler.emit(record)
    _TerminalHandler.bar_active = True
    try:
        handler.emit(record)
    finally:
        _TerminalHandler.bar_active = False
    assert stream.getvalue() == "a line\n\r\x1b[Ka line\n"


def test_worker_list_on_a_spool_folder_that_does_not_exist_says_so(tmp_path):
    from powerview.cli.worker import cli

    result = CliRunner().invoke(
        cli, ["list"], env={"POWERVIEW_SPOOL_DIR": str(tmp_path / "nowhere"), "POWERVIEW_LOG_DIR": str(tmp_path)}
    )
    assert result.exit_code == 1
    assert "does not exist (POWERVIEW_SPOOL_DIR)" in result.output
