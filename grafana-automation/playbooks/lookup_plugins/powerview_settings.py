"""lookup('powerview_settings'): the project's settings for the Grafana playbooks.

Read by the project's own settings module (the environment, then `.env` next to the project, or
the file named by POWERVIEW_ENV_FILE), so the playbooks, the parser and manage_influx_tokens.py
read the same variables the same way. The answer holds secrets (ready-made Authorization
headers): the playbooks keep it under no_log.
"""

from __future__ import annotations

import base64
import os
import sys
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parents[3]
if str(PROJECT_DIR) not in sys.path:
    sys.path.insert(0, str(PROJECT_DIR))

from ansible.errors import AnsibleLookupError  # noqa: E402
from ansible.plugins.lookup import LookupBase  # noqa: E402

from powerview import settings as pv_settings  # noqa: E402

DOCUMENTATION = """
name: powerview_settings
short_description: PowerView settings (environment and .env) for the Grafana playbooks
description:
  - Returns one dictionary with the Grafana URL, ready-made Authorization headers, the data
    source settings and the PowerView folders. Contains secrets; use under no_log.
"""


def _basic(user: str, password: str) -> dict:
    raw = f"{user}:{password}".encode("utf-8")
    return {"Authorization": "Basic " + base64.b64encode(raw).decode("ascii")}


class LookupModule(LookupBase):
    def run(self, terms, variables=None, **kwargs):
        env_file = os.environ.get("POWERVIEW_ENV_FILE") or None
        try:
            s = pv_settings.load_grafana(env_file)
            s.require_grafana()
        except pv_settings.ConfigError as exc:
            raise AnsibleLookupError(str(exc)) from None
        basic = _basic(s.grafana_username, s.grafana_password) if s.grafana_username and s.grafana_password else None
        if s.grafana_api_token:
            org_headers = {"Authorization": "Bearer " + s.grafana_api_token}
            auth_kind = "token"
        else:
            org_headers = basic
            auth_kind = "basic"
        return [{
            "grafana_url": s.grafana_url,
            "auth_kind": auth_kind,
            "org_headers": org_headers,
            # Grafana's admin API (users) only works with basic auth of a Grafana server admin
            "admin_headers": basic,
            "datasource_type": s.grafana_datasource_type,
            "influx_url_for_grafana": s.influx_url_for_grafana or s.influx_url or "",
            "influx_org": s.influx_org or "",
            "data_dir": str(s.data_dir),
            "secrets_dir": str(s.secrets_dir),
            "project_dir": str(PROJECT_DIR),
        }]
