"""Device file readers, picked from the file's content (never from its name).

A reader turns an open text stream into a `Table` (the channels, from the header lines) and a
stream of rows. Readers know nothing about InfluxDB. Register a new family in READERS.
"""

from __future__ import annotations

from typing import TextIO

from . import t302
from .common import FileFault, RowRules, Table  # noqa: F401  (re-exported)

# format identifier found in the file -> reader
READERS = {
    "MV_T302_V002": t302.read_v002,
    "MV_T302_V003": t302.read_v003,
}
SUPPORTED = tuple(READERS)


def open_table(stream: TextIO, rules: RowRules) -> Table:
    """Read the header of `stream` and return its Table, whose `rows()` streams the data."""
    first = stream.readline()
    if not first:
        raise FileFault("the file is empty", line=None, rule="a device file has a header and data rows")
    if first.rstrip("\r\n").strip() == t302.V003_START_HEADER:
        return READERS["MV_T302_V003"](stream, first, rules)
    second = stream.readline()
    format_id = second.split("\t", 1)[0].strip()
    reader = READERS.get(format_id)
    if reader is None or format_id == "MV_T302_V003":
        found = repr(format_id) if format_id else "nothing"
        raise FileFault(f"unknown file format: found {found} at the start of line 2",
                        line=2, rule=f"supported formats: {', '.join(SUPPORTED)}")
    return reader(stream, first, rules, second)
