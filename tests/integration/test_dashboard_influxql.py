"""Every query of grafana-automation/templates/dashboard_influxql.json.j2, rendered as the playbook
renders it, run against a real InfluxDB 1.x holding the corpus (raw and derived buckets, as the
parser leaves them with INFLUXDB_VERSION=1), after substituting Grafana's macros the way Grafana
does for an InfluxQL datasource; each answer is compared with values computed from the files.
The queries carry the chosen series configuration on a first comment line, as the deployed
dashboard's did: InfluxDB must take it as a comment."""

from __future__ import annotations

import json
import math
import re

import jinja2
import pytest

import derived_expected
import samples

TEMPLATE = samples.PROJECT_DIR / "grafana-automation" / "templates" / "dashboard_influxql.json.j2"
CAMPAIGN = "camp_base"
CONFIG = "Tableau général"  # a configuration name, as the JSON data source gives it


def render(bucket: str) -> dict:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATE.parent)), undefined=jinja2.StrictUndefined)
    env.filters["to_json"] = json.dumps
    text = env.get_template(TEMPLATE.name).render(
        dashboard_uid="powerview_x",
        dashboard_title="X",
        bucket=bucket,
        datasource_uid="ds",
        datasource_id=7,
        datasource_type="influxdb",
        client_id="acme_acme",
        config_datasource_uid="json-ds",
    )
    return json.loads(text)


def regex_value(values: list[str]) -> str:
    """Grafana's InfluxQL interpolation of a variable inside /regex/: escaped, (a|b) when several."""
    escaped = [re.sub(r"([\\^$*+?.()|\[\]{}/])", r"\\\1", v) for v in values]
    return escaped[0] if len(escaped) == 1 else "(" + "|".join(escaped) + ")"


def interpolate(query: str, variables: dict[str, list[str]], start: int, end: int, interval: str) -> str:
    assert query.startswith("-- powerview_config=${config}\n"), query
    query = query.replace("${config}", CONFIG)  # in a comment: the raw value
    for name, values in variables.items():
        query = query.replace("${" + name + "}", regex_value(values))
    query = query.replace("$timeFilter", f"time >= {start * 1000}ms and time <= {end * 1000}ms")
    query = query.replace("$__interval", interval)
    assert "$" not in query.replace("$/", "").replace("_W$", ""), query
    return query


@pytest.fixture(scope="module")
def loaded(corpus_in_influxd1):
    """The corpus's company `acme` (raw and derived buckets) as test_derived_real.py left it."""
    bucket = corpus_in_influxd1["renamed"]["acme"]
    return corpus_in_influxd1["server"], bucket, corpus_in_influxd1["pass2"][bucket], render(bucket)


def queries(dashboard: dict) -> dict[str, str]:
    """The InfluxQL queries: the variables on the InfluxDB data source and every panel target."""
    found = {v["name"]: v["query"] for v in dashboard["templating"]["list"] if v["datasource"]["type"] == "influxdb"}
    for panel in dashboard["panels"]:
        for t in panel.get("targets", []):
            if "query" in t:
                found[f"{panel['id']}{t['refId']}"] = t["query"]
    return found


def device_points(points: dict, unit: str) -> dict[str, list[tuple[int, float]]]:
    out: dict[str, list] = {}
    for (field, tags, t), value in points.items():
        tags = dict(tags)
        if tags["campaign"] == CAMPAIGN and tags["channel_unit"] == unit:
            out.setdefault(field, []).append((t, value))
    return {f: sorted(v) for f, v in out.items()}


def columns(server, bucket: str, query: str) -> dict[str, dict[int, float]]:
    """{column: {time: value}} over every series of the answer (non-null values)."""
    out: dict[str, dict[int, float]] = {}
    for row in server.query(bucket, query):
        for key, value in row.items():
            if key not in ("time", "_measurement") and value is not None:
                out.setdefault(key, {})[row["time"]] = value
    return out


def test_every_query_of_the_template_is_covered(loaded):
    _, _, _, dashboard = loaded
    assert set(queries(dashboard)) == {"campaign", "1A", "4A", "101A", "101B", "101C", "102A"}
    assert {p["datasource"]["type"] for p in dashboard["panels"] if "datasource" in p} == {"influxdb"}


def test_the_deployed_dashboard_features_are_there(loaded):
    """What the deployed dashboard offered (issue 15): campaign and config variables, the config
    read from the config API through the JSON data source, active power over time, energy over
    the range as a pie chart, the series-configuration panel wired to the client id."""
    _, bucket, _, dashboard = loaded
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert list(variables) == ["campaign", "config"]
    config = variables["config"]
    assert config["datasource"] == {"type": "marcusolsson-json-datasource", "uid": "json-ds"}
    assert config["query"]["urlPath"] == "/clients/acme_acme/series-config/configs?campaign=${campaign:percentencode}"
    panels = {p["id"]: p for p in dashboard["panels"]}
    assert (panels[1]["type"], panels[1]["fieldConfig"]["defaults"]["unit"]) == ("timeseries", "watt")
    assert (panels[4]["type"], panels[4]["fieldConfig"]["defaults"]["unit"]) == ("piechart", "kwatth")
    series = panels[2]
    assert (series["type"], series["title"]) == ("adecwatts-series-config-panel", "Configuration des voies")
    assert series["options"] == {
        "forcedBucket": bucket,
        "forcedClientId": "acme_acme",
        "forcedDatasourceId": 7,
        "forcedMeasurement": "electrical",
    }
    for key, query in queries(dashboard).items():
        assert key == "campaign" or query.startswith("-- powerview_config=${config}\n"), key


