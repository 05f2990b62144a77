"""The real powerview-config-api, started as operators start it (python -m powerview_config_api)
under uvicorn on a free loopback port, with a real SQLite file."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

from samples import PROJECT_DIR


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ConfigAPI:
    def __init__(self, db: Path, token: str | None = None, port: int | None = None):
        self.db, self.token = Path(db), token
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None
        self.log = self.db.with_name(self.db.name + f".{self.port}.log")

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
            "warning",
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

    def __enter__(self) -> ConfigAPI:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
