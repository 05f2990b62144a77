"""InfluxDB line protocol: escaping, per-channel prefixes computed once, rows -> batches of bytes.

Reference: InfluxDB line protocol, "Special characters": in the measurement escape commas and
spaces; in tag keys, tag values and field keys escape commas, equals signs and spaces. Empty
tag values are not allowed: such tags are left out. Backslashes are not escaped consistently
across InfluxDB versions, so the readers refuse them in labels and `escape_key` replaces them.
Field values are written as floats (`repr(float)`: shortest text that round-trips), so a `0`
in a file is the float 0.0, never an integer.

Key size: InfluxDB refuses a point whose series key (measurement and tag set, as written) exceeds
65,535 bytes ("max key length exceeded", `models.MaxKeyLength`); its storage engine keys a value by
series key + "#!~#" + field key, under the same 16-bit length. `key_problem` checks both before
anything is sent.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence

MAX_KEY_BYTES = 65535
_FIELD_SEPARATOR = "#!~#"

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


def key_problem(measurement: str, tags: Mapping[str, str], field: str) -> str | None:
    """Why InfluxDB would refuse the points of this series and field (key too long), or None."""
    series_bytes = len((escape_measurement(measurement) + tag_set(tags)).encode())
    total = series_bytes + len(_FIELD_SEPARATOR) + len(escape_key(field).encode())
    if total > MAX_KEY_BYTES:
        return (
            f"its series key and field key take {total} bytes as line protocol, over InfluxDB's "
            f"limit of {MAX_KEY_BYTES}"
        )
    return None


def batches(prefixes: Sequence[str], rows: Iterable[tuple[int, list]], batch_lines: int) -> Iterator[tuple[bytes, int]]:
    """Rows `(epoch_s, texts)` -> `(body, nb_lines)` batches of about `batch_lines` lines, cut
    between rows.

    `texts[k]` is the value's text or None (skipped); `prefixes[k]` is the channel's prefix.
    The hot path: a row whose values are all present is one string join over a list that holds
    the prefixes once and, per row, the values and the timestamp suffix put in by slice
    assignment (no intermediate string per value). Rows are encoded one by one (small buffers,
    reused by the allocator) and a batch is one join of bytes: no batch-sized text in between,
    which would cost page faults on every batch.
    """
    buffer: list[bytes] = []
    append = buffer.append
    nb_lines = 0
    width = len(prefixes)
    parts: list = [None] * (3 * width)  # prefix, value, " <ts>\n" for every channel, in order
    parts[0::3] = prefixes
    for ts, texts in rows:
        suffix = f" {ts}\n"
        try:
            parts[1::3] = texts
            parts[2::3] = [suffix] * width
            append("".join(parts).encode())
            nb_lines += width
        except (TypeError, ValueError):  # a skipped value (None) in the row, or not one text per channel
            lines = [prefix + text + suffix for prefix, text in zip(prefixes, texts) if text is not None]
            if lines:
                append("".join(lines).encode())
                nb_lines += len(lines)
        if nb_lines >= batch_lines:
            yield b"".join(buffer), nb_lines
            buffer.clear()
            nb_lines = 0
    if buffer:
        yield b"".join(buffer), nb_lines
