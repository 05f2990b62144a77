"""The shell scripts stay shellcheck-clean (the hook runs as SFTPGo's user at 3 a.m.: no surprises)."""

from __future__ import annotations

import shutil
import subprocess

import pytest

import samples
from samples import PROJECT_DIR

SCRIPTS = ["on-upload.sh", ".ci/run", "setup.sh"]


@pytest.mark.parametrize("script", SCRIPTS)
def test_shellcheck_is_clean(script):
    binary = shutil.which("shellcheck")
    if binary is None:
        samples.missing("shellcheck not installed: apt-get install shellcheck")
    result = subprocess.run([binary, str(PROJECT_DIR / script)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout
