"""Fixtures shared by every test folder."""

from __future__ import annotations

import shutil
import stat
from pathlib import Path

import pytest

import samples


@pytest.fixture
def data_root(tmp_path: Path) -> Path:
    root = tmp_path / "data"
    root.mkdir()
    return root


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    """A writable copy of the real corpus (../shared/corpus/data)."""
    source = samples.corpus_dir()
    if source is None:
        pytest.skip("the real corpus ../shared/corpus/data is not beside this checkout")
    target = tmp_path / "corpus"
    shutil.copytree(source, target)
    for path in target.rglob("*"):
        path.chmod(path.stat().st_mode | stat.S_IWUSR)
    target.chmod(target.stat().st_mode | stat.S_IWUSR)
    return target
