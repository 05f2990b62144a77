"""Exit codes of every PowerView program, in one place (sysexits.h where one fits).

The parser's code summarises its run; each file's own outcome is in the report. When several
apply, the highest in PRECEDENCE wins: the one that asks the operator (or the worker) to act
first. Documented in French in docs/utilisation-parseur.md.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0  # every file ingested (or nothing to do)
    REJECTED = 1  # at least one file moved to error/ (a fault in the file)
    USAGE = 2  # usage or configuration error, including a server that is not the InfluxDB expected
    SOFTWARE = 70  # internal error (a bug): the report says which file
    CANTCREAT = 73  # a file or the report could not be read, moved or written (permissions, disk)
    TEMPFAIL = 75  # InfluxDB unavailable: the files concerned are left in place, run again later

    @property
    def meaning(self) -> str:
        return _MEANINGS[self]


_MEANINGS = {
    ExitCode.OK: "every file ingested",
    ExitCode.REJECTED: "at least one file rejected for a fault of its own (error/)",
    ExitCode.USAGE: "usage or configuration error",
    ExitCode.SOFTWARE: "internal error",
    ExitCode.CANTCREAT: "a file or the report could not be read, moved or written",
    ExitCode.TEMPFAIL: "InfluxDB unavailable (files left in place)",
}

# most urgent first: a wrong configuration stops everything; a bug must be seen; an outage
# means "run again later" for the files concerned; then the environment; then the files' faults
PRECEDENCE = (ExitCode.USAGE, ExitCode.SOFTWARE, ExitCode.TEMPFAIL, ExitCode.CANTCREAT, ExitCode.REJECTED, ExitCode.OK)


def worst(codes) -> ExitCode:
    """The code that wins among `codes` (OK when empty)."""
    present = set(codes)
    for code in PRECEDENCE:
        if code in present:
            return code
    return ExitCode.OK


def describe(code: int | None) -> str:
    """`exit 75 (InfluxDB unavailable ...)` for logs; unknown codes are shown as they are."""
    if code is None:
        return "no exit code (not started, or killed)"
    try:
        return f"exit {code} ({ExitCode(code).meaning})"
    except ValueError:
        return f"exit {code}"
