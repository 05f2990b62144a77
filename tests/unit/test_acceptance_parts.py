"""The pieces of the acceptance check that need no deployment: its uploads.log reading, its
generated files, its refusal to work on anything but its own test company, its settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from powerview.acceptance import plan as acceptance
from powerview.acceptance.settings import load_acceptance
from powerview.operations import uploadlog


def test_log_lines_are_read_back_field_by_field_quoted_values_included():
    line = uploadlog.format_line(
        action="ingest",
        path='/srv/a b/"x".tsv',
        result="rejected",
        detail="line 2: unknown format\tfound 'no header'",
        job="j1",
    )
    fields = acceptance.parse_log_line(line)
    assert fields["action"] == "ingest" and fields["job"] == "j1" and fields["result"] == "rejected"
    assert fields["path"] == '/srv/a b/"x".tsv'
    assert fields["detail"] == "line 2: unknown format\tfound 'no header'"


def test_the_log_tail_sees_only_what_was_written_after_it_started(tmp_path: Path):
    uploadlog.write(tmp_path, action="upload", path="/before.tsv", result="queued")
    tail = acceptance.LogTail(tmp_path / uploadlog.LOG_NAME)
    uploadlog.write(tmp_path, action="upload", path="/after.tsv", result="queued")
    assert [line["path"] for line in tail.lines()] == ["/after.tsv"]
    assert acceptance.LogTail(tmp_path / "absent.log").lines() == []


def test_generated_files_have_distinct_names_devices_and_expectations():
    files = acceptance.samples()
    assert [f.check for f in files] == ["A3", "A4", "A5", "A6", "A7"]
    assert len({f.name for f in files}) == len({f.device for f in files}) == 5
    assert [f.expect for f in files] == ["parsed"] * 4 + ["rejected"]
    assert files[1].content.startswith("START_HEADER\n") and "MV_T302_V003" in files[1].content


@pytest.mark.parametrize(
    "company", ["acme", "pvaccept_", "pvaccept_0123456g", "pvaccept_01234567/..", "../pvaccept_01234567"]
)
def test_a_run_refuses_any_company_but_a_generated_test_company(tmp_path: Path, company: str):
    settings = load_acceptance(
        None, {"POWERVIEW_DATA_DIR": str(tmp_path), "POWERVIEW_LOG_DIR": str(tmp_path), "GRAFANA_API_TOKEN": "t"}
    )
    with pytest.raises(ValueError, match="does not match"):
        acceptance.Plan(settings, tmp_path, None, 1.0, lambda check: None, company=company)
    run = acceptance.Plan(settings, tmp_path, None, 1.0, lambda check: None)
    assert acceptance.TEST_COMPANY.match(run.company) and run.company_dir == tmp_path / run.company


def test_settings_read_only_what_the_check_uses_with_the_parser_default_report_folder():
    settings = load_acceptance(
        None,
        {
            "POWERVIEW_DATA_DIR": "/srv/sftpgo/data",
            "CONFIG_API_URL": "http://api:8000/",
            "GRAFANA_API_TOKEN": "t",
            "CONFIG_API_TOKEN": "s3cret",
            "TSV_LOG_LEVEL": "not-a-level",
        },
    )
    assert settings.report_dir == Path("/srv/sftpgo/logs/reports")
    assert settings.config_api_url == "http://api:8000" and settings.config_api_token == "s3cret"
    assert "s3cret" not in repr(settings)


def test_a_line_is_one_line_whatever_the_server_answered():
    check = acceptance.Check("FAIL", "A2", "Grafana team x", "HTTP 500\n<html>\n  oops</html>")
    assert check.line() == "FAIL A2 Grafana team x — HTTP 500 <html> oops</html>"


def test_the_console_script_stops_on_a_bad_setting_with_exit_2(tmp_path: Path):
    import subprocess
    import sys

    script = Path(sys.executable).parent / "powerview-acceptance"
    if not script.exists():
        pytest.fail(f"{script} missing: the console script of pyproject.toml is not installed (make venv)")
    env_file = tmp_path / "bad.env"
    env_file.write_text("INFLUXDB_HOST=influxdb:8086\nPOWERVIEW_DATA_DIR=/nonexistent\n")
    result = subprocess.run(
        [str(script), "--env-file", str(env_file)],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 2, result.stderr
    assert result.stdout == (
        "FAIL A0 settings — INFLUXDB_HOST must be a URL such as http://localhost:8086, got 'influxdb:8086'\n"
    )
