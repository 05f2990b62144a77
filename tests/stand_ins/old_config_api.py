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

from urllib.parse import unquote

from .base import StandIn


class OldConfigApiStandIn(StandIn):
    name = "old-config-api-stand-in"

    def __init__(self, configs: dict[tuple[str, str], list[dict]], channels: dict[str, list[dict]] | None = None):
        super().__init__()
        self.configs = configs  # (clientId, campaign) -> entries
        self.channels = channels or {}  # bucket -> catalogue
        self.requests: list[tuple[str, str, dict]] = []

    def handle(self, method: str, path: str, query: dict, headers, body: bytes) -> tuple[int, object]:
        parts = [unquote(p) for p in path.strip("/").split("/")]
        first = {k: v[0] for k, v in query.items()}
        self.requests.append((method, path, first))
        if method != "GET":
            return 405, {"detail": "Method Not Allowed"}
        if len(parts) == 4 and parts[0] == "clients" and parts[2:] == ["series-config", "configs"]:
            client_id = parts[1]
            if not any(cid == client_id for cid, _ in self.configs):
                return 404, {"detail": f"Client {client_id} not found"}
            campaign = first.get("campaign")
            return 200, [
                e for (cid, c), entries in self.configs.items() if cid == client_id and c == campaign for e in entries
            ]
        if len(parts) == 3 and parts[0] == "buckets" and parts[2] == "channels":
            return 200, list(self.channels.get(parts[1], []))
        return 404, {"detail": "Not Found"}
