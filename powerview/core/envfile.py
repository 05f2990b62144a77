"""The one rule by which every PowerView program (and on-upload.sh) finds and reads `.env`.

Which file: the one given (`--env-file`), else the file named by POWERVIEW_ENV_FILE, else
`.env` in the project folder. python-dotenv reads it without interpolation (`${X}` stays as
written); the real environment wins over the file.

The project folder (where `.env`, on-upload.sh and grafana-automation/ live) is, first found:

1. POWERVIEW_PROJECT_DIR, when set;
2. the folder holding the `powerview` package, when it is a checkout (an editable install, or a
   program run from the checkout: `python3 tsv_parser.py`);
3. the folder of the program run (`/opt/powerview/tsv_parser.py`), or one of its parents
   (`<project>/envs/powerview/bin/powerview-parse`);
4. a parent of the virtualenv (`<project>/envs/powerview`, what `make venv` creates);
5. the current folder, or one of its parents;

else the package's parent folder. A folder is a project folder when it holds tsv_parser.py or
grafana-automation/. So a non-editable install (`pip install .`) in the project's virtualenv
still finds the project's `.env`.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path

ENV_FILE_VARIABLE = "POWERVIEW_ENV_FILE"
PROJECT_VARIABLE = "POWERVIEW_PROJECT_DIR"
_PACKAGE_PARENT = Path(__file__).resolve().parents[2]  # powerview/core/envfile.py: the folder holding powerview/


def is_project(folder: Path) -> bool:
    return (folder / "tsv_parser.py").is_file() or (folder / "grafana-automation").is_dir()


def _with_parents(start: Path | str | None) -> Iterable[Path]:
    if not start:
        return ()
    try:
        folder = Path(start).absolute()
    except OSError:  # the current folder was removed
        return ()
    return (folder, *folder.parents)


def find_project_dir(
    environ: Mapping[str, str] | None = None, script: str | None = None, prefix: str | None = None
) -> Path:
    """The project folder, by the rule of this module's docstring."""
    environ = os.environ if environ is None else environ
    explicit = environ.get(PROJECT_VARIABLE, "").strip()
    if explicit:
        return Path(explicit).absolute()
    if is_project(_PACKAGE_PARENT):
        return _PACKAGE_PARENT
    script = sys.argv[0] if script is None and sys.argv else script
    candidates = [
        *(_with_parents(Path(script).parent) if script and script not in ("-c", "-m") else ()),
        *_with_parents(sys.prefix if prefix is None else prefix),
    ]
    try:
        candidates += _with_parents(os.getcwd())
    except OSError:
        pass
    return next((folder for folder in candidates if is_project(folder)), _PACKAGE_PARENT)


PROJECT_DIR = find_project_dir()
DEFAULT_ENV_FILE = PROJECT_DIR / ".env"


def env_file_path(env_file: Path | str | None = None, environ: Mapping[str, str] | None = None) -> Path:
    """The settings file a program reads: `env_file`, else POWERVIEW_ENV_FILE, else the project's `.env`."""
    if env_file:
        return Path(env_file)
    named = (os.environ if environ is None else environ).get(ENV_FILE_VARIABLE, "").strip()
    return Path(named) if named else DEFAULT_ENV_FILE


def read_environment(env_file: Path | str | None = None, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """Merge the settings file (if it exists) with the environment; the environment wins."""
    path = env_file_path(env_file, environ)
    merged: dict[str, str] = {}
    if path.is_file():
        from dotenv import dotenv_values  # here: `--help` does not read a .env

        merged.update({k: v for k, v in dotenv_values(path, interpolate=False).items() if v is not None})
    merged.update(os.environ if environ is None else environ)
    return merged
