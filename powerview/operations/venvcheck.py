"""Can this virtualenv run the hook's worker, the parser and the playbooks' module?

    <venv>/bin/python -I <project>/powerview/operations/venvcheck.py <project>

on-upload.sh runs it (as a file: it must work when the powerview package itself is not
importable) whenever the virtualenv or the checkout changed since its last check, before it
starts the worker. Standard library only. Exit 0, silent: the virtualenv is fine. Exit 1: one
line on stdout naming the first cause found (the fix is always the same: `pip install -r
requirements.txt` in the virtualenv, from the project folder).
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import re
import sys
from pathlib import Path

# the worker is imported (it starts nothing); what it runs (python -m powerview.cli.parse) and what the
# Ansible module imports are only found (importing the parser's client library costs 0.5 s; the
# pins above already say whether its distributions are there)
IMPORTED = ("powerview.cli.worker",)
FOUND = ("powerview.cli.parse", "powerview.onboarding.grafana")
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[[^\]]*\])?\s*(?:==\s*([^\s;#]+))?")


def pins(requirements: Path) -> list[tuple[str, str | None]]:
    """(distribution name, pinned version or None) of each requirement line (options skipped)."""
    found = []
    for raw in requirements.read_text(encoding="utf-8").splitlines():
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith(("#", "-")):
            continue
        match = _PIN.match(line)
        if match:
            found.append((match.group(1), match.group(2)))
    return found


def problem(project: Path) -> str | None:
    """The first reason the virtualenv cannot run PowerView, or None."""
    requirements = project / "requirements.txt"
    try:
        wanted = pins(requirements)
    except OSError as exc:
        return f"cannot read {requirements}: {exc.strerror}"
    for name, version in wanted:
        try:
            installed = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            return f"{name} is not installed in the virtualenv {sys.prefix}"
        if version is not None and installed != version:
            return f"{name} {installed} is installed in the virtualenv {sys.prefix}, requirements.txt pins {version}"
    try:
        importlib.metadata.version("powerview")
    except importlib.metadata.PackageNotFoundError:
        return f"the project (powerview) is not installed in the virtualenv {sys.prefix}"
    for module in IMPORTED + FOUND:
        try:
            if module in IMPORTED:
                importlib.import_module(module)
            elif importlib.util.find_spec(module) is None:
                return f"{module} is missing from the virtualenv {sys.prefix}"
        except Exception as exc:  # any import failure is the answer
            text = " ".join(str(exc).split())
            return f"{module} cannot be imported in the virtualenv {sys.prefix}: {type(exc).__name__}: {text}"
    return None


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: venvcheck.py PROJECT_DIR", file=sys.stderr)
        return 2
    found = problem(Path(argv[1]))
    if found is None:
        return 0
    print(found[:500])
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
