"""Client ids in powerview-config-api: which bucket a dashboard's series configuration reads.

The contract (fixed with the config API):
  PUT    {CONFIG_API_URL}/clients/{clientId}  {"bucket": "<company>"}
         201 created, 200 already there with that bucket, 409 there with another bucket
  GET    {CONFIG_API_URL}/clients/{clientId}  200 {"clientId", "bucket"} | 404
  DELETE {CONFIG_API_URL}/clients/{clientId}  204 | 404
  `Authorization: Bearer <CONFIG_API_TOKEN>` when CONFIG_API_TOKEN is set.
"""

from __future__ import annotations

from typing import Any

import requests

from powerview.core import peer_requests, peers

from .client import seg


class ConfigApiError(Exception):
    """The config API refused, or could not be reached; the message never holds the token."""


class ConfigApi:
    def __init__(self, url: str, token: str | None = None, timeout: float = 10.0):
        self.url = url.rstrip("/")
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.timeout = timeout

    def _call(self, method: str, client_id: str, ok: tuple[int, ...], json: Any = None) -> requests.Response:
        path = f"/clients/{seg(client_id)}"
        try:
            reply = peer_requests.request(
                method, self.url + path, json=json, headers=self.headers, timeout=self.timeout
            )
        except requests.RequestException as exc:
            raise ConfigApiError(
                f"config API at {peers.redact_url(self.url)} cannot be reached ({type(exc).__name__}): check CONFIG_API_URL"
            ) from None
        if reply.status_code not in ok:
            detail = reply.text[:200].strip()
            if reply.status_code == 409:
                raise ConfigApiError(
                    f"config API: client id {client_id} is registered with another bucket "
                    f"(HTTP 409 from PUT {path}): {detail}"
                )
            hint = " (check CONFIG_API_TOKEN)" if reply.status_code in (401, 403) else ""
            raise ConfigApiError(f"config API answered HTTP {reply.status_code} to {method} {path}{hint}: {detail}")
        return reply

    def bucket_of(self, client_id: str) -> str | None:
        """The bucket `client_id` is registered with, None when it is not registered."""
        reply = self._call("GET", client_id, ok=(200, 404))
        if reply.status_code == 404:
            return None
        try:
            return reply.json()["bucket"]
        except (ValueError, KeyError, TypeError):
            raise ConfigApiError(
                f'config API: GET /clients/{client_id} did not answer {{"clientId", "bucket"}}'
            ) from None

    def register(self, client_id: str, bucket: str) -> bool:
        """Register `client_id` → `bucket`; True when the API created it (201)."""
        return self._call("PUT", client_id, ok=(200, 201), json={"bucket": bucket}).status_code == 201

    def unregister(self, client_id: str) -> bool:
        """True when it was registered (204), False when it was not (404)."""
        return self._call("DELETE", client_id, ok=(204, 404)).status_code == 204
