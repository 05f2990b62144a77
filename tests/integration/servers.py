"""Real database servers on loopback for the integration tests.

Two servers from Debian 12 packages are started as child processes, each with
its own temporary directory (data, config, log) and free ports on 127.0.0.1:

* ``Influxd1`` -- InfluxDB 1.x (``apt-get install influxdb``, binary
  ``/usr/bin/influxd``, Debian ships 1.6.7~rc0).  It speaks the 1.x HTTP API
  (``/write``, ``/query``, ``/ping``), not the 2.x ``/api/v2/write`` API: the
  influxdb-client (2.x) library cannot write to it.  Use it to check that
  line protocol produced by PowerView is accepted and parsed exactly
  (escaping, float formatting, timestamps), and read back with InfluxQL.
* ``VictoriaMetrics`` -- single-node VictoriaMetrics (``apt-get install
  victoria-metrics``, binary ``/usr/bin/victoria-metrics``; upstream release
  archives call it ``victoria-metrics-prod``, both names are looked for;
  Debian ships 1.79.5).  It accepts the InfluxDB 2.x write API
  (``POST /api/v2/write``), so the parser's InfluxDB 2 write path (and
  ``influxdb_client``'s) can be exercised end to end against it.

How VictoriaMetrics stores InfluxDB line protocol (observed with 1.79.5 and
the default flags used here):

* One series per *field*: ``__name__`` is ``<measurement>_<field key>``
  (separator ``-influxMeasurementFieldSeparator``, default ``_``).  E.g.
  ``electrical,campaign=c1,channel_id=M1_U1 M1_U1_V=231.5 1700000000``
  becomes ``{"__name__": "electrical_M1_U1_V", "campaign": "c1",
  "channel_id": "M1_U1"}``.
* Every tag becomes a label with the *unescaped* value
  (``channel_name=Ph\\ 1`` -> ``"channel_name": "Ph 1"``, ``a\\,b`` -> ``"a,b"``).
* The 2.x API (``/api/v2/write?org=..&bucket=..``, used by the parser's
  InfluxDB 2 writer) ignores ``bucket`` and ``org``: NO ``db`` label is
  added.  Only the 1.x API ``/write?db=NAME`` adds a label ``db="NAME"``
  (label name from ``-influxDBLabel``, default ``db``); a ``db`` query
  argument given to ``/api/v2/write`` is honoured the same way.
* Values come back as JSON numbers, but NOT bit-exact: VictoriaMetrics keeps
  about 12 significant decimal digits (0.30000000000000004 -> 0.3,
  1.2345678901234567 -> 1.234567890123).  Values with few digits, such as
  logger readings like 231.5 or 0.304, come back exactly; compare others with
  ``pytest.approx(rel=1e-11)``.  Integer fields (``1i``) keep their value,
  booleans become 1/0, string fields are stored as 0 (!).
* Timestamps are stored in milliseconds (``-influxTrimTimestamp`` defaults to
  1ms): a point written at ``1700000000`` with precision ``s`` is exported
  as ``1700000000000``.
* A malformed line is NOT refused: the HTTP answer is still 204, the line is
  skipped and logged, and the counter ``vm_rows_invalid_total{type="influx"}``
  on ``/metrics`` goes up, with a lag of up to ~1 s (see
  ``VictoriaMetrics.invalid_influx_rows()``).  InfluxDB 1.x, by contrast,
  answers 400, and for a batch with good and bad lines it still stores the
  good ones ("partial write").
* Freshly written samples become visible to ``/api/v1/export`` only after the
  in-memory buffers are flushed: ``export()`` calls ``flush()``
  (``/internal/force_flush``) first by default.
* Samples more than 2 days in the future are silently dropped (204 all the
  same); samples up to 2 days ahead are kept (``export()`` looks up to now +
  3 days).  The retention here is 100 years, so old fixed timestamps such as
  1700000000 (or even 1000000000) are kept.

Neither server needs root, and neither listens on anything but 127.0.0.1.
Set ``POWERVIEW_KEEP_SERVER_DIRS=1`` to keep the temporary directories (with
``server.log``) after ``stop()`` for debugging.  ``POWERVIEW_INFLUXD`` and
``POWERVIEW_VICTORIA_METRICS`` may name the binaries explicitly.

InfluxDB 1.x JSON has no int/float distinction: a float field holding 1.0
comes back from ``query()`` as the Python int ``1`` (equal to 1.0 anyway).

Usage::

    with Influxd1() as influx:
        influx.create_db("t")
        assert influx.write("t", b"m,tag=a f=1.5 1700000000").status_code == 204
        rows = influx.query("t", "SELECT * FROM m")
        # [{"_measurement": "m", "time": 1700000000, "f": 1.5, "tag": "a"}]

    with VictoriaMetrics() as vm:
        ...  # write with influxdb_client to vm.url
        vm.export('{__name__="m_f"}')
        # [{"metric": {"__name__": "m_f", "tag": "a"},
        #   "values": [1.5], "timestamps": [1700000000000]}]
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import requests

__all__ = [
    "ServerStartError",
    "InfluxQLError",
    "find_influxd",
    "find_victoria_metrics",
    "free_ports",
    "Influxd1",
    "VictoriaMetrics",
]

STARTUP_TIMEOUT = 20.0
STOP_TIMEOUT = 10.0
LOG_TAIL_LINES = 40
HOST = "127.0.0.1"


def _die_with_parent() -> None:
    """In the server's process, before exec: SIGTERM when the process that started it dies,
    even by kill -9 (Linux PR_SET_PDEATHSIG), so no server outlives its test run or bench."""
    import ctypes

    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


class ServerStartError(RuntimeError):
    """A server process could not be started or did not become ready."""


class InfluxQLError(RuntimeError):
    """InfluxDB 1.x answered a query with an error."""


# --------------------------------------------------------------------------
# Finding the binaries
# --------------------------------------------------------------------------


def _dpkg_binaries(package: str) -> list[str]:
    """Executable files that the Debian package ``package`` installed."""
    dpkg = shutil.which("dpkg")
    if not dpkg:
        return []
    try:
        out = subprocess.run(
            [dpkg, "-L", package],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [
        line.strip()
        for line in out.splitlines()
        if "/bin/" in line and os.path.isfile(line.strip()) and os.access(line.strip(), os.X_OK)
    ]


def _find(env_var: str, names: tuple[str, ...], dirs: tuple[str, ...], package: str) -> str | None:
    explicit = os.environ.get(env_var)
    if explicit:
        path = shutil.which(explicit)
        return path if path else None
    for name in names:
        path = shutil.which(name)
        if path:
            return path
    for directory in dirs:
        for name in names:
            path = os.path.join(directory, name)
            if os.path.isfile(path) and os.access(path, os.X_OK):
                return path
    for path in _dpkg_binaries(package):
        if os.path.basename(path) in names:
            return path
    return None


def find_influxd() -> str | None:
    """Path of the InfluxDB 1.x server binary ``influxd``, or None."""
    return _find("POWERVIEW_INFLUXD", ("influxd",), ("/usr/bin", "/usr/sbin", "/usr/local/bin"), "influxdb")


def find_victoria_metrics() -> str | None:
    """Path of the single-node VictoriaMetrics binary, or None."""
    return _find(
        "POWERVIEW_VICTORIA_METRICS",
        ("victoria-metrics", "victoria-metrics-prod"),
        ("/usr/bin", "/usr/sbin", "/usr/local/bin"),
        "victoria-metrics",
    )


# --------------------------------------------------------------------------
# Common process handling
# --------------------------------------------------------------------------


def free_ports(count: int = 1) -> list[int]:
    """``count`` distinct TCP ports that are free on 127.0.0.1 right now."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind((HOST, 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError as exc:
        return f"<cannot read {path}: {exc}>"
    return "\n".join(text.splitlines()[-lines:]) or "<empty log>"


