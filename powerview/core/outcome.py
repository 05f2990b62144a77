"""What happened to one file (FileOutcome), and the report contract: the typed shape of the run
report (RunReport, FileReport, ChannelReport) that the parser writes (report.build) and the
worker reads (jobrunner.read_report). Its JSON Schema for other readers: docs/rapport.schema.json.

The report is a superset: PowerView's keys, and beside them every key of the deployed parser's
report (marked "deployed" below; docs/utilisation-parseur.md gives each one's relation to ours)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, TypedDict, cast

from powerview.core.exitcodes import ExitCode


class Status(StrEnum):
    SUCCESS = "success"  # every point acknowledged by InfluxDB, file in parsed/
    ERROR = "error"  # see `fault`
    RETRY = "retry"  # InfluxDB unavailable: file left in place
    SKIPPED = "skipped"  # another process holds it, or it was already processed


class Fault(StrEnum):
    """Whose fault an `error` (or `retry`) is: it decides where the file goes and the exit code."""

    FILE = "file"  # the file's content (or name): moved to error/
    ENVIRONMENT = "environment"  # permissions, disk, a vanished file: left in place
    INFLUXDB = "influxdb"  # InfluxDB unavailable: left in place, retried
    CONFIGURATION = "configuration"  # settings, credentials, not an InfluxDB: left in place
    BUG = "bug"  # an internal error: left in place

    @property
    def exit_code(self) -> ExitCode:
        return {
            Fault.FILE: ExitCode.REJECTED,
            Fault.ENVIRONMENT: ExitCode.CANTCREAT,
            Fault.INFLUXDB: ExitCode.TEMPFAIL,
            Fault.CONFIGURATION: ExitCode.USAGE,
            Fault.BUG: ExitCode.SOFTWARE,
        }[self]


class ChannelReport(TypedDict):
    """One channel of a file, by channel_id (`M<device>_<label>`)."""

    unit: str
    label: str
    name: str
    device_sn: str
    device_type: str  # master | slave
    field: str  # the InfluxDB field, `<channel_id>_<unit>`
    column_idx: int  # deployed: the column in a data row (1 = first value after the timestamp)
    device_master_sn: str  # deployed
    channel_label: str  # deployed: = label
    channel_name: str  # deployed: = name
    channel_unit: str  # deployed: = unit
    nb_points: int
    min: float | None  # None when the channel has no valid value
    max: float | None
    mean: float | None


class _FileReportAlways(TypedDict):
    """The keys of every file entry (FileReport adds the ones that are left out when unknown)."""

    file: str
    file_path: str  # deployed: = file
    bucket: str
    campaign: str
    device_folder_sn: str
    device_master_sn: str | None
    format: str | None
    status: str | None  # Status
    fault: str | None  # Fault, for an error or a retry
    error: str | None
    warnings: list[str]
    nb_rows: int
    nb_channels: int
    nb_points: int
    # the counters (schema.COUNTER_NAMES)
    nb_invalid_timestamps: int
    nb_out_of_range_timestamps: int
    nb_invalid_values: int
    nb_truncated_rows: int
    nb_duplicate_timestamps: int
    nb_malformed_rows: int
    nb_rows_after_end: int
    time_min: str | None  # ISO 8601 UTC, `...Z`
    time_max: str | None
    channels: dict[str, ChannelReport]
    file_header_meta: dict[str, Any] | None  # the V003 header
    sha256: str | None
    file_id: str | None
    destination: str | None
    duration_s: float
    nb_points_expected: int | None  # deployed
    nb_points_in_influx: int | None  # deployed
    time_start: str | None  # deployed: = time_min, `...+00:00`
    time_end: str | None  # deployed: = time_max


class FileReport(_FileReportAlways, total=False):
    """One file's entry (FileOutcome.to_json), keys in the order they are written."""

    catalogue: str  # published | queued | off | failed
    derived: str  # updated | queued | off | failed
    layout_change: str


