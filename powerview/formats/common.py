"""What every reader shares: the table and channel model, the row rules and the fast row loop."""

from __future__ import annotations

import math
import re
from array import array
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from typing import Iterator, TextIO
from zoneinfo import ZoneInfo

MAX_SAMPLES = 20  # skipped rows described in the report, per file


class FileFault(Exception):
    """A fault of the file itself: the file is rejected (moved to error/)."""

    def __init__(self, message: str, line: int | None, rule: str):
        super().__init__(message)
        self.message = message
        self.line = line
        self.rule = rule

    def __str__(self) -> str:
        where = f"line {self.line}: " if self.line else ""
        return f"{where}{self.message} (rule: {self.rule})"


@dataclass(frozen=True)
class RowRules:
    """Which rows are accepted: the valid time range, in epoch seconds."""

    min_epoch: int            # rows before this are from a device whose clock was not set
    max_epoch: int            # rows after this are in the future
    v002_timezone: str = "UTC"  # V002 files carry no time zone

    @classmethod
    def for_now(cls, min_valid_date: date, v002_timezone: str = "UTC",
                now: datetime | None = None) -> "RowRules":
        now = now or datetime.now(timezone.utc)
        lo = datetime(min_valid_date.year, min_valid_date.month, min_valid_date.day, tzinfo=timezone.utc)
        return cls(int(lo.timestamp()), int(now.timestamp()) + 86400, v002_timezone)


@dataclass(frozen=True)
class Channel:
    column: int          # index of the column in a data row (1 = first value)
    device_sn: str
    device_type: str     # "master" | "slave"
    label: str           # U1, Ch3, ...
    name: str            # "Ph 1", "Voie1", "minipince"
    unit: str            # "V", "W"
    channel_id: str      # M<master>_<label> or M<master>_S<slave>_<label>

    @property
    def field(self) -> str:
        return f"{self.channel_id}_{self.unit}"


@dataclass
class ChannelStats:
    nb_points: int = 0
    min: float = math.inf
    max: float = -math.inf
    total: float = 0.0

    def as_dict(self) -> dict:
        if not self.nb_points:
            return {"nb_points": 0, "min": None, "max": None, "mean": None}
        return {"nb_points": self.nb_points, "min": self.min, "max": self.max,
                "mean": round(self.total / self.nb_points, 6)}


@dataclass
class Counters:
    nb_rows: int = 0
    nb_invalid_timestamps: int = 0
    nb_out_of_range_timestamps: int = 0
    nb_invalid_values: int = 0
    nb_truncated_rows: int = 0
    nb_duplicate_timestamps: int = 0
    nb_malformed_rows: int = 0
    time_min: int | None = None
    time_max: int | None = None
    samples: list[str] = field(default_factory=list)   # the first skipped rows, with line and rule
    nb_samples_dropped: int = 0

    COUNTER_NAMES = ("nb_invalid_timestamps", "nb_out_of_range_timestamps", "nb_invalid_values",
                     "nb_truncated_rows", "nb_duplicate_timestamps", "nb_malformed_rows")

    def sample(self, text: str) -> None:
        if len(self.samples) < MAX_SAMPLES:
            self.samples.append(text)
        else:
            self.nb_samples_dropped += 1


@dataclass
class Table:
    """A device file once its header is read: channels now, rows streamed by `rows()`."""

    format: str
    master_sn: str
    master_type: str                 # "mono" | "tri"
    timezone: str
    channels: list[Channel]
    header_meta: dict | None
    stream: TextIO
    first_data_line: int
    end_marker: str | None           # V003: "END_DATA"
    rules: RowRules
    warnings: list[str] = field(default_factory=list)
    counters: Counters = field(default_factory=Counters)
    stats: list[ChannelStats] = field(default_factory=list)

    def rows(self) -> Iterator[tuple[int, list]]:
        """Yield `(epoch_seconds, values)` for every accepted row; `values[k]` belongs to
        `channels[k]` and is None (skipped) or `(float, line-protocol text)`."""
        return iter_rows(self)


# A finite decimal number as the loggers write it: 232.09, -0.0, 0, 1e3. No "1,5", "nan", "1_0".
_DECIMAL = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?\Z").match
_VALUE_CACHE_MAX = 65536
_TS_CACHE_MAX = 65536
TIMESTAMP_RULE = "timestamps are DD/MM/YY HH:MM:SS"


def parse_value(cell: str):
    """`(float, canonical text)` for a finite decimal number, else None."""
    if not _DECIMAL(cell):
        return None
    number = float(cell)
    if not math.isfinite(number):
        return None
    return number, repr(number)


