"""Settings: .env + environment, defaults, one-line errors."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from powerview.settings import ConfigError, load


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "s.env"
    path.write_text(text)
    return path


def test_defaults_without_any_file(tmp_path):
    s = load(tmp_path / "absent.env", environ={})
    assert (s.meta_bucket, s.log_level, s.v002_timezone, s.min_valid_date) == ("powerview_meta", "INFO", "UTC",
                                                                               date(2021, 1, 1))
    assert (s.influx_batch_lines, s.influx_gzip, s.influx_create_buckets) == (5000, False, True)
    assert s.data_dir == Path("/srv/sftpgo/data") and s.report_dir is None


def test_environment_wins_over_the_file(tmp_path):
    env_file = write(tmp_path, "INFLUXDB_ORG=from_file\nTSV_META_BUCKET=meta_file\n")
    s = load(env_file, environ={"INFLUXDB_ORG": "from_env"})
    assert s.influx_org == "from_env" and s.meta_bucket == "meta_file"


def test_influxdb_url_is_a_fallback_for_influxdb_host(tmp_path):
    assert load(write(tmp_path, "INFLUXDB_URL=http://h:8086/\n"), environ={}).influx_url == "http://h:8086"
    s = load(write(tmp_path, "INFLUXDB_URL=http://h:8086\n"), environ={"INFLUXDB_HOST": "http://main:8086"})
    assert s.influx_url == "http://main:8086"


def test_require_influx_names_the_missing_variable(tmp_path):
    s = load(write(tmp_path, "INFLUXDB_HOST=http://h:8086\nINFLUXDB_ADMIN_TOKEN=t0k\n"), environ={})
    with pytest.raises(ConfigError, match="INFLUXDB_ORG") as excinfo:
        s.require_influx()
    assert "t0k" not in str(excinfo.value) and "t0k" not in repr(s)


@pytest.mark.parametrize("line,name", [("TSV_BATCH_SIZE=abc", "TSV_BATCH_SIZE"), ("TSV_BATCH_SIZE=0", "TSV_BATCH_SIZE"),
                                       ("TSV_INFLUX_GZIP=maybe", "TSV_INFLUX_GZIP"),
                                       ("TSV_MIN_VALID_DATE=01/01/2021", "TSV_MIN_VALID_DATE"),
                                       ("TSV_LOG_LEVEL=LOUD", "TSV_LOG_LEVEL"),
                                       ("INFLUXDB_HOST=localhost:8086", "INFLUXDB_HOST")])
def test_malformed_values_are_named(tmp_path, line, name):
    with pytest.raises(ConfigError, match=name):
        load(write(tmp_path, line + "\n"), environ={})
