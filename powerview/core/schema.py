"""The InfluxDB schema the dashboards depend on, in one place.

Raw bucket = the company folder's name; measurement `electrical`; one field per channel,
`<channel_id>_<unit>`, always a float; the tag set below, exactly. Meta bucket (TSV_META_BUCKET):
one `tsv_parser_file` point per file and one `tsv_parser_run` point per run. Derived buckets
`<company>_<level>` hold the same tags and fields in `electrical` (mean), `electrical_min`,
`electrical_max` and `electrical_count`.
"""

from __future__ import annotations

from dataclasses import dataclass

MEASUREMENT = "electrical"
DEVICE_TAG_VALUE = "MV2"
FILE_MEASUREMENT = "tsv_parser_file"
RUN_MEASUREMENT = "tsv_parser_run"
DEFAULT_META_BUCKET = "powerview_meta"
# Meta points (ingest.meta_lines): the deployed parser's tags and fields, and ours beside them.
# tsv_parser_run: tags `status` (success | partial_failure, deployed) and `dry_run` (always
# "false": a dry run writes nothing); fields below (`base_folder` a string, deployed).
RUN_TAGS = ("dry_run", "status")
RUN_FIELDS = (
    "nb_files_total",
    "nb_files_success",
    "nb_files_failed",
    "nb_files_retry",
    "nb_points_total",
    "duration_s",
    "base_folder",
)
# tsv_parser_file: one point per file of the run (tags empty when unknown are left out).
FILE_TAGS = ("status", "bucket", "campaign", "device_master_sn", "file_name")
# the rows and values a file's reading skipped, by rule (formats.Counters): in the report entry
# and in the file's meta point
COUNTER_NAMES = (
    "nb_invalid_timestamps",
    "nb_out_of_range_timestamps",
    "nb_invalid_values",
    "nb_truncated_rows",
    "nb_duplicate_timestamps",
    "nb_malformed_rows",
    "nb_rows_after_end",
)
FILE_FIELDS = ("nb_rows", "nb_channels", "nb_points", *COUNTER_NAMES, "duration_s")
# what the deployed parser wrote, kept (a subset of the above)
DEPLOYED_RUN_TAGS = ("status",)
DEPLOYED_RUN_FIELDS = (
    "nb_files_total",
    "nb_files_success",
    "nb_files_failed",
    "nb_points_total",
    "duration_s",
    "base_folder",
)
DEPLOYED_FILE_TAGS = FILE_TAGS
DEPLOYED_FILE_FIELDS = ("nb_rows", "nb_channels", "nb_points", "nb_invalid_timestamps", "nb_invalid_values")


@dataclass(frozen=True)
class Level:
    """A derived level: its name (the bucket suffix and TSV_DOWNSAMPLE_LEVELS' word), the length
    of its windows, and how many windows one recompute query covers at most (a chunk)."""

    name: str
    seconds: int
    chunk: int


# the levels table, finest first (each level is computed from the finest one below it)
LEVELS = (
    Level("1h", 3600, 24 * 31),
    Level("1d", 86400, 366),
    Level("1w", 604800, 260),
)
LEVEL_BY_NAME = {level.name: level for level in LEVELS}
DERIVED_LEVELS = tuple(level.name for level in LEVELS)
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
