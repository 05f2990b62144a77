"""What every PowerView program shares on its command line: `-h`/`--help`, the `--env-file` and
`--log-level` options, the exit codes' epilog (from exitcodes.ExitCode), one logging setup (logs on
stderr, one line each, control characters escaped and URL credentials masked: logsafe), and
`fail()`: one line `<program>: error: <message>` on stderr, then the exit code.

Imports stay light (click and the exit codes): `--help` reads no settings and loads no client.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click

from powerview.core import logsafe
from powerview.core.exitcodes import ExitCode, exit_codes_text

# the handler's class: while parse's progress bar is drawn on stderr, log lines clear it first
StderrHandler = logsafe.StderrHandler

F = TypeVar("F", bound=Callable[..., Any])

# every program: -h as well as --help, help wrapped at 100 columns
CONTEXT_SETTINGS: dict[str, Any] = {"help_option_names": ["-h", "--help"], "max_content_width": 100}
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
NOISY_LIBRARIES = ("influxdb_client", "urllib3", "reactivex")
ENV_FILE_HELP = (
    "Settings file (default: POWERVIEW_ENV_FILE, else .env in the project folder); the environment wins over it."
)


def epilog(codes: Mapping[ExitCode, str] | Iterable[ExitCode], title: str = "Exit codes", more: str = "") -> str:
    """A click epilog: the exit codes (exit_codes_text), kept as written, then `more`."""
    return "\b\n" + exit_codes_text(codes, title) + (f"\b\n{more.strip(chr(10))}\n" if more else "")


def env_file_option(function: F) -> F:
    """--env-file FILE (env POWERVIEW_ENV_FILE). The program checks it with check_env_file()."""
    return click.option(
        "--env-file",
        type=click.Path(path_type=Path, dir_okay=False),
        default=None,
        envvar="POWERVIEW_ENV_FILE",
        help=ENV_FILE_HELP,
    )(function)


def log_level_option(function: F) -> F:
    """--log-level LEVEL (default: TSV_LOG_LEVEL of the settings, else INFO)."""
    return click.option(
        "--log-level",
        type=click.Choice(LOG_LEVELS, case_sensitive=False),
        default=None,
        help="Log verbosity on stderr (env TSV_LOG_LEVEL, default INFO).",
    )(function)


def check_env_file(prog: str, env_file: Path | None) -> None:
    """A settings file named but absent is a usage error (a silent default would hide the typo);
    /dev/null is an empty one (no settings but the environment)."""
    if env_file is not None and (not env_file.exists() or env_file.is_dir()):
        fail(prog, ExitCode.USAGE, f"--env-file {env_file}: no such file")


def fail(prog: str, code: int, message: str) -> NoReturn:
    """One line on stderr, then exit with `code` (an exitcodes.ExitCode)."""
    click.echo(f"{prog}: error: {message}", err=True)
    sys.exit(code)


@contextmanager
def influx_failures(prog: str, refused: str = "InfluxDB refused", internal: bool = False) -> Iterator[None]:
    """The block's failures as one line and their exit code: a setting (2), InfluxDB unavailable
    (75), a request InfluxDB refuses (2, after `refused`); with `internal`, any other exception is a
    bug (70, its traceback logged)."""
    from powerview.core.settings import ConfigError
    from powerview.delivery.influx import InfluxRejected, InfluxUnavailable

    try:
        yield
    except ConfigError as exc:
        fail(prog, ExitCode.USAGE, str(exc))
    except InfluxUnavailable as exc:
        fail(prog, ExitCode.TEMPFAIL, str(exc))
    except InfluxRejected as exc:
        fail(prog, ExitCode.USAGE, f"{refused}: {exc}")
    except Exception as exc:
        if not internal:
            raise
        logging.getLogger("powerview").exception("internal error")
        fail(prog, ExitCode.SOFTWARE, f"internal error {type(exc).__name__}: {exc}")


def configure_logging(prog: str | None, level: str, stream=None) -> logging.Handler:
    """Every log line on stderr (or `stream`), at `level` and above: `<prog>: LEVEL message`, or,
    with prog None (the parser, whose lines go to the worker's log), `<time> LEVEL message`.
    Returns the handler."""
    line_format = "%(asctime)s %(levelname)s %(message)s" if prog is None else f"{prog}: %(levelname)s %(message)s"
    handler = logsafe.handler(sys.stderr if stream is None else stream, line_format)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    ours = logging.getLogger("powerview")  # an earlier setup in the same process (the worker's) set its own
    ours.handlers.clear()
    ours.propagate = True
    ours.setLevel(logging.NOTSET)
    for noisy in NOISY_LIBRARIES:
        logging.getLogger(noisy).setLevel(logging.WARNING)
    return handler
