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
def grafana():
    """A running Grafana HTTP API stand-in (tests/stand_ins/grafana.py)."""
    from stand_ins.grafana import GrafanaStandIn

    with GrafanaStandIn() as server:
        yield server


CONFIG_API_TOKEN = "cfg-token"


@pytest.fixture(scope="module")
def config_api_server(tmp_path_factory):
    """The real powerview-config-api (tests/config_api_server.py), one per module, token CONFIG_API_TOKEN."""
    from config_api_server import ConfigAPI

    db = tmp_path_factory.mktemp("config-api") / "powerview-config-api.sqlite3"
    with ConfigAPI(db, token=CONFIG_API_TOKEN, log_level="info") as server:
        yield server


@pytest.fixture
def config_api(config_api_server):
    """The module's real config API, emptied for this test."""
    config_api_server.reset()
    return config_api_server


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


# The slowest modules first (measured with --durations): pytest-xdist's
# --dist loadfile hands modules out in collection order, so the long ones start at once on both
# workers and the many short ones fill the gaps at the end, instead of a long module starting last.
SLOWEST_FIRST = (
    "test_switch_over.py",
    "test_derived_kill.py",
    "test_grafana_user_ownership.py",
    "test_acceptance.py",
    "test_on_upload.py",
    "test_catalogue_flow.py",
    "test_grafana_playbooks.py",
    "test_grafana_deployed_replica.py",
)


def pytest_collection_modifyitems(items) -> None:
    rank = {name: n for n, name in enumerate(SLOWEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: a module keeps its order
