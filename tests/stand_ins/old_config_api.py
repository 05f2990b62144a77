"""A stand-in for the deployed powerview-config-api 0.3.2 (its source is not public), answering
the calls known from the deployed installation:

  GET /clients/{clientId}/series-config/configs?campaign=<campaign>
      what the deployed dashboards read (JSON data source, urlPath of dashboard2.json.j2):
      200 a JSON list, one entry per channel; 404 {"detail": "..."} for a client it does not know
  GET /buckets/{bucket}/channels
      the catalogue that its parser and backfill_known_channels.py fed (POST of the same path):
      200 a JSON list of {campaign, fieldId, channelId, channelUnit, channelLabel, deviceMasterSn}

The entries carry the field names the new API kept (fieldId, displayName, visible, unit, order,
color, and the catalogue fields). It never changes: every other call is 405, so a test proves
the import only reads it. `requests` lists (method, path, query).
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit


class OldConfigApiStandIn:
    def __init__(self, configs: dict[tuple[str, str], list[dict]], channels: dict[str, list[dict]] | None = None):
        self.configs = configs  # (clientId, campaign) -> entries
        self.channels = channels or {}  # bucket -> catalogue
        self.requests: list[tuple[str, str, dict]] = []
        self._server: ThreadingHTTPServer | None = None
        self.url = ""

    def start(self) -> OldConfigApiStandIn:
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

    def __enter__(self) -> OldConfigApiStandIn:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def handle(self, method: str, raw_path: str) -> tuple[int, object]:
        split = urlsplit(raw_path)
        parts = [unquote(p) for p in split.path.strip("/").split("/")]
        query = {k: v[0] for k, v in parse_qs(split.query).items()}
        self.requests.append((method, split.path, query))
        if method != "GET":
            return 405, {"detail": "Method Not Allowed"}
        if len(parts) == 4 and parts[0] == "clients" and parts[2:] == ["series-config", "configs"]:
            client_id = parts[1]
            if not any(cid == client_id for cid, _ in self.configs):
                return 404, {"detail": f"Client {client_id} not found"}
            campaign = query.get("campaign")
            return 200, [
                e for (cid, c), entries in self.configs.items() if cid == client_id and c == campaign for e in entries
            ]
        if len(parts) == 3 and parts[0] == "buckets" and parts[2] == "channels":
            return 200, list(self.channels.get(parts[1], []))
        return 404, {"detail": "Not Found"}


class _Handler(BaseHTTPRequestHandler):
    app: OldConfigApiStandIn

    def log_message(self, *args) -> None:
        pass

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        status, body = self.app.handle(self.command, self.path)
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_DELETE = _serve
