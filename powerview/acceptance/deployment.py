"""A0: the deployment answers (hook, data folder, Grafana and its public address, InfluxDB, the
config API); A1: SFTPGo's jail, a manual procedure."""

from __future__ import annotations

import ipaddress
import os
from urllib.parse import urlsplit

import requests

from powerview.delivery import influx

from .context import HTTP_TIMEOUT_S, SKIP, Aborted, Context, Skip


class Deployment(Context):
    """A0 (the deployment) and A1."""

    # A0: the deployment answers
    def preconditions(self) -> None:
        s = self.settings
        hook = self.project / "on-upload.sh"

        def hook_ok() -> str:
            assert os.access(hook, os.X_OK), f"{hook} is missing or not executable (--project)"
            return f"{hook}"

        def data_ok() -> str:
            assert s.data_dir.is_dir(), f"{s.data_dir} is not a folder (POWERVIEW_DATA_DIR)"
            owner = s.data_dir.stat().st_uid
            assert os.geteuid() != 0 or owner == 0, (
                f"run as the owner of {s.data_dir} (uid {owner}), as SFTPGo does "
                "(sudo -u sftpgo ...): as root the worker would leave root-owned files"
            )
            assert os.access(s.data_dir, os.W_OK | os.X_OK), f"{s.data_dir} is not writable by this user: run as sftpgo"
            assert not self.company_dir.exists(), f"{self.company_dir} exists already: not touching it"
            return f"{s.data_dir} writable"

        def grafana_ok() -> str:
            url = s.grafana.url
            health = self.grafana.get(f"{url}/api/health", timeout=HTTP_TIMEOUT_S)
            assert health.status_code == 200, f"GET {url}/api/health answered HTTP {health.status_code}"
            org = self.grafana.get(f"{url}/api/org", timeout=HTTP_TIMEOUT_S)
            assert org.status_code == 200, (
                f"GET {url}/api/org answered HTTP {org.status_code}: check "
                "GRAFANA_USERNAME/GRAFANA_PASSWORD or GRAFANA_API_TOKEN"
            )
            try:
                version = health.json().get("version", "?")
            except ValueError:
                raise AssertionError(
                    f"GET {url}/api/health answered HTTP 200 but not Grafana's JSON (a proxy page?): check GRAFANA_URL"
                ) from None
            return f"{url} version {version}, credentials accepted"

        def influx_ok() -> str:
            s.influx.require()
            influx.check_server(s.influx.url or "", HTTP_TIMEOUT_S, 10.0)
            answer = requests.get(
                f"{s.influx.url}/api/v2/buckets",
                params={"org": s.influx.org, "limit": 1},
                headers={"Authorization": f"Token {s.influx.token}"},
                timeout=HTTP_TIMEOUT_S,
            )
            assert answer.status_code == 200, (
                f"GET /api/v2/buckets answered HTTP {answer.status_code}: check INFLUXDB_ORG and INFLUXDB_ADMIN_TOKEN"
            )
            return f"{s.influx.url}, organization {s.influx.org}, admin token accepted"

        def config_api_ok() -> str:
            if not s.config_api_url:
                raise Skip("CONFIG_API_URL is not set: the catalogue checks are skipped")
            answer = requests.get(f"{s.config_api_url}/health", timeout=HTTP_TIMEOUT_S)
            assert answer.status_code == 200, f"GET {s.config_api_url}/health answered HTTP {answer.status_code}"
            self.config_api_ok = True
            return f"{s.config_api_url} {answer.json().get('status', '?')}"

        essential = [
            self.check("A0", "hook on-upload.sh", hook_ok),
            self.check("A0", "data folder", data_ok),
            self.check("A0", "Grafana answers", grafana_ok),
            self.check("A0", "InfluxDB answers", influx_ok),
        ]
        self.check("A0", "config API answers", config_api_ok)
        if essential[2]:
            self.grafana_public_address()
        if not all(essential):
            raise Aborted("the deployment is not reachable (see A0)")

    def grafana_public_address(self) -> bool:
        """Grafana's root URL (GF_SERVER_ROOT_URL), as the UI gets it (`appUrl`): links in e-mails
        and alerts, and redirects behind the proxy, are wrong when it names this machine only."""
        url = self.settings.grafana.url

        def public() -> str:
            answer = self.grafana.get(f"{url}/api/frontend/settings", timeout=HTTP_TIMEOUT_S)
            assert answer.status_code == 200, f"GET {url}/api/frontend/settings answered HTTP {answer.status_code}"
            app_url = str(answer.json().get("appUrl") or "")
            host = (urlsplit(app_url).hostname or "").lower()
            assert host, f"Grafana's root URL is {app_url!r}: set GRAFANA_ROOT_URL and GRAFANA_DOMAIN in .env"
            assert not (host == "localhost" or host.endswith(".localhost") or _loopback(host)), (
                f"Grafana's root URL is {app_url} (a local address): links and redirects are wrong for "
                "users; set GRAFANA_ROOT_URL and GRAFANA_DOMAIN in .env (the public address), then "
                "podman compose up -d"
            )
            return app_url

        return self.check("A0", "Grafana public address", public)

    def a1(self) -> None:
        self.record(
            SKIP,
            "A1",
            "SFTP user jailed to its home, no provisioning",
            "needs SFTPGo and an SFTP client: manual procedure in docs/acceptance.md",
        )


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