class RunReport(TypedDict):
    """The run report (report.build), keys in the order they are written."""

    run_id: str  # deployed: = start_time
    start_time: str  # deployed: = started_at, `...+00:00`
    end_time: str  # deployed: = finished_at
    base_folder: str  # deployed: = data_folder
    status: str  # deployed: success | partial_failure
    started_at: str  # ISO 8601 UTC, `...Z`
    finished_at: str
    duration_s: float
    dry_run: bool
    data_folder: str
    nb_files_total: int
    nb_files_success: int
    nb_files_failed: int
    nb_files_retry: int
    nb_files_skipped: int
    nb_points_total: int
    exit_code: int
    files: list[FileReport]


@dataclass
class FileOutcome:
    file: str
    bucket: str
    campaign: str
    device_folder_sn: str
    status: Status | None = None
    fault: Fault | None = None
    error: str | None = None
    device_master_sn: str | None = None
    format: str | None = None
    warnings: list[str] = field(default_factory=list)
    nb_rows: int = 0
    nb_channels: int = 0
    nb_points: int = 0
    counters: dict[str, int] = field(default_factory=dict)
    time_min: str | None = None
    time_max: str | None = None
    channels: dict[str, dict[str, Any]] = field(default_factory=dict)
    file_header_meta: dict | None = None
    sha256: str | None = None
    file_id: str | None = None  # "<st_dev>:<st_ino>" of the file that was read
    destination: str | None = None  # where the file is now, when it moved
    duration_s: float = 0.0
    catalogue: str | None = None  # channels published to the config API: published | queued | off
    # the deployed parser's check (countback): points written, counted back, the file's time range
    nb_points_expected: int | None = None
    nb_points_in_influx: int | None = None
    time_start: str | None = None  # time_min in the deployed format (+00:00)
    time_end: str | None = None
    derived: str | None = None  # derived buckets: updated | queued | off
    layout_change: str | None = None  # the channel layout differs from the stored one over the file's range

    def fail(self, fault: Fault, message: str) -> None:
        self.status = Status.RETRY if fault is Fault.INFLUXDB else Status.ERROR
        self.fault, self.error = fault, message

    @property
    def exit_code(self) -> ExitCode:
        if self.fault is not None:
            return self.fault.exit_code
        return ExitCode.OK

    def to_json(self) -> FileReport:
        """The report's entry: flat, JSON-safe (the counters at the top level). Every key of the
        deployed parser's entry is there too (docs/utilisation-parseur.md names each one's
        relation to ours): `file_path` (= `file`), `nb_points_expected`, `nb_points_in_influx`,
        `time_start`, `time_end`."""
        out: dict[str, Any] = {
            "file": self.file,
            "file_path": self.file,
            "bucket": self.bucket,
            "campaign": self.campaign,
            "device_folder_sn": self.device_folder_sn,
            "device_master_sn": self.device_master_sn,
            "format": self.format,
            "status": self.status.value if self.status else None,
            "fault": self.fault.value if self.fault else None,
            "error": self.error,
            "warnings": list(self.warnings),
            "nb_rows": self.nb_rows,
            "nb_channels": self.nb_channels,
            "nb_points": self.nb_points,
        }
        out.update(self.counters)
        out.update(
            {
                "time_min": self.time_min,
                "time_max": self.time_max,
                "channels": self.channels,
                "file_header_meta": self.file_header_meta,
                "sha256": self.sha256,
                "file_id": self.file_id,
                "destination": self.destination,
                "duration_s": self.duration_s,
                "nb_points_expected": self.nb_points_expected,
                "nb_points_in_influx": self.nb_points_in_influx,
                "time_start": self.time_start,
                "time_end": self.time_end,
            }
        )
        if self.catalogue is not None:
            out["catalogue"] = self.catalogue
        if self.derived is not None:
            out["derived"] = self.derived
        if self.layout_change is not None:
            out["layout_change"] = self.layout_change
        return cast(FileReport, out)  # the counters are added by name: FileReport lists them
