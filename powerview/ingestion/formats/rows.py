"""The row loop of tabular files (`timestamp<TAB>value<TAB>value...`): one pass, constant memory
but for 8 bytes a row (timestamps kept to count duplicates once the file is read).

The fast path of a row is: split, two look-ups for the timestamp, one check of the characters of
the values, one C-level `map(float)`. Everything unusual (blank line, end marker, bad timestamp,
DST hour, wrong width, other forms of numbers, invalid values) goes to `_odd_row` or
`_checked_values`, which name the line and the rule. Statistics and the duplicate count are
computed per block of rows with builtins.
"""

from __future__ import annotations

import math
import re
from array import array
from collections import Counter
from collections.abc import Iterator
from operator import lt

from .clock import MMSS, Clock
from .common import ChannelStats, Row, RowRules, RowSummary
from .lines import LineSource

# A finite decimal number as the loggers write it: 232.09, -0.0, 0, 1e3 — ASCII digits only.
_DECIMAL = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?\Z").match
_NONZERO_DIGIT = re.compile(r"[1-9]").search
_VALUE_CACHE_MAX = 65536

VALUE_RULE = "a finite decimal number such as 231.5, ASCII digits, within the range of a double"
WIDTH_RULE = "as many values as labels"
RANGE_RULE = "device clock set, not before TSV_MIN_VALID_DATE nor over a day ahead"
CUT_RULE = "a row ends with a newline"


def parse_value(cell: str) -> tuple[float, str] | None:
    """`(float, canonical text)` for a finite decimal number that a double holds, else None
    (`1e-400` is not 0.0: a non-zero number that underflows is refused, like one that overflows)."""
    if not _DECIMAL(cell):
        return None
    number = float(cell)
    if not math.isfinite(number):
        return None
    if number == 0.0 and _NONZERO_DIGIT(cell.partition("e")[0].partition("E")[0]):
        return None
    return number, repr(number)


# The fast path takes a row whose values hold only these characters: then float() accepts exactly
# what _DECIMAL accepts, and the cell itself is valid line protocol (a float). Forms such as ".5"
# or "5." (valid, written in canonical form) and cells long enough to overflow or underflow to 0
# take the per-cell path.
_PLAIN = b"0123456789.-\t"
_PLAIN_MAX = 300  # a shorter cell cannot overflow (309 digits) nor underflow to 0 (over 320)


class ValueCache(dict):
    """cell -> parse_value(cell), for the per-cell path (bounded: cleared when full)."""

    def parse(self, cell: str) -> tuple[float, str] | None:
        try:
            return self[cell]
        except KeyError:
            if len(self) >= _VALUE_CACHE_MAX:
                self.clear()
            value = self[cell] = parse_value(cell)
            return value


def tabular_rows(
    source: LineSource, nb_columns: int, tz_name: str, rules: RowRules, end_marker: str | None, summary: RowSummary
) -> Iterator[Row]:
    """Yield `(epoch_s, texts)` for every accepted row, filling `summary` as it goes (complete
    once the generator is exhausted). `end_marker`: the line that ends the data (V003).

    `texts[k]` is the value as the line protocol writes it (a float): the cell itself when it is
    a plain decimal (`242.00`, `0`, `-3.5`), else the shortest repr of its float; None if skipped.
    """
    clock = Clock(tz_name)
    hours_get, mmss_get = clock.hours.get, MMSS.get
    lo, hi = rules.min_epoch, rules.max_epoch
    width = nb_columns + 1
    cache = ValueCache()
    stats = summary.stats = [ChannelStats() for _ in range(nb_columns)]
    c = summary.counters
    seen = array("q")
    suspects: set[int] = set()
    tmin = tmax = None
    lineno = source.lineno
    blocks = source.blocks()
    end_seen = False

    for lines in blocks:
        first = lineno + 1
        stamps: list[int] = []
        stamp = stamps.append
        numbers: list[list[float]] = []  # complete rows only: statistics per block
        number = numbers.append
        for line in lines:
            lineno += 1
            cells = line.split("\t")
            t = cells[0]
            base = hours_get(t[:11])
            off = mmss_get(t[11:])
            plain = len(cells) == width  # before _odd_row pads a short row
            if base is not None and off is not None and plain:
                ts = base + off
            else:
                odd = _odd_row(summary, clock, line, cells, lineno, width, end_marker)
                if odd is None:
                    continue
                if odd == END:
                    end_seen = True
                    break
                ts = odd
            if ts < lo or ts > hi:
                c.nb_rows += 1
                summary.skip(
                    "nb_out_of_range_timestamps",
                    lineno,
                    f"timestamp {t[:40]!r} outside the valid range, row skipped",
                    RANGE_RULE,
                )
                continue
            del cells[0]
            texts = cells
            v = line[18:]  # the values, when the timestamp is the 17 characters before a tab
            if (
                plain
                and (len(v) <= _PLAIN_MAX or max(map(len, cells)) <= _PLAIN_MAX)
                and not v.encode().translate(None, _PLAIN)
                and "\t." not in v
                and ".\t" not in v
                and "-." not in v
                and v[:1] != "."
                and v[-1:] != "."
            ):
                try:
                    number(list(map(float, cells)))
                except ValueError:  # an empty cell, "-", "1.2.3"...
                    texts = _checked_values(summary, cells, lineno, cache, stats)
            else:
                texts = _checked_values(summary, cells, lineno, cache, stats)
            stamp(ts)
            yield ts, texts
        tmin, tmax = _fold_block(stamps, numbers, stats, seen, suspects, tmin, tmax)
        c.nb_rows += len(stamps)
        if end_seen:
            _count_after_end(summary, lines[lineno - first + 1 :], lineno + 1, blocks)
            break

    tail = source.tail.strip()
    if tail and not end_seen:
        if end_marker is not None and tail == end_marker:
            end_seen = True  # END_DATA without its newline: every row before it is complete
        else:
            summary.skip("nb_truncated_rows", source.lineno + 1, "last line cut off mid-write, not written", CUT_RULE)
    elif tail:
        summary.skip("nb_rows_after_end", source.lineno + 1, f"data after {end_marker}, not written", AFTER_END_RULE)
    if end_marker is not None and not end_seen:
        summary.warnings.append(f"no {end_marker} line: the file may have been cut off (every complete row was kept)")
    if c.nb_rows_after_end:
        summary.warnings.append(f"{c.nb_rows_after_end} line(s) after {end_marker} were not written")
    summary.time_min, summary.time_max = tmin, tmax
    if suspects:
        # a timestamp later than every earlier one cannot repeat one: only the others are counted
        occurrences = Counter(ts for ts in seen if ts in suspects)
        c.nb_duplicate_timestamps = sum(n - 1 for n in occurrences.values())


