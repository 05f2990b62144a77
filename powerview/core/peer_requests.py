"""The requests side of `peers` (imported by `peers` on first use, never directly by a program
that only needs deadlines): `PeerTimeout` and a `Session` whose `timeout` bounds each whole
request."""

from __future__ import annotations

import requests

from powerview.core.peers import deadline, redact_url, total_of


class PeerTimeout(requests.exceptions.Timeout):
    """No complete answer within the request's total deadline."""


class Session(requests.Session):
    """A requests.Session whose `timeout` bounds each whole request (PeerTimeout)."""

    def request(self, method, url, *args, **kwargs):  # type: ignore[override]
        with deadline(total_of(kwargs.get("timeout")), f"{method} {redact_url(str(url))}"):
            return super().request(method, url, *args, **kwargs)
