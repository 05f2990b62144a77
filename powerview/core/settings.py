"""Settings: the project's `.env` plus the environment, into one frozen dataclass per program.

Each program loads and checks only what it uses (a bad hook setting never stops the parser):

    load_parser()   tsv_parser.py            ParserSettings (with InfluxSettings)
    load_worker()   the spool's worker/hook   WorkerSettings
    load_tokens()   manage_influx_tokens.py   TokenSettings (with InfluxSettings)
    load_influx_command()  powerview-catalogue, powerview-downsample

Programs further out build their own on `Env`, by the same rule: the Grafana provisioning
(powerview/onboarding/grafana/settings.py), the channel catalogue (catalogue.CatalogueSettings), the
acceptance check (powerview/acceptance/settings.py). This module imports none of them. Every
reader raises ConfigError. Which `.env` is read: powerview/core/envfile.py (--env-file, else
POWERVIEW_ENV_FILE, else the project's `.env`); `load_env()` reads it once for a whole run.

The real environment wins over `.env`. `.env` is read by python-dotenv without interpolation
(`${X}` stays as written), the rule on-upload.sh follows too. One variable per fact; the
deployed names are kept, other spellings are accepted aliases (INFLUXDB_URL for INFLUXDB_HOST,
TSV_DATA_FOLDER for POWERVIEW_DATA_DIR).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from zoneinfo import ZoneInfo

from powerview.core.envfile import PROJECT_DIR, read_environment
from powerview.core.schema import DEFAULT_META_BUCKET, DERIVED_LEVELS

DEFAULT_GRAFANA_PLAYBOOK = PROJECT_DIR / "grafana-automation" / "playbooks" / "create_grafana_resources.yml"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
# the folders on-upload.sh reads too: plain absolute paths, read the same way by bash and Python
_PLAIN_PATH = re.compile(r"/[A-Za-z0-9_./+-]*\Z")


class ConfigError(Exception):
    """A setting is missing or malformed: the message names it (never its value if secret).
    The one configuration error of every program."""


class Env:
    """Typed, checked reads of the merged settings; errors name the variable."""

    def __init__(self, values: Mapping[str, str]):
        self.values = values

    def raw(self, name: str, *aliases: str) -> tuple[str, str]:
        """(the name that was set, its stripped value); ("", "") when none is set."""
        for key in (name, *aliases):
            value = self.values.get(key, "").strip()
            if value:
                return key, value
        return "", ""

    def text(self, name: str, default: str | None = None, *aliases: str) -> str | None:
        return self.raw(name, *aliases)[1] or default

    def secret(self, name: str) -> str | None:
        return self.values.get(name, "") or None

    def number(self, name: str, default: float, minimum: float = 0.0) -> float:
        _, raw = self.raw(name)
        if not raw:
            return default
        try:
            value = float(raw)
        except ValueError:
            raise ConfigError(f"{name} must be a number, got {raw!r}") from None
        if not value >= minimum or value == float("inf"):
            raise ConfigError(f"{name} must be a finite number >= {minimum:g}, got {raw!r}")
        return value

    def integer(self, name: str, default: int, minimum: int = 0) -> int:
        _, raw = self.raw(name)
        if not raw:
            return default
        if not re.fullmatch(r"[0-9]+", raw):
            raise ConfigError(f"{name} must be a whole number, got {raw!r}")
        value = int(raw)
        if value < minimum:
            raise ConfigError(f"{name} must be >= {minimum}, got {raw!r}")
        return value

    def boolean(self, name: str, default: bool) -> bool:
        raw = self.raw(name)[1].lower()
        if not raw:
            return default
        if raw in ("1", "true", "yes", "on"):
            return True
        if raw in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"{name} must be true or false, got {raw!r}")

    def path(self, name: str, default: str | None, *aliases: str) -> Path | None:
        raw = self.raw(name, *aliases)[1]
        return Path(raw) if raw else (Path(default) if default else None)

    def plain_dir(self, name: str, default: str) -> Path:
        """A folder on-upload.sh reads too: a plain absolute path (see _PLAIN_PATH)."""
        raw = self.raw(name)[1] or default
        if not _PLAIN_PATH.match(raw):
            raise ConfigError(
                f"{name} must be a plain absolute path (letters, digits, / . _ + -), got {raw!r}: "
                "on-upload.sh reads it too, and both must read it the same way"
            )
        return Path(raw)

    def url(self, name: str, default: str | None, *aliases: str, example: str = "http://localhost:8086") -> str | None:
        key, raw = self.raw(name, *aliases)
        if not raw:
            return default
        if not raw.startswith(("http://", "https://")) or any(c.isspace() for c in raw):
            raise ConfigError(f"{key} must be a URL such as {example}, got {raw!r}")
        return raw.rstrip("/")


def load_env(env_file: Env | Path | str | None = None, environ: Mapping[str, str] | None = None) -> Env:
    """The settings of a run, read once (see powerview.core.envfile for which file); an Env is passed through,
    so that one run's readers share one read of the file."""
    return env_file if isinstance(env_file, Env) else Env(read_environment(env_file, environ))


