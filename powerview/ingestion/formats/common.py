"""What every reader shares: the fault, the row rules, the header model and the row pass's summary.

A reader turns a file into a `DeviceFile`: a `Header` (known once the header lines are read) and a
`RowPass` (the rows, read once; its `summary()` exists only once every row was read).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from powerview.core import schema

MAX_SAMPLES = 20  # skipped rows described in the report, per file

# A row as a reader yields it: (epoch seconds, texts) where texts[k] belongs to channels[k] and is
# the value's canonical text (`repr(float)`, what the line protocol writes) or None (skipped).
Row = tuple[int, list]


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

    min_epoch: int  # rows before this are from a device whose clock was not set
    max_epoch: int  # rows after this are in the future
    v002_timezone: str = "UTC"  # V002 files carry no time zone

    @classmethod
    def for_now(cls, min_valid_date: date, v002_timezone: str = "UTC", now: datetime | None = None) -> RowRules:
        now = now or datetime.now(UTC)
        lo = datetime(min_valid_date.year, min_valid_date.month, min_valid_date.day, tzinfo=UTC)
        return cls(int(lo.timestamp()), int(now.timestamp()) + 86400, v002_timezone)


@dataclass(frozen=True)
class Channel:
    column: int  # index of the column in a data row (1 = first value)
    device_sn: str
    device_type: str  # "master" | "slave"
    label: str  # U1, Ch3, ...
    name: str  # "Ph 1", "Voie1", "minipince"
    unit: str  # "V", "W"
    channel_id: str  # M<master>_<label> or M<master>_S<slave>_<label>

    @property
    def field(self) -> str:
        return f"{self.channel_id}_{self.unit}"


@dataclass(frozen=True)
class Header:
    """A device file once its header lines are read: everything known before the first row."""

    format: str
    master_sn: str
    master_type: str  # "mono" | "tri"
    timezone: str
    channels: tuple[Channel, ...]
    meta: dict | None  # V003: the JSON header
    label_line: int  # line number of the label line (faults about a column)
    warnings: tuple[str, ...] = ()  # known from the header alone


@dataclass
class ChannelStats:
    nb_points: int = 0
    min: float = math.inf
    max: float = -math.inf
    total: float = 0.0

    def add(self, values: Sequence[float]) -> None:
        """Fold a block of values in (builtins over a list: the hot path's statistics)."""
        if values:
            self.nb_points += len(values)
            self.total += sum(values)
            low, high = min(values), max(values)
            if low < self.min:
                self.min = low
            if high > self.max:
                self.max = high

    @property
    def mean(self) -> float | None:
        """None when there is no point, or when the sum overflowed (values near 1.8e308)."""
        if not self.nb_points or not math.isfinite(self.total):
            return None
        return round(self.total / self.nb_points, 6)

    def as_dict(self) -> dict:
        if not self.nb_points:
            return {"nb_points": 0, "min": None, "max": None, "mean": None}
        return {"nb_points": self.nb_points, "min": self.min, "max": self.max, "mean": self.mean}


@dataclass
class Counters:
    nb_rows: int = 0
    nb_invalid_timestamps: int = 0
    nb_out_of_range_timestamps: int = 0
    nb_invalid_values: int = 0
    nb_truncated_rows: int = 0
    nb_duplicate_timestamps: int = 0
    nb_malformed_rows: int = 0
    nb_rows_after_end: int = 0

    # carried by the report entry and by the meta point of each file
    COUNTER_NAMES = schema.COUNTER_NAMES


@dataclass
class RowSummary:
    """What the row pass found: counters, time range, per-channel statistics, warnings."""

    counters: Counters = field(default_factory=Counters)
    time_min: int | None = None
    time_max: int | None = None
    stats: list[ChannelStats] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # about the whole file (no END_DATA...)
    samples: list[str] = field(default_factory=list)  # the first skipped rows, with line and rule
    nb_samples_dropped: int = 0

    def skip(self, counter: str, lineno: int, what: str, rule: str, count: int = 1) -> None:
        """Count `count` skipped rows or values under `counter` and describe the first ones."""
        setattr(self.counters, counter, getattr(self.counters, counter) + count)
        if len(self.samples) < MAX_SAMPLES:
            self.samples.append(f"line {lineno}: {what} (rule: {rule})")
        else:
            self.nb_samples_dropped += 1


class RowPass:
    """The rows of a file, readable once. `summary()` is only available once every row was read:
    asking earlier (or iterating twice) raises, so no caller can use half-counted figures."""

    def __init__(self, run: Callable[[RowSummary], Iterator[Row]]):
        self._run = run
        self._started = False
        self._summary: RowSummary | None = None

    def __iter__(self) -> Iterator[Row]:
        if self._started:
            raise RuntimeError("a row pass can be read only once")
        self._started = True
        return self._rows()

    def _rows(self) -> Iterator[Row]:
        summary = RowSummary()
        yield from self._run(summary)
        self._summary = summary

    def summary(self) -> RowSummary:
        if self._summary is None:
            raise RuntimeError("the row pass is not finished: read every row before asking for its summary")
        return self._summary


@dataclass(frozen=True)
class DeviceFile:
    header: Header
    rows: RowPass


@dataclass(frozen=True)
class Reader:
    """A format family: `detect` recognises its first lines (as read, at most DETECT_LINES of
    them, each with its newline), `read` turns the stream into a header and a row pass."""

    format: str
    detect: Callable[[Sequence[str]], bool]
    read: Callable[..., DeviceFile]  # (source: LineSource, rules: RowRules) -> DeviceFile
