"""`uploads.log`: one line per SFTPGo event and one per job outcome, written by the hook and the worker.

    2026-01-31T23:59:59.123Z action=upload user=acme path="/srv/sftpgo/data/a b.tsv" job=... result=queued duration=0.012s

Values that are not plain words are JSON-quoted, so a file name cannot break a line or forge
another one. Each line is a single `write` on a file opened with O_APPEND: lines from
concurrent hooks do not interleave.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from pathlib import Path

LOG_NAME = "uploads.log"
_PLAIN = re.compile(r"[A-Za-z0-9_.:/@+,=-]+\Z")
FIELD_ORDER = ("action", "user", "path", "target", "job", "result", "duration")


def _value(value: object) -> str:
    if isinstance(value, float):
        text = f"{value:.3f}"
    else:
        text = str(value)
    return text if _PLAIN.match(text) else json.dumps(text, ensure_ascii=False)


def timestamp(now: float | None = None) -> str:
    now = time.time() if now is None else now
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1000):03d}Z"


def format_line(now: float | None = None, **fields: object) -> str:
    """One line: timestamp then `key=value` pairs (known keys first), None values left out."""
    keys = [k for k in FIELD_ORDER if k in fields] + sorted(k for k in fields if k not in FIELD_ORDER)
    parts = [timestamp(now)]
    for key in keys:
        value = fields[key]
        if value is None:
            continue
        if key == "duration" and isinstance(value, (int, float)):
            parts.append(f"duration={value:.3f}s")
        else:
            parts.append(f"{key}={_value(value)}")
    return " ".join(parts) + "\n"


def write(log_dir: Path, **fields: object) -> str:
    """Append one line to `<log_dir>/uploads.log` (stderr if that fails). Returns the line."""
    line = format_line(None, **fields)
    data = line.encode("utf-8", "replace")
    try:
        Path(log_dir).mkdir(parents=True, exist_ok=True)
        fd = os.open(Path(log_dir) / LOG_NAME, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)
    except OSError as exc:
        sys.stderr.write(f"powerview: cannot write {Path(log_dir) / LOG_NAME}: {exc}\n{line}")
    return line