# -- InfluxDB ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class InfluxSettings:
    url: str | None
    org: str | None
    token: str | None
    timeout_s: float
    retry_max_s: float
    gzip: bool
    create_buckets: bool
    version: int = 2  # INFLUXDB_VERSION: 1, 2 or 3 (docs/buckets-derives.md)
    v1_user: str | None = None  # INFLUXDB_V1_USER (1.x with auth-enabled only)
    v1_password: str | None = None  # INFLUXDB_V1_PASSWORD

    def require(self) -> None:
        """Raise ConfigError naming the first missing InfluxDB variable (for the targeted version)."""
        needed = {
            1: (("INFLUXDB_HOST", self.url),),
            3: (("INFLUXDB_HOST", self.url), ("INFLUXDB_ADMIN_TOKEN", self.token)),
        }
        for name, value in needed.get(
            self.version,
            (("INFLUXDB_HOST", self.url), ("INFLUXDB_ORG", self.org), ("INFLUXDB_ADMIN_TOKEN", self.token)),
        ):
            if not value:
                raise ConfigError(f"missing required setting {name} (environment or .env)")

    def __repr__(self) -> str:  # never show the token
        return f"InfluxSettings(url={self.url!r}, org={self.org!r}, ...)"


def influx_settings(env: Env) -> InfluxSettings:
    return InfluxSettings(
        url=env.url("INFLUXDB_HOST", None, "INFLUXDB_URL"),
        org=env.text("INFLUXDB_ORG"),
        token=env.text("INFLUXDB_ADMIN_TOKEN"),
        timeout_s=env.number("TSV_INFLUX_TIMEOUT", 30.0, minimum=0.1),
        retry_max_s=env.number("TSV_INFLUX_RETRY_MAX_SECONDS", 60.0),
        gzip=env.boolean("TSV_INFLUX_GZIP", False),
        create_buckets=env.boolean("TSV_INFLUX_CREATE_BUCKETS", True),
        version=_influx_version(env),
        v1_user=env.text("INFLUXDB_V1_USER"),
        v1_password=env.secret("INFLUXDB_V1_PASSWORD"),
    )


def _influx_version(env: Env) -> int:
    raw = env.text("INFLUXDB_VERSION") or "2"
    if raw not in ("1", "2", "3"):
        raise ConfigError(f"INFLUXDB_VERSION must be 1, 2 or 3, got {raw!r}")
    return int(raw)


def parse_levels(raw: str, name: str = "TSV_DOWNSAMPLE_LEVELS") -> tuple[str, ...]:
    """`1h,1d,1w` -> ("1h", "1d", "1w"); empty -> (); anything else -> ConfigError."""
    levels: list[str] = []
    for part in raw.split(","):
        level = part.strip()
        if not level:
            continue
        if level not in DERIVED_LEVELS:
            raise ConfigError(f"{name}: unknown level {level!r} (allowed: {', '.join(DERIVED_LEVELS)})")
        if level not in levels:
            levels.append(level)
    return tuple(levels)


def _levels(env: Env) -> tuple[str, ...]:
    raw = env.values.get("TSV_DOWNSAMPLE_LEVELS")
    return DERIVED_LEVELS if raw is None else parse_levels(raw)


def log_level_of(env: Env) -> str:
    level = (env.text("TSV_LOG_LEVEL") or "INFO").upper()
    if level not in LOG_LEVELS:
        raise ConfigError(f"TSV_LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR, got {level!r}")
    return level


# -- tsv_parser.py -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ParserSettings:
    influx: InfluxSettings
    meta_bucket: str
    batch_lines: int
    spool_dir: Path  # outboxes of the derived buckets and the catalogue
    downsample_levels: tuple[str, ...]  # TSV_DOWNSAMPLE_LEVELS ("" = off)
    data_folder: Path | None
    log_level: str
    report_dir: Path | None
    v002_timezone: str
    min_valid_date: date


