"""The report contract as other programs see it: docs/rapport.schema.json, checked with jsonschema."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema

SCHEMA_PATH = Path(__file__).resolve().parents[1] / "docs" / "rapport.schema.json"
SCHEMA = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
_VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)


def problems(report: object) -> list[str]:
    """Every place where `report` breaks the schema (empty: it follows it)."""
    return [f"{'/'.join(map(str, e.absolute_path)) or '(top)'}: {e.message}" for e in _VALIDATOR.iter_errors(report)]


def assert_valid(report: object) -> None:
    found = problems(report)
    assert not found, "\n".join(found)
