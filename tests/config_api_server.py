"""The real powerview-config-api, started as operators start it (python -m powerview_config_api)
under uvicorn on a free loopback port, with a real SQLite file.

For the tests of its callers: `clients` reads the registrations from the API's own SQLite file,
`reset()` empties it between tests that share one server, `register()` seeds a client through
the API, and `served()` lists the requests the server answered (its uvicorn access log, with
log_level="info")."""

from __future__ import annotations

import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path

import requests

from samples import PROJECT_DIR


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ConfigAPI:
    def __init__(self, db: Path, token: str | None = None, port: int | None = None, log_level: str = "warning"):
        self.db, self.token = Path(db), token
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None
        self.log = self.db.with_name(self.db.name + f".{self.port}.log")
        self.log_level = log_level
        self._served_from = 0  # log offset once ready: the readiness probes are not counted

    def command(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "powerview_config_api",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--db",
            str(self.db),
            "--log-level",
            self.log_level,
        ]

    def env(self) -> dict:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CONFIG_API_")}
        env["PYTHONPATH"] = str(PROJECT_DIR)
        if self.token:
            env["CONFIG_API_TOKEN"] = self.token
        return env

    def start(self, timeout: float = 20.0) -> ConfigAPI:
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                self.command(), env=self.env(), cwd=PROJECT_DIR, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"config API exited with {self.proc.returncode}: {self.log.read_text()}")
            try:
                if requests.get(self.url + "/health", timeout=1).status_code == 200:
                    self._served_from = self.log.stat().st_size
                    return self
            except requests.ConnectionError:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"config API not ready in {timeout}s: {self.log.read_text()}")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def headers(self) -> dict:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    # ---- for the tests of its callers ---------------------------------------------------------
    @property
    def clients(self) -> dict[str, str]:
        """{clientId: bucket}, as the API's SQLite file holds them (opened read-only)."""
        with closing(sqlite3.connect(f"file:{self.db}?mode=ro", uri=True)) as conn:
            return dict(conn.execute("SELECT client_id, bucket FROM clients ORDER BY client_id"))

    def register(self, client_id: str, bucket: str) -> None:
        """Seed a registration the way any caller makes it (PUT /clients/{clientId})."""
        answer = requests.put(
            f"{self.url}/clients/{client_id}", json={"bucket": bucket}, headers=self.headers(), timeout=10
        )
        assert answer.status_code in (200, 201), answer.text

    def reset(self) -> None:
        """Forget every client, series configuration and channel (a server shared by tests)."""
        with closing(sqlite3.connect(self.db, timeout=30)) as conn, conn:
            conn.execute("PRAGMA foreign_keys = ON")
            for table in ("series_configs", "clients", "channels"):
                conn.execute(f"DELETE FROM {table}")  # noqa: S608 - fixed names
        self._served_from = self.log.stat().st_size

    def served(self) -> list[tuple[str, str, int]]:
        """(method, path, status) of each request answered since start() or reset() (log_level="info")."""
        assert self.log_level in ("info", "debug"), "the access log needs log_level='info'"
        with open(self.log, "rb") as log:
            log.seek(self._served_from)
            text = log.read().decode("utf-8", "replace")
        return [(m, p, int(s)) for m, p, s in re.findall(r'"([A-Z]+) (\S+) HTTP/[\d.]+" (\d{3})', text)]

    def __enter__(self) -> ConfigAPI:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
