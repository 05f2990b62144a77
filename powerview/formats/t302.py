"""T302 logger files: MV_T302_V002 (two header lines) and MV_T302_V003 (JSON header + data block).

Channel schema (the existing dashboards depend on it): for column i >= 1, device_sn = SN line[i],
master = SN line[0]; channels are numbered per device in column order (n = 1, 2, ...):
tri master: U1..U3 then Ch1...; mono master: U1 then Ch1...; slave: Ch1...
"""

from __future__ import annotations

import json
import re
from typing import TextIO
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .common import Channel, FileFault, RowRules, Table

V003_START_HEADER = "START_HEADER"
V003_END_HEADER = "END_HEADER"
V003_START_DATA = "START_DATA"
V003_END_DATA = "END_DATA"
TRI_PHASES = {"Ph 1", "Ph 2", "Ph 3"}
MAX_HEADER_LINES = 50

_SERIAL = re.compile(r"[A-Za-z0-9_-]{1,32}\Z")
_FORBIDDEN_IN_LABEL = re.compile(r"[\\\x00-\x1f\x7f]")


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.rstrip("\r\n").split("\t")]


def build_table(fmt: str, stream: TextIO, sn_line: str, sn_lineno: int, label_line: str,
                rules: RowRules, tz_name: str, master_type: str | None, header_meta: dict | None,
                end_marker: str | None) -> Table:
    """The channel table from the SN line and the label line; `master_type` None = from labels."""
    label_lineno = sn_lineno + 1
    if not label_line.endswith("\n"):
        raise FileFault("the file ends inside its header", line=label_lineno,
                        rule="a device file has an SN line, a label line and data rows")
    serials = _cells(sn_line)
    labels = _cells(label_line)
    if len(serials) != len(labels):
        raise FileFault(f"the SN line has {len(serials)} columns but the label line has {len(labels)}",
                        line=label_lineno, rule="SN line and label line have the same width")
    if len(labels) < 2:
        raise FileFault("no measurement column", line=label_lineno,
                        rule="at least one labelled column after the timestamp")
    for i, sn in enumerate(serials):
        if not _SERIAL.match(sn):
            raise FileFault(f"column {i + 1}: serial number {sn[:40]!r} is not valid", line=sn_lineno,
                            rule="serial numbers are 1 to 32 letters, digits, '_' or '-'")
    master = serials[0]

    names_units = []
    for i, label in enumerate(labels[1:], start=2):
        name, _, unit = label.rpartition(" ")
        name = name.rstrip()
        if not name or not unit:
            raise FileFault(f"column {i}: label {label[:60]!r} has no unit", line=label_lineno,
                            rule="a label is '<name> <unit>', such as 'Ph 1 V'")
        if _FORBIDDEN_IN_LABEL.search(label) or "\ufffd" in label:
            raise FileFault(f"column {i}: label {label[:60]!r} contains a backslash, a control "
                            "character or bytes that are not UTF-8", line=label_lineno,
                            rule="labels are printable UTF-8 text without backslashes")
        names_units.append((name, unit))

    if master_type is None:
        master_names = {name for (name, _), sn in zip(names_units, serials[1:]) if sn == master}
        master_type = "tri" if TRI_PHASES <= master_names else "mono"
    voltages = 3 if master_type == "tri" else 1

    numbers: dict[str, int] = {}
    channels = []
    seen_fields: set[str] = set()
    for column, ((name, unit), sn) in enumerate(zip(names_units, serials[1:]), start=1):
        n = numbers[sn] = numbers.get(sn, 0) + 1
        if sn == master:
            label = f"U{n}" if n <= voltages else f"Ch{n - voltages}"
            channel_id = f"M{master}_{label}"
            device_type = "master"
        else:
            label = f"Ch{n}"
            channel_id = f"M{master}_S{sn}_{label}"
            device_type = "slave"
        channel = Channel(column, sn, device_type, label, name, unit, channel_id)
        if channel.field in seen_fields:  # cannot happen with the numbering above; kept as a guard
            raise FileFault(f"column {column + 1}: field {channel.field} appears twice",
                            line=label_lineno, rule="one column per channel")
        seen_fields.add(channel.field)
        channels.append(channel)

    return Table(format=fmt, master_sn=master, master_type=master_type, timezone=tz_name,
                 channels=channels, header_meta=header_meta, stream=stream,
                 first_data_line=label_lineno + 1, end_marker=end_marker, rules=rules)


def read_v002(stream: TextIO, sn_line: str, rules: RowRules, label_line: str) -> Table:
    """MV_T302_V002: SN line, label line, rows. No time zone in the file: TSV_V002_TIMEZONE applies."""
    return build_table("MV_T302_V002", stream, sn_line, 1, label_line, rules, rules.v002_timezone,
                       master_type=None, header_meta=None, end_marker=None)


def read_v003(stream: TextIO, first_line: str, rules: RowRules) -> Table:
    """START_HEADER / JSON / END_HEADER / START_DATA / SN line / label line / rows / END_DATA."""
    header_lines = []
    lineno = 1
    while True:
        line = stream.readline()
        lineno += 1
        if not line:
            raise FileFault(f"no {V003_END_HEADER} line", line=lineno,
                            rule="MV_T302_V003 header: START_HEADER, JSON, END_HEADER")
        if line.strip() == V003_END_HEADER:
            break
        header_lines.append(line)
        if len(header_lines) > MAX_HEADER_LINES:
            raise FileFault(f"no {V003_END_HEADER} within {MAX_HEADER_LINES} lines", line=lineno,
                            rule="MV_T302_V003 header: START_HEADER, JSON, END_HEADER")
    try:
        meta = json.loads("".join(header_lines))
    except ValueError as exc:
        raise FileFault(f"the header is not valid JSON: {exc}", line=2,
                        rule="MV_T302_V003 header: a JSON object between START_HEADER and END_HEADER") from None
    if not isinstance(meta, dict):
        raise FileFault("the header is not a JSON object", line=2,
                        rule="MV_T302_V003 header: a JSON object between START_HEADER and END_HEADER")

    line = stream.readline()
    lineno += 1
    if line.strip() != V003_START_DATA:
        raise FileFault(f"expected {V003_START_DATA}, found {line.strip()[:40]!r}", line=lineno,
                        rule="MV_T302_V003: START_DATA after END_HEADER")
    sn_line = stream.readline()
    label_line = stream.readline()
    format_id = label_line.split("\t", 1)[0].strip()
    if format_id != "MV_T302_V003":
        raise FileFault(f"the label line starts with {format_id!r}", line=lineno + 2,
                        rule="an MV_T302_V003 file has MV_T302_V003 labels")

    if str(meta.get("DataTimeSettings", "")).strip().upper() == "UTC":
        tz_name = "UTC"
    else:
        tz_name = str(meta.get("TimeZoneName") or "").strip()
        try:
            ZoneInfo(tz_name)
        except (ZoneInfoNotFoundError, ValueError):
            raise FileFault(f"local time in an unknown time zone {tz_name!r}", line=2,
                            rule="MV_T302_V003: DataTimeSettings 'UTC' or an IANA TimeZoneName") from None

    declared = str(meta.get("MasterType") or "").strip().lower()
    master_type = declared if declared in ("mono", "tri") else None
    table = build_table("MV_T302_V003", stream, sn_line, lineno + 1, label_line, rules, tz_name,
                        master_type=master_type, header_meta=meta, end_marker=V003_END_DATA)
    if declared and master_type is None:
        table.warnings.append(f"unknown MasterType {meta.get('MasterType')!r}: mono/tri taken from the labels")
    return table
