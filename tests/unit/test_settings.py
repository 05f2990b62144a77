"""Settings: .env + environment, one loader per program, defaults, one-line errors."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from powerview.core.settings import ConfigError, load_parser, load_tokens, load_worker
from powerview.onboarding.grafana.settings import load as load_grafana


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / f"s{len(list(tmp_path.glob('*.env')))}.env"
    path.write_text(text)
    return path


def test_parser_defaults_without_any_file(tmp_path):
    s = load_parser(tmp_path / "absent.env", environ={})
    assert (s.meta_bucket, s.log_level, s.v002_timezone, s.min_valid_date) == (
        "powerview_meta",
        "INFO",
        "UTC",
        date(2021, 1, 1),
    )
    assert (s.batch_lines, s.influx.gzip, s.influx.create_buckets) == (5000, False, True)
    assert s.data_folder is None and s.report_dir is None


def test_worker_defaults_without_any_file(tmp_path):
    w = load_worker(tmp_path / "absent.env", environ={})
    assert (w.data_dir, w.spool_dir, w.log_dir) == (
        Path("/srv/sftpgo/data"),
        Path("/srv/sftpgo/spool"),
        Path("/srv/sftpgo/logs"),
    )
    assert w.max_attempts == 20 and isinstance(w.max_attempts, int)


def test_environment_wins_over_the_file(tmp_path):
    env_file = write(tmp_path, "INFLUXDB_ORG=from_file\nTSV_META_BUCKET=meta_file\n")
    s = load_parser(env_file, environ={"INFLUXDB_ORG": "from_env"})
    assert s.influx.org == "from_env" and s.meta_bucket == "meta_file"


def test_deployed_aliases_are_accepted(tmp_path):
    assert load_parser(write(tmp_path, "INFLUXDB_URL=http://h:8086/\n"), environ={}).influx.url == "http://h:8086"
    s = load_parser(write(tmp_path, "INFLUXDB_URL=http://h:8086\n"), environ={"INFLUXDB_HOST": "http://main:8086"})
    assert s.influx.url == "http://main:8086"
    assert load_parser(write(tmp_path, "TSV_DATA_FOLDER=/d\n"), environ={}).data_folder == Path("/d")
    assert load_worker(write(tmp_path, "TSV_DATA_FOLDER=/d\n"), environ={}).data_dir == Path("/d")
    both = write(tmp_path, "TSV_DATA_FOLDER=/old\nPOWERVIEW_DATA_DIR=/new\n")
    assert load_parser(both, environ={}).data_folder == load_worker(both, environ={}).data_dir == Path("/new")


def test_require_names_the_missing_variable_and_never_shows_the_token(tmp_path):
    s = load_tokens(write(tmp_path, "INFLUXDB_HOST=http://h:8086\nINFLUXDB_ADMIN_TOKEN=t0k\n"), environ={})
    with pytest.raises(ConfigError, match="INFLUXDB_ORG") as excinfo:
        s.influx.require()
    assert "t0k" not in str(excinfo.value) and "t0k" not in repr(s)


def test_a_bad_worker_setting_never_stops_the_parser_and_the_reverse(tmp_path):
    env_file = write(tmp_path, "POWERVIEW_SETTLE_SECONDS=soon\nTSV_BATCH_SIZE=many\n")
    with pytest.raises(ConfigError, match="POWERVIEW_SETTLE_SECONDS"):
        load_worker(write(tmp_path, "POWERVIEW_SETTLE_SECONDS=soon\n"), environ={})
    with pytest.raises(ConfigError, match="TSV_BATCH_SIZE"):
        load_parser(env_file, environ={})
    assert load_parser(write(tmp_path, "POWERVIEW_SETTLE_SECONDS=soon\n"), environ={}).batch_lines == 5000
    assert load_worker(write(tmp_path, "TSV_BATCH_SIZE=many\n"), environ={}).settle_seconds == 10.0
    assert (
        load_grafana(
            write(tmp_path, "TSV_BATCH_SIZE=many\nPOWERVIEW_SETTLE_SECONDS=soon\nGRAFANA_API_TOKEN=t\n"), environ={}
        ).url
        == "http://localhost:8088"
    )


@pytest.mark.parametrize("value", ["2.7", "2e1", "-1", "0", " 3x"])
def test_integers_are_whole_numbers(tmp_path, value):
    with pytest.raises(ConfigError, match="POWERVIEW_MAX_ATTEMPTS"):
        load_worker(write(tmp_path, f"POWERVIEW_MAX_ATTEMPTS={value}\n"), environ={})


@pytest.mark.parametrize("value", ["${BASE}/spool", "relative/spool", "/srv/my spool", "/srv/sp'ool"])
def test_folders_the_hook_reads_must_be_plain_absolute_paths(tmp_path, value):
    with pytest.raises(ConfigError, match="POWERVIEW_SPOOL_DIR.*plain absolute path"):
        load_worker(write(tmp_path, f'POWERVIEW_SPOOL_DIR="{value}"\n'), environ={})


def test_no_interpolation_in_env_files(tmp_path):
    s = load_parser(write(tmp_path, "BASE=/srv\nTSV_META_BUCKET=${BASE}_meta\n"), environ={})
    assert s.meta_bucket == "${BASE}_meta"


@pytest.mark.parametrize(
    "line,name",
    [
        ("TSV_BATCH_SIZE=abc", "TSV_BATCH_SIZE"),
        ("TSV_BATCH_SIZE=0", "TSV_BATCH_SIZE"),
        ("TSV_BATCH_SIZE=10.5", "TSV_BATCH_SIZE"),
        ("TSV_INFLUX_GZIP=maybe", "TSV_INFLUX_GZIP"),
        ("TSV_MIN_VALID_DATE=01/01/2021", "TSV_MIN_VALID_DATE"),
        ("TSV_LOG_LEVEL=LOUD", "TSV_LOG_LEVEL"),
        ("TSV_V002_TIMEZONE=Europe", "TSV_V002_TIMEZONE"),
        ("TSV_INFLUX_TIMEOUT=inf", "TSV_INFLUX_TIMEOUT"),
        ("INFLUXDB_HOST=localhost:8086", "INFLUXDB_HOST"),
    ],
)
def test_malformed_values_are_named(tmp_path, line, name):
    with pytest.raises(ConfigError, match=name):
        load_parser(write(tmp_path, line + "\n"), environ={})


def test_grafana_reaches_influxdb_at_the_deployed_container_address(tmp_path):
    """The deployed .env gives InfluxDB's address for the containers in INFLUXDB_URL, while the
    parser (on the host) uses INFLUXDB_HOST: the data sources must get the former."""
    deployed = write(
        tmp_path, "INFLUXDB_HOST=http://localhost:8086\nINFLUXDB_URL=http://influxdb:8086\nGRAFANA_API_TOKEN=t\n"
    )
    assert load_grafana(deployed, environ={}).influx_url_for_grafana == "http://influxdb:8086"
    assert load_parser(deployed, environ={}).influx.url == "http://localhost:8086"
    explicit = write(
        tmp_path, "INFLUXDB_URL=http://influxdb:8086\nINFLUXDB_URL_FOR_GRAFANA=http://db:8086\nGRAFANA_API_TOKEN=t\n"
    )
    assert load_grafana(explicit, environ={}).influx_url_for_grafana == "http://db:8086"
