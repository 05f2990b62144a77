"""What the small command-line tools share: logs on stderr under the tool's name, one-line errors."""

from __future__ import annotations

import logging
import sys
from typing import NoReturn

import click

from . import logsafe

NOISY_LIBRARIES = ("influxdb_client", "urllib3", "reactivex")


def configure_logging(prog: str, level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(f"{prog}: %(levelname)s %(message)s"))
    logsafe.protect(handler)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    ours = logging.getLogger("powerview")  # an earlier setup in the same process (the worker's) set its own
    ours.handlers.clear()
    ours.propagate = True
    ours.setLevel(logging.NOTSET)
    for noisy in NOISY_LIBRARIES:
        logging.getLogger(noisy).setLevel(logging.WARNING)


def fail(prog: str, code: int, message: str) -> NoReturn:
    """One line on stderr, then exit with `code` (an exitcodes.ExitCode)."""
    click.echo(f"{prog}: error: {message}", err=True)
    sys.exit(code)
