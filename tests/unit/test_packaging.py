"""The package: `pip install .` gives every command as a console script, and no product code
tweaks sys.path or PYTHONPATH to find itself."""

from __future__ import annotations

import importlib
import re
import subprocess
import sys
import zipfile

from samples import PROJECT_DIR

COMMANDS = {
    "powerview-parse",
    "powerview-worker",
    "powerview-tokens",
    "powerview-catalogue",
    "powerview-grafana-tenancy",
    "powerview-acceptance",
    "powerview-config-api",
    "powerview-downsample",
    "powerview-relocate",
}


def test_the_wheel_declares_every_command_and_each_one_imports(tmp_path):
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(tmp_path),
            str(PROJECT_DIR),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    [wheel] = tmp_path.glob("powerview-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        entry_points = next(n for n in names if n.endswith("entry_points.txt"))
        text = archive.read(entry_points).decode()
    scripts = dict(re.findall(r"^(\S+) = (\S+)$", text.split("[console_scripts]")[1], re.M))
    assert set(scripts) >= COMMANDS
    for target in scripts.values():
        module, _, function = target.partition(":")
        assert callable(getattr(importlib.import_module(module), function))
    assert any(n.startswith("powerview/ingestion/formats/") for n in names)
    assert any(n.startswith("powerview_config_api/") for n in names)


def test_no_sys_path_or_pythonpath_tricks_in_product_code():
    offenders = []
    for path in [
        *PROJECT_DIR.glob("*.py"),
        *PROJECT_DIR.glob("powerview*/**/*.py"),
        *PROJECT_DIR.glob("grafana-automation/**/*.py"),
        PROJECT_DIR / "on-upload.sh",
    ]:
        text = path.read_text()
        if "sys.path" in text or "PYTHONPATH" in text:
            offenders.append(str(path.relative_to(PROJECT_DIR)))
    assert offenders == []


def test_requirements_txt_installs_the_project_itself():
    """The operators' `pip install -r requirements.txt` (docs/setup-composants.md) must give the
    package and its console scripts, not only the dependencies."""
    lines = [line.strip() for line in (PROJECT_DIR / "requirements.txt").read_text().splitlines()]
    assert "-e ." in lines
    assert "-r requirements.txt" in (PROJECT_DIR / "requirements-dev.txt").read_text().splitlines()


def test_no_absolute_path_of_a_development_machine_in_the_project():
    tracked = subprocess.run(
        ["git", "ls-files", "-z"], cwd=PROJECT_DIR, capture_output=True, text=True, check=True
    ).stdout.split("\0")
    offenders = []
    for name in filter(None, tracked):
        path = PROJECT_DIR / name
        if not path.is_file():
            continue
        text = path.read_bytes().decode("utf-8", "replace")
        if re.search(r"(?<![\w.])/(work|home|Users)/", text):
            offenders.append(name)
    assert offenders == []


def test_the_editable_install_prints_no_warning_and_is_a_pth_of_the_project(tmp_path):
    """What `make venv` runs (`pip install -e .`): setuptools' editable build, without a
    BuildBackendWarning (nor any other warning), adding the project folder to sys.path."""
    code = (
        "import warnings, sys; warnings.simplefilter('always'); "
        "from setuptools import build_meta; "
        f"print(build_meta.build_editable({str(tmp_path)!r}))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=PROJECT_DIR, capture_output=True, text=True, timeout=120, check=True
    )
    assert "Warning" not in done.stderr and "!!" not in done.stderr, done.stderr
    with zipfile.ZipFile(tmp_path / done.stdout.strip().splitlines()[-1]) as archive:
        [pth] = [n for n in archive.namelist() if n.endswith(".pth")]
        assert archive.read(pth).decode().split() == [str(PROJECT_DIR)]
