"""The operators' guide followed literally (docs/setup-composants.md, sections 1 and 7), on a
fresh clone of this checkout standing for /srv/powerview, with a virtualenv made ONLY by
`python3 -m venv envs/powerview && envs/powerview/bin/pip install -r requirements.txt` run from
the project folder. The real hook is called as SFTPGo calls it (`env -i` + SFTPGO_ACTION*), the
real worker, tsv_parser.py and ansible-playbook run, against the Grafana and InfluxDB 2 stand-ins.

The tests of this module run in order and share one deployment (the second builds on the first).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

import samples
from samples import wait_for
from stand_ins.grafana import GrafanaStandIn
from stand_ins.influxdb2 import InfluxDB2StandIn

ROOT = samples.PROJECT_DIR
SAMPLE = samples.EXAMPLES / "demo_energie/audit_2026/02009001/T302_260303_031500.tsv"
SAMPLE_POINTS = 870


def run(cmd: list[str], cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    keep = ("PATH", "HOME", "PIP_CACHE_DIR", "PIP_CONFIG_FILE", "PIP_FIND_LINKS", "PIP_DISABLE_PIP_VERSION_CHECK")
    env = {k: os.environ[k] for k in keep if k in os.environ}
    # pip's cache makes the installs quick; no .pyc compilation (the CPU is shared with other tests)
    env["PIP_NO_COMPILE"] = "1"
    result = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"{cmd}: {result.stdout[-2000:]}{result.stderr[-2000:]}"
    return result


def fresh_clone(target: Path) -> None:
    """`git clone` of this checkout, with its uncommitted changes (the state under test)."""
    if not (ROOT / ".git").exists():
        pytest.fail("the checkout is not a git repository: the operators' procedure starts with git clone")
    run(["git", "clone", "--quiet", "--no-hardlinks", str(ROOT), str(target)], cwd=ROOT.parent)
    changed = run(["git", "ls-files", "--modified", "--others", "--exclude-standard", "-z"], cwd=ROOT).stdout
    deleted = set(run(["git", "ls-files", "--deleted", "-z"], cwd=ROOT).stdout.split("\0"))
    for name in filter(None, changed.split("\0")):
        if name in deleted or name.startswith("envs/"):
            continue
        (target / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, target / name)
    for name in filter(None, deleted):
        (target / name).unlink(missing_ok=True)


def guide_venv(project: Path) -> Path:
    """Section 1 of the guide, word for word: the venv, then pip install -r requirements.txt."""
    run(["python3", "-m", "venv", "envs/powerview"], cwd=project)
    run(["envs/powerview/bin/pip", "install", "--quiet", "-r", "requirements.txt"], cwd=project)
    return project / "envs" / "powerview"


class Site:
    """/srv of a server: powerview/ (the checkout), sftpgo/{data,logs,spool}, powerview-data/."""

    def __init__(self, root: Path, grafana: GrafanaStandIn, influx: InfluxDB2StandIn):
        self.root = root
        self.project = root / "powerview"
        self.data = root / "sftpgo" / "data"
        self.logs = root / "sftpgo" / "logs"
        self.spool = root / "sftpgo" / "spool"
        self.secrets = root / "powerview-data" / "secrets"
        self.provisioning = root / "powerview-data" / "provisioning"
        self.dashboards = root / "powerview-data" / "dashboards"
        self.grafana, self.influx = grafana, influx
        self.data.mkdir(parents=True)
        self.env_text = "".join(
            f"{k}={v}\n"
            for k, v in {
                "POWERVIEW_DATA_DIR": self.data,
                "POWERVIEW_LOG_DIR": self.logs,
                "POWERVIEW_SPOOL_DIR": self.spool,
                "POWERVIEW_SECRETS_DIR": self.secrets,
                "GRAFANA_PROVISIONING_DIR": self.provisioning,
                "GRAFANA_DASHBOARDS_DIR": self.dashboards,
                "POWERVIEW_WORKER_LINGER_SECONDS": "1",
                "POWERVIEW_RETRY_BASE_SECONDS": "1",
                "INFLUXDB_HOST": influx.url,
                "INFLUXDB_ORG": influx.org,
                "INFLUXDB_ADMIN_TOKEN": influx.admin_token,
                "TSV_REPORT_DIR": self.logs / "reports",
                "TSV_INFLUX_RETRY_MAX_SECONDS": "2",
                "GRAFANA_URL": grafana.url,
                "GRAFANA_USERNAME": "admin",
                "GRAFANA_PASSWORD": "admin-password",
                "INFLUXDB_URL_FOR_GRAFANA": "http://influxdb:8086",
            }.items()
        )

    def hook(self, **variables: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["env", "-i", *(f"{k}={v}" for k, v in variables.items()), str(self.project / "on-upload.sh")],
            capture_output=True,
            text=True,
            timeout=30,
            cwd="/",
        )

    def upload(self, company: str, name: str) -> tuple[Path, subprocess.CompletedProcess]:
        device = self.data / company / "camp" / "02009001"
        device.mkdir(parents=True, exist_ok=True)
        path = device / name
        shutil.copy(SAMPLE, path)
        process = self.hook(
            SFTPGO_ACTION="upload",
            SFTPGO_ACTION_PATH=str(path),
            SFTPGO_ACTION_STATUS="1",
            SFTPGO_ACTION_USERNAME=company,
        )
        assert process.returncode == 0
        return path, process

    def uploads_log(self) -> str:
        path = self.logs / "uploads.log"
        return path.read_text() if path.exists() else ""

    def idle(self) -> bool:
        return not list((self.spool / "jobs").glob("*.json")) and not list((self.spool / "incoming").glob("*"))


def parsed(path: Path) -> bool:
    return (path.parent / "parsed" / path.name).exists()


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    if shutil.which("git") is None:
        pytest.fail("git is required (the operators' procedure clones the project)")
    with GrafanaStandIn() as grafana, InfluxDB2StandIn() as influx:
        root = tmp_path_factory.mktemp("srv")
        deployment = Site(root, grafana, influx)
        fresh_clone(deployment.project)
        guide_venv(deployment.project)
        (deployment.project / ".env").write_text(deployment.env_text)
        yield deployment


def test_guide_venv_gives_every_console_script_and_an_upload_is_ingested(site):
    scripts = {p.name for p in (site.project / "envs/powerview/bin").iterdir()}
    for name in ("powerview-downsample", "powerview-catalogue", "powerview-relocate", "powerview-worker"):
        assert name in scripts
    path, process = site.upload("acme", "T302_260303_031500.tsv")
    assert process.stderr == ""
    wait_for(lambda: parsed(path) and "result=parsed" in site.uploads_log(), 120, "the upload ingested")
    assert len(site.influx.points("acme")) == SAMPLE_POINTS
    assert f"action=upload user=acme path={path} " in site.uploads_log()


def test_a_mkdir_event_provisions_a_new_company(site):
    campaign = site.data / "newco" / "camp"
    campaign.mkdir(parents=True)
    process = site.hook(SFTPGO_ACTION="mkdir", SFTPGO_ACTION_PATH=str(campaign))
    assert process.returncode == 0 and process.stderr == ""
    wait_for(
        lambda: "path=newco/camp" in site.uploads_log() and "result=provisioned" in site.uploads_log(),
        180,
        "provisioning",
    )
    assert site.grafana.dashboards.get("powerview_newco")
    assert site.grafana.datasource_by_name("influxdb_newco")
    assert (site.secrets / "grafana_user_newco.password").is_file()


def test_after_the_safe_update_nothing_is_rewritten_and_uploads_go_on(site):
    wait_for(site.idle, 60, "an idle spool")
    password = (site.secrets / "grafana_user_newco.password").read_text()
    # section 7: move the checkout aside, clone, new venv, .env back
    (site.project / "provisioning" / "datasources").mkdir(parents=True)  # as deployed: inside the checkout
    (site.project / "provisioning" / "datasources" / "json.yaml").write_text("apiVersion: 1\n")
    backup = site.root / "powerview_backup_20260101_000000"
    site.project.rename(backup)
    fresh_clone(site.project)
    guide_venv(site.project)
    shutil.copy2(backup / ".env", site.project / ".env")
    run([str(site.project / "envs/powerview/bin/powerview-relocate"), "--from", str(backup)], cwd=site.project)
    assert (site.provisioning / "datasources" / "json.yaml").read_text() == "apiVersion: 1\n"
    assert site.dashboards.is_dir() and not (backup / "provisioning").exists()

    writes_before = len(site.grafana.writes())
    tokens_before = len(site.influx.authorizations)
    run(
        [
            str(site.project / "envs/powerview/bin/ansible-playbook"),
            "grafana-automation/playbooks/create_grafana_resources.yml",
            "-e",
            '{"company_name": "newco", "force_company": true}',
        ],
        cwd=site.project,
    )
    assert site.grafana.writes()[writes_before:] == []
    assert len(site.influx.authorizations) == tokens_before
    assert (site.secrets / "grafana_user_newco.password").read_text() == password

    path, process = site.upload("acme", "T302_260304_031500.tsv")
    assert process.stderr == ""
    wait_for(lambda: parsed(path), 120, "an upload after the update ingested")


def test_a_broken_venv_is_reported_at_the_next_call_and_nothing_is_lost(site):
    wait_for(site.idle, 60, "an idle spool")
    time.sleep(1.5)  # the worker lingers POWERVIEW_WORKER_LINGER_SECONDS, then lets the lock go
    pip = str(site.project / "envs/powerview/bin/pip")
    run([pip, "uninstall", "--quiet", "--yes", "requests"], cwd=site.project)
    waiting = []
    for i in range(3):
        path, process = site.upload("acme", f"T302_26031{i}_031500.tsv")
        waiting.append(path)
        assert "requests is not installed" in process.stderr, process.stderr
        assert "pip install -r requirements.txt" in process.stderr
    lines = [line for line in site.uploads_log().splitlines() if "requests is not installed" in line]
    assert len(lines) == 3 and all("pip install -r requirements.txt" in line for line in lines)
    assert not any(parsed(p) for p in waiting)

    run([pip, "install", "--quiet", "-r", "requirements.txt"], cwd=site.project)
    path, process = site.upload("acme", "T302_260320_031500.tsv")
    assert process.stderr == ""
    waiting.append(path)
    wait_for(lambda: all(parsed(p) for p in waiting), 120, "every waiting upload ingested")
