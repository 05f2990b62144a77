"""The shared state of one acceptance run and how a check is run and recorded."""

from __future__ import annotations

import re
import secrets
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import requests

from powerview.acceptance.settings import AcceptanceSettings
from powerview.core.settings import ConfigError
from powerview.delivery import influx
from powerview.onboarding.grafana.names import company_names
from powerview.operations import uploadlog

from .logtail import LogTail
from .samples import Sample

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


@dataclass
class Context:
    """One run against the deployment: its settings, its test company and what the checks found."""

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
        self.samples: list[Sample] = []  # the uploaded files (A3)

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
                    "worker running? see worker.log and `python -m powerview.cli.worker list`"
                )
            time.sleep(POLL_S)
