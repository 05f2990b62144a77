"""Expected derived windows, computed independently from the files (tests/expected.py's reading):
per level, per (field, tags, window end) the mean (math.fsum), minimum and maximum."""

from __future__ import annotations

import math
from datetime import datetime
from pathlib import Path

import expected

LEVELS = {"1h": 3600, "1d": 86400, "1w": 604800}


def merged_points(files: list[Path], root: Path, now: datetime, cache: dict | None = None) -> dict[str, dict]:
    """Points per bucket after ingesting `files` in this order (a later write wins); `cache`
    keeps each file's reading for another order."""
    result: dict[str, dict] = {}
    cache = {} if cache is None else cache
    for path in files:
        company, campaign = path.relative_to(root).parts[:2]
        if path not in cache:
            cache[path] = expected.expected_points(path, campaign, now)
        points = cache[path]
        if points:
            result.setdefault(company, {}).update(points)
    return result


def windows(points: dict, seconds: int) -> dict[str, dict]:
    """{"electrical": {(field, tags, end): mean}, "electrical_min": ..., "electrical_max": ...,
    "electrical_count": ...}"""
    groups: dict[tuple, list[float]] = {}
    for (field, tags, t), value in points.items():
        groups.setdefault((field, tags, t - t % seconds + seconds), []).append(value)
    return {
        "electrical": {k: math.fsum(v) / len(v) for k, v in groups.items()},
        "electrical_min": {k: min(v) for k, v in groups.items()},
        "electrical_max": {k: max(v) for k, v in groups.items()},
        "electrical_count": {k: len(v) for k, v in groups.items()},
    }
