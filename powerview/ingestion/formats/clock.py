"""Timestamps `DD/MM/YY HH:MM:SS` in a file's time zone -> epoch seconds, DST-correct and cheap.

The hot path is two dictionary look-ups: the epoch of the hour (`hours`, filled on first use) and
the offset of ":MM:SS" in it (`MMSS`). Hours that a change of the UTC offset touches are never put
in `hours`; their rows take `resolve`, which follows the clock of the file:
- the repeated hour at the end of summer time (02:00-02:59 twice in Europe/Paris) is its first
  occurrence until the timestamps go back inside it, its second occurrence from then on (state
  kept per file: one `Clock` per row pass);
- a time in the skipped hour (spring) does not exist on a correct clock: the row is invalid.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from functools import lru_cache
from zoneinfo import ZoneInfo, available_timezones

TIMESTAMP_RULE = "timestamps are DD/MM/YY HH:MM:SS"
GAP_RULE = "a local time exists on the device's clock (none in the hour skipped in spring)"
MAX_ZONE_NAME = 64

# ":MM:SS" -> seconds: only ASCII digits, minutes and seconds 00-59
MMSS = {f":{m:02d}:{s:02d}": m * 60 + s for m in range(60) for s in range(60)}
_HOUR_KEY = re.compile(r"[0-9]{2}/[0-9]{2}/[0-9]{2} [0-9]{2}\Z")
_HOURS_MAX = 65536


@lru_cache(maxsize=1)
def _known_zones() -> frozenset[str]:
    """IANA zone names, without the files that are not a place ("localtime" is the server's own
    zone, "posixrules" and "Factory" are not zones a device would declare)."""
    return frozenset(
        name
        for name in available_timezones()
        if name not in ("localtime", "posixrules", "Factory") and not name.startswith(("posix/", "right/"))
    )


def zone_problem(name: object) -> str | None:
    """Why `name` is not a usable IANA time zone name, or None. Never raises (a folder of the zone
    database, a name too long for the file system, a path, a non-string all give a reason)."""
    if not isinstance(name, str) or not name:
        return "no time zone name"
    if len(name) > MAX_ZONE_NAME:
        return f"a time zone name of {len(name)} characters"
    if name != "UTC" and name not in _known_zones():
        return f"unknown time zone {name!r}"
    try:
        ZoneInfo(name)
    except Exception as exc:  # noqa: BLE001 - any zoneinfo error is a fault of the name
        return f"time zone {name!r} cannot be loaded ({type(exc).__name__})"
    return None


class Clock:
    """One file's clock: `hours` and `MMSS` for the hot path, `resolve` and `explain` off it."""

    def __init__(self, tz_name: str):
        self.tz = ZoneInfo(tz_name)
        self.tz_name = tz_name
        self.hours: dict[str, int] = {}
        self._special: dict[str, list] = {}  # hour key -> [latest offset seen, gone back]

    def _naive(self, text: str) -> datetime | None:
        if len(text) != 17 or not _HOUR_KEY.match(text[:11]) or text[11:] not in MMSS:
            return None
        try:
            return datetime(
                2000 + int(text[6:8]),
                int(text[3:5]),
                int(text[0:2]),
                int(text[9:11]),
                int(text[12:14]),
                int(text[15:17]),
            )
        except ValueError:
            return None

    def _epochs(self, naive: datetime) -> tuple[int, int]:
        return (
            int(naive.replace(tzinfo=self.tz, fold=0).timestamp()),
            int(naive.replace(tzinfo=self.tz, fold=1).timestamp()),
        )

    def _exists(self, naive: datetime, epoch: int) -> bool:
        back = datetime.fromtimestamp(epoch, UTC).astimezone(self.tz).replace(tzinfo=None)
        return back == naive

    def resolve(self, text: str) -> int | None:
        """Epoch seconds of `text`, or None (not a timestamp, or a time that did not exist).
        Fills `hours` for plain hours; follows the fold state for the others."""
        naive = self._naive(text)
        if naive is None:
            return None
        key = text[:11]
        start = naive.replace(minute=0, second=0)
        first, last = self._epochs(start), self._epochs(start.replace(minute=59, second=59))
        if first[0] == first[1] and last[0] == last[1] and last[0] - first[0] == 3599:
            if len(self.hours) >= _HOURS_MAX:
                self.hours.clear()
            self.hours[key] = first[0]
            return first[0] + MMSS[text[11:]]
        # an hour where the UTC offset changes: row by row
        state = self._special.setdefault(key, [None, False])
        offset = MMSS[text[11:]]
        e0, e1 = self._epochs(naive)
        if e0 == e1:
            epoch = e0
        elif not self._exists(naive, e0):
            return None  # in the gap (explain() says so)
        else:
            if not state[1] and state[0] is not None and offset < state[0]:
                state[1] = True  # the timestamps went back: the clock was set back
            epoch = e1 if state[1] else e0
        if state[0] is None or offset > state[0]:
            state[0] = offset
        return epoch

    def explain(self, text: str) -> tuple[str, str]:
        """(what, rule) for a timestamp `resolve` refused."""
        naive = self._naive(text)
        if naive is None:
            return f"invalid timestamp {text[:40]!r}", TIMESTAMP_RULE
        return (f"local time {text} does not exist in {self.tz_name} (skipped when the clocks went forward)", GAP_RULE)
