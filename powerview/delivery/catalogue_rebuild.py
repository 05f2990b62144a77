"""Rebuild the channel catalogue from what InfluxDB holds (the deployed one-off backfill script).

Series are read with InfluxQL `SHOW SERIES FROM electrical` on `/query` (db = bucket): InfluxDB
1.x answers it, and 2.x through its (virtual) DBRP mapping. Buckets for `--all` come from
`GET /api/v2/buckets` (InfluxDB 2.x), or `SHOW DATABASES` where that API does not exist (1.x).
Every call goes through the project's InfluxQL client (`influxql.QueryClient`: the generation's
authentication, retries within TSV_INFLUX_RETRY_MAX_SECONDS).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field

from powerview.core.names import name_problem
from powerview.core.schema import MEASUREMENT
from powerview.delivery.catalogue import bodies_for
from powerview.delivery.influx import InfluxUnavailable
from powerview.delivery.influxql import QueryClient

log = logging.getLogger(__name__)

PAGE = 10_000


def split_series_key(key: str) -> tuple[str, dict[str, str]]:
    """`electrical,campaign=c1,channel_name=Ph\\ 1` → ("electrical", {"campaign": "c1", "channel_name": "Ph 1"})
    (line-protocol escaping: a backslash makes the next character literal)."""
    parts: list[list[str]] = [[""]]
    chars = iter(key)
    for ch in chars:
        if ch == "\\":
            parts[-1][-1] += next(chars, "")
        elif ch == ",":
            parts.append([""])
        elif ch == "=" and len(parts) > 1 and len(parts[-1]) == 1:
            parts[-1].append("")
        else:
            parts[-1][-1] += ch
    measurement = parts[0][0]
    tags = {p[0]: p[1] for p in parts[1:] if len(p) == 2}
    return measurement, tags


@dataclass
class Campaign:
    name: str
    channels: dict[str, dict] = field(default_factory=dict)  # channel_id -> {"unit", "label"}
    masters: set[str] = field(default_factory=set)


def series_keys(client: QueryClient, db: str) -> Iterator[str]:
    """Every series key of the raw measurement of `db`, a page at a time."""
    offset = 0
    while True:
        rows = [
            row[0]
            for s in client.series(db, f"SHOW SERIES FROM {MEASUREMENT} LIMIT {PAGE} OFFSET {offset}")
            for row in s.get("values", [])
        ]
        yield from rows
        if len(rows) < PAGE:
            return
        offset += PAGE


def bucket_names(client: QueryClient, org: str | None) -> list[str]:
    """The buckets: `GET /api/v2/buckets` (InfluxDB 2.x), `SHOW DATABASES` where that API does
    not exist (404: 1.x, 3.x)."""
    limit, offset = 100, 0
    names: list[str] = []
    while True:
        params: dict[str, int | str] = {"limit": limit, "offset": offset, **({"org": org} if org else {})}
        answer = client.call("GET", "/api/v2/buckets", "listing the buckets", params=params, accept_404=True)
        if answer.status_code == 404:
            return sorted(row[0] for s in client.series(None, "SHOW DATABASES") for row in s.get("values", []))
        try:
            page = answer.json().get("buckets", [])
        except (ValueError, AttributeError):
            raise InfluxUnavailable(f"GET /api/v2/buckets: unexpected answer {answer.text[:200]!r}") from None
        names += [b["name"] for b in page]
        if len(page) < limit:
            return sorted(names)
        offset += limit


def campaigns_of(client: QueryClient, bucket: str) -> dict[str, Campaign]:
    found: dict[str, Campaign] = {}
    for key in series_keys(client, bucket):
        measurement, tags = split_series_key(key)
        campaign, channel_id, unit = tags.get("campaign"), tags.get("channel_id"), tags.get("channel_unit")
        if measurement != MEASUREMENT or not campaign or not channel_id or not unit:
            continue
        if name_problem("campaign", campaign):
            log.warning("%s: campaign %r skipped: %s", bucket, campaign, name_problem("campaign", campaign))
            continue
        entry = found.setdefault(campaign, Campaign(campaign))
        entry.channels.setdefault(channel_id, {"unit": unit, "label": tags.get("channel_label")})
        if tags.get("device_master_sn"):
            entry.masters.add(tags["device_master_sn"])
    return found


def bodies_of(campaign: Campaign) -> list[dict]:
    """The request bodies of a campaign; deviceMasterSn is set when the campaign has one master."""
    master = next(iter(campaign.masters)) if len(campaign.masters) == 1 else None
    return bodies_for(campaign.name, master, campaign.channels)
