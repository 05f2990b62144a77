"""uploads.log as the acceptance run reads it: the key=value fields of a line, and the lines the
log gained since the run started."""

from __future__ import annotations

import json
import re
from pathlib import Path

_FIELD = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*"|\S+)')


def parse_log_line(line: str) -> dict[str, str]:
    """The key=value fields of one uploads.log line (quoted values decoded)."""
    out = {}
    for key, value in _FIELD.findall(line):
        if value.startswith('"'):
            try:
                value = json.loads(value)
            except ValueError:
                pass
        out[key] = value
    return out


class LogTail:
    """The lines uploads.log gained since this object was made."""

    def __init__(self, path: Path):
        self.path = path
        try:
            self.offset = path.stat().st_size
        except FileNotFoundError:
            self.offset = 0

    def lines(self) -> list[dict[str, str]]:
        try:
            with open(self.path, "rb") as log:
                log.seek(self.offset)
                text = log.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return []
        return [parse_log_line(line) for line in text.splitlines() if line.strip()]
