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
import sys

import pytest

import samples

try:  # tests/integration imported as a package
    from .servers import Influxd1, VictoriaMetrics, find_influxd, find_victoria_metrics
except ImportError:  # no __init__.py: pytest's default "prepend" import mode
    if os.path.dirname(os.path.abspath(__file__)) not in sys.path:  # importlib mode
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from servers import Influxd1, VictoriaMetrics, find_influxd, find_victoria_metrics  # noqa: E402


def _binary_or_skip(finder, binary: str, package: str) -> str:
    path = finder()
    if not path:
        samples.missing(f"{binary} not installed: apt-get install {package}")
    return path


@pytest.fixture(scope="session")
def influxd_binary() -> str:
    """Path of influxd (skip, or fail under POWERVIEW_REQUIRE_SERVERS=1)."""
    return _binary_or_skip(find_influxd, "influxd", "influxdb")


@pytest.fixture(scope="session")
def victoria_metrics_binary() -> str:
    """Path of victoria-metrics (skip, or fail under POWERVIEW_REQUIRE_SERVERS=1)."""
    return _binary_or_skip(find_victoria_metrics, "victoria-metrics", "victoria-metrics")


@pytest.fixture(scope="session")
def influxd1(influxd_binary):
    """A running InfluxDB 1.x server (servers.Influxd1)."""
    server = Influxd1(influxd_binary)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def victoria_metrics(victoria_metrics_binary):
    """A running single-node VictoriaMetrics server (servers.VictoriaMetrics)."""
    server = VictoriaMetrics(victoria_metrics_binary)
    server.start()
    try:
        yield server
    finally:
        server.stop()


# the corpus ingested into InfluxDB 1.x with the derived buckets (issue 10), shared by two modules
try:
    from .derived_corpus import corpus_in_influxd1  # noqa: E402,F401
except ImportError:
    from derived_corpus import corpus_in_influxd1  # noqa: E402,F401
