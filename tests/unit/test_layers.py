"""The package's layers (docs/architecture.md): each folder of powerview/ imports only the folders
before it in the flow, never one after it; `core` imports no other folder, `cli` may import all.
A new upward import fails here, naming the module and the import."""

from __future__ import annotations

import ast
from pathlib import Path

import samples

PACKAGE = samples.PROJECT_DIR / "powerview"
# the order of docs/architecture.md; onboarding sits beside operations (neither imports the other)
RANK = {"core": 0, "ingestion": 1, "delivery": 2, "operations": 3, "onboarding": 3, "acceptance": 4, "cli": 5}


def imported_layers(path: Path) -> list[tuple[int, str]]:
    """(line, the powerview.<layer> imported) of every absolute import of the module."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        for name in names:
            parts = name.split(".")
            if parts[0] == "powerview" and len(parts) > 1 and parts[1] in RANK:
                found.append((node.lineno, parts[1]))
    return found


def test_every_folder_of_the_package_is_a_known_layer():
    folders = {p.name for p in PACKAGE.iterdir() if p.is_dir() and not p.name.startswith("__")}
    assert folders == set(RANK)
    assert sorted(p.name for p in PACKAGE.glob("*.py")) == ["__init__.py"]


def test_no_module_imports_a_later_layer():
    upward = []
    for path in sorted(PACKAGE.rglob("*.py")):
        layer = path.relative_to(PACKAGE).parts[0]
        for line, other in imported_layers(path):
            if other != layer and RANK[other] >= RANK[layer]:
                upward.append(f"{path.relative_to(PACKAGE.parent)}:{line} imports powerview.{other}")
    assert upward == []
