"""Fixtures shared by every test folder."""

from __future__ import annotations

import shutil
import stat
from pathlib import Path

import pytest

import samples


@pytest.fixture
def data_root(tmp_path: Path) -> Path:
    root = tmp_path / "data"
    root.mkdir()
    return root


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    """A writable copy of the real corpus (../shared/corpus/data)."""
    source = samples.corpus_dir()
    if source is None:
        pytest.skip(samples.NO_CORPUS)
    target = tmp_path / "corpus"
    shutil.copytree(source, target)
    for path in target.rglob("*"):
        path.chmod(path.stat().st_mode | stat.S_IWUSR)
    target.chmod(target.stat().st_mode | stat.S_IWUSR)
    return target


@pytest.fixture
def influx2():
    """A running InfluxDB 2 HTTP API stand-in (tests/stand_ins/influxdb2.py)."""
    from stand_ins.influxdb2 import InfluxDB2StandIn

    with InfluxDB2StandIn(org="powerview", admin_token="admin-token-s3cret") as server:
        yield server


@pytest.fixture
def influx_env(tmp_path: Path, influx2) -> Path:
    """A settings file pointing at the stand-in; reports under tmp_path/reports."""
    path = tmp_path / "influx.env"
    path.write_text(
        f"INFLUXDB_HOST={influx2.url}\nINFLUXDB_ORG=powerview\n"
        f"INFLUXDB_ADMIN_TOKEN={influx2.admin_token}\nTSV_REPORT_DIR={tmp_path / 'reports'}\n"
        "TSV_INFLUX_RETRY_MAX_SECONDS=2\n"
        f"POWERVIEW_SPOOL_DIR={tmp_path / 'spool'}\n"
    )  # the derived buckets' outbox
    return path
