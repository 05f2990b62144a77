"""The settings of the acceptance check (powerview-acceptance): InfluxDB's, Grafana's and the
folders', read once by the project's one reader (powerview.core.settings.Env)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from powerview.core.schema import DEFAULT_META_BUCKET
from powerview.core.settings import Env, InfluxSettings, influx_settings, load_env
from powerview.onboarding.grafana.settings import GrafanaSettings
from powerview.onboarding.grafana.settings import load as load_grafana


@dataclass(frozen=True)
class AcceptanceSettings:
    influx: InfluxSettings
    meta_bucket: str
    grafana: GrafanaSettings  # powerview.onboarding.grafana.settings
    data_dir: Path
    log_dir: Path
    report_dir: Path
    config_api_url: str | None
    config_api_token: str | None

    def __repr__(self) -> str:  # never show the tokens
        return f"AcceptanceSettings(data_dir={str(self.data_dir)!r}, grafana={self.grafana!r}, ...)"


def load_acceptance(
    env_file: Env | Path | str | None = None, environ: Mapping[str, str] | None = None
) -> AcceptanceSettings:
    env = load_env(env_file, environ)
    data_dir = env.path("POWERVIEW_DATA_DIR", "/srv/sftpgo/data", "TSV_DATA_FOLDER") or Path("/srv/sftpgo/data")
    return AcceptanceSettings(
        influx=influx_settings(env),
        meta_bucket=env.text("TSV_META_BUCKET") or DEFAULT_META_BUCKET,
        grafana=load_grafana(env),
        data_dir=data_dir,
        log_dir=env.plain_dir("POWERVIEW_LOG_DIR", "/srv/sftpgo/logs"),
        # the parser's default: <data folder>/../logs/reports
        report_dir=env.path("TSV_REPORT_DIR", None) or data_dir.parent / "logs" / "reports",
        config_api_url=env.url("CONFIG_API_URL", None),
        config_api_token=env.secret("CONFIG_API_TOKEN"),
    )
