"""Device file readers, picked from the file's content (never from its name).

    device = open_device_file(stream, rules)     # header read; FileFault if the file is bad
    device.header.channels, device.header.master_sn, ...
    for epoch_s, texts in device.rows: ...        # once
    summary = device.rows.summary()               # counters, stats, time range, warnings

Readers know nothing about InfluxDB. A new logger family: a module with `detect` and `read`,
a `Reader` appended to READERS, test cases in tests/formats/<family>/ (see README.md here).
"""

from __future__ import annotations

from typing import TextIO

from . import t302
from .common import (  # noqa: F401  (re-exported)
    Channel,
    ChannelStats,
    Counters,
    DeviceFile,
    FileFault,
    Header,
    Reader,
    RowPass,
    RowRules,
    RowSummary,
)
from .lines import MAX_LINE_CHARS, LineSource  # noqa: F401

COUNTER_NAMES = Counters.COUNTER_NAMES
DETECT_LINES = 2  # first lines given to each reader's detect()

# The plug-in point: tried in order, the first whose detect() answers True reads the file.
READERS: list[Reader] = [t302.V003_READER, t302.V002_READER]


def supported() -> tuple[str, ...]:
    return tuple(reader.format for reader in READERS)


def open_device_file(stream: TextIO, rules: RowRules, readers: list[Reader] | None = None) -> DeviceFile:
    """Read the header of `stream` (a text stream opened with newline="\\n") with the reader that
    recognises its first lines; the rows stay to be read from the returned DeviceFile."""
    source = LineSource(stream)
    first_lines = []
    for _ in range(DETECT_LINES):
        line = source.readline()
        if not line:
            break
        first_lines.append(line)
    if not first_lines:
        raise FileFault("the file is empty", line=None, rule="a device file has a header and data rows")
    for line in reversed(first_lines):
        source.unread(line)
    for reader in readers if readers is not None else READERS:
        if reader.detect(first_lines):
            return reader.read(source, rules)
    starts = "; ".join(
        f"line {n} starts with {line.split(chr(9), 1)[0].strip()[:40]!r}" for n, line in enumerate(first_lines, start=1)
    )
    raise FileFault(
        f"unknown file format ({starts})", line=len(first_lines), rule=f"supported formats: {', '.join(supported())}"
    )
