"""The one rule by which every PowerView program (and on-upload.sh) reads `.env`.

python-dotenv without interpolation (`${X}` stays as written); the real environment wins over
the file. The project's `.env` sits at the top of the checkout.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent
DEFAULT_ENV_FILE = PROJECT_DIR / ".env"


def read_environment(env_file: Path | str | None = None, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """Merge `.env` (if it exists) with the environment; the environment wins."""
    path = Path(env_file) if env_file else DEFAULT_ENV_FILE
    merged: dict[str, str] = {}
    if path.is_file():
        from dotenv import dotenv_values  # here: `--help` does not read a .env

        merged.update({k: v for k, v in dotenv_values(path, interpolate=False).items() if v is not None})
    merged.update(os.environ if environ is None else environ)
    return merged
