"""Every setting in one place: the project's `.env` plus the environment, into a frozen dataclass.

The real environment wins over `.env` (python-dotenv reads the file, nothing is exported).
Values are parsed and checked here, once; the rest of the code receives typed values.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Mapping
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dotenv import dotenv_values

PROJECT_DIR = Path(__file__).resolve().parent.parent
DEFAULT_ENV_FILE = PROJECT_DIR / ".env"
DEFAULT_GRAFANA_PLAYBOOK = PROJECT_DIR / "grafana-automation" / "playbooks" / "create_grafana_resources.yml"


class ConfigError(Exception):
    """A setting is missing or malformed: the message names it (never its value if secret)."""


@dataclass(frozen=True)
class Settings:
    # InfluxDB 2
    influx_url: str | None
    influx_org: str | None
    influx_token: str | None
    meta_bucket: str
    influx_timeout_s: float
    influx_retry_max_s: float
    influx_batch_lines: int
    influx_gzip: bool
    influx_create_buckets: bool
    # parser
    data_folder: Path | None
    log_level: str
    report_dir: Path | None
    v002_timezone: str
    min_valid_date: date
    # hook, Grafana provisioning
    data_dir: Path
    log_dir: Path
    spool_dir: Path
    settle_seconds: float
    secrets_dir: Path
    # Grafana provisioning (grafana-automation/ playbooks); password and token never in repr or logs
    grafana_url: str | None
    grafana_username: str | None
    grafana_password: str | None
    grafana_api_token: str | None
    grafana_datasource_type: str
    influx_url_for_grafana: str | None   # the InfluxDB address as Grafana reaches it
    # the hook's spool and worker (on-upload.sh)
    grafana_playbook: Path
    retry_base_seconds: float
    retry_max_seconds: float
    max_attempts: int
    job_timeout_seconds: float
    worker_linger_seconds: float
    # the InfluxDB generation targeted, derived buckets (docs/buckets-derives.md)
    influx_version: int = 2                      # INFLUXDB_VERSION: 1, 2 or 3
    influx_v1_user: str | None = None            # INFLUXDB_V1_USER (1.x with auth-enabled only)
    influx_v1_password: str | None = None        # INFLUXDB_V1_PASSWORD
    downsample_levels: tuple[str, ...] = ("1h", "1d", "1w")   # TSV_DOWNSAMPLE_LEVELS ("" = off)

    def require_influx(self) -> None:
        """Raise ConfigError naming the first missing InfluxDB variable (for the targeted version)."""
        needed = {1: (("INFLUXDB_HOST", self.influx_url),),
                  3: (("INFLUXDB_HOST", self.influx_url), ("INFLUXDB_ADMIN_TOKEN", self.influx_token))}
        for name, value in needed.get(self.influx_version, (
            ("INFLUXDB_HOST", self.influx_url),
            ("INFLUXDB_ORG", self.influx_org),
            ("INFLUXDB_ADMIN_TOKEN", self.influx_token),
        )):
            if not value:
                raise ConfigError(f"missing required setting {name} (environment or .env)")

    def require_grafana(self) -> None:
        """Raise ConfigError naming what is missing to call Grafana's HTTP API."""
        if not self.grafana_url:
            raise ConfigError("missing required setting GRAFANA_URL (environment or .env)")
        if not self.grafana_api_token and not (self.grafana_username and self.grafana_password):
            raise ConfigError("missing Grafana credentials: set GRAFANA_API_TOKEN, or GRAFANA_USERNAME and "
                              "GRAFANA_PASSWORD (environment or .env)")

    def __repr__(self) -> str:  # never show the token
        return f"Settings(influx_url={self.influx_url!r}, influx_org={self.influx_org!r}, ...)"


def read_environment(env_file: Path | str | None = None, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """Merge `.env` (if it exists) with the environment; the environment wins."""
    path = Path(env_file) if env_file else DEFAULT_ENV_FILE
    merged: dict[str, str] = {}
    if path.is_file():
        merged.update({k: v for k, v in dotenv_values(path).items() if v is not None})
    merged.update(os.environ if environ is None else environ)
    return merged


def _float(env: Mapping[str, str], name: str, default: float, minimum: float = 0.0) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from None
    if not value >= minimum:
        raise ConfigError(f"{name} must be >= {minimum}, got {raw!r}")
    return value


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name} must be true or false, got {raw!r}")


def _path(env: Mapping[str, str], name: str, default: str | None) -> Path | None:
    raw = env.get(name, "").strip()
    return Path(raw) if raw else (Path(default) if default else None)


def _url(env: Mapping[str, str], name: str, default: str | None) -> str | None:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    if not raw.startswith(("http://", "https://")):
        raise ConfigError(f"{name} must be a URL such as http://localhost:3000, got {raw!r}")
    return raw.rstrip("/")


