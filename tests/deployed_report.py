"""The keys of the deployed parser's run report (fheslouin/powerview: tsv_parser.py builds the run
and file entries, core.py the per-channel statistics), listed explicitly, level by level."""

from __future__ import annotations

RUN_KEYS = {
    "run_id",
    "start_time",
    "end_time",
    "duration_s",
    "base_folder",
    "nb_files_total",
    "nb_files_success",
    "nb_files_failed",
    "nb_points_total",
    "status",
    "files",
    "dry_run",
}
FILE_KEYS = {
    "file_path",
    "bucket",
    "campaign",
    "device_master_sn",
    "status",
    "error",
    "nb_rows",
    "nb_channels",
    "nb_points",
    "nb_invalid_timestamps",
    "nb_invalid_values",
    "channels",
    "file_header_meta",
    "nb_points_expected",
    "nb_points_in_influx",
    "time_start",
    "time_end",
}
CHANNEL_KEYS = {
    "column_idx",
    "device_master_sn",
    "device_sn",
    "device_type",
    "channel_label",
    "channel_name",
    "channel_unit",
    "nb_points",
    "min",
    "max",
    "mean",
}
# the meta bucket (influx_utils.py write_run_summary_to_influx)
RUN_META_TAGS = {"status"}
RUN_META_FIELDS = {
    "nb_files_total",
    "nb_files_success",
    "nb_files_failed",
    "nb_points_total",
    "duration_s",
    "base_folder",
}
FILE_META_TAGS = {"status", "bucket", "campaign", "device_master_sn", "file_name"}
FILE_META_FIELDS = {"nb_rows", "nb_channels", "nb_points", "nb_invalid_timestamps", "nb_invalid_values"}


def assert_deployed_keys(report: dict) -> None:
    """Every deployed key at run, file and channel level (a file in error has no channels)."""
    assert RUN_KEYS <= report.keys(), RUN_KEYS - report.keys()
    for entry in report["files"]:
        assert FILE_KEYS <= entry.keys(), FILE_KEYS - entry.keys()
        for channel in entry["channels"].values():
            assert CHANNEL_KEYS <= channel.keys(), CHANNEL_KEYS - channel.keys()
