"""Fault injection for the hardening tests: environment faults as a flaky machine makes them.

Permission faults need a process that the kernel actually refuses: as root (CI) the command under
test runs as `nobody` (setpriv) over a tree that `nobody` owns, and the folder to deny is given
back to root; as an ordinary user, a plain chmod does it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import threading
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import samples

NOBODY = 65534
IS_ROOT = os.geteuid() == 0


def shared_dir(prefix: str = "pvfault-") -> Path:
    """A temporary folder the unprivileged user can enter (pytest's tmp_path is root-only)."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    path.chmod(0o755)
    return path


def hand_over(root: Path) -> None:
    """Give the whole tree to the user the command will run as."""
    if IS_ROOT:
        for path in [root, *root.rglob("*")]:
            os.chown(path, NOBODY, NOBODY, follow_symlinks=False)


def deny_write(folder: Path) -> None:
    """Make `folder` read-only for the command under test."""
    if IS_ROOT:
        os.chown(folder, 0, 0)
    folder.chmod(0o555)


def deny_read(path: Path) -> None:
    if IS_ROOT:
        os.chown(path, 0, 0)
    path.chmod(0o000)


def unprivileged(cmd: list[str]) -> list[str]:
    if not IS_ROOT:
        return cmd
    if shutil.which("setpriv") is None:
        samples.missing("setpriv (util-linux) is needed to run a command as nobody")
    return ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", *cmd]


def run_parser(args: list[str], env: dict[str, str], cwd: Path | None = None) -> subprocess.CompletedProcess:
    """The real tsv_parser.py, as the unprivileged user, environment given in full."""
    cmd = unprivileged([sys.executable, str(samples.PROJECT_DIR / "tsv_parser.py"), *args])
    base = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": "/tmp"}
    return subprocess.run(cmd, env={**base, **env}, cwd=cwd or "/", capture_output=True, text=True, timeout=120)


class _HtmlHandler(BaseHTTPRequestHandler):
    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        body = b"<!doctype html><html><body><h1>Welcome to nginx!</h1></body></html>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_HEAD = _answer

    def log_message(self, *args) -> None:
        pass


@contextmanager
def html_server():
    """A plain web server that answers every request with an HTML page (HTTP 200)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _HtmlHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
