"""T302 logger files: MV_T302_V002 (two header lines) and MV_T302_V003 (JSON header + data block).

Channel schema (the existing dashboards depend on it): for column i >= 1, device_sn = SN line[i],
master = SN line[0]; channels are numbered per device in column order (n = 1, 2, ...):
tri master: U1..U3 then Ch1...; mono master: U1 then Ch1...; slave: Ch1...
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence

from .clock import zone_problem
from .common import Channel, DeviceFile, FileFault, Header, Reader, RowPass, RowRules
from .lines import LineSource
from .rows import tabular_rows

V002 = "MV_T302_V002"
V003 = "MV_T302_V003"
V003_START_HEADER = "START_HEADER"
V003_END_HEADER = "END_HEADER"
V003_START_DATA = "START_DATA"
V003_END_DATA = "END_DATA"
TRI_PHASES = {"Ph 1", "Ph 2", "Ph 3"}
MAX_HEADER_LINES = 50
MAX_HEADER_CHARS = 65536  # a real header is ~200 characters
MAX_HEADER_DEPTH = 16  # nesting of the JSON header (the report embeds it)
HEADER_RULE = "MV_T302_V003 header: a JSON object between START_HEADER and END_HEADER"

_SERIAL = re.compile(r"[A-Za-z0-9_-]{1,32}\Z")
_FORBIDDEN_IN_LABEL = re.compile(r"[\\\x00-\x1f\x7f]")


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.rstrip("\r\n").split("\t")]


def _first_cell(line: str) -> str:
    return line.split("\t", 1)[0].strip()


def build_header(
    fmt: str,
    sn_line: str,
    sn_lineno: int,
    label_line: str,
    tz_name: str,
    master_type: str | None,
    meta: dict | None,
    warnings: tuple[str, ...] = (),
) -> Header:
    """The channel table from the SN line and the label line; `master_type` None = from labels."""
    label_lineno = sn_lineno + 1
    if not label_line.endswith("\n"):
        raise FileFault(
            "the file ends inside its header",
            line=label_lineno,
            rule="a device file has an SN line, a label line and data rows",
        )
    serials = _cells(sn_line)
    labels = _cells(label_line)
    if len(serials) != len(labels):
        raise FileFault(
            f"the SN line has {len(serials)} columns but the label line has {len(labels)}",
            line=label_lineno,
            rule="SN line and label line have the same width",
        )
    if len(labels) < 2:
        raise FileFault(
            "no measurement column", line=label_lineno, rule="at least one labelled column after the timestamp"
        )
    for i, sn in enumerate(serials):
        if not _SERIAL.match(sn):
            raise FileFault(
                f"column {i + 1}: serial number {sn[:40]!r} is not valid",
                line=sn_lineno,
                rule="serial numbers are 1 to 32 letters, digits, '_' or '-'",
            )
    master = serials[0]

    names_units = []
    unitless = []
    for i, label in enumerate(labels[1:], start=2):
        if not label:
            raise FileFault(
                f"column {i}: the label is empty",
                line=label_lineno,
                rule="a label is '<name> <unit>', such as 'Ph 1 V', or a name alone",
            )
        name, _, unit = label.rpartition(" ")
        name = name.rstrip()
        if not name:  # no space: a name without a unit (field `<channel_id>_`, as deployed)
            name, unit = label, ""
            unitless.append(i)
        if _FORBIDDEN_IN_LABEL.search(label) or "\ufffd" in label:
            raise FileFault(
                f"column {i}: label {label[:60]!r} contains a backslash, a control "
                "character or bytes that are not UTF-8",
                line=label_lineno,
                rule="labels are printable UTF-8 text without backslashes",
            )
        names_units.append((name, unit))

    if master_type is None:
        master_names = {name for (name, _), sn in zip(names_units, serials[1:]) if sn == master}
        master_type = "tri" if TRI_PHASES <= master_names else "mono"
    voltages = 3 if master_type == "tri" else 1

    numbers: dict[str, int] = {}
    channels = []
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
        channels.append(Channel(column, sn, device_type, label, name, unit, channel_id))

    if unitless:
        warnings = warnings + tuple(
            f"column {i}: label {labels[i - 1][:60]!r} has no unit: its field is "
            f"{channels[i - 2].field!r} (empty unit) and its points have no channel_unit tag"
            for i in unitless
        )
    return Header(
        format=fmt,
        master_sn=master,
        master_type=master_type,
        timezone=tz_name,
        channels=tuple(channels),
        meta=meta,
        label_line=label_lineno,
        warnings=warnings,
    )


def _device_file(header: Header, source: LineSource, rules: RowRules, end_marker: str | None) -> DeviceFile:
    def run(summary):
        return tabular_rows(source, len(header.channels), header.timezone, rules, end_marker, summary)

    return DeviceFile(header, RowPass(run))


# --- MV_T302_V002 ---------------------------------------------------------------------------


def detect_v002(first_lines: Sequence[str]) -> bool:
    return len(first_lines) >= 2 and _first_cell(first_lines[1]) == V002


def read_v002(source: LineSource, rules: RowRules) -> DeviceFile:
    """SN line, label line, rows. No time zone in the file: TSV_V002_TIMEZONE applies."""
    sn_line = source.readline()
    label_line = source.readline()
    header = build_header(V002, sn_line, 1, label_line, rules.v002_timezone, master_type=None, meta=None)
    return _device_file(header, source, rules, end_marker=None)


# --- MV_T302_V003 ---------------------------------------------------------------------------


def detect_v003(first_lines: Sequence[str]) -> bool:
    return bool(first_lines) and first_lines[0].strip() == V003_START_HEADER


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not a number JSON allows")


def _finite_float(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise ValueError(f"{text[:40]} is out of the range of a double")
    return number


def _depth(value, limit: int) -> int:
    """Nesting depth of a parsed JSON value (iterative: no recursion on hostile input)."""
    stack = [(value, 1)]
    deepest = 0
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list)):
            deepest = max(deepest, depth)
            if deepest > limit:
                return deepest
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    return deepest


def parse_header_json(text: str) -> dict:
    try:
        meta = json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float)
    except RecursionError:
        raise FileFault("the header is nested too deeply to be read", line=2, rule=HEADER_RULE) from None
    except ValueError as exc:
        raise FileFault(f"the header is not valid JSON: {exc}", line=2, rule=HEADER_RULE) from None
    if not isinstance(meta, dict):
        raise FileFault("the header is not a JSON object", line=2, rule=HEADER_RULE)
    if _depth(meta, MAX_HEADER_DEPTH) > MAX_HEADER_DEPTH:
        raise FileFault(f"the header is nested deeper than {MAX_HEADER_DEPTH} levels", line=2, rule=HEADER_RULE)
    try:
        json.dumps(meta, ensure_ascii=False, allow_nan=False).encode("utf-8")
    except (ValueError, UnicodeError):
        raise FileFault(
            "the header holds text that is not valid Unicode (a lone surrogate escape)", line=2, rule=HEADER_RULE
        ) from None
    return meta


def read_v003(source: LineSource, rules: RowRules) -> DeviceFile:
    """START_HEADER / JSON / END_HEADER / START_DATA / SN line / label line / rows / END_DATA."""
    source.readline()  # START_HEADER (detected)
    header_lines: list[str] = []
    size = 0
    while True:
        line = source.readline()
        if not line:
            raise FileFault(
                f"no {V003_END_HEADER} line",
                line=source.lineno + 1,
                rule="MV_T302_V003 header: START_HEADER, JSON, END_HEADER",
            )
        if line.strip() == V003_END_HEADER:
            break
        header_lines.append(line)
        size += len(line)
        if len(header_lines) > MAX_HEADER_LINES or size > MAX_HEADER_CHARS:
            raise FileFault(
                f"no {V003_END_HEADER} within {MAX_HEADER_LINES} lines or {MAX_HEADER_CHARS} characters",
                line=source.lineno,
                rule="MV_T302_V003 header: START_HEADER, JSON, END_HEADER",
            )
    meta = parse_header_json("".join(header_lines))

    line = source.readline()
    if line.strip() != V003_START_DATA:
        raise FileFault(
            f"expected {V003_START_DATA}, found {line.strip()[:40]!r}",
            line=source.lineno + (not line),
            rule="MV_T302_V003: START_DATA after END_HEADER",
        )
    sn_line = source.readline()
    sn_lineno = source.lineno
    label_line = source.readline()
    if _first_cell(label_line) != V003:
        raise FileFault(
            f"the label line starts with {_first_cell(label_line)[:40]!r}",
            line=sn_lineno + 1,
            rule="an MV_T302_V003 file has MV_T302_V003 labels",
        )

    if str(meta.get("DataTimeSettings", "")).strip().upper() == "UTC":
        tz_name = "UTC"
    else:
        raw = meta.get("TimeZoneName")
        problem = zone_problem(raw.strip() if isinstance(raw, str) else raw)
        if problem or not isinstance(raw, str):
            raise FileFault(
                f"local time in an unusable time zone: {problem}",
                line=2,
                rule="MV_T302_V003: DataTimeSettings 'UTC' or an IANA TimeZoneName",
            ) from None
        tz_name = raw.strip()

    declared = str(meta.get("MasterType") or "").strip().lower()
    master_type = declared if declared in ("mono", "tri") else None
    warnings: tuple[str, ...] = ()
    if declared and master_type is None:
        warnings = (f"unknown MasterType {str(meta.get('MasterType'))[:40]!r}: mono/tri taken from the labels",)
    header = build_header(V003, sn_line, sn_lineno, label_line, tz_name, master_type, meta, warnings)
    return _device_file(header, source, rules, end_marker=V003_END_DATA)


V003_READER = Reader(V003, detect_v003, read_v003)
V002_READER = Reader(V002, detect_v002, read_v002)
