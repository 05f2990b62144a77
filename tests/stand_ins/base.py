"""The HTTP plumbing every stand-in shares, written once.

A stand-in subclasses `StandIn` and says only what its API answers:
  - `handle(method, path, query, headers, body) -> (status, payload)` for a JSON API
    (payload None: an empty body), or
  - `serve(handler)` for full control of one request (headers, raw bodies, streaming).
The base runs a ThreadingHTTPServer on 127.0.0.1 in a daemon thread (`start()`/`stop()`, or
`with`), keeps its port across `go_down()`/`come_back()`, closes the open connections when it
stops, keeps a request log (`requests`, whatever record the stand-in appends) and injects
faults: `fail_next(method, path_regex, status, count)` answers the next matching requests
with `status` (see `injected_fault`).
"""

from __future__ import annotations

import json
import re
import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

__all__ = ["StandIn", "StandInHandler"]


class StandInHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def setup(self) -> None:
        super().setup()
        # one response = headers then body in two writes: without TCP_NODELAY the second waits for
        # the client's delayed ACK (40 ms a request on Linux)
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.standin._connection_opened(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.standin._connection_closed(self.connection)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet
        pass

    def read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def send_json(self, status: int, payload: object, headers: dict[str, str] | None = None) -> None:
        raw = b"" if payload is None else json.dumps(payload).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(raw)

    def _serve(self) -> None:
        self.server.standin.serve(self)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _serve


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    standin: StandIn

    def handle_error(self, request: Any, client_address: Any) -> None:
        # connections cut by go_down()/stop() or by the client are not errors worth a traceback
        if isinstance(sys.exc_info()[1], OSError):
            return
        super().handle_error(request, client_address)


class StandIn:
    """An HTTP API on 127.0.0.1 (port chosen by the OS): `with MyStandIn() as api: api.url`."""

    name = "stand-in"
    poll_interval = 0.05  # how long stop() may wait for the serving thread

    def __init__(self) -> None:
        self.url = ""  # kept after stop(): a test can show what "the server is down" does
        self.requests: list[Any] = []
        self.faults: list[tuple[str, re.Pattern, int]] = []
        self._port = 0
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._connections: set[socket.socket] = set()
        self._plumbing = threading.Lock()

    # ---- lifecycle -------------------------------------------------------------------------
    def start(self):
        with self._plumbing:
            if self._server is not None:
                return self
            server = _Server(("127.0.0.1", self._port), StandInHandler)
            server.standin = self
            self._port = server.server_address[1]
            self.url = f"http://127.0.0.1:{self._port}"
            self._server = server
            self._thread = threading.Thread(
                target=server.serve_forever,
                kwargs={"poll_interval": self.poll_interval},
                name=f"{self.name}:{self._port}",
                daemon=True,
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        with self._plumbing:
            server, thread = self._server, self._thread
            self._server = self._thread = None
            connections = list(self._connections)
        if server is None:
            return
        server.shutdown()
        server.server_close()
        for conn in connections:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if thread is not None:
            thread.join(timeout=5)

    def go_down(self) -> None:
        """Close the listening socket and every open connection: connections are refused
        until `come_back()`, which listens again on the same port."""
        self.stop()

    def come_back(self) -> None:
        self.start()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _connection_opened(self, conn: socket.socket) -> None:
        with self._plumbing:
            self._connections.add(conn)

    def _connection_closed(self, conn: socket.socket) -> None:
        with self._plumbing:
            self._connections.discard(conn)

    # ---- fault injection -------------------------------------------------------------------
    def fail_next(self, method: str, path_regex: str, status: int = 500, count: int = 1) -> None:
        """Answer the next `count` requests `method` on a path matching `path_regex` with `status`."""
        with self._plumbing:
            self.faults.extend([(method, re.compile(path_regex), status)] * count)

    def injected_fault(self, method: str, path: str) -> int | None:
        """The status to answer this request with, if `fail_next` asked for one (used up)."""
        with self._plumbing:
            for n, (f_method, pattern, status) in enumerate(self.faults):
                if f_method == method and pattern.fullmatch(path):
                    del self.faults[n]
                    return status
        return None

    # ---- one request -----------------------------------------------------------------------
    def serve(self, h: StandInHandler) -> None:
        """Answer one request: by default, `handle()` and its JSON answer."""
        split = urlsplit(h.path)
        body = h.read_body()
        try:
            status, payload = self.handle(h.command, split.path, parse_qs(split.query, True), h.headers, body)
        except Exception as exc:  # a bug in the stand-in: say so loudly
            status, payload = 500, {"message": f"stand-in error: {type(exc).__name__}: {exc}"}
        h.send_json(status, payload)

    def handle(self, method: str, path: str, query: dict[str, list[str]], headers: Any, body: bytes) -> tuple[int, Any]:
        raise NotImplementedError(f"{type(self).__name__}: handle() or serve()")
