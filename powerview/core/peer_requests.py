"""Calls through requests with the total deadline of `peers.deadline`: a `Session` whose
`timeout` bounds each whole request (connect, send, the complete answer), raising `PeerTimeout`
(a requests.Timeout, so every `except requests.RequestException` handles it), and `request`.
Used by the config API and Grafana clients and the operators' InfluxDB tools; a parser run does
not import it."""

from __future__ import annotations

import requests

from powerview.core.peers import DeadlineExpired, deadline, redact_url, total_of


class PeerTimeout(requests.exceptions.Timeout):
    """No complete answer within the request's total deadline."""


class Session(requests.Session):
    """A requests.Session whose `timeout` bounds each whole request (PeerTimeout)."""

    def request(self, method, url, *args, **kwargs):  # type: ignore[override]
        try:
            with deadline(total_of(kwargs.get("timeout")), f"{method} {redact_url(str(url))}"):
                return super().request(method, url, *args, **kwargs)
        except DeadlineExpired as exc:
            raise PeerTimeout(str(exc)) from None


def request(method: str, url: str, **kwargs) -> requests.Response:
    """`requests.request` with a total deadline (its `timeout`)."""
    with Session() as session:
        return session.request(method, url, **kwargs)
