"""Small device files for tests, built in code (the real corpus is read from ../shared when present)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent

TRI_LABELS = ["Ph 1 V", "Ph 2 V", "Ph 3 V", "Voie1 W", "Voie2 W", "Voie3 W"]
MONO_LABELS = ["Ph 1 V", "Voie1 W", "Voie2 W", "Voie3 W"]


def v002(
    serials: list[str],
    labels: list[str],
    rows: list[str],
    fmt: str = "MV_T302_V002",
    newline: str = "\n",
    final_newline: bool = True,
) -> str:
    """An MV_T302_V002 file: SN line (serials[0] first, then one per column), label line, rows."""
    lines = ["\t".join(serials), "\t".join([fmt] + labels)] + rows
    text = newline.join(lines)
    return text + newline if final_newline else text


def v003(
    serials: list[str],
    labels: list[str],
    rows: list[str],
    header: dict | str | None = None,
    end_data: bool = True,
    final_newline: bool = True,
) -> str:
    if header is None:
        header = {"DataTimeSettings": "UTC", "TimeZoneName": "Europe/Paris", "MasterType": "Tri", "FileVersion": 3}
    header_text = header if isinstance(header, str) else json.dumps(header)
    lines = (
        [
            "START_HEADER",
            header_text,
            "END_HEADER",
            "START_DATA",
            "\t".join(serials),
            "\t".join(["MV_T302_V003"] + labels),
        ]
        + rows
        + (["END_DATA"] if end_data else [])
    )
    text = "\n".join(lines)
    return text + "\n" if final_newline else text


def row(timestamp: str, *values) -> str:
    return "\t".join([timestamp] + [str(v) for v in values])


def place(data_root: Path, company: str, campaign: str, device: str, name: str, content: str | bytes) -> Path:
    folder = data_root / company / campaign / device
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    if isinstance(content, str):
        content = content.encode()
    path.write_bytes(content)
    return path


NO_CORPUS = "no real corpus: ../shared/corpus/data is not beside this checkout and POWERVIEW_CORPUS is unset"


def corpus_dir() -> Path | None:
    """The real device files, when this checkout sits beside ../shared (or POWERVIEW_CORPUS says).
    Data, not a server: a test without it skips, even under POWERVIEW_REQUIRE_SERVERS=1."""
    candidates = [
        os.environ.get("POWERVIEW_CORPUS"),
        PROJECT_DIR.parent / "shared" / "corpus" / "data",
    ]
    for candidate in candidates:
        if candidate and Path(candidate).is_dir():
            return Path(candidate)
    return None


def require_corpus() -> Path:
    """The real corpus, or a skip with a one-line reason: data, not a server, so never a failure
    (a fresh clone has no ../shared beside it; CI has it and runs these tests)."""
    import pytest

    found = corpus_dir()
    if found is None:
        pytest.skip(NO_CORPUS)
    return found


def missing(message: str) -> None:
    """Skip the calling test for something this machine lacks — but fail it when
    POWERVIEW_REQUIRE_SERVERS=1 (CI): there, a missing piece is an install step gone wrong."""
    import pytest

    if os.environ.get("POWERVIEW_REQUIRE_SERVERS") == "1":
        pytest.fail(f"{message} (POWERVIEW_REQUIRE_SERVERS=1)", pytrace=False)
    pytest.skip(message)


def require_venv() -> None:
    """Tests that run the deployed scripts need the project's virtualenv, as production does."""
    if not (PROJECT_DIR / "envs" / "powerview" / "bin" / "python").exists():
        missing("the project's virtualenv envs/powerview is missing (make venv)")


def copy_tree(source: Path, target: Path) -> Path:
    """A writable copy of a data folder (the corpus is read-only)."""
    shutil.copytree(source, target)
    for path in [target, *target.rglob("*")]:
        path.chmod(path.stat().st_mode | 0o200)
    return target


EXAMPLES = PROJECT_DIR / "examples" / "data"


def data_sources():
    """pytest parameters: the shipped examples, and the real corpus when it is beside the checkout."""
    import pytest

    corpus = corpus_dir()
    return [
        pytest.param(EXAMPLES, id="examples"),
        pytest.param(corpus, id="corpus", marks=pytest.mark.skipif(corpus is None, reason=NO_CORPUS)),
    ]


def run_tsv_parser(root: Path, env_file: Path, wait: bool = True):
    """The real `tsv_parser.py --dataFolder root --env-file env_file`, environment reduced to PATH
    (every setting comes from the file). `wait=False` gives the running process."""
    command = [
        sys.executable,
        str(PROJECT_DIR / "tsv_parser.py"),
        "--dataFolder",
        str(root),
        "--env-file",
        str(env_file),
    ]
    env = {"PATH": os.environ["PATH"]}
    if not wait:
        return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)


def wait_for(predicate, timeout: float = 30.0, what: str = "condition", interval: float = 0.05):
    """Poll `predicate` until it returns something true (returned), or fail after `timeout` s."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def run_worker(
    env_file: Path, *args: str, module: str = "powerview.cli.worker", timeout: float = 60, **kwargs
) -> subprocess.CompletedProcess:
    """`python -m powerview.cli.worker --env-file ENV_FILE ARGS...` (the worker's command line) in
    a process of its own; `kwargs` go to subprocess.run (env, cwd)."""
    return subprocess.run(
        [sys.executable, "-m", module, "--env-file", str(env_file), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        **kwargs,
    )
