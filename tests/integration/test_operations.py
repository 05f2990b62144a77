"""Operator-facing details of issue 14 with the real pieces: the cause of a failed provisioning
in uploads.log (the real ansible-playbook), powerview-relocate (the real command), the hook's
DEBUG=1 trace and its PARSED_* rule (the real on-upload.sh, called as SFTPGo calls it)."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from powerview.core.settings import load_worker
from powerview.operations import uploadlog
from powerview.operations.jobrunner import JobRunner, Tools, ansible_failure
from powerview.operations.spool import PROVISION, Job, Spool

import samples

VENV_BIN = samples.PROJECT_DIR / "envs" / "powerview" / "bin"

FAILING_PLAYBOOK = """\
- hosts: localhost
  gather_facts: false
  tasks:
    - name: a module that fails as powerview_grafana does
      ansible.builtin.fail:
        msg: "GET /api/health: Grafana at http://127.0.0.1:9 cannot be reached\\n(connection refused)"
"""


def test_a_failed_provisioning_names_the_modules_message_in_uploads_log(tmp_path):
    samples.require_venv()
    playbook = tmp_path / "ga" / "playbooks" / "p.yml"
    playbook.parent.mkdir(parents=True)
    playbook.write_text(FAILING_PLAYBOOK)
    settings = load_worker(
        tmp_path / "none.env",
        environ={
            "POWERVIEW_DATA_DIR": str(tmp_path / "data"),
            "POWERVIEW_LOG_DIR": str(tmp_path / "logs"),
            "POWERVIEW_SPOOL_DIR": str(tmp_path / "spool"),
            "POWERVIEW_GRAFANA_PLAYBOOK": str(playbook),
        },
    )
    spool = Spool(settings.spool_dir).ensure()
    worker_log = tmp_path / "worker.log"
    with open(worker_log, "wb") as output:
        tools = Tools(
            python=sys.executable,
            parser=None,
            ansible_playbook=str(VENV_BIN / "ansible-playbook"),
            env={"PATH": f"{VENV_BIN}:{os.environ['PATH']}", "ANSIBLE_NOCOLOR": "1", "LC_ALL": "C.UTF-8"},
            env_file=None,
            output=output.fileno(),
            timeout_s=120,
        )
        spool.add(Job.new(PROVISION, {"action": "mkdir", "user": "acme"}, company="acme", campaign=None))
        JobRunner(settings, spool, tools).run_due()
    [line] = [x for x in (settings.log_dir / uploadlog.LOG_NAME).read_text().splitlines() if "action=provision" in x]
    assert "result=retry" in line
    assert (
        'detail="ansible-playbook failed (exit 2): GET /api/health: Grafana at http://127.0.0.1:9 '
        "cannot be reached (connection refused); next try in" in line
    )
    assert "FAILED!" in worker_log.read_text()  # Ansible's whole output still reaches worker.log
    assert list(spool.tmp_dir.iterdir()) == []


@pytest.mark.parametrize(
    "output, cause",
    [
        ('fatal: [localhost]: FAILED! => {"changed": false, "msg": "HTTP 401"}\n', "HTTP 401"),
        ("ERROR! the playbook: x.yml could not be found\n", "the playbook: x.yml could not be found"),
        ('failed: [localhost] (item=a) => {"msg": "first"}\nfatal: [localhost]: FAILED! => {"msg": "last"}\n', "last"),
        ("PLAY RECAP\nlocalhost : ok=1 failed=0\n", None),
        ('fatal: [localhost]: FAILED! => {"msg": "' + "x" * 400 + '"}\n', "x" * 297 + "..."),
    ],
)
def test_the_cause_of_a_failed_run_is_one_line(output, cause):
    assert ansible_failure(output) == cause


def relocate(*args: str, env_file: Path) -> subprocess.CompletedProcess:
    samples.require_venv()
    return subprocess.run(
        [str(VENV_BIN / "powerview-relocate"), "--env-file", str(env_file), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": os.environ["PATH"]},
    )


@pytest.fixture
def old_checkout(tmp_path):
    old = tmp_path / "powerview_backup"
    (old / "secrets").mkdir(parents=True, mode=0o700)
    (old / "secrets" / "grafana_user_acme.password").write_text("pw-acme")
    (old / "secrets" / "grafana_user_acme.password").chmod(0o600)
    (old / "provisioning" / "datasources").mkdir(parents=True)
    (old / "provisioning" / "datasources" / "config-api.yaml").write_text("apiVersion: 1\n")
    (old / "dashboards").mkdir()
    (old / "dashboards" / "home.json").write_text("{}")
    new = tmp_path / "powerview-data"
    env_file = tmp_path / ".env"
    env_file.write_text(
        f"POWERVIEW_SECRETS_DIR={new}/secrets\nGRAFANA_PROVISIONING_DIR={new}/provisioning\n"
        f"GRAFANA_DASHBOARDS_DIR={new}/dashboards\n"
    )
    return old, new, env_file


def test_relocate_moves_the_old_folders_out_and_is_idempotent(old_checkout):
    old, new, env_file = old_checkout
    dry = relocate("--from", str(old), "--dry-run", env_file=env_file)
    assert dry.returncode == 0 and "would move" in dry.stdout and not new.exists()

    done = relocate("--from", str(old), env_file=env_file)
    assert done.returncode == 0, done.stderr
    assert (new / "secrets" / "grafana_user_acme.password").read_text() == "pw-acme"
    assert stat.S_IMODE((new / "secrets").stat().st_mode) == 0o700
    assert stat.S_IMODE((new / "secrets" / "grafana_user_acme.password").stat().st_mode) == 0o600
    assert (new / "provisioning" / "datasources" / "config-api.yaml").is_file()
    assert (new / "dashboards" / "home.json").is_file()
    assert not (old / "secrets").exists() and not (old / "provisioning").exists()

    again = relocate("--from", str(old), env_file=env_file)
    assert again.returncode == 0 and again.stdout == ""


def test_relocate_never_overwrites_a_different_file(old_checkout):
    old, new, env_file = old_checkout
    (new / "secrets").mkdir(parents=True)
    (new / "secrets" / "grafana_user_acme.password").write_text("another")
    (new / "dashboards").mkdir()
    (new / "dashboards" / "home.json").write_text("{}")  # the same bytes: the old copy goes
    result = relocate("--from", str(old), env_file=env_file)
    assert result.returncode == 1
    assert "conflict" in result.stderr and "grafana_user_acme.password" in result.stderr
    assert (new / "secrets" / "grafana_user_acme.password").read_text() == "another"
    assert (old / "secrets" / "grafana_user_acme.password").read_text() == "pw-acme"
    assert not (old / "dashboards").exists()


def test_relocate_creates_the_bind_mount_sources_of_a_fresh_install(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text(
        f"POWERVIEW_SECRETS_DIR={tmp_path}/d/secrets\nGRAFANA_PROVISIONING_DIR={tmp_path}/d/provisioning\n"
        f"GRAFANA_DASHBOARDS_DIR={tmp_path}/d/dashboards\n"
    )
    result = relocate("--from", str(tmp_path / "no-old-checkout"), env_file=env_file)
    assert result.returncode == 0, result.stderr
    assert stat.S_IMODE((tmp_path / "d" / "secrets").stat().st_mode) == 0o700
    assert (tmp_path / "d" / "provisioning").is_dir() and (tmp_path / "d" / "dashboards").is_dir()


class Hook:
    """on-upload.sh alone in a project folder (no virtualenv: the worker never starts)."""

    def __init__(self, tmp: Path, **settings: str):
        self.project = tmp / "project"
        self.project.mkdir()
        shutil.copy2(samples.PROJECT_DIR / "on-upload.sh", self.project / "on-upload.sh")
        self.data, self.logs, self.spool = tmp / "data", tmp / "logs", tmp / "spool"
        self.data.mkdir()
        values = {"POWERVIEW_DATA_DIR": self.data, "POWERVIEW_LOG_DIR": self.logs, "POWERVIEW_SPOOL_DIR": self.spool}
        values.update(settings)
        (self.project / ".env").write_text("".join(f"{k}={v}\n" for k, v in values.items()))

    def call(self, *assignments: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["env", "-i", *assignments, str(self.project / "on-upload.sh")],
            capture_output=True,
            text=True,
            timeout=30,
            cwd="/",
        )


@pytest.mark.parametrize("where", ["environment", ".env"])
def test_debug_1_traces_the_hook_into_worker_log(tmp_path, where):
    hook = Hook(tmp_path, **({"DEBUG": "1"} if where == ".env" else {}))
    extra = ["DEBUG=1"] if where == "environment" else []
    result = hook.call(*extra, "SFTPGO_ACTION=upload", "SFTPGO_ACTION_PATH=/x.tsv")
    assert result.returncode == 0
    trace = (hook.logs / "worker.log").read_text()
    assert "+ on-upload.sh[" in trace and "mkdir -p" in trace
    assert "+ " not in result.stderr  # the trace goes to the log, not to SFTPGo's


def test_without_debug_there_is_no_trace(tmp_path):
    hook = Hook(tmp_path)
    assert hook.call("SFTPGO_ACTION=upload", "SFTPGO_ACTION_PATH=/x.tsv").returncode == 0
    log = hook.logs / "worker.log"
    assert not log.exists() or "+ on-upload.sh[" not in log.read_text()


def fake_venv(root: Path, python_script: str, pins: dict[str, str]) -> Path:
    """A virtualenv as the hook sees it: bin/python and the .dist-info folders of site-packages."""
    python = root / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text(python_script)
    python.chmod(0o755)
    sites = root / "lib" / "python3.11" / "site-packages"
    sites.mkdir(parents=True)
    for name, version in {"powerview": "2.0.0", **pins}.items():
        (sites / f"{name.replace('-', '_')}-{version}.dist-info").mkdir()
    return root


def test_a_package_missing_from_the_venv_is_named_at_the_first_call(tmp_path):
    venv = fake_venv(tmp_path / "venv", "#!/bin/sh\nexit 0\n", {"click": "8.5.1", "python-dotenv": "1.2.4"})
    hook = Hook(tmp_path, POWERVIEW_VENV=str(venv))
    (hook.project / "requirements.txt").write_text("click==8.5.1\npython-dotenv==1.2.4\nrequests==2.34.2\n-e .\n")
    result = hook.call("SFTPGO_ACTION=upload", "SFTPGO_ACTION_PATH=/x.tsv", "SFTPGO_ACTION_STATUS=1")
    assert result.returncode == 0
    expected = f"requests is not installed in the virtualenv {venv}; fix: cd {hook.project} && {venv}/bin/pip install -r requirements.txt"
    assert expected in result.stderr
    [line] = (hook.logs / "uploads.log").read_text().splitlines()
    assert expected in line and "result=error" in line
    assert len(list((hook.spool / "incoming").iterdir())) == 1  # kept for when it is repaired

    (hook.project / "requirements.txt").write_text("click==8.6.0\n")  # a checkout that wants another version
    result = hook.call("SFTPGO_ACTION=upload", "SFTPGO_ACTION_PATH=/x.tsv", "SFTPGO_ACTION_STATUS=1")
    assert f"click 8.5.1 is installed in the virtualenv {venv}, requirements.txt pins 8.6.0" in result.stderr


def test_a_venv_that_cannot_import_the_worker_is_named_by_the_next_calls(tmp_path):
    venv = fake_venv(
        tmp_path / "venv",
        '#!/bin/sh\necho "powerview.cli.worker cannot be imported: ImportError: boom"\nexit 1\n',
        {"click": "8.5.1"},
    )
    hook = Hook(tmp_path, POWERVIEW_VENV=str(venv))
    (hook.project / "requirements.txt").write_text("click==8.5.1\n")
    first = hook.call("SFTPGO_ACTION=upload", "SFTPGO_ACTION_PATH=/x.tsv", "SFTPGO_ACTION_STATUS=1")
    assert first.returncode == 0  # the check runs detached: this call does not wait for it
    deadline = time.monotonic() + 10
    while not (hook.spool / "venv.checked").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    second = hook.call("SFTPGO_ACTION=upload", "SFTPGO_ACTION_PATH=/x.tsv", "SFTPGO_ACTION_STATUS=1")
    assert "worker not started: powerview.cli.worker cannot be imported: ImportError: boom" in second.stderr
    assert "pip install -r requirements.txt" in second.stderr
    assert len(list((hook.spool / "incoming").iterdir())) == 2


def venvcheck(project: Path) -> subprocess.CompletedProcess:
    """powerview/operations/venvcheck.py run as the hook runs it (isolated, by path)."""
    script = samples.PROJECT_DIR / "powerview" / "operations" / "venvcheck.py"
    return subprocess.run(
        [str(VENV_BIN / "python"), "-I", str(script), str(project)], capture_output=True, text=True, timeout=60
    )


def test_venvcheck_names_the_first_missing_distribution(tmp_path):
    samples.require_venv()
    project = tmp_path / "project"
    project.mkdir()
    (project / "requirements.txt").write_text("click==8.5.1  # ok\nno-such-distribution==1.0\n-e .\n")
    result = venvcheck(project)
    assert result.returncode == 1
    assert result.stdout.startswith("no-such-distribution is not installed in the virtualenv ")
    (project / "requirements.txt").write_text("click==8.5.1\n")
    ok = venvcheck(project)
    assert (ok.returncode, ok.stdout) == (0, "")
