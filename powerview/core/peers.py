"""Calls to the services PowerView depends on (InfluxDB, the config API, Grafana).

* A total deadline per call (`deadline`, DeadlineExpired): a socket timeout bounds each socket
  operation, not the call: a proxy that sends one byte a second keeps a call open for ever. The
  deadline is an interval timer (SIGALRM) of the main thread; elsewhere (another thread) only the
  socket timeouts apply. `peer_requests.Session` puts it around every requests call.
* URLs without credentials. `CONFIG_API_URL=https://user:pass@proxy/...` (basic auth of a
  reverse proxy) works, but the password never reaches a log, a report, an outbox or a message:
  `redact_url`, `redact_text`.

This module does not import requests (`peer_requests` does): a parser run, whose calls to
InfluxDB go through the standard library (`delivery/influx_http.py`), does not load it at all.
"""

from __future__ import annotations

import re
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit, urlunsplit


class DeadlineExpired(TimeoutError):
    """No complete answer within the call's total deadline (`deadline`). A TimeoutError, so an
    OSError: retried like any transport error; `peer_requests.Session` turns it into its
    PeerTimeout, a requests exception."""


class _Expired(BaseException):
    """Raised by the alarm inside the call (a BaseException: no library's `except Exception`
    swallows it); turned into DeadlineExpired at the deadline's boundary."""


def _can_alarm() -> bool:
    return threading.current_thread() is threading.main_thread() and hasattr(signal, "setitimer")


@contextmanager
def deadline(seconds: float | None, what: str = "the request") -> Iterator[None]:
    """Raise DeadlineExpired in the block once `seconds` have passed. An enclosing deadline that
    falls sooner stays in force; it is restored on the way out."""
    if seconds is None or not _can_alarm():
        yield
        return
    seconds = max(0.001, float(seconds))
    outer_left, _ = signal.getitimer(signal.ITIMER_REAL)
    if 0 < outer_left <= seconds:  # the enclosing deadline comes first: it decides
        yield
        return
    started = time.monotonic()
    state = {"armed": True}

    def expire(signum, frame):  # noqa: ARG001
        if state["armed"]:
            raise _Expired(state)

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    except _Expired as exc:
        if exc.args and exc.args[0] is state:
            raise DeadlineExpired(f"{what}: no complete answer within {seconds:g} s") from None
        raise
    finally:
        state["armed"] = False
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if outer_left > 0:
            signal.setitimer(signal.ITIMER_REAL, max(0.001, outer_left - (time.monotonic() - started)))


def total_of(timeout) -> float | None:
    """The total deadline of a requests `timeout` (a number, or a (connect, read) pair)."""
    if timeout is None:
        return None
    if isinstance(timeout, tuple):
        parts = [t for t in timeout if t is not None]
        return sum(parts) if parts else None
    return float(timeout)


# -- credentials in URLs ---------------------------------------------------------------------

_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/?#@\s]*@")


def redact_url(url: str | None) -> str:
    """`url` without its user and password (`https://***@proxy/...`)."""
    if not url:
        return url or ""
    try:
        parts = urlsplit(url)
    except ValueError:
        return _USERINFO.sub(r"\1***@", url)
    if "@" not in parts.netloc:
        return url
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, f"***@{host}", parts.path, parts.query, parts.fragment))


def redact_text(text: str) -> str:
    """`text` with the credentials of every URL in it masked."""
    return _USERINFO.sub(r"\1***@", text)
