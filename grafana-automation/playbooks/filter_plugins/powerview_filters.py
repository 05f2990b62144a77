"""Filters for the PowerView Grafana playbooks (ansible-core loads filter_plugins/ beside a playbook).

The name rules are the parser's own (`powerview.layout.name_problem`), imported from the project,
not copied: one implementation for the parser, the hook and the playbooks.
"""

from __future__ import annotations

import sys
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parents[3]
if str(PROJECT_DIR) not in sys.path:
    sys.path.insert(0, str(PROJECT_DIR))

from ansible.errors import AnsibleFilterError  # noqa: E402

from powerview.grafana_names import company_names  # noqa: E402
from powerview.layout import name_problem  # noqa: E402


def pv_name_problem(name, kind="company") -> str:
    """Why `name` is not an allowed company/campaign/device name; '' when it is."""
    if not isinstance(name, str):
        return f"{kind} name must be a string, got {type(name).__name__}"
    return name_problem(kind, name) or ""


def pv_company_names(company) -> dict:
    """The Grafana names and uids of a company (see powerview/grafana_names.py)."""
    try:
        return company_names(str(company))
    except ValueError as exc:
        raise AnsibleFilterError(str(exc)) from None


def pv_flux_string(value) -> str:
    """A Flux string literal (quotes included) holding `value`, escaped so it cannot end the
    string nor start an interpolation: backslash, double quote and `${` are escaped."""
    text = str(value)
    text = text.replace("\\", "\\\\").replace('"', '\\"').replace("${", "\\${")
    text = text.replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")
    return f'"{text}"'


def pv_acl(items, include_inherited=False) -> list:
    """Permission items (as Grafana lists them, or as they are posted) → a sorted comparable list
    of [kind, who, permission]; inherited items are left out unless asked."""
    out = []
    for item in items or []:
        if item.get("inherited") and not include_inherited:
            continue
        if item.get("teamId"):
            out.append(["team", int(item["teamId"]), int(item["permission"])])
        elif item.get("userId"):
            out.append(["user", int(item["userId"]), int(item["permission"])])
        elif item.get("role"):
            out.append(["role", str(item["role"]), int(item["permission"])])
    return sorted(out, key=lambda x: (x[0], str(x[1]), x[2]))


def pv_contains(actual, desired) -> bool:
    """True when every key of `desired` is in `actual` with an equal value (recursively for
    mappings): what Grafana returns may carry more keys than what we send."""
    if isinstance(desired, dict):
        if not isinstance(actual, dict):
            return False
        return all(key in actual and pv_contains(actual[key], value) for key, value in desired.items())
    return actual == desired


def pv_without(mapping, *keys) -> dict:
    """`mapping` without `keys` (Grafana adds id and version to a saved dashboard)."""
    return {k: v for k, v in (mapping or {}).items() if k not in keys}


class FilterModule:
    def filters(self):
        return {
            "pv_name_problem": pv_name_problem,
            "pv_company_names": pv_company_names,
            "pv_flux_string": pv_flux_string,
            "pv_acl": pv_acl,
            "pv_contains": pv_contains,
            "pv_without": pv_without,
        }
