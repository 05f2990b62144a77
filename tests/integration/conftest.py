"""Session-scoped fixtures that start real servers on 127.0.0.1.

``influxd1`` -> servers.Influxd1 (InfluxDB 1.x), ``victoria_metrics`` ->
servers.VictoriaMetrics.  Each is started once per test session, on first
use, and stopped at the end.  Tests share them: use a database name /
measurement / label value of your own in each test.

A missing binary skips the tests that need it, unless
POWERVIEW_REQUIRE_SERVERS=1 (set by .ci/run), which turns it into a failure.
"""

from __future__ import annotations

import os

import pytest

try:  # tests/integration imported as a package
    from .servers import (Influxd1, VictoriaMetrics, find_influxd,
                          find_victoria_metrics)
except ImportError:  # rootdir-relative import (no __init__.py), the default
    from servers import (Influxd1, VictoriaMetrics, find_influxd,
                         find_victoria_metrics)


def _servers_required() -> bool:
    return os.environ.get("POWERVIEW_REQUIRE_SERVERS") == "1"


def _binary_or_skip(finder, binary: str, package: str) -> str:
    path = finder()
    if path:
        return path
    message = f"{binary} not installed: apt-get install {package}"
    if _servers_required():
        pytest.fail(f"{message} (POWERVIEW_REQUIRE_SERVERS=1)", pytrace=False)
    pytest.skip(message)
    raise AssertionError("unreachable")


@pytest.fixture(scope="session")
def influxd1():
    """A running InfluxDB 1.x server (servers.Influxd1)."""
    binary = _binary_or_skip(find_influxd, "influxd", "influxdb")
    server = Influxd1(binary)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def victoria_metrics():
    """A running single-node VictoriaMetrics server (servers.VictoriaMetrics)."""
    binary = _binary_or_skip(find_victoria_metrics, "victoria-metrics",
                             "victoria-metrics")
    server = VictoriaMetrics(binary)
    server.start()
    try:
        yield server
    finally:
        server.stop()
