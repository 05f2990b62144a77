"""The settings of the Grafana provisioning: the environment, then the project's `.env` (or the
file named by POWERVIEW_ENV_FILE). Only what the provisioning uses is read and checked here."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ..datadirs import DEFAULT_SECRETS_DIR
from ..envfile import read_environment

PROJECT_DIR = Path(__file__).resolve().parents[2]
TENANCIES = ("team", "org")
DEFAULT_DATASOURCE_TYPE = "influxdb-adecwatts-datasource"
# what the deployed playbooks put in the datasource for the production plugin (a Grafana proxy
# path to the JSON datasource that reaches powerview-config-api)
DEFAULT_SERIES_CONFIG_API_URL = "/api/datasources/proxy/25"
# the uid of the JSON datasource (marcusolsson-json-datasource) that reaches powerview-config-api,
# read by the dashboards' `config` variable (docs/deploiement-infra.md provisions it with this uid)
DEFAULT_CONFIG_DATASOURCE_UID = "powerview-config-api"


class SettingsError(Exception):
    """A setting is missing or malformed: the message names it, never a secret value."""


@dataclass(frozen=True)
class GrafanaSettings:
    url: str
    username: str | None
    password: str | None = None
    api_token: str | None = None
    tenancy: str = "team"
    datasource_type: str = DEFAULT_DATASOURCE_TYPE
    influx_url_for_grafana: str = ""
    influx_org: str = ""
    data_dir: Path = Path("/srv/sftpgo/data")
    secrets_dir: Path = DEFAULT_SECRETS_DIR
    config_api_url: str | None = None
    config_api_token: str | None = None
    series_config_api_url: str = DEFAULT_SERIES_CONFIG_API_URL
    config_datasource_uid: str = DEFAULT_CONFIG_DATASOURCE_UID
    templates_dir: Path = PROJECT_DIR / "grafana-automation" / "templates"

    @property
    def has_admin(self) -> bool:
        """Basic auth of a server admin: needed for users and organisations (admin.md, org.md)."""
        return bool(self.username and self.password)

    def __repr__(self) -> str:  # never the password nor the tokens
        return f"GrafanaSettings(url={self.url!r}, tenancy={self.tenancy!r}, ...)"


def _environment(env_file: str | Path | None, environ: Mapping[str, str] | None) -> dict[str, str]:
    """The one `.env` rule of the project (powerview.settings.read_environment: no interpolation)."""
    environ = os.environ if environ is None else environ
    return read_environment(env_file or environ.get("POWERVIEW_ENV_FILE") or PROJECT_DIR / ".env", environ)


def _url(env: Mapping[str, str], name: str, default: str | None = None) -> str | None:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    if not raw.startswith(("http://", "https://")) or any(c.isspace() for c in raw):
        raise SettingsError(f"{name} must be a URL such as http://localhost:3000, got {raw!r}")
    return raw.rstrip("/")


def load(env_file: str | Path | None = None, environ: Mapping[str, str] | None = None) -> GrafanaSettings:
    env = _environment(env_file, environ)
    tenancy = env.get("GRAFANA_TENANCY", "").strip().lower() or "team"
    if tenancy not in TENANCIES:
        raise SettingsError(f"GRAFANA_TENANCY must be team or org, got {tenancy!r}")
    url = _url(env, "GRAFANA_URL", "http://localhost:8088")
    username = env.get("GRAFANA_USERNAME", "").strip() or None
    password = env.get("GRAFANA_PASSWORD", "") or None
    token = env.get("GRAFANA_API_TOKEN", "").strip() or None
    if not token and not (username and password):
        raise SettingsError(
            "missing Grafana credentials: set GRAFANA_API_TOKEN, or GRAFANA_USERNAME and "
            "GRAFANA_PASSWORD (environment or .env)"
        )
    if tenancy == "org" and not (username and password):
        raise SettingsError(
            "GRAFANA_TENANCY=org needs GRAFANA_USERNAME and GRAFANA_PASSWORD (a Grafana server "
            "admin): organisations are managed through Grafana's admin API, which takes no token"
        )
    # as Grafana (a container) reaches InfluxDB: the deployed .env names that INFLUXDB_URL
    influx = _url(env, "INFLUXDB_URL_FOR_GRAFANA") or _url(env, "INFLUXDB_URL") or _url(env, "INFLUXDB_HOST") or ""
    templates = env.get("POWERVIEW_GRAFANA_TEMPLATES_DIR", "").strip()
    return GrafanaSettings(
        url=url or "",
        username=username,
        password=password,
        api_token=token,
        tenancy=tenancy,
        datasource_type=env.get("GRAFANA_DATASOURCE_TYPE", "").strip() or DEFAULT_DATASOURCE_TYPE,
        influx_url_for_grafana=influx,
        influx_org=env.get("INFLUXDB_ORG", "").strip(),
        data_dir=Path(env.get("POWERVIEW_DATA_DIR", "").strip() or "/srv/sftpgo/data"),
        secrets_dir=Path(env.get("POWERVIEW_SECRETS_DIR", "").strip() or DEFAULT_SECRETS_DIR),
        config_api_url=_url(env, "CONFIG_API_URL"),
        config_api_token=env.get("CONFIG_API_TOKEN", "").strip() or None,
        series_config_api_url=env.get("GRAFANA_SERIES_CONFIG_API_URL", "").strip() or DEFAULT_SERIES_CONFIG_API_URL,
        config_datasource_uid=env.get("GRAFANA_CONFIG_DATASOURCE_UID", "").strip() or DEFAULT_CONFIG_DATASOURCE_UID,
        templates_dir=Path(templates) if templates else PROJECT_DIR / "grafana-automation" / "templates",
    )
