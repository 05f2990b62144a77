"""The settings of the Grafana provisioning, read by the project's one reader (powerview.core.settings.Env:
the environment, then `--env-file`, POWERVIEW_ENV_FILE or the project's `.env`). Only what the
provisioning uses is read and checked here."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from powerview.core.datadirs import DEFAULT_SECRETS_DIR
from powerview.core.envfile import PROJECT_DIR
from powerview.core.settings import ConfigError, Env, load_env

TENANCIES = ("team", "org")
DEFAULT_DATASOURCE_TYPE = "influxdb-adecwatts-datasource"
# what the deployed playbooks put in the datasource for the production plugin (a Grafana proxy
# path to the JSON datasource that reaches powerview-config-api)
DEFAULT_SERIES_CONFIG_API_URL = "/api/datasources/proxy/25"
# the uid of the JSON datasource (marcusolsson-json-datasource) that reaches powerview-config-api,
# read by the dashboards' `config` variable (docs/deploiement-infra.md provisions it with this uid)
DEFAULT_CONFIG_DATASOURCE_UID = "powerview-config-api"
DEFAULT_TEMPLATES_DIR = PROJECT_DIR / "grafana-automation" / "templates"

__all__ = ["PROJECT_DIR", "ConfigError", "GrafanaSettings", "load"]


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
    templates_dir: Path = DEFAULT_TEMPLATES_DIR

    @property
    def has_admin(self) -> bool:
        """Basic auth of a server admin: needed for users and organisations (admin.md, org.md)."""
        return bool(self.username and self.password)

    def __repr__(self) -> str:  # never the password nor the tokens
        return f"GrafanaSettings(url={self.url!r}, tenancy={self.tenancy!r}, ...)"


def load(env_file: Env | str | Path | None = None, environ: Mapping[str, str] | None = None) -> GrafanaSettings:
    env = load_env(env_file, environ)
    tenancy = (env.text("GRAFANA_TENANCY") or "team").lower()
    if tenancy not in TENANCIES:
        raise ConfigError(f"GRAFANA_TENANCY must be team or org, got {tenancy!r}")
    grafana_url = "http://localhost:3000"
    url = env.url("GRAFANA_URL", "http://localhost:8088", example=grafana_url)
    username = env.text("GRAFANA_USERNAME")
    password = env.secret("GRAFANA_PASSWORD")
    token = env.text("GRAFANA_API_TOKEN")
    if not token and not (username and password):
        raise ConfigError(
            "missing Grafana credentials: set GRAFANA_API_TOKEN, or GRAFANA_USERNAME and "
            "GRAFANA_PASSWORD (environment or .env)"
        )
    if tenancy == "org" and not (username and password):
        raise ConfigError(
            "GRAFANA_TENANCY=org needs GRAFANA_USERNAME and GRAFANA_PASSWORD (a Grafana server "
            "admin): organisations are managed through Grafana's admin API, which takes no token"
        )
    # as Grafana (a container) reaches InfluxDB: the deployed .env names that INFLUXDB_URL
    influx = (
        env.url("INFLUXDB_URL_FOR_GRAFANA", None, example=grafana_url)
        or env.url("INFLUXDB_URL", None, example=grafana_url)
        or env.url("INFLUXDB_HOST", None, example=grafana_url)
        or ""
    )
    return GrafanaSettings(
        url=url or "",
        username=username,
        password=password,
        api_token=token,
        tenancy=tenancy,
        datasource_type=env.text("GRAFANA_DATASOURCE_TYPE") or DEFAULT_DATASOURCE_TYPE,
        influx_url_for_grafana=influx,
        influx_org=env.text("INFLUXDB_ORG") or "",
        data_dir=env.path("POWERVIEW_DATA_DIR", "/srv/sftpgo/data", "TSV_DATA_FOLDER") or Path("/srv/sftpgo/data"),
        secrets_dir=env.path("POWERVIEW_SECRETS_DIR", str(DEFAULT_SECRETS_DIR)) or DEFAULT_SECRETS_DIR,
        config_api_url=env.url("CONFIG_API_URL", None, example=grafana_url),
        config_api_token=env.text("CONFIG_API_TOKEN"),
        series_config_api_url=env.text("GRAFANA_SERIES_CONFIG_API_URL") or DEFAULT_SERIES_CONFIG_API_URL,
        config_datasource_uid=env.text("GRAFANA_CONFIG_DATASOURCE_UID") or DEFAULT_CONFIG_DATASOURCE_UID,
        templates_dir=env.path("POWERVIEW_GRAFANA_TEMPLATES_DIR", None) or DEFAULT_TEMPLATES_DIR,
    )