def _checked_values(
    summary: RowSummary, cells: list[str], lineno: int, cache: ValueCache, stats: list[ChannelStats]
) -> list:
    """The per-cell path: canonical texts, invalid values counted and skipped, statistics now."""
    texts: list = []
    for k, cell in enumerate(cells):
        value = cache.parse(cell)
        if value is None:
            if cell is not _PAD:
                summary.skip(
                    "nb_invalid_values", lineno, f"column {k + 2}: invalid value {cell[:40]!r} skipped", VALUE_RULE
                )
            texts.append(None)
        else:
            stats[k].add((value[0],))
            texts.append(value[1])
    return texts


END = -1  # _odd_row's answer for the end marker (never a kept epoch: rows before 1970 are refused)
AFTER_END_RULE = "END_DATA ends the data"


def _count_after_end(summary: RowSummary, rest: list[str], lineno: int, blocks: Iterator[list[str]]) -> None:
    """Read on to the end of the file (bounded lines): every non-blank line is counted."""
    for lines in _chain(rest, blocks):
        for line in lines:
            if line.strip():
                summary.skip("nb_rows_after_end", lineno, "data after END_DATA, not written", AFTER_END_RULE)
            lineno += 1


def _chain(first: list[str], blocks: Iterator[list[str]]) -> Iterator[list[str]]:
    yield first
    yield from blocks


def _odd_row(
    summary: RowSummary, clock: Clock, line: str, cells: list[str], lineno: int, width: int, end_marker: str | None
) -> int | None:
    """The slow path of a row: its epoch if the row is to be kept (a DST hour, or missing trailing
    cells, counted here), END for the end marker, None for a blank or skipped row."""
    stripped = line.strip()
    if not stripped:
        return None
    if end_marker is not None and stripped == end_marker:
        return END
    c = summary.counters
    ts = clock.resolve(cells[0])
    if ts is None:
        c.nb_rows += 1
        what, rule = clock.explain(cells[0])
        summary.skip("nb_invalid_timestamps", lineno, f"{what}, row skipped", rule)
        return None
    n = len(cells)
    if n > width:
        c.nb_rows += 1
        summary.skip("nb_malformed_rows", lineno, f"{n - 1} values for {width - 1} columns, row skipped", WIDTH_RULE)
        return None
    if n < width:
        summary.skip(
            "nb_invalid_values",
            lineno,
            f"{width - n} missing value(s) at the end of the row",
            WIDTH_RULE,
            count=width - n,
        )
        cells.extend([_PAD] * (width - n))  # known invalid: not counted again
    return ts


class _Pad(str):
    """A padding cell: invalid like any empty cell, but already counted."""


_PAD = _Pad("")


def _fold_block(
    stamps: list[int],
    numbers: list[list[float]],
    stats: list[ChannelStats],
    seen: array,
    suspects: set[int],
    tmin: int | None,
    tmax: int | None,
) -> tuple[int | None, int | None]:
    """Statistics (complete rows, column by column, with builtins) and time range of a block."""
    if numbers:
        for st, column in zip(stats, zip(*numbers)):
            st.add(column)
    if not stamps:
        return tmin, tmax
    seen.extend(stamps)
    if tmax is None or tmin is None:
        tmin = tmax = stamps[0]
        stamps = stamps[1:]
        if not stamps:
            return tmin, tmax
    if stamps[0] > tmax and all(map(lt, stamps, stamps[1:])):
        return tmin, stamps[-1]  # the usual case: every row after the one before
    for ts in stamps:
        if ts > tmax:
            tmax = ts
        else:
            # not after every earlier row: may repeat one of them (checked at the end)
            suspects.add(ts)
            if ts < tmin:
                tmin = ts
    return tmin, tmax