def timestamp_parser(tz_name: str):
    """A function `DD/MM/YY HH:MM:SS` -> epoch seconds (or None), for local times in `tz_name`.

    The epoch of each hour is computed once with zoneinfo (DST-correct; an ambiguous hour at
    the end of summer time is taken as its first occurrence) and cached.
    """
    tz = ZoneInfo(tz_name)
    hours: dict[str, int | None] = {}

    def hour_epoch(key: str) -> int | None:
        # key = "DD/MM/YY HH"
        if not (key[0:2].isdigit() and key[3:5].isdigit() and key[6:8].isdigit() and key[9:11].isdigit()
                and key.isascii()):
            return None
        try:
            local = datetime(2000 + int(key[6:8]), int(key[3:5]), int(key[0:2]), int(key[9:11]), tzinfo=tz)
        except ValueError:
            return None
        return int(local.timestamp())

    def parse(text: str) -> int | None:
        if (len(text) != 17 or text[2] != "/" or text[5] != "/" or text[8] != " "
                or text[11] != ":" or text[14] != ":"):
            return None
        key = text[:11]
        base = hours.get(key, -1)
        if base == -1:
            if len(hours) >= _TS_CACHE_MAX:
                hours.clear()
            base = hours[key] = hour_epoch(key)
        if base is None:
            return None
        mm, ss = text[12:14], text[15:17]
        if not (mm.isdigit() and ss.isdigit() and mm.isascii() and ss.isascii()):
            return None
        minutes, seconds = int(mm), int(ss)
        if minutes > 59 or seconds > 59:
            return None
        return base + minutes * 60 + seconds

    return parse


def iter_rows(table: Table) -> Iterator[tuple[int, list]]:
    """The hot loop: one pass over the data lines, constant memory but for 8 bytes a row
    (timestamps kept to count duplicates once the file is read)."""
    c = table.counters
    rules = table.rules
    lo, hi = rules.min_epoch, rules.max_epoch
    parse_ts = timestamp_parser(table.timezone)
    ncols = len(table.channels)
    width = ncols + 1
    stats = table.stats = [ChannelStats() for _ in range(ncols)]
    cache: dict[str, tuple | None] = {}
    seen = array("q")
    suspects: set[int] = set()
    end = table.end_marker
    saw_end = False
    tmin = tmax = None
    lineno = table.first_data_line - 1

    for line in table.stream:
        lineno += 1
        if line[-1:] != "\n":
            # no newline at the end of the file: the logger was cut off while writing this line
            if end is not None and line.strip() == end:
                saw_end = True
                break
            if line.strip():
                c.nb_truncated_rows += 1
                c.sample(f"line {lineno}: last line cut off mid-write, not written "
                         "(rule: a row ends with a newline)")
            break
        line = line.rstrip("\r\n")
        if end is not None and line == end:
            saw_end = True
            break
        if not line.strip():
            continue
        c.nb_rows += 1
        cells = line.split("\t")
        ts = parse_ts(cells[0])
        if ts is None:
            c.nb_invalid_timestamps += 1
            c.sample(f"line {lineno}: invalid timestamp {cells[0][:40]!r}, row skipped (rule: {TIMESTAMP_RULE})")
            continue
        if ts < lo or ts > hi:
            c.nb_out_of_range_timestamps += 1
            c.sample(f"line {lineno}: timestamp {cells[0]!r} outside the valid range, row skipped "
                     "(rule: device clock set, not before TSV_MIN_VALID_DATE nor over a day ahead)")
            continue
        n = len(cells)
        if n != width:
            if n > width:
                c.nb_malformed_rows += 1
                c.sample(f"line {lineno}: {n - 1} values for {ncols} columns, row skipped "
                         "(rule: as many values as labels)")
                continue
            c.nb_invalid_values += width - n
            c.sample(f"line {lineno}: {width - n} missing value(s) at the end of the row "
                     "(rule: as many values as labels)")
            cells.extend([""] * (width - n))
        values = []
        append = values.append
        k = 0
        for cell in cells[1:]:
            v = cache.get(cell, False)
            if v is False:
                if len(cache) >= _VALUE_CACHE_MAX:
                    cache.clear()
                v = cache[cell] = parse_value(cell)
            if v is None:
                if k + 1 < n:  # padded cells were counted above
                    c.nb_invalid_values += 1
                    c.sample(f"line {lineno}: column {k + 2}: invalid value {cell[:40]!r} skipped "
                             "(rule: a finite decimal number such as 231.5)")
            else:
                s = stats[k]
                f = v[0]
                s.nb_points += 1
                s.total += f
                if f < s.min:
                    s.min = f
                if f > s.max:
                    s.max = f
            append(v)
            k += 1
        seen.append(ts)
        if tmax is None:
            tmin = tmax = ts
        elif ts > tmax:
            tmax = ts
        else:
            # not after every earlier row: may repeat one of them (checked at the end)
            suspects.add(ts)
            tmin = min(tmin, ts)
        yield ts, values

    if end is not None and not saw_end:
        table.warnings.append(f"no {end} line: the file may have been cut off "
                              "(every complete row was kept)")
    c.time_min, c.time_max = tmin, tmax
    if suspects:
        # a timestamp later than every earlier one cannot repeat one: only the others are counted
        occurrences = Counter(ts for ts in seen if ts in suspects)
        c.nb_duplicate_timestamps = sum(n - 1 for n in occurrences.values())
