"""The InfluxDB schema the dashboards depend on, in one place.

Raw bucket = the company folder's name; measurement `electrical`; one field per channel,
`<channel_id>_<unit>`, always a float; the tag set below, exactly. Meta bucket (TSV_META_BUCKET):
one `tsv_parser_file` point per file and one `tsv_parser_run` point per run. Derived buckets
`<company>_<level>` hold the same tags and fields in `electrical` (mean), `electrical_min`,
`electrical_max` and `electrical_count`.
"""

from __future__ import annotations

MEASUREMENT = "electrical"
DEVICE_TAG_VALUE = "MV2"
FILE_MEASUREMENT = "tsv_parser_file"
RUN_MEASUREMENT = "tsv_parser_run"
DEFAULT_META_BUCKET = "powerview_meta"
DERIVED_LEVELS = ("1h", "1d", "1w")
# derived buckets: one measurement per aggregate, the same tags and fields as `electrical`
DERIVED_MEASUREMENTS = {
    "mean": MEASUREMENT,
    "min": "electrical_min",
    "max": "electrical_max",
    "count": "electrical_count",
}

# tag keys of a channel's points (device_subtype only on the master's points)
TAG_KEYS = (
    "campaign",
    "channel_id",
    "channel_label",
    "channel_name",
    "channel_unit",
    "device",
    "device_master_sn",
    "device_sn",
    "device_subtype",
    "device_type",
)


def channel_tags(campaign: str, master_sn: str, master_type: str, channel) -> dict[str, str]:
    """The tag set of a channel's points."""
    tags = {
        "campaign": campaign,
        "channel_id": channel.channel_id,
        "channel_unit": channel.unit,
        "channel_label": channel.label,
        "channel_name": channel.name,
        "device": DEVICE_TAG_VALUE,
        "device_type": channel.device_type,
        "device_master_sn": master_sn,
        "device_sn": channel.device_sn,
    }
    if channel.device_type == "master":
        tags["device_subtype"] = master_type
    return tags


def derived_bucket(company: str, level: str) -> str:
    return f"{company}_{level}"


def reserved_bucket_problem(name: str, meta_bucket: str) -> str | None:
    """Why a company folder may not be named `name` (its bucket is reserved), or None."""
    if name.startswith("_"):
        return f"company name {name!r} is not allowed: bucket names starting with '_' are InfluxDB's own"
    if name == meta_bucket:
        return f"company name {name!r} is not allowed: it is the meta bucket (TSV_META_BUCKET)"
    for level in DERIVED_LEVELS:
        if name.endswith(f"_{level}"):
            return (
                f"company name {name!r} is not allowed: names ending in _{level} are the derived "
                "buckets of another company"
            )
    return None
