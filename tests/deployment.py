"""A throw-away deployment laid out as in production: <root>/srv/powerview holds a copy of the
shipped files (on-upload.sh, tsv_parser.py, powerview/, grafana-automation/ ...), the project's
virtualenv linked in, and a .env pointing at the given servers; <root>/srv/{data,logs,spool,secrets}
are its folders. Used by the tests that drive the real hook, worker and ansible-playbook."""

from __future__ import annotations

import shutil
from pathlib import Path

import samples

SHIPPED = [
    "on-upload.sh",
    "tsv_parser.py",
    "manage_influx_tokens.py",
    "requirements.txt",
    "powerview",
    "grafana-automation",
]


def make_deployment(root: Path, grafana, influx, **extra: object) -> tuple[Path, Path]:
    """(project folder, srv folder) of a new deployment under `root`; `extra` adds .env settings."""
    samples.require_venv()
    srv = root / "srv"
    project = srv / "powerview"
    project.mkdir(parents=True)
    for name in SHIPPED:
        source = samples.PROJECT_DIR / name
        if source.is_dir():
            shutil.copytree(source, project / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, project / name)
    (project / "envs").mkdir()
    (project / "envs" / "powerview").symlink_to(samples.PROJECT_DIR / "envs" / "powerview", target_is_directory=True)
    settings = {
        "POWERVIEW_DATA_DIR": srv / "data",
        "POWERVIEW_LOG_DIR": srv / "logs",
        "POWERVIEW_SPOOL_DIR": srv / "spool",
        "POWERVIEW_SECRETS_DIR": srv / "secrets",
        "POWERVIEW_WORKER_LINGER_SECONDS": "1",
        "INFLUXDB_HOST": influx.url,
        "INFLUXDB_ORG": influx.org,
        "INFLUXDB_ADMIN_TOKEN": influx.admin_token,
        "TSV_REPORT_DIR": srv / "logs" / "reports",
        "TSV_INFLUX_RETRY_MAX_SECONDS": "2",
        "GRAFANA_URL": grafana.url,
        "GRAFANA_USERNAME": "admin",
        "GRAFANA_PASSWORD": "admin-password",
        "INFLUXDB_URL_FOR_GRAFANA": "http://influxdb:8086",
        **extra,
    }
    (project / ".env").write_text("".join(f"{k}={v}\n" for k, v in settings.items()))
    (srv / "data").mkdir()
    return project, srv