def load(env_file: Path | str | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    env = read_environment(env_file, environ)

    tz_name = env.get("TSV_V002_TIMEZONE", "").strip() or "UTC"
    try:
        ZoneInfo(tz_name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"TSV_V002_TIMEZONE: unknown IANA time zone {tz_name!r}") from None

    raw_date = env.get("TSV_MIN_VALID_DATE", "").strip() or "2021-01-01"
    try:
        min_date = date.fromisoformat(raw_date)
    except ValueError:
        raise ConfigError(f"TSV_MIN_VALID_DATE must be a date YYYY-MM-DD, got {raw_date!r}") from None

    level = (env.get("TSV_LOG_LEVEL", "").strip() or "INFO").upper()
    if level not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
        raise ConfigError(f"TSV_LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR, got {level!r}")

    batch = _float(env, "TSV_BATCH_SIZE", 5000, minimum=1)
    if batch != int(batch):
        raise ConfigError(f"TSV_BATCH_SIZE must be a whole number, got {env.get('TSV_BATCH_SIZE')!r}")

    url = (env.get("INFLUXDB_HOST", "").strip() or env.get("INFLUXDB_URL", "").strip()) or None
    if url and not url.startswith(("http://", "https://")):
        raise ConfigError(f"INFLUXDB_HOST must be a URL such as http://localhost:8086, got {url!r}")

    return Settings(
        influx_url=url.rstrip("/") if url else None,
        influx_org=env.get("INFLUXDB_ORG", "").strip() or None,
        influx_token=env.get("INFLUXDB_ADMIN_TOKEN", "").strip() or None,
        meta_bucket=env.get("TSV_META_BUCKET", "").strip() or "powerview_meta",
        influx_timeout_s=_float(env, "TSV_INFLUX_TIMEOUT", 30.0, minimum=0.1),
        influx_retry_max_s=_float(env, "TSV_INFLUX_RETRY_MAX_SECONDS", 60.0),
        influx_batch_lines=int(batch),
        influx_gzip=_bool(env, "TSV_INFLUX_GZIP", False),
        influx_create_buckets=_bool(env, "TSV_INFLUX_CREATE_BUCKETS", True),
        data_folder=_path(env, "TSV_DATA_FOLDER", None),
        log_level=level,
        report_dir=_path(env, "TSV_REPORT_DIR", None),
        v002_timezone=tz_name,
        min_valid_date=min_date,
        data_dir=_path(env, "POWERVIEW_DATA_DIR", "/srv/sftpgo/data"),
        log_dir=_path(env, "POWERVIEW_LOG_DIR", "/srv/sftpgo/logs"),
        spool_dir=_path(env, "POWERVIEW_SPOOL_DIR", "/srv/sftpgo/spool"),
        settle_seconds=_float(env, "POWERVIEW_SETTLE_SECONDS", 10.0),
        secrets_dir=_path(env, "POWERVIEW_SECRETS_DIR", "/srv/powerview/secrets"),
        grafana_url=_url(env, "GRAFANA_URL", "http://localhost:3000"),
        grafana_username=env.get("GRAFANA_USERNAME", "").strip() or None,
        grafana_password=env.get("GRAFANA_PASSWORD", "") or None,
        grafana_api_token=env.get("GRAFANA_API_TOKEN", "").strip() or None,
        grafana_datasource_type=env.get("GRAFANA_DATASOURCE_TYPE", "").strip() or "influxdb-adecwatts-datasource",
        influx_url_for_grafana=_url(env, "INFLUXDB_URL_FOR_GRAFANA", None),
        grafana_playbook=_path(env, "POWERVIEW_GRAFANA_PLAYBOOK", str(DEFAULT_GRAFANA_PLAYBOOK)),
        retry_base_seconds=_float(env, "POWERVIEW_RETRY_BASE_SECONDS", 30.0),
        retry_max_seconds=_float(env, "POWERVIEW_RETRY_MAX_SECONDS", 900.0),
        max_attempts=int(_float(env, "POWERVIEW_MAX_ATTEMPTS", 20, minimum=1)),
        job_timeout_seconds=_float(env, "POWERVIEW_JOB_TIMEOUT_SECONDS", 3600.0, minimum=1),
        worker_linger_seconds=_float(env, "POWERVIEW_WORKER_LINGER_SECONDS", 60.0),
        influx_version=_influx_version(env),
        influx_v1_user=env.get("INFLUXDB_V1_USER", "").strip() or None,
        influx_v1_password=env.get("INFLUXDB_V1_PASSWORD", "") or None,
        downsample_levels=_levels(env),
    )


def _influx_version(env: Mapping[str, str]) -> int:
    raw = env.get("INFLUXDB_VERSION", "").strip() or "2"
    if raw not in ("1", "2", "3"):
        raise ConfigError(f"INFLUXDB_VERSION must be 1, 2 or 3, got {raw!r}")
    return int(raw)


DOWNSAMPLE_LEVELS = {"1h": 3600, "1d": 86400, "1w": 604800}


def parse_levels(raw: str, name: str = "TSV_DOWNSAMPLE_LEVELS") -> tuple[str, ...]:
    """`1h,1d,1w` -> ("1h", "1d", "1w"); empty -> (); anything else -> ConfigError."""
    levels: list[str] = []
    for part in raw.split(","):
        level = part.strip()
        if not level:
            continue
        if level not in DOWNSAMPLE_LEVELS:
            raise ConfigError(f"{name}: unknown level {level!r} (allowed: {', '.join(DOWNSAMPLE_LEVELS)})")
        if level not in levels:
            levels.append(level)
    return tuple(levels)


def _levels(env: Mapping[str, str]) -> tuple[str, ...]:
    raw = env.get("TSV_DOWNSAMPLE_LEVELS")
    return ("1h", "1d", "1w") if raw is None else parse_levels(raw)
