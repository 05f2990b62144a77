"""A stand-in for the three client-id endpoints of powerview-config-api that the onboarding uses.

The contract (fixed with the config API's authors):
  PUT    /clients/{clientId}  {"bucket": "<company>"}  201 created | 200 already there with that bucket
                                                       | 409 there with another bucket | 422 bad body
  GET    /clients/{clientId}                           200 {"clientId", "bucket"} | 404
  DELETE /clients/{clientId}                           204 | 404
With a token, every call needs `Authorization: Bearer <token>` (401 otherwise).
`clients` is the state ({clientId: bucket}); `requests` lists (method, path, authorized).
"""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit


class ConfigApiStandIn:
    def __init__(self, token: str | None = None):
        self.token = token
        self.clients: dict[str, str] = {}
        self.requests: list[tuple[str, str, bool]] = []
        self.lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self.url = ""

    def start(self) -> ConfigApiStandIn:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), type("H", (_Handler,), {"app": self}))
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        return self

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> ConfigApiStandIn:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def handle(self, method: str, path: str, auth: str, body: bytes) -> tuple[int, object]:
        authorized = self.token is None or auth == f"Bearer {self.token}"
        with self.lock:
            self.requests.append((method, path, authorized))
            if not authorized:
                return 401, {"detail": "Not authenticated"}
            parts = path.split("/")
            if len(parts) != 3 or parts[1] != "clients" or not parts[2]:
                return 404, {"detail": "Not Found"}
            client_id = unquote(parts[2])
            if method == "GET":
                if client_id not in self.clients:
                    return 404, {"detail": "client not found"}
                return 200, {"clientId": client_id, "bucket": self.clients[client_id]}
            if method == "DELETE":
                return (
                    (204, None)
                    if self.clients.pop(client_id, None) is not None
                    else (404, {"detail": "client not found"})
                )
            if method == "PUT":
                try:
                    bucket = json.loads(body)["bucket"]
                    assert isinstance(bucket, str) and bucket
                except (ValueError, KeyError, TypeError, AssertionError):
                    return 422, {"detail": 'body must be {"bucket": "<name>"}'}
                known = self.clients.get(client_id)
                if known is None:
                    self.clients[client_id] = bucket
                    return 201, {"clientId": client_id, "bucket": bucket}
                if known == bucket:
                    return 200, {"clientId": client_id, "bucket": bucket}
                return 409, {"detail": f"client {client_id} is registered with another bucket"}
            return 405, {"detail": "Method Not Allowed"}


class _Handler(BaseHTTPRequestHandler):
    app: ConfigApiStandIn
    protocol_version = "HTTP/1.1"

    def setup(self):
        super().setup()
        # one response = headers then body in two writes: without TCP_NODELAY the second waits for
        # the client's delayed ACK (40 ms a request on Linux)
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format, *args):
        pass

    def _serve(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        status, payload = self.app.handle(method, urlsplit(self.path).path, self.headers.get("Authorization", ""), body)
        raw = b"" if payload is None else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def do_GET(self):
        self._serve("GET")

    def do_PUT(self):
        self._serve("PUT")

    def do_DELETE(self):
        self._serve("DELETE")