def load_parser(env_file: Env | Path | str | None = None, environ: Mapping[str, str] | None = None) -> ParserSettings:
    env = load_env(env_file, environ)
    tz_name = env.text("TSV_V002_TIMEZONE") or "UTC"
    try:
        ZoneInfo(tz_name)
    except Exception:  # noqa: BLE001 - zoneinfo raises several kinds (unknown, a folder, too long)
        raise ConfigError(f"TSV_V002_TIMEZONE: unknown IANA time zone {tz_name[:60]!r}") from None
    raw_date = env.text("TSV_MIN_VALID_DATE") or "2021-01-01"
    try:
        min_date = date.fromisoformat(raw_date)
    except ValueError:
        raise ConfigError(f"TSV_MIN_VALID_DATE must be a date YYYY-MM-DD, got {raw_date!r}") from None
    return ParserSettings(
        influx=influx_settings(env),
        meta_bucket=env.text("TSV_META_BUCKET") or DEFAULT_META_BUCKET,
        batch_lines=env.integer("TSV_BATCH_SIZE", 5000, minimum=1),
        spool_dir=env.plain_dir("POWERVIEW_SPOOL_DIR", "/srv/sftpgo/spool"),
        downsample_levels=_levels(env),
        data_folder=env.path("POWERVIEW_DATA_DIR", None, "TSV_DATA_FOLDER"),
        log_level=log_level_of(env),
        report_dir=env.path("TSV_REPORT_DIR", None),
        v002_timezone=tz_name,
        min_valid_date=min_date,
    )


# -- manage_influx_tokens.py ---------------------------------------------------------------------


@dataclass(frozen=True)
class TokenSettings:
    influx: InfluxSettings
    log_level: str
    downsample_levels: tuple[str, ...]  # the derived buckets a company token reads too


def load_tokens(env_file: Env | Path | str | None = None, environ: Mapping[str, str] | None = None) -> TokenSettings:
    env = load_env(env_file, environ)
    return TokenSettings(influx=influx_settings(env), log_level=log_level_of(env), downsample_levels=_levels(env))


# -- the catalogue and downsample commands (they read InfluxDB's buckets) --------------------------


@dataclass(frozen=True)
class InfluxCommandSettings:
    influx: InfluxSettings
    meta_bucket: str
    log_level: str
    batch_lines: int
    downsample_levels: tuple[str, ...]
    spool_dir: Path  # the derived outbox and the recompute locks it shares with the parser


def load_influx_command(
    env_file: Env | Path | str | None = None, environ: Mapping[str, str] | None = None
) -> InfluxCommandSettings:
    env = load_env(env_file, environ)
    return InfluxCommandSettings(
        influx=influx_settings(env),
        meta_bucket=env.text("TSV_META_BUCKET") or DEFAULT_META_BUCKET,
        log_level=log_level_of(env),
        batch_lines=env.integer("TSV_BATCH_SIZE", 5000, minimum=1),
        downsample_levels=_levels(env),
        spool_dir=env.plain_dir("POWERVIEW_SPOOL_DIR", "/srv/sftpgo/spool"),
    )


# -- the spool's worker (on-upload.sh) -----------------------------------------------------------


@dataclass(frozen=True)
class WorkerSettings:
    data_dir: Path
    log_dir: Path
    spool_dir: Path
    settle_seconds: float
    grafana_playbook: Path
    retry_base_seconds: float
    retry_max_seconds: float
    max_attempts: int
    job_timeout_seconds: float
    worker_linger_seconds: float


def load_worker(env_file: Env | Path | str | None = None, environ: Mapping[str, str] | None = None) -> WorkerSettings:
    env = load_env(env_file, environ)
    return WorkerSettings(
        data_dir=env.path("POWERVIEW_DATA_DIR", "/srv/sftpgo/data", "TSV_DATA_FOLDER") or Path("/srv/sftpgo/data"),
        log_dir=env.plain_dir("POWERVIEW_LOG_DIR", "/srv/sftpgo/logs"),
        spool_dir=env.plain_dir("POWERVIEW_SPOOL_DIR", "/srv/sftpgo/spool"),
        settle_seconds=env.number("POWERVIEW_SETTLE_SECONDS", 10.0),
        grafana_playbook=env.path("POWERVIEW_GRAFANA_PLAYBOOK", str(DEFAULT_GRAFANA_PLAYBOOK))
        or DEFAULT_GRAFANA_PLAYBOOK,
        retry_base_seconds=env.number("POWERVIEW_RETRY_BASE_SECONDS", 30.0),
        retry_max_seconds=env.number("POWERVIEW_RETRY_MAX_SECONDS", 900.0),
        max_attempts=env.integer("POWERVIEW_MAX_ATTEMPTS", 20, minimum=1),
        job_timeout_seconds=env.number("POWERVIEW_JOB_TIMEOUT_SECONDS", 3600.0, minimum=1),
        worker_linger_seconds=env.number("POWERVIEW_WORKER_LINGER_SECONDS", 60.0),
    )
