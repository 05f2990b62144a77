"""The acceptance check of a live deployment: the automatable parts of the plan A1-A9.

    powerview-acceptance [--project /srv/powerview] [--env-file FILE] [--timeout 300] [--keep]

It plays a new client company the way SFTPGo would: it creates `<data>/pvaccept_<random>/` and a
campaign folder, calls the real `on-upload.sh` with `env -i SFTPGO_ACTION=...` as SFTPGo does,
writes small generated T302 files into device folders and calls the hook again for each upload;
then it waits (bounded) for the worker and checks the outcome through the public interfaces only:
Grafana's HTTP API, InfluxDB's v2 API, the JSON reports, `parsed/` and `error/`, the marker
`.company.created`, `uploads.log` and the config API. At the end it removes the test company
(delete_grafana_resources.yml, the data folder, the bucket and its token, the config API client)
— only names matching `pvaccept_<8 hex digits>` that this run created.

One line per check on stdout: `PASS|FAIL|SKIP A<n> <what> — <why>`. A0 is the deployment itself
(reachable, then cleaned up). Exit 0 when no check failed, 1 when one did, 2 for a usage or
configuration error. The plan and each check are described in docs/acceptance.md.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from urllib.parse import urlsplit

import click
import requests

from . import influx, uploadlog
from .envfile import PROJECT_DIR, read_environment
from .exitcodes import ExitCode
from .grafana.names import company_names
from .influx_tokens import TokenManager
from .schema import DERIVED_LEVELS, FILE_MEASUREMENT, MEASUREMENT
from .settings import AcceptanceSettings, ConfigError, load_acceptance

PASS, FAIL, SKIP = "PASS", "FAIL", "SKIP"
TEST_COMPANY = re.compile(r"pvaccept_[0-9a-f]{8}\Z")
CAMPAIGN = "campaign_acceptance"
HTTP_TIMEOUT_S = 15.0
POLL_S = 0.2
HOOK_TIMEOUT_S = 30.0  # SFTPGo kills the hook after 30 s
# results of a job in uploads.log that end the wait (anything but the event lines)
EVENT_RESULTS = ("queued", "ignored")


@dataclass(frozen=True)
class Check:
    result: str
    id: str
    what: str
    why: str

    def line(self) -> str:
        why = " ".join(self.why.split())  # one line, whatever a server answered
        return f"{self.result} {self.id} {self.what} — {why}"


class Skip(Exception):
    """A check that cannot run here: reported as SKIP with the reason."""


class Aborted(Exception):
    """A check the next ones depend on failed: they are reported as SKIP."""


@dataclass(frozen=True)
class Sample:
    """One generated device file and what the plan expects of it."""

    check: str  # A3 ... A7
    what: str
    device: str
    name: str
    content: str
    expect: str  # "parsed" | "rejected"
    points: int = 0  # points the parser must write (parsed files)
    counter: str | None = None  # report counter that must be > 0


LABELS = ["Ph 1 V", "Ph 2 V", "Ph 3 V", "Voie1 W", "Voie2 W", "Voie3 W"]


def _rows(day: datetime, n: int) -> list[list[str]]:
    return [
        [
            (day + timedelta(minutes=10 * i)).strftime("%d/%m/%y %H:%M:%S"),
            f"{230 + i * 0.1:.2f}",
            f"{231 + i * 0.1:.2f}",
            f"{232 + i * 0.1:.2f}",
            f"{100 + i}",
            "0.0",
            "0.0",
        ]
        for i in range(n)
    ]


def _v002(sn: str, rows: list[list[str]]) -> str:
    lines = ["\t".join([sn] * (len(LABELS) + 1)), "\t".join(["MV_T302_V002", *LABELS])]
    return "\n".join(lines + ["\t".join(r) for r in rows]) + "\n"


def _v003(sn: str, rows: list[list[str]]) -> str:
    header = {
        "DataTimeSettings": "UTC",
        "TimeZoneName": "Europe/Paris",
        "MasterType": "Tri",
        "FileVersion": 3,
        "MasterSN": sn,
    }
    body = ["\t".join([sn] * (len(LABELS) + 1)), "\t".join(["MV_T302_V003", *LABELS])]
    return (
        "\n".join(
            [
                "START_HEADER",
                json.dumps(header),
                "END_HEADER",
                "START_DATA",
                *body,
                *["\t".join(r) for r in rows],
                "END_DATA",
            ]
        )
        + "\n"
    )


def samples(now: datetime | None = None) -> list[Sample]:
    """The files of A3-A7: six 10-minute rows of yesterday (UTC), six channels each."""
    now = now or datetime.now(UTC)
    day = datetime(now.year, now.month, now.day) - timedelta(days=1)
    stamp = day.strftime("%y%m%d")
    rows = _rows(day, 6)
    width = len(LABELS)
    bad_time = [r[:] for r in rows]
    bad_time[2][0] = "31/02/99 25:61:00"
    bad_value = [r[:] for r in rows]
    bad_value[3][4] = "not-a-number"
    return [
        Sample(
            "A3",
            "V002 file",
            "09900001",
            f"T302_{stamp}_000001.tsv",
            _v002("09900001", rows),
            "parsed",
            points=6 * width,
        ),
        Sample(
            "A4",
            "V003 file",
            "09900002",
            f"T302_{stamp}_000002.tsv",
            _v003("09900002", rows),
            "parsed",
            points=6 * width,
        ),
        Sample(
            "A5",
            "invalid timestamp",
            "09900003",
            f"T302_{stamp}_000003.tsv",
            _v002("09900003", bad_time),
            "parsed",
            points=5 * width,
            counter="nb_invalid_timestamps",
        ),
        Sample(
            "A6",
            "invalid value",
            "09900004",
            f"T302_{stamp}_000004.tsv",
            _v002("09900004", bad_value),
            "parsed",
            points=6 * width - 1,
            counter="nb_invalid_values",
        ),
        Sample(
            "A7",
            "unsupported file",
            "09900005",
            f"T302_{stamp}_000005.tsv",
            "this is not a T302 file\nno header\tat all\n",
            "rejected",
        ),
    ]


# -- uploads.log --------------------------------------------------------------------------------

_FIELD = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*"|\S+)')


def parse_log_line(line: str) -> dict[str, str]:
    """The key=value fields of one uploads.log line (quoted values decoded)."""
    out = {}
    for key, value in _FIELD.findall(line):
        if value.startswith('"'):
            try:
                value = json.loads(value)
            except ValueError:
                pass
        out[key] = value
    return out


class LogTail:
    """The lines uploads.log gained since this object was made."""

    def __init__(self, path: Path):
        self.path = path
        try:
            self.offset = path.stat().st_size
        except FileNotFoundError:
            self.offset = 0

    def lines(self) -> list[dict[str, str]]:
        try:
            with open(self.path, "rb") as log:
                log.seek(self.offset)
                text = log.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return []
        return [parse_log_line(line) for line in text.splitlines() if line.strip()]


# -- the run ------------------------------------------------------------------------------------


@dataclass
class Run:
    settings: AcceptanceSettings
    project: Path
    env_file: Path | None
    timeout_s: float
    emit: Callable[[Check], None]
    company: str = field(default_factory=lambda: f"pvaccept_{secrets.token_hex(4)}")
    checks: list[Check] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not TEST_COMPANY.match(self.company):
            raise ValueError(f"test company {self.company!r} does not match {TEST_COMPANY.pattern}")
        self.names = company_names(self.company)
        self.company_dir = self.settings.data_dir / self.company
        self.campaign_dir = self.company_dir / CAMPAIGN
        self.created_dir = False
        self.config_api_ok = False
        self.team_id: int | None = None
        self.grafana = requests.Session()
        g = self.settings.grafana
        if g.username and g.password:
            self.grafana.auth = (g.username, g.password)
        elif g.api_token:
            self.grafana.headers["Authorization"] = f"Bearer {g.api_token}"
        self.log = LogTail(self.settings.log_dir / uploadlog.LOG_NAME)
        self.outcomes: dict[str, dict[str, str]] = {}  # sample check id -> its job's uploads.log line
        self.entries: dict[str, dict] = {}  # sample check id -> its report entry
        self.started = time.time()

    # ---- reporting ----------------------------------------------------------------------
    def record(self, result: str, id_: str, what: str, why: str) -> Check:
        check = Check(result, id_, what, why)
        self.checks.append(check)
        self.emit(check)
        return check

    def check(self, id_: str, what: str, test: Callable[[], str]) -> bool:
        """Run `test`: it returns why it passed, or raises AssertionError (FAIL) / Skip (SKIP)."""
        try:
            why = test()
        except Skip as exc:
            self.record(SKIP, id_, what, str(exc))
            return True
        except AssertionError as exc:
            self.record(FAIL, id_, what, str(exc) or "check failed")
            return False
        except requests.ConnectionError as exc:
            url = str(exc.request.url) if exc.request is not None else "the server"
            self.record(FAIL, id_, what, f"cannot connect to {url} (connection refused or timed out)")
            return False
        except (
            requests.RequestException,
            OSError,
            ValueError,
            influx.InfluxUnavailable,
            influx.InfluxRejected,
            ConfigError,
        ) as exc:
            self.record(FAIL, id_, what, f"{type(exc).__name__}: {exc}")
            return False
        except Exception as exc:  # noqa: BLE001 - one check's surprise (an API error, a bug) is its own FAIL
            self.record(FAIL, id_, what, f"unexpected {type(exc).__name__}: {str(exc)[:300]}")
            return False
        self.record(PASS, id_, what, why)
        return True

    # ---- the plan -----------------------------------------------------------------------
    def run(self, keep: bool = False) -> None:
        plan = [self.preconditions, self.a1, self.a2, self.uploads, self.a3_to_a7, self.a8, self.a9]
        try:
            for step in plan:
                step()
        except Aborted as exc:
            if not any(c.id == "A1" for c in self.checks):
                self.a1()
            for id_ in ("A2", "A3", "A4", "A5", "A6", "A7", "A8", "A9"):
                if not any(c.id == id_ for c in self.checks):
                    self.record(SKIP, id_, "not run", str(exc))
        finally:
            if keep:
                self.record(SKIP, "A0", f"cleanup of {self.company}", "--keep: the test company is left in place")
            else:
                self.cleanup()

    # A0: the deployment answers
    def preconditions(self) -> None:
        s = self.settings
        hook = self.project / "on-upload.sh"

        def hook_ok() -> str:
            assert os.access(hook, os.X_OK), f"{hook} is missing or not executable (--project)"
            return f"{hook}"

        def data_ok() -> str:
            assert s.data_dir.is_dir(), f"{s.data_dir} is not a folder (POWERVIEW_DATA_DIR)"
            owner = s.data_dir.stat().st_uid
            assert os.geteuid() != 0 or owner == 0, (
                f"run as the owner of {s.data_dir} (uid {owner}), as SFTPGo does "
                "(sudo -u sftpgo ...): as root the worker would leave root-owned files"
            )
            assert os.access(s.data_dir, os.W_OK | os.X_OK), f"{s.data_dir} is not writable by this user: run as sftpgo"
            assert not self.company_dir.exists(), f"{self.company_dir} exists already: not touching it"
            return f"{s.data_dir} writable"

        def grafana_ok() -> str:
            url = s.grafana.url
            health = self.grafana.get(f"{url}/api/health", timeout=HTTP_TIMEOUT_S)
            assert health.status_code == 200, f"GET {url}/api/health answered HTTP {health.status_code}"
            org = self.grafana.get(f"{url}/api/org", timeout=HTTP_TIMEOUT_S)
            assert org.status_code == 200, (
                f"GET {url}/api/org answered HTTP {org.status_code}: check "
                "GRAFANA_USERNAME/GRAFANA_PASSWORD or GRAFANA_API_TOKEN"
            )
            try:
                version = health.json().get("version", "?")
            except ValueError:
                raise AssertionError(
                    f"GET {url}/api/health answered HTTP 200 but not Grafana's JSON (a proxy page?): check GRAFANA_URL"
                ) from None
            return f"{url} version {version}, credentials accepted"

        def influx_ok() -> str:
            s.influx.require()
            influx.check_server(s.influx.url or "", HTTP_TIMEOUT_S, 10.0)
            answer = requests.get(
                f"{s.influx.url}/api/v2/buckets",
                params={"org": s.influx.org, "limit": 1},
                headers={"Authorization": f"Token {s.influx.token}"},
                timeout=HTTP_TIMEOUT_S,
            )
            assert answer.status_code == 200, (
                f"GET /api/v2/buckets answered HTTP {answer.status_code}: check INFLUXDB_ORG and INFLUXDB_ADMIN_TOKEN"
            )
            return f"{s.influx.url}, organization {s.influx.org}, admin token accepted"

        def config_api_ok() -> str:
            if not s.config_api_url:
                raise Skip("CONFIG_API_URL is not set: the catalogue checks are skipped")
            answer = requests.get(f"{s.config_api_url}/health", timeout=HTTP_TIMEOUT_S)
            assert answer.status_code == 200, f"GET {s.config_api_url}/health answered HTTP {answer.status_code}"
            self.config_api_ok = True
            return f"{s.config_api_url} {answer.json().get('status', '?')}"

        essential = [
            self.check("A0", "hook on-upload.sh", hook_ok),
            self.check("A0", "data folder", data_ok),
            self.check("A0", "Grafana answers", grafana_ok),
            self.check("A0", "InfluxDB answers", influx_ok),
        ]
        self.check("A0", "config API answers", config_api_ok)
        if essential[2]:
            self.grafana_public_address()
        if not all(essential):
            raise Aborted("the deployment is not reachable (see A0)")

    def grafana_public_address(self) -> bool:
        """Grafana's root URL (GF_SERVER_ROOT_URL), as the UI gets it (`appUrl`): links in e-mails
        and alerts, and redirects behind the proxy, are wrong when it names this machine only."""
        url = self.settings.grafana.url

        def public() -> str:
            answer = self.grafana.get(f"{url}/api/frontend/settings", timeout=HTTP_TIMEOUT_S)
            assert answer.status_code == 200, f"GET {url}/api/frontend/settings answered HTTP {answer.status_code}"
            app_url = str(answer.json().get("appUrl") or "")
            host = (urlsplit(app_url).hostname or "").lower()
            assert host, f"Grafana's root URL is {app_url!r}: set GRAFANA_ROOT_URL and GRAFANA_DOMAIN in .env"
            assert not (host == "localhost" or host.endswith(".localhost") or _loopback(host)), (
                f"Grafana's root URL is {app_url} (a local address): links and redirects are wrong for "
                "users; set GRAFANA_ROOT_URL and GRAFANA_DOMAIN in .env (the public address), then "
                "podman compose up -d"
            )
            return app_url

        return self.check("A0", "Grafana public address", public)

    def a1(self) -> None:
        self.record(
            SKIP,
            "A1",
            "SFTP user jailed to its home, no provisioning",
            "needs SFTPGo and an SFTP client: manual procedure in docs/acceptance.md",
        )

    # ---- SFTPGo's part ------------------------------------------------------------------
    def sftpgo(self, **variables: str) -> None:
        """Call on-upload.sh exactly as SFTPGo does: an emptied environment, SFTPGO_ACTION* only."""
        given = {
            "SFTPGO_ACTION_USERNAME": self.company,
            "SFTPGO_ACTION_PROTOCOL": "SFTP",
            "SFTPGO_ACTION_IP": "127.0.0.1",
            "SFTPGO_ACTION_TIMESTAMP": str(time.time_ns()),
            **variables,
        }
        path = given.get("SFTPGO_ACTION_PATH", "")
        if path:
            given["SFTPGO_ACTION_VIRTUAL_PATH"] = "/" + Path(path).relative_to(self.company_dir).as_posix()
        result = subprocess.run(
            ["env", "-i", *(f"{k}={v}" for k, v in given.items()), str(self.project / "on-upload.sh")],
            capture_output=True,
            timeout=HOOK_TIMEOUT_S,
            cwd="/",
            check=False,
        )
        assert result.returncode == 0, (
            f"on-upload.sh exited {result.returncode}: {result.stderr.decode('utf-8', 'replace')[-300:]}"
        )

    def wait_job(self, action: str, path: str, what: str) -> dict[str, str]:
        """The first uploads.log line of a job about `path` after this run started (bounded wait)."""
        deadline = time.monotonic() + self.timeout_s
        while True:
            for line in self.log.lines():
                if (
                    line.get("action") == action
                    and line.get("path") == path
                    and line.get("result") not in EVENT_RESULTS
                ):
                    return line
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"no outcome for {what} in uploads.log after {self.timeout_s:g} s: is the "
                    "worker running? see worker.log and `python -m powerview.worker list`"
                )
            time.sleep(POLL_S)

    # A2: mkdir of a campaign provisions the company
    def a2(self) -> None:
        target = f"{self.company}/{CAMPAIGN}"

        def provisioned() -> str:
            self.company_dir.mkdir(mode=0o750)  # SFTPGo creates the user's home: no hook call
            self.created_dir = True
            self.campaign_dir.mkdir(mode=0o750)
            self.sftpgo(SFTPGO_ACTION="mkdir", SFTPGO_ACTION_PATH=str(self.campaign_dir), SFTPGO_ACTION_STATUS="1")
            line = self.wait_job("provision", target, f"the provisioning of {target}")
            assert line.get("result") == "provisioned", (
                f"provisioning job {line.get('job')}: result={line.get('result')} {line.get('detail', '')}"
            )
            return f"job {line.get('job')} ansible-playbook succeeded in {line.get('duration', '?')}"

        if not self.check("A2", f"mkdir {target} runs the provisioning", provisioned):
            raise Aborted("the provisioning did not succeed (see A2)")
        self.a2_resources()

    def a2_resources(self) -> None:
        """What the provisioning must have made: Grafana team, folder, data source, dashboard;
        InfluxDB bucket and read token; the marker."""
        url, n = self.settings.grafana.url, self.names

        def team() -> str:
            answer = self.grafana.get(f"{url}/api/teams/search", params={"name": n["team"]}, timeout=HTTP_TIMEOUT_S)
            found = [t for t in answer.json().get("teams", [])] if answer.status_code == 200 else []
            found = [t for t in found if t.get("name") == n["team"]]
            assert found, f"GET /api/teams/search?name={n['team']} answered HTTP {answer.status_code}, no such team"
            self.team_id = int(found[0]["id"])
            return f"team id {self.team_id}"

        def folder() -> str:
            answer = self.grafana.get(f"{url}/api/folders/{n['folder_uid']}", timeout=HTTP_TIMEOUT_S)
            assert answer.status_code == 200, f"GET /api/folders/{n['folder_uid']} answered HTTP {answer.status_code}"
            assert answer.json().get("title") == n["folder_title"], f"title {answer.json().get('title')!r}"
            return f"uid {n['folder_uid']}"

        def datasource() -> str:
            answer = self.grafana.get(f"{url}/api/datasources/name/{n['datasource_name']}", timeout=HTTP_TIMEOUT_S)
            assert answer.status_code == 200, (
                f"GET /api/datasources/name/{n['datasource_name']} answered HTTP "
                f"{answer.status_code} {_message(answer)}"
            )
            ds = answer.json()
            bucket = (ds.get("jsonData") or {}).get("defaultBucket")
            assert bucket in (None, self.company), f"defaultBucket is {bucket!r}, not {self.company!r}"
            assert (ds.get("secureJsonFields") or {}).get("token"), "no InfluxDB token stored in the data source"
            return f"type {ds.get('type')}, uid {ds.get('uid')}, token set"

        def dashboard() -> str:
            answer = self.grafana.get(f"{url}/api/dashboards/uid/{n['dashboard_uid']}", timeout=HTTP_TIMEOUT_S)
            assert answer.status_code == 200, (
                f"GET /api/dashboards/uid/{n['dashboard_uid']} answered HTTP {answer.status_code}"
            )
            meta = answer.json().get("meta", {})
            assert meta.get("folderUid") == n["folder_uid"], f"in folder {meta.get('folderUid')!r}"
            return f"{answer.json()['dashboard'].get('title')!r} in folder {n['folder_uid']}"

        def token() -> str:
            with influx.connect(self.settings.influx) as client:
                manager = TokenManager(client, self.settings.influx.org or "", budget_s=10.0)
                bucket = manager.find_bucket(self.company)
                assert bucket is not None, f"bucket {self.company} does not exist"
                described = [t for t in manager.list(self.company) if t.description == n["token_description"]]
            assert described, f"no authorization described {n['token_description']}"
            assert any(f"read:buckets/{bucket.id}" in t.permissions for t in described), (
                f"{n['token_description']} does not read bucket {self.company}"
            )
            return f"bucket {bucket.id}, {len(described)} token(s) {n['token_description']}"

        def marker() -> str:
            path = self.company_dir / ".company.created"
            assert path.is_file(), f"{path} is missing"
            return str(path)

        self.check("A2", f"Grafana team {n['team']}", team)
        self.check("A2", f"Grafana folder {n['folder_title']}", folder)
        self.check("A2", f"Grafana data source {n['datasource_name']}", datasource)
        self.check("A2", f"Grafana dashboard {n['dashboard_uid']}", dashboard)
        self.check("A2", f"InfluxDB bucket and read token of {self.company}", token)
        self.check("A2", "marker .company.created", marker)

    # ---- A3-A7: uploads -----------------------------------------------------------------
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
        with influx.connect(self.settings.influx) as client:
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

    # A8: a member of the team sees the dashboard
    def a8(self) -> None:
        url, n = self.settings.grafana.url, self.names
        login = n["user_login"]

        def member() -> str:
            if self.team_id is None:
                raise Skip(f"team {n['team']} not found (see A2)")
            answer = self.grafana.get(f"{url}/api/teams/{self.team_id}/members", timeout=HTTP_TIMEOUT_S)
            assert answer.status_code == 200, (
                f"GET /api/teams/{self.team_id}/members answered HTTP {answer.status_code}"
            )
            logins = [m.get("login") for m in answer.json()]
            assert login in logins, f"{login} is not a member of team {n['team']} (members: {logins})"
            return f"{login} in team {n['team']}"

        def permission() -> str:
            if self.team_id is None:
                raise Skip(f"team {n['team']} not found (see A2)")
            answer = self.grafana.get(
                f"{url}/api/dashboards/uid/{n['dashboard_uid']}/permissions", timeout=HTTP_TIMEOUT_S
            )
            assert answer.status_code == 200, f"GET dashboard permissions answered HTTP {answer.status_code}"
            items = [i for i in answer.json() if i.get("teamId") == self.team_id and (i.get("permission") or 0) >= 1]
            assert items, f"team {n['team']} has no permission on dashboard {n['dashboard_uid']}"
            return ", ".join(
                sorted(
                    {
                        f"{i.get('permissionName', i.get('permission'))}{' (folder)' if i.get('inherited') else ''}"
                        for i in items
                    }
                )
            )

        def opens() -> str:
            secret = self.settings.grafana.secrets_dir / f"grafana_{login}.password"
            try:
                password = secret.read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise Skip(f"cannot read {secret} ({exc.strerror}): open the dashboard by hand as {login}") from None
            answer = requests.get(
                f"{url}/api/dashboards/uid/{n['dashboard_uid']}", auth=(login, password), timeout=HTTP_TIMEOUT_S
            )
            assert answer.status_code == 200, f"as {login}: GET dashboard answered HTTP {answer.status_code}"
            panels = answer.json().get("dashboard", {}).get("panels") or []
            return f"as {login}: HTTP 200, {len(panels)} panel(s)"

        self.check("A8", f"user {login} is a member of team {n['team']}", member)
        self.check("A8", f"team {n['team']} may view dashboard {n['dashboard_uid']}", permission)
        self.check("A8", f"{login} opens dashboard {n['dashboard_uid']}", opens)

    # A9: uploads.log tells the story
    def a9(self) -> None:
        def story() -> str:
            lines = self.log.lines()
            mkdir = [x for x in lines if x.get("action") == "mkdir" and x.get("path") == str(self.campaign_dir)]
            assert mkdir and mkdir[0].get("result") == "queued", f"no queued mkdir line for {self.campaign_dir}"
            missing = []
            for sample in self.samples:
                path = str(self.campaign_dir / sample.device / sample.name)
                if not any(
                    x.get("action") == "upload" and x.get("path") == path and x.get("result") == "queued" for x in lines
                ):
                    missing.append(f"upload of {sample.device}/{sample.name}")
                if not any(
                    x.get("action") == "ingest"
                    and x.get("path") == path
                    and x.get("result") == sample.expect
                    and x.get("detail")
                    for x in lines
                ):
                    missing.append(f"result={sample.expect} of {sample.device}/{sample.name}")
            assert not missing, "missing in uploads.log: " + "; ".join(missing)
            return (
                f"mkdir, {len(self.samples)} uploads and their outcomes, the rejection with its cause, "
                f"in {self.log.path}"
            )

        self.check("A9", "uploads.log shows the events", story)

    # ---- cleanup ------------------------------------------------------------------------
    def cleanup(self) -> None:
        if not self.created_dir:
            return
        assert TEST_COMPANY.match(self.company)  # never anything but our own test company
        playbook = self.project / "grafana-automation" / "playbooks" / "delete_grafana_resources.yml"

        def grafana() -> str:
            env = dict(read_environment(self.env_file))
            if self.env_file is not None:
                env["POWERVIEW_ENV_FILE"] = str(self.env_file)
            bin_dir = Path(sys.executable).parent
            env["PATH"] = f"{bin_dir}:{env.get('PATH') or '/usr/local/bin:/usr/bin:/bin'}"
            env.update(ANSIBLE_NOCOLOR="1", LANG=env.get("LANG", "C.UTF-8"))
            command = (
                str(bin_dir / "ansible-playbook")
                if (bin_dir / "ansible-playbook").exists()
                else (shutil.which("ansible-playbook") or "ansible-playbook")
            )
            with tempfile.NamedTemporaryFile("w", suffix=".json", prefix="pvaccept-") as extra:
                json.dump({"company_name": self.company, "user_name": self.names["user_login"]}, extra)
                extra.flush()
                result = subprocess.run(
                    [command, str(playbook), "-e", f"@{extra.name}"],
                    cwd=playbook.parent.parent,
                    env=env,
                    capture_output=True,
                    timeout=max(self.timeout_s, 60),
                    check=False,
                )
            output = result.stdout.decode("utf-8", "replace")
            assert result.returncode == 0, (
                f"{playbook.name} exited {result.returncode}: "
                + " ".join(re.findall(r'"msg": "([^"]*)"', output))[-300:]
            )
            gone = self.grafana.get(
                f"{self.settings.grafana.url}/api/dashboards/uid/{self.names['dashboard_uid']}", timeout=HTTP_TIMEOUT_S
            )
            assert gone.status_code == 404, f"dashboard still there (HTTP {gone.status_code})"
            return f"{playbook.name}: team, folder, data source, dashboard, user {self.names['user_login']} deleted"

        def influxdb() -> str:
            deleted = []
            with influx.connect(self.settings.influx) as client:
                manager = TokenManager(client, self.settings.influx.org or "", budget_s=10.0)
                tokens = manager.revoke(self.company)
                for name in [self.company, *(f"{self.company}_{level}" for level in DERIVED_LEVELS)]:
                    bucket = manager.find_bucket(name)
                    if bucket is not None and bucket.name == name:
                        client.buckets_api().delete_bucket(bucket.id)
                        deleted.append(name)
            return (
                f"bucket(s) {', '.join(deleted) or 'none'} and {len(tokens)} token(s) deleted; the run summaries "
                f"stay in {self.settings.meta_bucket}"
            )

        def config_api() -> str:
            url = self.settings.config_api_url
            if not url:
                raise Skip("CONFIG_API_URL is not set")
            headers = (
                {"Authorization": f"Bearer {self.settings.config_api_token}"} if self.settings.config_api_token else {}
            )
            client = requests.get(f"{url}/clients/{self.company}", timeout=HTTP_TIMEOUT_S)
            if client.status_code == 200:
                answer = requests.delete(f"{url}/clients/{self.company}", headers=headers, timeout=HTTP_TIMEOUT_S)
                assert answer.status_code in (204, 404), (
                    f"DELETE /clients/{self.company} answered HTTP {answer.status_code}"
                )
            return (
                f"client {self.company} {'deleted' if client.status_code == 200 else 'not registered'}; its "
                "channels stay in the catalogue (the API has no delete)"
            )

        def queue() -> str:
            # a job still queued (the worker was down, or slower than --timeout) would provision the
            # test company again after its deletion: purge them, through the worker's own commands
            worker = [sys.executable, "-m", "powerview.worker"] + (
                ["--env-file", str(self.env_file)] if self.env_file is not None else []
            )
            jobs, unread = [], 0
            for listing in (["list", "--json"], ["list", "--failed", "--json"], ["list"]):
                result = subprocess.run(worker + listing, capture_output=True, text=True, timeout=60, check=False)
                assert result.returncode == 0, f"worker {' '.join(listing)}: {result.stderr.strip()[-300:]}"
                if "--json" in listing:
                    jobs += [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
                else:
                    found = re.search(r"(\d+) event\(s\) recorded by on-upload.sh", result.stderr)
                    unread = int(found.group(1)) if found else 0
            prefix = str(self.company_dir) + os.sep
            ids = [
                job["id"]
                for job in jobs
                if job.get("company") == self.company or str(job.get("path") or "").startswith(prefix)
            ]
            if ids:
                result = subprocess.run(
                    worker + ["purge", *ids], capture_output=True, text=True, timeout=60, check=False
                )
                assert result.returncode == 0, f"worker purge: {result.stderr.strip()[-300:]}"
            assert not unread, (
                f"{len(ids)} job(s) purged, but {unread} event(s) recorded by on-upload.sh were never "
                f"read: the worker is not running; once it runs, check that it did not provision "
                f"{self.company} again (docs/acceptance.md, removal by hand)"
            )
            return f"{len(ids)} queued job(s) of {self.company} purged" if ids else f"no job of {self.company} queued"

        def data() -> str:
            folder = self.company_dir
            assert folder.parent == self.settings.data_dir and not folder.is_symlink(), f"refusing to remove {folder}"
            shutil.rmtree(folder)
            return f"{folder} removed"

        self.check("A0", f"cleanup of {self.company} in the worker's queue", queue)
        self.check("A0", f"cleanup of {self.company} in Grafana", grafana)
        self.check("A0", f"cleanup of {self.company} in InfluxDB", influxdb)
        self.check("A0", f"cleanup of {self.company} in the config API", config_api)
        self.check("A0", f"cleanup of {self.company} in the data folder", data)


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _message(answer: requests.Response) -> str:
    try:
        return str(answer.json().get("message", ""))
    except ValueError:
        return ""


def run_checks(
    settings: AcceptanceSettings,
    project: Path,
    env_file: Path | None,
    timeout_s: float,
    keep: bool = False,
    emit: Callable[[Check], None] | None = None,
) -> list[Check]:
    """Run the whole plan against the deployment; returns the checks (each also given to `emit`)."""
    run = Run(settings, project, env_file, timeout_s, emit or (lambda check: None))
    run.run(keep=keep)
    return run.checks


def exit_code(checks: list[Check]) -> int:
    return 1 if any(c.result == FAIL for c in checks) else 0


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--project",
    type=click.Path(file_okay=False, path_type=Path),
    default=PROJECT_DIR,
    show_default=True,
    help="The deployed project folder: on-upload.sh, grafana-automation/, .env.",
)
@click.option(
    "--env-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Settings file (default: <project>/.env).",
)
@click.option(
    "--timeout",
    "timeout_s",
    type=click.FloatRange(min=1),
    default=300.0,
    show_default=True,
    help="Longest wait, in seconds, for each job of the worker (provisioning, each upload).",
)
@click.option("--keep", is_flag=True, help="Leave the test company in place (to inspect it); remove it by hand.")
def main(project: Path, env_file: Path | None, timeout_s: float, keep: bool) -> None:
    """Acceptance check of a live PowerView deployment (plan A1-A9, docs/acceptance.md).

    Creates a test company pvaccept_<random>, plays SFTPGo's calls, checks every outcome, then
    removes the test company. Prints PASS/FAIL/SKIP lines; exit 0 when no check failed, 1 when
    one did, 2 for a usage or configuration error.
    """
    project = project.resolve()
    env_file = env_file or project / ".env"
    try:
        settings = load_acceptance(env_file if env_file.is_file() else None)
    except ConfigError as exc:
        click.echo(f"FAIL A0 settings — {exc}")
        sys.exit(ExitCode.USAGE)

    def emit(check: Check) -> None:
        click.echo(check.line())
        sys.stdout.flush()  # each line as it happens, also through a pipe (tee)

    try:
        checks = run_checks(settings, project, env_file if env_file.is_file() else None, timeout_s, keep, emit)
    except KeyboardInterrupt:  # the cleanup ran (Run.run's finally); its lines are printed
        click.echo("FAIL A0 run — interrupted", err=True)
        sys.exit(1)
    counts = {r: sum(1 for c in checks if c.result == r) for r in (PASS, FAIL, SKIP)}
    click.echo(f"{counts[PASS]} passed, {counts[FAIL]} failed, {counts[SKIP]} skipped", err=True)
    sys.exit(exit_code(checks))


if __name__ == "__main__":
    main()
