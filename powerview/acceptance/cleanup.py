"""A0, at the end: the test company removed from the worker's queue, Grafana (the deletion
playbook), InfluxDB (buckets and tokens), the config API and the data folder; nothing but a
`pvaccept_<8 hex digits>` company this run created."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import requests

from powerview.core.envfile import read_environment
from powerview.core.schema import DERIVED_LEVELS
from powerview.onboarding.influx_tokens import TokenManager, connect

from .context import HTTP_TIMEOUT_S, TEST_COMPANY, Context, Skip


class Cleanup(Context):
    """The removal of the test company."""

    def cleanup(self) -> None:
        if not self.created_dir:
            return
        assert TEST_COMPANY.match(self.company)  # never anything but our own test company
        playbook = self.project / "grafana-automation" / "playbooks" / "delete_grafana_resources.yml"

        def grafana() -> str:
            env = dict(read_environment(self.env_file))
            if self.env_file is not None:
                env["POWERVIEW_ENV_FILE"] = str(self.env_file)
            bin_dir = Path(sys.executable).parent
            env["PATH"] = f"{bin_dir}:{env.get('PATH') or '/usr/local/bin:/usr/bin:/bin'}"
            env.update(ANSIBLE_NOCOLOR="1", LANG=env.get("LANG", "C.UTF-8"))
            command = (
                str(bin_dir / "ansible-playbook")
                if (bin_dir / "ansible-playbook").exists()
                else (shutil.which("ansible-playbook") or "ansible-playbook")
            )
            with tempfile.NamedTemporaryFile("w", suffix=".json", prefix="pvaccept-") as extra:
                json.dump({"company_name": self.company, "user_name": self.names["user_login"]}, extra)
                extra.flush()
                result = subprocess.run(
                    [command, str(playbook), "-e", f"@{extra.name}"],
                    cwd=playbook.parent.parent,
                    env=env,
                    capture_output=True,
                    timeout=max(self.timeout_s, 60),
                    check=False,
                )
            output = result.stdout.decode("utf-8", "replace")
            assert result.returncode == 0, (
                f"{playbook.name} exited {result.returncode}: "
                + " ".join(re.findall(r'"msg": "([^"]*)"', output))[-300:]
            )
            gone = self.grafana.get(
                f"{self.settings.grafana.url}/api/dashboards/uid/{self.names['dashboard_uid']}", timeout=HTTP_TIMEOUT_S
            )
            assert gone.status_code == 404, f"dashboard still there (HTTP {gone.status_code})"
            return f"{playbook.name}: team, folder, data source, dashboard, user {self.names['user_login']} deleted"

        def influxdb() -> str:
            deleted = []
            with connect(self.settings.influx) as client:
                manager = TokenManager(client, self.settings.influx.org or "", budget_s=10.0)
                tokens = manager.revoke(self.company)
                for name in [self.company, *(f"{self.company}_{level}" for level in DERIVED_LEVELS)]:
                    bucket = manager.find_bucket(name)
                    if bucket is not None and bucket.name == name:
                        client.buckets_api().delete_bucket(bucket.id)
                        deleted.append(name)
            return (
                f"bucket(s) {', '.join(deleted) or 'none'} and {len(tokens)} token(s) deleted; the run summaries "
                f"stay in {self.settings.meta_bucket}"
            )

        def config_api() -> str:
            url = self.settings.config_api_url
            if not url:
                raise Skip("CONFIG_API_URL is not set")
            headers = (
                {"Authorization": f"Bearer {self.settings.config_api_token}"} if self.settings.config_api_token else {}
            )
            client = requests.get(f"{url}/clients/{self.company}", timeout=HTTP_TIMEOUT_S)
            if client.status_code == 200:
                answer = requests.delete(f"{url}/clients/{self.company}", headers=headers, timeout=HTTP_TIMEOUT_S)
                assert answer.status_code in (204, 404), (
                    f"DELETE /clients/{self.company} answered HTTP {answer.status_code}"
                )
            return (
                f"client {self.company} {'deleted' if client.status_code == 200 else 'not registered'}; its "
                "channels stay in the catalogue (the API has no delete)"
            )

        def queue() -> str:
            # a job still queued (the worker was down, or slower than --timeout) would provision the
            # test company again after its deletion: purge them, through the worker's own commands
            worker = [sys.executable, "-m", "powerview.cli.worker"] + (
                ["--env-file", str(self.env_file)] if self.env_file is not None else []
            )
            jobs, unread = [], 0
            for listing in (["list", "--json"], ["list", "--failed", "--json"], ["list"]):
                result = subprocess.run(worker + listing, capture_output=True, text=True, timeout=60, check=False)
                assert result.returncode == 0, f"worker {' '.join(listing)}: {result.stderr.strip()[-300:]}"
                if "--json" in listing:
                    jobs += [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
                else:
                    found = re.search(r"(\d+) event\(s\) recorded by on-upload.sh", result.stderr)
                    unread = int(found.group(1)) if found else 0
            prefix = str(self.company_dir) + os.sep
            ids = [
                job["id"]
                for job in jobs
                if job.get("company") == self.company or str(job.get("path") or "").startswith(prefix)
            ]
            if ids:
                result = subprocess.run(
                    worker + ["purge", *ids], capture_output=True, text=True, timeout=60, check=False
                )
                assert result.returncode == 0, f"worker purge: {result.stderr.strip()[-300:]}"
            assert not unread, (
                f"{len(ids)} job(s) purged, but {unread} event(s) recorded by on-upload.sh were never "
                f"read: the worker is not running; once it runs, check that it did not provision "
                f"{self.company} again (docs/acceptance.md, removal by hand)"
            )
            return f"{len(ids)} queued job(s) of {self.company} purged" if ids else f"no job of {self.company} queued"

        def data() -> str:
            folder = self.company_dir
            assert folder.parent == self.settings.data_dir and not folder.is_symlink(), f"refusing to remove {folder}"
            shutil.rmtree(folder)
            return f"{folder} removed"

        self.check("A0", f"cleanup of {self.company} in the worker's queue", queue)
        self.check("A0", f"cleanup of {self.company} in Grafana", grafana)
        self.check("A0", f"cleanup of {self.company} in InfluxDB", influxdb)
        self.check("A0", f"cleanup of {self.company} in the config API", config_api)
        self.check("A0", f"cleanup of {self.company} in the data folder", data)
