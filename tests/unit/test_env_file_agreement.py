"""on-upload.sh (bash) and Python (python-dotenv, interpolate=False) read `.env` the same way.

The same tricky `.env` is given to both: the real hook, run as SFTPGo runs it (`env -i`), and the
worker's settings loader. Where the hook records its event is where the worker looks — or both
refuse the setting.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from powerview.core.settings import ConfigError, load_worker

from samples import PROJECT_DIR

CASES = {
    "bare": "POWERVIEW_SPOOL_DIR={B}/s1\n",
    "export": "export POWERVIEW_SPOOL_DIR={B}/s2\n",
    "spaces, quotes and a comment": '  POWERVIEW_SPOOL_DIR = "{B}/s3"   # the spool\n',
    "single quotes": "POWERVIEW_SPOOL_DIR='{B}/s4'\n",
    "the last line wins": "POWERVIEW_SPOOL_DIR={B}/old\nPOWERVIEW_SPOOL_DIR={B}/s5\n",
    "crlf": "POWERVIEW_SPOOL_DIR={B}/s6\r\nOTHER=1\r\n",
    "a comment after a bare value": "POWERVIEW_SPOOL_DIR={B}/s7 # not part of it\n",
    "inside another value's quotes": 'NOTE="first line\nPOWERVIEW_SPOOL_DIR={B}/evil\nlast"\nPOWERVIEW_SPOOL_DIR={B}/s8\n',
    "text after the closing quote": 'POWERVIEW_SPOOL_DIR={B}/s9\nPOWERVIEW_SPOOL_DIR="{B}/no"junk\n',
    "a commented line": "POWERVIEW_SPOOL_DIR={B}/s10\n# POWERVIEW_SPOOL_DIR={B}/commented\n",
    "a similar name": "POWERVIEW_SPOOL_DIR={B}/s11\nPOWERVIEW_SPOOL_DIR_OLD={B}/other\n",
    "interpolation is not done": "BASE={B}\nPOWERVIEW_SPOOL_DIR=${{BASE}}/spool\n",
    "a space in the path": 'POWERVIEW_SPOOL_DIR="{B}/my spool"\n',
    "a relative path": "POWERVIEW_SPOOL_DIR=spool\n",
    "a multi-line value": 'POWERVIEW_SPOOL_DIR="{B}/s12\n{B}/s13"\n',
}


def hook_spool(project: Path) -> Path | None:
    """Run the real hook once; the folder where it recorded its event (None: it refused)."""
    base = project.parent
    before = set(base.rglob("*.event"))
    result = subprocess.run(
        [
            "env",
            "-i",
            "SFTPGO_ACTION=upload",
            f"SFTPGO_ACTION_PATH={base}/data/a/b/c/f.tsv",
            "SFTPGO_ACTION_STATUS=1",
            str(project / "on-upload.sh"),
        ],
        cwd=base,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0
    events = set(base.rglob("*.event")) - before
    assert len(events) <= 1
    return events.pop().parent.parent if events else None


@pytest.mark.parametrize("name", list(CASES))
def test_the_hook_and_python_read_env_the_same_way(tmp_path, name):
    if shutil.which("bash") is None:
        pytest.fail("bash is required")
    project = tmp_path / "project"
    project.mkdir()
    shutil.copy2(PROJECT_DIR / "on-upload.sh", project / "on-upload.sh")
    # POWERVIEW_LOG_DIR keeps the hook's complaints inside the test folder
    text = f"POWERVIEW_LOG_DIR={tmp_path}/logs\n" + CASES[name].format(B=tmp_path)
    (project / ".env").write_bytes(text.encode())
    try:
        python_spool = load_worker(project / ".env", environ={}).spool_dir
    except ConfigError:
        python_spool = None
    assert hook_spool(project) == python_spool
    if python_spool is None:
        assert "POWERVIEW_SPOOL_DIR" in (tmp_path / "logs" / "uploads.log").read_text()
