"""An independent, deliberately plain reading of T302 files: what InfluxDB should hold afterwards.

Written apart from powerview.ingestion.formats (no shared code), with datetime.strptime and Decimal, so
that the end-to-end tests compare two implementations of the rules, not one with itself.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from zoneinfo import ZoneInfo

SUPPORTED = ("MV_T302_V002", "MV_T302_V003")


def expected_by_bucket(root: Path, now: datetime) -> dict[str, dict]:
    """Every file's expected points merged in ingestion order (sorted paths: a later write wins),
    per bucket (company folder)."""
    result: dict[str, dict] = {}
    for path in sorted(root.glob("*/*/*/*.tsv")):
        company, campaign = path.relative_to(root).parts[:2]
        points = expected_points(path, campaign, now)
        if points:
            result.setdefault(company, {}).update(points)
    return result


def expected_points(
    path: Path, campaign: str, now: datetime, min_valid=datetime(2021, 1, 1, tzinfo=UTC), v002_tz: str = "UTC"
) -> dict | None:
    """`{(field, frozenset(tags.items()), epoch_s): float}` with the last row winning,
    or None when the file must be rejected."""
    raw = path.read_bytes()
    if not raw:
        return None
    text = raw.decode("utf-8-sig")
    lines = text.split("\n")
    complete = lines[:-1]  # the piece after the last "\n" is cut off (or empty)
    complete = [line.rstrip("\r") for line in complete]
    if complete and complete[0] == "START_HEADER":
        end_header = complete.index("END_HEADER")
        meta = json.loads("\n".join(complete[1:end_header]))
        body = complete[end_header + 2 :]
        if "END_DATA" in body:
            body = body[: body.index("END_DATA")]
        tz = ZoneInfo("UTC") if meta.get("DataTimeSettings") == "UTC" else ZoneInfo(meta["TimeZoneName"])
        master_type = meta.get("MasterType", "").lower() or None
        # V003 with END_DATA but no final newline: END_DATA is the cut piece, every row is complete
    else:
        body = complete
        tz = ZoneInfo(v002_tz)
        master_type = None
    if len(body) < 2:
        return None
    serials = body[0].split("\t")
    labels = body[1].split("\t")
    if labels[0] not in SUPPORTED or len(serials) != len(labels):
        return None
    master = serials[0]
    columns = []
    counts: dict[str, int] = {}
    names = [label.rsplit(" ", 1) for label in labels[1:]]
    if master_type is None:
        master_names = {n for (n, _), sn in zip(names, serials[1:]) if sn == master}
        master_type = "tri" if {"Ph 1", "Ph 2", "Ph 3"} <= master_names else "mono"
    nb_u = 3 if master_type == "tri" else 1
    for (name, unit), sn in zip(names, serials[1:]):
        counts[sn] = counts.get(sn, 0) + 1
        n = counts[sn]
        if sn == master:
            label = f"U{n}" if n <= nb_u else f"Ch{n - nb_u}"
            channel_id = f"M{master}_{label}"
        else:
            label = f"Ch{n}"
            channel_id = f"M{master}_S{sn}_{label}"
        tags = {
            "campaign": campaign,
            "channel_id": channel_id,
            "channel_unit": unit,
            "channel_label": label,
            "channel_name": name,
            "device": "MV2",
            "device_type": "master" if sn == master else "slave",
            "device_master_sn": master,
            "device_sn": sn,
        }
        if sn == master:
            tags["device_subtype"] = master_type
        columns.append((f"{channel_id}_{unit}", frozenset(tags.items())))

    points: dict = {}
    low, high = min_valid, now + timedelta(days=1)
    for line in body[2:]:
        if not line.strip():
            continue
        cells = line.split("\t")
        try:
            local = datetime.strptime(cells[0], "%d/%m/%y %H:%M:%S")
        except ValueError:
            continue
        if len(cells[0]) != len("DD/MM/YY HH:MM:SS"):
            continue
        moment = local.replace(tzinfo=tz)
        if not (low <= moment <= high) or len(cells) > len(labels):
            continue
        epoch = int(moment.timestamp())
        for (field, tags), cell in zip(columns, cells[1:]):
            try:
                number = Decimal(cell)
            except InvalidOperation:
                continue
            if not number.is_finite() or "_" in cell or cell != cell.strip() or abs(float(number)) == float("inf"):
                continue
            points[(field, tags, epoch)] = float(number)
    return points or None
