"""The company dashboard, rendered from a Jinja template of grafana-automation/templates/.

The template depends on the datasource: GRAFANA_DATASOURCE_TYPE=influxdb (Grafana's own InfluxDB
datasource, InfluxQL) uses `dashboard_influxql.json.j2`; any other type (the production plugin,
Flux) uses `dashboard.json.j2`. Variables given to a template: company_name, bucket,
dashboard_uid, dashboard_title, datasource_uid, datasource_id, datasource_name, datasource_type,
client_id (the config-API client id of the series configurations), config_datasource_uid (the
JSON datasource, marcusolsson-json-datasource, that reaches the config API).
Filters: to_json, from_json, pv_flux_string, pv_influxql_string, pv_influxql_identifier.
"""

from __future__ import annotations

import json
from pathlib import Path

FLUX_TEMPLATE = "dashboard.json.j2"
INFLUXQL_TEMPLATE = "dashboard_influxql.json.j2"


class TemplateError(Exception):
    """The template is missing, or does not render to a JSON dashboard."""


def is_influxql(datasource_type: str) -> bool:
    return datasource_type == "influxdb"


def template_for(templates_dir: Path, datasource_type: str) -> Path:
    """The template file for `datasource_type`; TemplateError when it is absent."""
    name = INFLUXQL_TEMPLATE if is_influxql(datasource_type) else FLUX_TEMPLATE
    path = Path(templates_dir) / name
    if not path.is_file():
        why = (
            f"GRAFANA_DATASOURCE_TYPE={datasource_type} (Grafana's InfluxDB datasource, InfluxQL) needs it"
            if is_influxql(datasource_type)
            else "the Flux dashboard of the production plugin"
        )
        raise TemplateError(f"dashboard template {path} is missing: {why}")
    return path


def flux_string(value) -> str:
    """A Flux string literal holding `value` (quotes included): it cannot end the string nor interpolate."""
    text = str(value).replace("\\", "\\\\").replace('"', '\\"').replace("${", "\\${")
    text = text.replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")
    return f'"{text}"'


def influxql_string(value) -> str:
    """An InfluxQL string literal (single quotes) holding `value`."""
    text = str(value).replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n")
    return f"'{text}'"


def influxql_identifier(value) -> str:
    """An InfluxQL double-quoted identifier holding `value`."""
    text = str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{text}"'


def render_dashboard(templates_dir: Path, datasource_type: str, variables: dict) -> dict:
    import jinja2  # ansible-core's dependency; imported here so that nothing else needs it

    path = template_for(templates_dir, datasource_type)
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(path.parent)),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
    )
    env.filters.update(
        {
            "to_json": json.dumps,
            "from_json": json.loads,
            "pv_flux_string": flux_string,
            "pv_influxql_string": influxql_string,
            "pv_influxql_identifier": influxql_identifier,
        }
    )
    try:
        text = env.get_template(path.name).render(**variables)
        dashboard = json.loads(text)
    except (jinja2.TemplateError, ValueError) as exc:
        raise TemplateError(f"dashboard template {path} does not render to JSON: {exc}") from None
    if not isinstance(dashboard, dict) or not dashboard.get("title"):
        raise TemplateError(f"dashboard template {path} does not render to a dashboard (no title)")
    return dashboard


def _bottom(panels: list[dict]) -> int:
    return max(
        (int(p.get("gridPos", {}).get("y", 0)) + int(p.get("gridPos", {}).get("h", 0)) for p in panels), default=0
    )


def merge_dashboard(existing: dict, rendered: dict) -> dict:
    """`rendered` (a template's dashboard) over `existing` (the one in Grafana, maybe edited by
    the customer), for an explicit refresh: the template's panels and variables replace theirs;
    the dashboard keeps its id, title and version, every panel the template does not have (a
    top-level panel whose (id, type) is not one of the template's: Grafana gives a panel added in
    the editor a new id) placed below the template's, and every variable the template does not
    have (by name)."""
    merged = json.loads(json.dumps(rendered))
    for key in ("id", "title", "version"):
        if key in existing:
            merged[key] = existing[key]
    ours = {(p.get("id"), p.get("type")) for p in merged.get("panels", [])}
    theirs = [p for p in existing.get("panels") or [] if (p.get("id"), p.get("type")) not in ours]
    if theirs:
        taken = {p.get("id") for p in merged.get("panels", [])}
        next_id = max([i for i in taken | {p.get("id") for p in theirs} if isinstance(i, int)], default=0) + 1
        top = min(int(p.get("gridPos", {}).get("y", 0)) for p in theirs)
        shift = _bottom(merged.get("panels", [])) - top
        for panel in theirs:
            panel = json.loads(json.dumps(panel))
            if panel.get("id") in taken:
                panel["id"], next_id = next_id, next_id + 1
            taken.add(panel.get("id"))
            grid = panel.setdefault("gridPos", {})
            grid["y"] = int(grid.get("y", 0)) + shift
            merged.setdefault("panels", []).append(panel)
    names = {v.get("name") for v in merged.get("templating", {}).get("list", [])}
    extra = [v for v in (existing.get("templating") or {}).get("list") or [] if v.get("name") not in names]
    if extra:
        merged.setdefault("templating", {}).setdefault("list", []).extend(json.loads(json.dumps(extra)))
    return merged
