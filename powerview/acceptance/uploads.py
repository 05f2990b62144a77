"""A3-A7: the generated files uploaded through on-upload.sh; each ingested (or rejected) with its
report entry, its points in InfluxDB, its run summary in the meta bucket; A3's channels in the
config API catalogue."""

from __future__ import annotations

import json
from functools import partial

import requests

from powerview.core.schema import FILE_MEASUREMENT, MEASUREMENT
from powerview.onboarding.influx_tokens import connect

from .context import CAMPAIGN, HTTP_TIMEOUT_S, Aborted, Context, Skip
from .samples import LABELS, Sample, samples


class Uploads(Context):
    """A3 to A7."""

    def uploads(self) -> None:
        self.samples = samples()

        def upload_all() -> str:
            for sample in self.samples:
                device = self.campaign_dir / sample.device
                device.mkdir(mode=0o750)
                self.sftpgo(SFTPGO_ACTION="mkdir", SFTPGO_ACTION_PATH=str(device), SFTPGO_ACTION_STATUS="1")
                path = device / sample.name
                path.write_text(sample.content, encoding="utf-8")
                self.sftpgo(
                    SFTPGO_ACTION="upload",
                    SFTPGO_ACTION_PATH=str(path),
                    SFTPGO_ACTION_STATUS="1",
                    SFTPGO_ACTION_FILE_SIZE=str(path.stat().st_size),
                )
            return f"{len(self.samples)} files written, on-upload.sh called for each (mkdir, upload)"

        if not self.check("A3", "uploads of the test files through on-upload.sh", upload_all):
            raise Aborted("the test files could not be uploaded (see A3)")
        for sample in self.samples:
            path = self.campaign_dir / sample.device / sample.name
            try:
                self.outcomes[sample.check] = self.wait_job(
                    "ingest", str(path), f"the upload {path.name} ({sample.check})"
                )
            except AssertionError as exc:
                self.outcomes[sample.check] = {"result": "none", "detail": str(exc)}
        self.entries = self.report_entries()

    def report_entries(self) -> dict[str, dict]:
        """Each sample's entry in the JSON reports written since the run started."""
        wanted = {str(self.campaign_dir / s.device / s.name): s.check for s in self.samples}
        found: dict[str, dict] = {}
        folder = self.settings.report_dir
        for path in sorted(folder.glob("tsv_parser_*.json")) if folder.is_dir() else []:
            try:
                if path.stat().st_mtime < self.started - 1:
                    continue
                report = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            for entry in report.get("files", []):
                if entry.get("file") in wanted:
                    found[wanted[entry["file"]]] = entry
        return found

    def flux(self, bucket: str, predicate: str) -> list[dict]:
        """Records of `bucket` (all time) matching the Flux `predicate`, as dicts."""
        query = f"from(bucket: {json.dumps(bucket)}) |> range(start: 1970-01-01T00:00:00Z) |> filter(fn: (r) => {predicate})"
        with connect(self.settings.influx) as client:
            tables = client.query_api().query(query, org=self.settings.influx.org)
        return [record.values for table in tables for record in table.records]

    def device_points(self, sample: Sample) -> int:
        sn = sample.device
        records = self.flux(
            self.company,
            f'r._measurement == "{MEASUREMENT}" and r.campaign == "{CAMPAIGN}" and r.device_master_sn == "{sn}"',
        )
        return len(
            {
                (r.get("_time"), r.get("_field"), r.get("channel_id"))
                for r in records
                if r.get("_measurement") == MEASUREMENT
                and r.get("campaign") == CAMPAIGN
                and r.get("device_master_sn") == sn
            }
        )

    def a3_to_a7(self) -> None:
        meta: list[dict] | None = None
        for sample in self.samples:
            path = self.campaign_dir / sample.device / sample.name
            line, entry = self.outcomes.get(sample.check, {}), self.entries.get(sample.check)
            folder = "parsed" if sample.expect == "parsed" else "error"

            def outcome(sample=sample, path=path, line=line, entry=entry, folder=folder) -> str:
                assert line.get("result") == sample.expect, (
                    f"{path.name}: result={line.get('result')} {line.get('detail', '')}, expected {sample.expect}"
                )
                assert (path.parent / folder / path.name).is_file(), f"{path.name} is not in {folder}/"
                assert entry is not None, f"no entry for {path} in the reports of {self.settings.report_dir}"
                status = "success" if sample.expect == "parsed" else "error"
                assert entry.get("status") == status, f"report status {entry.get('status')}: {entry.get('error')}"
                if sample.expect == "rejected":
                    assert entry.get("error"), "the report gives no cause"
                    return f"in error/, report: {entry['error'][:120]}"
                assert entry.get("nb_points") == sample.points, (
                    f"report nb_points {entry.get('nb_points')}, expected {sample.points}"
                )
                if sample.counter:
                    assert (entry.get(sample.counter) or 0) > 0, (
                        f"report {sample.counter} = {entry.get(sample.counter)}"
                    )
                    return f"in parsed/, {sample.counter} = {entry[sample.counter]}, {entry['nb_points']} points"
                if sample.check == "A4":
                    assert entry.get("file_header_meta"), "report has no file_header_meta"
                    return f"in parsed/, {entry['nb_points']} points, file_header_meta kept"
                return f"in parsed/, report {entry['nb_points']} points"

            self.check(
                sample.check, f"{sample.what} {'ingested' if folder == 'parsed' else 'moved to error/'}", outcome
            )

            def points(sample=sample) -> str:
                got = self.device_points(sample)
                assert got == sample.points, (
                    f"bucket {self.company} holds {got} {MEASUREMENT} points of device "
                    f"{sample.device}, expected {sample.points}"
                )
                return f"{got} points in bucket {self.company} (campaign, device_master_sn tags)"

            self.check(sample.check, f"{sample.what}: points in InfluxDB", points)

            def summary(sample=sample, path=path) -> str:
                nonlocal meta
                if meta is None:
                    meta = self.flux(
                        self.settings.meta_bucket,
                        f'r._measurement == "{FILE_MEASUREMENT}" and r.bucket == "{self.company}"',
                    )
                status = "success" if sample.expect == "parsed" else "error"
                mine = [
                    r
                    for r in meta
                    if r.get("_measurement") == FILE_MEASUREMENT
                    and r.get("bucket") == self.company
                    and r.get("file_name") == path.name
                ]
                mine = [r for r in mine if r.get("status") == status]
                assert mine, (
                    f"no {FILE_MEASUREMENT} point with status {status} for {path.name} in meta bucket "
                    f"{self.settings.meta_bucket}"
                )
                return f"{FILE_MEASUREMENT} status={status} in {self.settings.meta_bucket}"

            if sample.check in ("A3", "A4", "A7"):
                self.check(sample.check, f"{sample.what}: run summary in the meta bucket", summary)
            if sample.check == "A3":
                self.check("A3", "V002 channels in the config API catalogue", partial(self.catalogue, sample))

    def catalogue(self, sample: Sample) -> str:
        if not self.settings.config_api_url:
            raise Skip("CONFIG_API_URL is not set")
        if not self.config_api_ok:
            raise Skip("the config API did not answer (see A0)")
        entry = self.entries.get(sample.check) or {}
        answer = requests.get(
            f"{self.settings.config_api_url}/buckets/{self.company}/channels",
            params={"campaign": CAMPAIGN},
            timeout=HTTP_TIMEOUT_S,
        )
        assert answer.status_code == 200, f"GET /buckets/{self.company}/channels answered HTTP {answer.status_code}"
        have = {c.get("fieldId") for c in answer.json() if c.get("deviceMasterSn") == sample.device}
        assert len(have) >= len(LABELS), (
            f"{len(have)} channel(s) of device {sample.device} in the catalogue, "
            f"expected {len(LABELS)} (report: catalogue={entry.get('catalogue')})"
        )
        return f"{len(have)} channels of {sample.device}, report catalogue={entry.get('catalogue')}"