def test_campaign_variable_lists_the_campaigns(loaded):
    server, bucket, points, dashboard = loaded
    tags = [dict(t) for (_, t, _) in points]
    got = sorted(row["value"] for row in server.query(bucket, queries(dashboard)["campaign"]))
    assert got == sorted({t["campaign"] for t in tags}) == ["camp_base", "format_v003", "v003_metadata"]


def _variables(points) -> dict[str, list[str]]:
    return {"campaign": [CAMPAIGN]}


def _range(points) -> tuple[int, int]:
    times = [t for (_, tags, t) in points if dict(tags)["campaign"] == CAMPAIGN]
    return min(times), max(times)


def test_power_panel_gives_the_hourly_means(loaded):
    server, bucket, points, dashboard = loaded
    start, end = _range(points)
    got = columns(server, bucket, interpolate(queries(dashboard)["1A"], _variables(points), start, end, "1h"))
    want = {}
    for field, series in device_points(points, "W").items():
        for t, value in series:
            want.setdefault(f"mean_{field}", {}).setdefault(t - t % 3600, []).append(value)
    assert set(got) == set(want) and got
    for column, windows in want.items():
        assert set(got[column]) == set(windows)
        for t, values in windows.items():
            assert got[column][t] == pytest.approx(math.fsum(values) / len(values), rel=1e-12)


def _by_stamp_day(values: dict) -> dict:
    grouped: dict[tuple, list] = {}
    for (field, tags, end), value in values.items():
        if dict(tags)["campaign"] == CAMPAIGN and dict(tags)["channel_unit"] == "W":
            grouped.setdefault((field, end - end % 86400), []).append(value)
    return grouped


@pytest.mark.parametrize(
    "panel, measurement, reduce",
    [
        ("101A", "electrical", lambda v: math.fsum(v) / len(v)),
        ("101B", "electrical_min", min),
        ("101C", "electrical_max", max),
    ],
)
def test_hourly_derived_panel_over_days(loaded, panel, measurement, reduce):
    server, bucket, points, dashboard = loaded
    start, end = _range(points)
    got = columns(server, bucket, interpolate(queries(dashboard)[panel], _variables(points), start, end + 3600, "1d"))
    hourly = derived_expected.windows(points, 3600)[measurement]
    prefix = {"101A": "mean_", "101B": "min_", "101C": "max_"}[panel]
    want = {(prefix + f, day): reduce(v) for (f, day), v in _by_stamp_day(hourly).items()}
    assert {(c, t) for c, values in got.items() for t in values} == set(want)
    for (column, day), value in want.items():
        assert got[column][day] == pytest.approx(value, rel=1e-12)


def test_daily_derived_panel(loaded):
    server, bucket, points, dashboard = loaded
    start, end = _range(points)
    got = columns(server, bucket, interpolate(queries(dashboard)["102A"], _variables(points), start, end + 86400, "1d"))
    daily = derived_expected.windows(points, 86400)["electrical"]
    want = {("mean_" + f, day): math.fsum(v) / len(v) for (f, day), v in _by_stamp_day(daily).items()}
    assert {(c, t) for c, values in got.items() for t in values} == set(want)
    for (column, day), value in want.items():
        assert got[column][day] == pytest.approx(value, rel=1e-12)


def test_energy_panel_gives_kwh_per_power_channel(loaded):
    server, bucket, points, dashboard = loaded
    start, end = _range(points)
    query = interpolate(queries(dashboard)["4A"], _variables(points), start, end, "1h")
    got = {}
    for row in server.query(bucket, query):
        tags = frozenset(
            (k, v)
            for k, v in row.items()
            if k not in ("time", "_measurement") and not k.startswith("integral_") and v != ""
        )
        for key, value in row.items():
            if key.startswith("integral_") and value is not None:
                got[(key, tags)] = value
    # one bar per series (tag set): this device is `mono` in some files and `tri` in others
    by_series: dict[tuple, list] = {}
    for (field, tags, t), value in points.items():
        t_tags = dict(tags)
        if t_tags["campaign"] == CAMPAIGN and t_tags["channel_unit"] == "W":
            by_series.setdefault((f"integral_{field}", tags), []).append((t, value))
    want = {}
    for key, series in by_series.items():
        series.sort()
        want[key] = math.fsum((v0 + v1) / 2 * (t1 - t0) for (t0, v0), (t1, v1) in zip(series, series[1:])) / 3.6e6
    assert set(got) == set(want) and len({k for k, _ in want}) == 5
    for key, kwh in want.items():
        assert got[key] == pytest.approx(kwh, rel=1e-9), key
