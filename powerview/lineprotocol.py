"""InfluxDB line protocol: escaping, per-channel prefixes computed once, rows -> batches of bytes.

Reference: InfluxDB line protocol, "Special characters": in the measurement escape commas and
spaces; in tag keys, tag values and field keys escape commas, equals signs and spaces. Empty
tag values are not allowed: such tags are left out. Backslashes are not escaped consistently
across InfluxDB versions, so the readers refuse them in labels and `escape_key` replaces them.
Field values are written as floats (`repr(float)`: shortest text that round-trips), so a `0`
in a file is the float 0.0, never an integer.
"""

from __future__ import annotations

from typing import Iterable, Iterator, Mapping, Sequence

MEASUREMENT = "electrical"

_KEY_ESCAPES = str.maketrans({",": r"\,", "=": r"\=", " ": r"\ ", "\\": "/", "\n": " ", "\r": " ", "\t": " "})
_MEASUREMENT_ESCAPES = str.maketrans({",": r"\,", " ": r"\ ", "\\": "/", "\n": " ", "\r": " ", "\t": " "})


def escape_key(text: str) -> str:
    """Escape a tag key, tag value or field key."""
    return text.translate(_KEY_ESCAPES)


def escape_measurement(text: str) -> str:
    return text.translate(_MEASUREMENT_ESCAPES)


def tag_set(tags: Mapping[str, str]) -> str:
    """`,k=v,k=v` sorted by key (what InfluxDB prefers), empty values left out."""
    return "".join(f",{escape_key(k)}={escape_key(v)}" for k, v in sorted(tags.items()) if v != "")


def line_prefix(measurement: str, tags: Mapping[str, str], field: str) -> str:
    """Everything before the field value: `measurement,tags field=`."""
    return f"{escape_measurement(measurement)}{tag_set(tags)} {escape_key(field)}="


def format_fields(fields: Mapping[str, float | int | str | bool]) -> str:
    parts = []
    for key, value in fields.items():
        if isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, int):
            text = f"{value}i"
        elif isinstance(value, float):
            text = repr(value)
        else:
            text = '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'
        parts.append(f"{escape_key(key)}={text}")
    return ",".join(parts)


def line(measurement: str, tags: Mapping[str, str], fields: Mapping, timestamp: int) -> str:
    """One complete line (used for the few meta points, not on the hot path)."""
    return f"{escape_measurement(measurement)}{tag_set(tags)} {format_fields(fields)} {timestamp}\n"


def batches(prefixes: Sequence[str], rows: Iterable[tuple[int, list]], batch_lines: int) -> Iterator[tuple[bytes, int]]:
    """Rows `(epoch_s, values)` -> `(body, nb_lines)` batches of about `batch_lines` lines.

    `values[k]` is None (skipped) or `(float, text)`; `prefixes[k]` is the channel's prefix.
    The hot path: one string concatenation per point, one join per batch.
    """
    buffer: list[str] = []
    append = buffer.append
    for ts, values in rows:
        suffix = f" {ts}\n"
        for prefix, value in zip(prefixes, values):
            if value is not None:
                append(prefix + value[1] + suffix)
        if len(buffer) >= batch_lines:
            yield "".join(buffer).encode(), len(buffer)
            buffer.clear()
    if buffer:
        yield "".join(buffer).encode(), len(buffer)
