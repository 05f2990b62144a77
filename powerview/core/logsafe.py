"""Log lines that stay one line each and never show a secret.

File, folder, company and device names are untrusted (they come from SFTP uploads): a name with
a newline would forge a log line. `EscapeControls`, a filter on every handler PowerView sets up,
writes control characters as escapes (`\\n`, `\\x1b`) and masks the credentials of any URL in
the message (`https://***@proxy/...`).
"""

from __future__ import annotations

import logging
import re

from powerview.core.peers import redact_text

_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f\x85\u2028\u2029]")
_NAMED = {"\n": "\\n", "\r": "\\r"}


def escape_controls(text: str) -> str:
    """`text` with every control character but the tab written as an escape."""
    return _CONTROL.sub(lambda m: _NAMED.get(m.group(), m.group().encode("unicode_escape").decode("ascii")), text)


class EscapeControls(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a bad format string is logging's to report
            return True
        safe = escape_controls(redact_text(message))
        if safe != message:
            record.msg, record.args = safe, ()
        return True


def protect(handler: logging.Handler) -> logging.Handler:
    """Add the filter to `handler` (once); returns it."""
    if not any(isinstance(f, EscapeControls) for f in handler.filters):
        handler.addFilter(EscapeControls())
    return handler


class StderrHandler(logging.StreamHandler):
    """Log lines on stderr; while a progress bar is drawn there (`bar_active`), each line first
    clears the bar's line (the bar redraws itself on its next step)."""

    bar_active = False

    def emit(self, record: logging.LogRecord) -> None:
        if StderrHandler.bar_active:
            self.stream.write("\r\x1b[K")
        super().emit(record)


TIME_FORMAT = "%Y-%m-%dT%H:%M:%S%z"


def handler(stream, line_format: str) -> logging.Handler:
    """A handler writing `line_format` lines to `stream`, one line each whatever the message
    (control characters escaped) and never a URL's credentials."""
    made = StderrHandler(stream)
    made.setFormatter(logging.Formatter(line_format, TIME_FORMAT))
    return protect(made)  # a file name with a newline cannot forge a line