class _Server:
    """A child process with a temp dir, a log file and an HTTP readiness probe."""

    name = "server"
    #: how many times start() picks new ports after an "address in use" failure
    port_attempts = 3

    def __init__(self, binary: str | None = None, startup_timeout: float = STARTUP_TIMEOUT) -> None:
        self.binary = binary or self._find_binary()
        if not self.binary:
            raise ServerStartError(f"{self.name} binary not found")
        self.startup_timeout = startup_timeout
        #: seconds stop() waits after SIGTERM before SIGKILL
        self.stop_timeout = STOP_TIMEOUT
        self.tmpdir: Path | None = None
        self.log_path: Path | None = None
        self.port: int | None = None
        self.proc: subprocess.Popen | None = None
        self._log_file = None
        self.session = requests.Session()

    # -- to be provided by subclasses
    def _find_binary(self) -> str | None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _prepare(self) -> list[str]:
        """Pick ports, write config files; return the command line."""
        raise NotImplementedError

    def _ready(self) -> bool:
        raise NotImplementedError

    # -- public API
    @property
    def url(self) -> str:
        if self.port is None:
            raise RuntimeError(f"{self.name} is not started")
        return f"http://{HOST}:{self.port}"

    def start(self) -> _Server:
        if self.proc is not None:
            raise RuntimeError(f"{self.name} already started")
        self.tmpdir = Path(tempfile.mkdtemp(prefix=f"powerview-{self.name}-"))
        self.log_path = self.tmpdir / "server.log"
        try:
            for attempt in range(1, self.port_attempts + 1):
                try:
                    self._start_once()
                    break
                except ServerStartError as exc:
                    self._kill()
                    in_use = "address already in use" in str(exc).lower()
                    if not in_use or attempt == self.port_attempts:
                        raise
        except BaseException:
            self._cleanup_dir()
            raise
        atexit.register(self.stop)
        return self

    def stop(self) -> None:
        """Terminate the server (SIGTERM, then SIGKILL) and remove its temp dir."""
        self._kill()
        self._cleanup_dir()
        try:
            atexit.unregister(self.stop)
        except Exception:  # pragma: no cover - interpreter shutdown
            pass

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        return _tail(self.log_path, lines) if self.log_path else "<no log>"

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = f"url={self.url}" if self.running else "stopped"
        return f"<{type(self).__name__} {state}>"

    # -- internals
    def _start_once(self) -> None:
        cmd = self._prepare()
        with open(self.log_path, "ab") as log:
            log.write(f"$ {' '.join(cmd)}\n".encode())
        self._log_file = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            cwd=self.tmpdir,
            # own process group: a Ctrl-C on the test run does not kill the
            # server before the fixture teardown, and stop() can kill it all
            start_new_session=True,
            preexec_fn=_die_with_parent,  # a test run killed with -9 leaves no server behind
        )
        deadline = time.monotonic() + self.startup_timeout
        while True:
            code = self.proc.poll()
            if code is not None:
                raise ServerStartError(
                    f"{self.name} ({self.binary}) exited with code {code} during "
                    f"startup; log {self.log_path}:\n{self.log_tail()}"
                )
            try:
                if self._ready():
                    return
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                raise ServerStartError(
                    f"{self.name} ({self.binary}) not ready on {self.url} after "
                    f"{self.startup_timeout:.0f} s; log {self.log_path}:\n"
                    f"{self.log_tail()}"
                )
            time.sleep(0.1)

    def _kill(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None:
            if proc.poll() is None:
                try:
                    proc.send_signal(signal.SIGTERM)
                    proc.wait(timeout=self.stop_timeout)
                except subprocess.TimeoutExpired:
                    pass
            if proc.poll() is None:
                # hung: kill its whole process group (start_new_session=True
                # made the server the leader of a group of its own)
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            proc.wait()
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def _cleanup_dir(self) -> None:
        if self.tmpdir is None or os.environ.get("POWERVIEW_KEEP_SERVER_DIRS") == "1":
            return
        shutil.rmtree(self.tmpdir, ignore_errors=True)
        self.tmpdir = None

    def _get(self, path: str, **kwargs) -> requests.Response:
        return self.session.get(self.url + path, timeout=kwargs.pop("timeout", 10), **kwargs)

    def _post(self, path: str, **kwargs) -> requests.Response:
        return self.session.post(self.url + path, timeout=kwargs.pop("timeout", 30), **kwargs)


# --------------------------------------------------------------------------
# InfluxDB 1.x
# --------------------------------------------------------------------------

_INFLUXD_CONF = """\
# Generated by tests/integration/servers.py -- throw-away test instance.
# Debian's influxd reads "reporting-enabled", upstream "reporting-disabled".
reporting-enabled = false
reporting-disabled = true
# RPC service (backup/restore), loopback only
bind-address = "{host}:{rpc_port}"

[meta]
  dir = "{dir}/meta"
  retention-autocreate = true
  logging-enabled = false

[data]
  dir = "{dir}/data"
  wal-dir = "{dir}/wal"
  wal-fsync-delay = "0s"
  index-version = "inmem"
  query-log-enabled = false
  trace-logging-enabled = false

[coordinator]
  log-queries-after = "0s"

[retention]
  enabled = false

[shard-precreation]
  enabled = false

[monitor]
  store-enabled = false

[http]
  enabled = true
  bind-address = "{host}:{http_port}"
  auth-enabled = false
  log-enabled = false
  write-tracing = false
  pprof-enabled = false
  https-enabled = false
  unix-socket-enabled = false
  max-body-size = {max_body_size}

# 1.6 has an "ifql" RPC service that binds :8082 on all interfaces by default
[ifql]
  enabled = false
  log-enabled = false

[logging]
  format = "logfmt"
  level = "warn"
  suppress-logo = true

[subscriber]
  enabled = false

[[graphite]]
  enabled = false

[[collectd]]
  enabled = false

[[opentsdb]]
  enabled = false

[[udp]]
  enabled = false

[continuous_queries]
  enabled = false
  log-enabled = false
"""


class Influxd1(_Server):
    """InfluxDB 1.x ``influxd`` on 127.0.0.1 with a throw-away config and data."""

    name = "influxd"

    def __init__(
        self, binary: str | None = None, startup_timeout: float = STARTUP_TIMEOUT, max_body_size: int = 25_000_000
    ) -> None:
        super().__init__(binary, startup_timeout)
        self.rpc_port: int | None = None
        self.config_path: Path | None = None
        self.max_body_size = max_body_size  # [http] max-body-size: a larger write is HTTP 413

    def _find_binary(self) -> str | None:
        return find_influxd()

    def _prepare(self) -> list[str]:
        self.port, self.rpc_port = free_ports(2)
        self.config_path = self.tmpdir / "influxd.conf"
        self.config_path.write_text(
            _INFLUXD_CONF.format(
                host=HOST,
                http_port=self.port,
                rpc_port=self.rpc_port,
                dir=self.tmpdir,
                max_body_size=self.max_body_size,
            )
        )
        return [self.binary, "-config", str(self.config_path)]

    def _ready(self) -> bool:
        return self._get("/ping", timeout=1).status_code == 204

    # -- API helpers
    def create_db(self, name: str) -> None:
        """CREATE DATABASE (idempotent in 1.x)."""
        self.query(None, f'CREATE DATABASE "{_ident(name)}"')

    def drop_db(self, name: str) -> None:
        self.query(None, f'DROP DATABASE "{_ident(name)}"')

    def write(self, db: str, body: bytes | str, precision: str = "s") -> requests.Response:
        """POST line protocol to /write; returns the response unchecked
        (204 = written, 400 = parse error, 404 = no such database)."""
        if isinstance(body, str):
            body = body.encode("utf-8")
        return self._post("/write", params={"db": db, "precision": precision}, data=body)

    def query_raw(self, db: str | None, influxql: str, epoch: str = "s") -> dict:
        """Run InfluxQL; return the decoded JSON answer as is.

        Read-only statements (SELECT, SHOW) use GET, everything else POST, as
        the 1.x API requires.
        """
        params = {"q": influxql, "epoch": epoch}
        if db is not None:
            params["db"] = db
        verb = influxql.lstrip().split(None, 1)[0].upper() if influxql.strip() else ""
        if verb in ("SELECT", "SHOW"):
            resp = self._get("/query", params=params, timeout=30)
        else:
            resp = self._post("/query", data=params)
        try:
            payload = resp.json()
        except ValueError:
            raise InfluxQLError(f"HTTP {resp.status_code}: {resp.text[:500]}") from None
        if resp.status_code != 200 or "error" in payload:
            raise InfluxQLError(f"HTTP {resp.status_code}: {payload.get('error', payload)}")
        return payload

    def query(self, db: str | None, influxql: str, epoch: str = "s") -> list[dict]:
        """Run InfluxQL and return one dict per row over all statements/series.

        Each dict maps column name -> value (``"time"`` is an int of epoch
        seconds with the default ``epoch="s"``), plus the series' GROUP BY tags
        and ``"_measurement"`` (the series name).  Raises InfluxQLError on
        any error, including a per-statement error.
        """
        rows: list[dict] = []
        for result in self.query_raw(db, influxql, epoch).get("results", []):
            if "error" in result:
                raise InfluxQLError(result["error"])
            for series in result.get("series", []):
                base = {"_measurement": series.get("name")}
                base.update(series.get("tags") or {})
                for values in series.get("values", []):
                    row = dict(base)
                    row.update(zip(series["columns"], values))
                    rows.append(row)
        return rows


def _ident(name: str) -> str:
    """Escape an InfluxQL double-quoted identifier."""
    return name.replace("\\", "\\\\").replace('"', '\\"')


# --------------------------------------------------------------------------
# VictoriaMetrics
# --------------------------------------------------------------------------


class VictoriaMetrics(_Server):
    """Single-node VictoriaMetrics on 127.0.0.1 with throw-away storage."""

    name = "victoria-metrics"

    def __init__(
        self, binary: str | None = None, startup_timeout: float = STARTUP_TIMEOUT, extra_args: list[str] | None = None
    ) -> None:
        super().__init__(binary, startup_timeout)
        self.extra_args = list(extra_args or [])

    def _find_binary(self) -> str | None:
        return find_victoria_metrics()

    def _prepare(self) -> list[str]:
        (self.port,) = free_ports(1)
        return [
            self.binary,
            "-retentionPeriod=100y",
            f"-storageDataPath={self.tmpdir / 'data'}",
            f"-httpListenAddr={HOST}:{self.port}",
            "-loggerLevel=ERROR",
            *self.extra_args,
        ]

    def _ready(self) -> bool:
        return self._get("/health", timeout=1).status_code == 200

    # -- API helpers
    def flush(self) -> None:
        """Make recently ingested samples visible to queries and exports."""
        self._get("/internal/force_flush").raise_for_status()

    def export(
        self, match: str = '{__name__!=""}', flush: bool = True, start: int = 0, end: int | None = None
    ) -> list[dict]:
        """Raw samples of all series matching the selector ``match``.

        One dict per series: ``{"metric": {"__name__": ..., label: value},
        "values": [float, ...], "timestamps": [ms, ...]}``, sorted by
        ``__name__`` then labels so that results are deterministic.
        ``start``/``end`` are epoch seconds; ``end`` defaults to now + 3 days
        (VictoriaMetrics' own default end is "now", which would hide accepted
        samples up to 2 days in the future).
        """
        if flush:
            self.flush()
        if end is None:
            end = int(time.time()) + 3 * 86400
        resp = self._get("/api/v1/export", params={"match[]": match, "start": str(start), "end": str(end)}, timeout=30)
        resp.raise_for_status()
        series = [json.loads(line) for line in resp.text.splitlines() if line.strip()]
        series.sort(key=lambda s: (s["metric"].get("__name__", ""), sorted(s["metric"].items())))
        return series

    def delete_series(self, match: str = '{__name__!=""}') -> None:
        """Delete all series matching ``match`` (for test isolation)."""
        resp = self._post("/api/v1/admin/tsdb/delete_series", data={"match[]": match})
        if resp.status_code not in (200, 204):
            resp.raise_for_status()

    def metric(self, name: str, labels: dict[str, str] | None = None) -> float | None:
        """Value of one of VictoriaMetrics' own metrics from /metrics, or None."""
        resp = self._get("/metrics")
        resp.raise_for_status()
        wanted = labels or {}
        for line in resp.text.splitlines():
            if line.startswith("#") or not line.strip():
                continue
            series, _, value = line.rpartition(" ")
            metric_name, _, label_text = series.partition("{")
            if metric_name != name:
                continue
            found = {}
            for part in label_text.rstrip("}").split(","):
                if "=" in part:
                    key, _, val = part.strip().partition("=")
                    found[key] = val.strip('"')
            if all(found.get(k) == v for k, v in wanted.items()):
                return float(value)
        return None

    def invalid_influx_rows(self) -> int:
        """How many InfluxDB lines were rejected (skipped) so far."""
        return int(self.metric("vm_rows_invalid_total", {"type": "influx"}) or 0)
