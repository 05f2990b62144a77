"""The Grafana names of a company (team, folder, datasource, dashboard, default user) and of one
of its users' own view (datasource and dashboard, as the deployed add-user playbook names them).

One place derives them, so the playbooks, the tests and the docs agree. The company name is
checked first with the parser's name rules (`layout.name_problem`); Grafana uids are then
derived deterministically. A Grafana uid holds at most 40 characters among letters, digits,
`-` and `_`: when `<prefix><company>` does not fit (a long name, or one with a dot), the uid is
`<prefix>h<hex digest>` instead, still the same for the same company on every run.
"""

from __future__ import annotations

import hashlib
import re

from powerview.core.names import name_problem

UID_MAX = 40
_UID = re.compile(r"[A-Za-z0-9_-]{1,40}\Z")

DASHBOARD_UID_PREFIX = "powerview_"
FOLDER_UID_PREFIX = "pvfolder_"
DATASOURCE_UID_PREFIX = "pvds_"
USER_DATASOURCE_UID_PREFIX = "pvdsu_"


def grafana_uid(prefix: str, name: str) -> str:
    """`prefix + name` when that is a valid Grafana uid, else `prefix + "h" + sha256 digest`."""
    candidate = prefix + name
    if _UID.match(candidate):
        return candidate
    digest = hashlib.sha256(name.encode("utf-8")).hexdigest()
    return (prefix + "h" + digest)[:UID_MAX]


def company_names(company: str) -> dict[str, str]:
    """Every Grafana name of `company`. Raises ValueError when the company name is not allowed."""
    problem = name_problem("company", company)
    if problem:
        raise ValueError(problem)
    return {
        "team": company,
        "folder_title": company,
        "folder_uid": grafana_uid(FOLDER_UID_PREFIX, company),
        "datasource_name": f"influxdb_{company}",
        "datasource_uid": grafana_uid(DATASOURCE_UID_PREFIX, company),
        "dashboard_uid": grafana_uid(DASHBOARD_UID_PREFIX, company),
        "dashboard_title": f"Mesures {company}",  # the deployed title
        "client_id": company,
        "user_login": f"user_{company}",
        "user_name": f"{company} Default",
        "token_description": f"powerview_token_for_bucket_{company}",
        "bucket": company,
    }


def user_names(company: str, login: str) -> dict[str, str]:
    """The names of the view of user `login` of `company`: its datasource (same bucket, its own
    config-API client id) and its dashboard. Raises ValueError when a name is not allowed.

    The deployed names `influxdb_<company>_<login>` and `powerview_<company>_<login>` are kept;
    they can collide (company `acme` user `x` and company `acme_x`): provisioning refuses to
    touch what another company or user owns (powerview.onboarding.grafana.company)."""
    for kind, name in (("company", company), ("user", login)):
        problem = name_problem(kind, name)
        if problem:
            raise ValueError(problem)
    client_id = f"{company}_{login}"
    return {
        "datasource_name": f"influxdb_{client_id}",
        "datasource_uid": grafana_uid(USER_DATASOURCE_UID_PREFIX, client_id),
        "dashboard_uid": grafana_uid(DASHBOARD_UID_PREFIX, client_id),
        "dashboard_title": f"Mesures {company} ({login})",
        "client_id": client_id,
    }
