"""powerview.core.peers: the total deadline of a call and URLs without credentials; logsafe."""

from __future__ import annotations

import logging
import signal
import time

import pytest

from powerview.core import logsafe, peers


def test_a_deadline_interrupts_a_blocking_call_and_restores_the_timer():
    started = time.monotonic()
    with pytest.raises(peers.DeadlineExpired, match="within 0.2 s"):
        with peers.deadline(0.2, "GET x"):
            time.sleep(5)
    assert time.monotonic() - started < 2
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)
    with peers.deadline(1.0):
        pass  # a call that ends in time is not disturbed, and no alarm is left behind
    time.sleep(1.2)


def test_an_enclosing_deadline_that_falls_sooner_decides_and_a_later_one_is_restored():
    with pytest.raises(peers.DeadlineExpired, match="within 0.2 s"):
        with peers.deadline(0.2, "outer"):
            with peers.deadline(10, "inner"):
                time.sleep(5)
    with pytest.raises(peers.DeadlineExpired, match="outer: no complete answer within 0.6 s"):
        with peers.deadline(0.6, "outer"):
            with peers.deadline(0.1, "inner"):
                pass
            assert 0 < signal.getitimer(signal.ITIMER_REAL)[0] <= 0.6  # the outer one runs again
            time.sleep(5)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://user:pa55@proxy:8443/api?x=1", "https://***@proxy:8443/api?x=1"),
        ("http://token@proxy/", "http://***@proxy/"),
        ("http://proxy/path@x", "http://proxy/path@x"),
        ("", ""),
    ],
)
def test_redact_url(url, shown):
    assert peers.redact_url(url) == shown
    assert peers.redact_text(f"POST {url}: refused") == f"POST {shown}: refused"


def test_log_lines_escape_control_characters_and_mask_url_passwords(capsys):
    logger = logging.getLogger("test_peers_logsafe")
    handler = logsafe.protect(logging.StreamHandler())
    logger.addHandler(handler)
    try:
        logger.error("file %s via %s", "a\nFORGED\x1b[2J.tsv", "https://u:pa55@h/")
    finally:
        logger.removeHandler(handler)
    err = capsys.readouterr().err
    assert err == "file a\\nFORGED\\x1b[2J.tsv via https://***@h/\n"
