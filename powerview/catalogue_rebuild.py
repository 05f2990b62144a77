"""Rebuild the channel catalogue from what InfluxDB holds (the deployed one-off backfill script).

Series are read with InfluxQL `SHOW SERIES FROM electrical` on `/query` (db = bucket): InfluxDB
1.x answers it, and 2.x through its (virtual) DBRP mapping. Buckets for `--all` come from
`GET /api/v2/buckets` (InfluxDB 2.x), or `SHOW DATABASES` where that API does not exist (1.x).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field

import requests

from . import peers
from .catalogue import bodies_for
from .names import name_problem
from .schema import MEASUREMENT

log = logging.getLogger(__name__)

PAGE = 10_000


class InfluxQueryError(Exception):
    pass


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


class InfluxQL:
    def __init__(self, url: str, token: str | None, timeout_s: float = 300.0):
        self.url, self.timeout_s = url.rstrip("/"), timeout_s
        self.session = peers.Session()
        if token:
            self.session.headers["Authorization"] = f"Token {token}"

    def query(self, db: str | None, influxql: str) -> list[dict]:
        params = {"q": influxql}
        if db is not None:
            params["db"] = db
        try:
            answer = self.session.get(f"{self.url}/query", params=params, timeout=self.timeout_s)
        except requests.RequestException as exc:
            raise InfluxQueryError(f"{self.url}/query: {exc}") from None
        try:
            payload = answer.json()
        except ValueError:
            raise InfluxQueryError(f"{self.url}/query: HTTP {answer.status_code}: {answer.text[:200]}") from None
        if answer.status_code != 200 or not isinstance(payload, dict) or "error" in payload:
            raise InfluxQueryError(
                f"{self.url}/query: HTTP {answer.status_code}: "
                f"{payload.get('error') if isinstance(payload, dict) else payload}"
            )
        series = []
        for result in payload.get("results", []):
            if "error" in result:
                raise InfluxQueryError(f"{influxql!r} on {db}: {result['error']}")
            series.extend(result.get("series", []))
        return series

    def series_keys(self, db: str) -> Iterator[str]:
        offset = 0
        while True:
            rows = [
                row[0]
                for s in self.query(db, f"SHOW SERIES FROM {MEASUREMENT} LIMIT {PAGE} OFFSET {offset}")
                for row in s.get("values", [])
            ]
            yield from rows
            if len(rows) < PAGE:
                return
            offset += PAGE

    def buckets(self, org: str | None) -> list[str]:
        limit, offset = 100, 0
        names: list[str] = []
        while True:
            params: dict[str, int | str] = {"limit": limit, "offset": offset, **({"org": org} if org else {})}
            try:
                answer = self.session.get(f"{self.url}/api/v2/buckets", params=params, timeout=self.timeout_s)
            except requests.RequestException as exc:
                raise InfluxQueryError(f"{self.url}/api/v2/buckets: {exc}") from None
            if answer.status_code == 404:  # InfluxDB 1.x
                return sorted(row[0] for s in self.query(None, "SHOW DATABASES") for row in s.get("values", []))
            if answer.status_code != 200:
                raise InfluxQueryError(f"{self.url}/api/v2/buckets: HTTP {answer.status_code}: {answer.text[:200]}")
            page = answer.json().get("buckets", [])
            names += [b["name"] for b in page]
            if len(page) < limit:
                return sorted(names)
            offset += limit


def campaigns_of(influx: InfluxQL, bucket: str) -> dict[str, Campaign]:
    found: dict[str, Campaign] = {}
    for key in influx.series_keys(bucket):
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
