"""A2: the mkdir of a campaign, through on-upload.sh, provisions the company: Grafana team, folder,
data source and dashboard; the InfluxDB bucket and its read token; the marker."""

from __future__ import annotations

import requests

from powerview.onboarding.influx_tokens import TokenManager, connect

from .context import CAMPAIGN, HTTP_TIMEOUT_S, Aborted, Context


class Provisioning(Context):
    """A2."""

    # A2: mkdir of a campaign provisions the company
    def a2(self) -> None:
        target = f"{self.company}/{CAMPAIGN}"

        def provisioned() -> str:
            self.company_dir.mkdir(mode=0o750)  # SFTPGo creates the user's home: no hook call
            self.created_dir = True
            self.campaign_dir.mkdir(mode=0o750)
            self.sftpgo(SFTPGO_ACTION="mkdir", SFTPGO_ACTION_PATH=str(self.campaign_dir), SFTPGO_ACTION_STATUS="1")
            line = self.wait_job("provision", target, f"the provisioning of {target}")
            assert line.get("result") == "provisioned", (
                f"provisioning job {line.get('job')}: result={line.get('result')} {line.get('detail', '')}"
            )
            return f"job {line.get('job')} ansible-playbook succeeded in {line.get('duration', '?')}"

        if not self.check("A2", f"mkdir {target} runs the provisioning", provisioned):
            raise Aborted("the provisioning did not succeed (see A2)")
        self.a2_resources()

    def a2_resources(self) -> None:
        """What the provisioning must have made: Grafana team, folder, data source, dashboard;
        InfluxDB bucket and read token; the marker."""
        url, n = self.settings.grafana.url, self.names

        def team() -> str:
            answer = self.grafana.get(f"{url}/api/teams/search", params={"name": n["team"]}, timeout=HTTP_TIMEOUT_S)
            found = [t for t in answer.json().get("teams", [])] if answer.status_code == 200 else []
            found = [t for t in found if t.get("name") == n["team"]]
            assert found, f"GET /api/teams/search?name={n['team']} answered HTTP {answer.status_code}, no such team"
            self.team_id = int(found[0]["id"])
            return f"team id {self.team_id}"

        def folder() -> str:
            answer = self.grafana.get(f"{url}/api/folders/{n['folder_uid']}", timeout=HTTP_TIMEOUT_S)
            assert answer.status_code == 200, f"GET /api/folders/{n['folder_uid']} answered HTTP {answer.status_code}"
            assert answer.json().get("title") == n["folder_title"], f"title {answer.json().get('title')!r}"
            return f"uid {n['folder_uid']}"

        def datasource() -> str:
            answer = self.grafana.get(f"{url}/api/datasources/name/{n['datasource_name']}", timeout=HTTP_TIMEOUT_S)
            assert answer.status_code == 200, (
                f"GET /api/datasources/name/{n['datasource_name']} answered HTTP "
                f"{answer.status_code} {_message(answer)}"
            )
            ds = answer.json()
            bucket = (ds.get("jsonData") or {}).get("defaultBucket")
            assert bucket in (None, self.company), f"defaultBucket is {bucket!r}, not {self.company!r}"
            assert (ds.get("secureJsonFields") or {}).get("token"), "no InfluxDB token stored in the data source"
            return f"type {ds.get('type')}, uid {ds.get('uid')}, token set"

        def dashboard() -> str:
            answer = self.grafana.get(f"{url}/api/dashboards/uid/{n['dashboard_uid']}", timeout=HTTP_TIMEOUT_S)
            assert answer.status_code == 200, (
                f"GET /api/dashboards/uid/{n['dashboard_uid']} answered HTTP {answer.status_code}"
            )
            meta = answer.json().get("meta", {})
            assert meta.get("folderUid") == n["folder_uid"], f"in folder {meta.get('folderUid')!r}"
            return f"{answer.json()['dashboard'].get('title')!r} in folder {n['folder_uid']}"

        def token() -> str:
            with connect(self.settings.influx) as client:
                manager = TokenManager(client, self.settings.influx.org or "", budget_s=10.0)
                bucket = manager.find_bucket(self.company)
                assert bucket is not None, f"bucket {self.company} does not exist"
                described = [t for t in manager.list(self.company) if t.description == n["token_description"]]
            assert described, f"no authorization described {n['token_description']}"
            assert any(f"read:buckets/{bucket.id}" in t.permissions for t in described), (
                f"{n['token_description']} does not read bucket {self.company}"
            )
            return f"bucket {bucket.id}, {len(described)} token(s) {n['token_description']}"

        def marker() -> str:
            path = self.company_dir / ".company.created"
            assert path.is_file(), f"{path} is missing"
            return str(path)

        self.check("A2", f"Grafana team {n['team']}", team)
        self.check("A2", f"Grafana folder {n['folder_title']}", folder)
        self.check("A2", f"Grafana data source {n['datasource_name']}", datasource)
        self.check("A2", f"Grafana dashboard {n['dashboard_uid']}", dashboard)
        self.check("A2", f"InfluxDB bucket and read token of {self.company}", token)
        self.check("A2", "marker .company.created", marker)


def _message(answer: requests.Response) -> str:
    try:
        return str(answer.json().get("message", ""))
    except ValueError:
        return ""
