"""`powerview-config-api import --from http://old:8000 [--to URL] [--dry-run]`: carry the series
configuration of the deployed config API (0.3.2, source not public) over to this one.

What the old API is known to answer is what the deployed dashboards read:
`GET /clients/<clientId>/series-config/configs?campaign=<campaign>` (a JSON list, one entry per
channel, keyed by `fieldId`). So the command enumerates what can be asked:

- clients: the `jsonData.clientId` of every Grafana data source (every organisation a server
  admin sees), with the data source's bucket (`jsonData.defaultBucket`);
- campaigns of a client's bucket: this API's catalogue, the old API's catalogue
  (`GET /buckets/<bucket>/channels`, when it answers), and the folders of the data folder
  (`POWERVIEW_DATA_DIR/<bucket>/<campaign>/`).

Then, for every client: register it here (`PUT /clients/<clientId>`, so that no deployed
dashboard gets 404 after the switch), add the channels the old settings name and this catalogue
lacks, and save the settings that differ from what this API already answers. Running it again
changes nothing (idempotent); `--dry-run` asks both APIs and Grafana but writes nothing.

Exit codes: 0 done, 1 something could not be read or written (each named on stderr; the rest was
done), 2 usage or configuration.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import requests

SETTING_FIELDS = ("displayName", "visible", "unit", "order", "color")
CHANNEL_FIELDS = ("channelId", "channelUnit", "channelLabel", "deviceMasterSn")
TIMEOUT_S = 15.0


class ImportFailure(Exception):
    """One read or write that failed: named, counted, the rest goes on."""


def _url(value: str) -> str:
    return value.rstrip("/")


def _seg(value: str) -> str:
    return quote(value, safe="")


@dataclass
class Http:
    base: str
    token: str | None = None
    session: requests.Session = field(default_factory=requests.Session)

    def call(self, method: str, path: str, ok=(200,), **kwargs) -> tuple[int, Any]:
        headers = {"Accept": "application/json"}
        if self.token and method != "GET":
            headers["Authorization"] = f"Bearer {self.token}"
        try:
            answer = self.session.request(method, self.base + path, headers=headers, timeout=TIMEOUT_S, **kwargs)
        except requests.RequestException as exc:
            raise ImportFailure(f"{method} {self.base}{path}: cannot connect ({type(exc).__name__})") from None
        try:
            body = answer.json() if answer.content else None
        except ValueError:
            body = None
        if answer.status_code not in ok:
            detail = body.get("detail") or body.get("message") if isinstance(body, dict) else answer.text[:200]
            raise ImportFailure(f"{method} {self.base}{path} answered HTTP {answer.status_code}: {detail}")
        return answer.status_code, body


def grafana_clients(settings) -> dict[str, str]:
    """clientId -> bucket, from every Grafana data source that has a jsonData.clientId."""
    from powerview.onboarding.grafana.client import Grafana, GrafanaError

    grafana = Grafana(settings)
    org_ids: list[int | None] = [None]
    if settings.username and settings.password:
        try:
            orgs = grafana.call("GET", "/api/orgs", admin=True).body or []
            org_ids = [int(o["id"]) for o in orgs if isinstance(o, dict) and "id" in o] or [None]
        except GrafanaError:
            org_ids = [None]  # not a server admin: its own organisation only
    clients: dict[str, str] = {}
    for org_id in org_ids:
        try:
            datasources = grafana.call("GET", "/api/datasources", org_id=org_id).body or []
        except GrafanaError as exc:
            raise ImportFailure(f"Grafana, organisation {org_id or 'current'}: {exc}") from None
        for ds in datasources:
            if not isinstance(ds, dict):
                continue
            json_data = ds.get("jsonData") or {}
            client_id = json_data.get("clientId")
            bucket = json_data.get("defaultBucket") or ds.get("database")
            if isinstance(client_id, str) and client_id and isinstance(bucket, str) and bucket:
                clients.setdefault(client_id, bucket)
    return clients


def _campaigns_of(api: Http, bucket: str) -> set[str]:
    try:
        _, channels = api.call("GET", f"/buckets/{_seg(bucket)}/channels", ok=(200, 404, 405))
    except ImportFailure:
        return set()
    return {c["campaign"] for c in channels or [] if isinstance(c, dict) and isinstance(c.get("campaign"), str)}


def folder_campaigns(data_dir: Path, bucket: str) -> set[str]:
    from powerview.core.names import name_problem

    folder = data_dir / bucket
    if name_problem("company", bucket) or not folder.is_dir():
        return set()
    return {p.name for p in folder.iterdir() if p.is_dir() and not name_problem("campaign", p.name)}


def _setting(entry: dict) -> dict:
    out: dict[str, Any] = {"fieldId": entry["fieldId"]}
    for key in SETTING_FIELDS:
        value = entry.get(key)
        if key == "visible" and not isinstance(value, bool):
            continue
        if key == "order" and not (isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 100_000):
            continue
        if key not in ("visible", "order") and not (isinstance(value, str) and value and len(value) <= 256):
            continue
        out[key] = value
    return out


def _channel(entry: dict) -> dict:
    out = {"fieldId": entry["fieldId"]}
    if isinstance(entry.get("channelId"), str) and isinstance(entry.get("channelUnit"), str):
        if entry["fieldId"] == f"{entry['channelId']}_{entry['channelUnit']}":
            out["channelId"], out["channelUnit"] = entry["channelId"], entry["channelUnit"]
    for key in ("channelLabel", "deviceMasterSn"):
        if isinstance(entry.get(key), str) and entry[key]:
            out[key] = entry[key]
    return out


def _defaults(channel: dict, rank: int) -> dict:
    """The series settings this API answers for a channel nothing was saved for (docs/config-api.md)."""
    channel_id, _, unit = channel["fieldId"].rpartition("_")
    channel_id = channel.get("channelId", channel_id)
    unit = channel.get("channelUnit", unit)
    return {
        "fieldId": channel["fieldId"],
        "displayName": channel.get("channelLabel") or channel_id,
        "visible": True,
        "unit": unit,
        "order": rank,
        "color": None,
    }


@dataclass
class Importer:
    old: Http
    new: Http
    data_dir: Path
    dry_run: bool
    out: Any = sys.stdout
    failures: list[str] = field(default_factory=list)

    def say(self, line: str) -> None:
        print(line, file=self.out, flush=True)

    def fail(self, message: str) -> None:
        self.failures.append(message)
        print(f"powerview-config-api import: error: {message}", file=sys.stderr, flush=True)

    def run(self, clients: dict[str, str]) -> None:
        campaigns: dict[str, set[str]] = {}
        for bucket in sorted(set(clients.values())):
            campaigns[bucket] = (
                _campaigns_of(self.new, bucket)
                | _campaigns_of(self.old, bucket)
                | folder_campaigns(self.data_dir, bucket)
            )
        for client_id, bucket in sorted(clients.items()):
            try:
                registered = self.register(client_id, bucket)
            except ImportFailure as exc:
                self.fail(str(exc))
                continue
            for campaign in sorted(campaigns[bucket]):
                try:
                    self.carry(client_id, bucket, campaign, registered)
                except ImportFailure as exc:
                    self.fail(str(exc))

    def register(self, client_id: str, bucket: str) -> bool:
        """True when the client exists here (now or before)."""
        status, _ = self.new.call("GET", f"/clients/{_seg(client_id)}", ok=(200, 404))
        if status == 200:
            self.say(f"client {client_id} (bucket {bucket}): already registered")
            return True
        if self.dry_run:
            self.say(f"client {client_id} (bucket {bucket}): would register")
            return False
        self.new.call("PUT", f"/clients/{_seg(client_id)}", ok=(200, 201), json={"bucket": bucket})
        self.say(f"client {client_id} (bucket {bucket}): registered")
        return True

    def carry(self, client_id: str, bucket: str, campaign: str, registered: bool) -> None:
        where = f"{client_id}/{campaign}"
        status, entries = self.old.call(
            "GET", f"/clients/{_seg(client_id)}/series-config/configs", ok=(200, 404), params={"campaign": campaign}
        )
        if status == 404 or not entries:
            return  # nothing saved there for this client and campaign
        if not isinstance(entries, list):
            raise ImportFailure(f"{where}: the old API answered {type(entries).__name__}, not a list")
        wanted = [e for e in entries if isinstance(e, dict) and isinstance(e.get("fieldId"), str) and e["fieldId"]]
        if len(wanted) < len(entries):
            self.fail(f"{where}: {len(entries) - len(wanted)} entry(ies) without a fieldId skipped")
        _, known = self.new.call("GET", f"/buckets/{_seg(bucket)}/channels", params={"campaign": campaign})
        known_ids = {c.get("fieldId") for c in known or []}
        missing = [_channel(e) for e in wanted if e["fieldId"] not in known_ids]
        if missing:
            if not self.dry_run:
                self.new.call(
                    "POST", f"/buckets/{_seg(bucket)}/channels", json={"campaign": campaign, "channels": missing}
                )
            verb = "would add" if self.dry_run else "added"
            self.say(f"{bucket}/{campaign}: {verb} {len(missing)} channel(s) to the catalogue")
        current: dict[str, dict] = {}
        if registered:
            _, ours = self.new.call(
                "GET", f"/clients/{_seg(client_id)}/series-config/configs", params={"campaign": campaign}
            )
            current = {c["fieldId"]: c for c in ours or [] if isinstance(c, dict) and "fieldId" in c}
        if self.dry_run:  # what this API will answer for the channels not there yet: its defaults
            rank = len(known or [])
            for channel in missing:
                if channel["fieldId"] not in current:
                    current[channel["fieldId"]] = _defaults(channel, rank)
                    rank += 1
        settings = [_setting(e) for e in wanted]
        changed = [s for s in settings if any(current.get(s["fieldId"], {}).get(k) != v for k, v in s.items())]
        verb = "would save" if self.dry_run else "saved"
        if changed and not self.dry_run:
            self.new.call(
                "PUT",
                f"/clients/{_seg(client_id)}/series-config/configs",
                json={"campaign": campaign, "configs": changed},
            )
        self.say(f"{where}: {verb} {len(changed)} setting(s), {len(settings) - len(changed)} unchanged")


def main(argv: list[str] | None = None) -> int:
    from powerview.core.exitcodes import ExitCode, exit_codes_text

    parser = argparse.ArgumentParser(
        prog="powerview-config-api import",
        description="Carry the series configuration of the deployed config API (0.3.2) over to this one "
        "(docs/config-api.md, section Reprise).",
        epilog=exit_codes_text(
            {
                ExitCode.OK: "every series carried over (or, with --dry-run, nothing to change)",
                ExitCode.REJECTED: "a series or a client could not be carried over (the message says which)",
                ExitCode.USAGE: "usage or configuration error",
            }
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--from", dest="source", required=True, metavar="URL", help="The old API, e.g. http://old:8000."
    )
    parser.add_argument("--to", metavar="URL", help="This API (default: CONFIG_API_URL).")
    parser.add_argument("--dry-run", action="store_true", help="Read everything, write nothing, say what would change.")
    parser.add_argument(
        "--env-file",
        type=Path,
        default=os.environ.get("POWERVIEW_ENV_FILE") or None,
        help="Settings file (default: POWERVIEW_ENV_FILE, else .env in the project folder); the environment wins "
        "over it.",
    )
    args = parser.parse_args(argv)

    from powerview.core.settings import ConfigError
    from powerview.onboarding.grafana.settings import load as load_grafana

    if args.env_file is not None and (not args.env_file.exists() or args.env_file.is_dir()):
        parser.error(f"--env-file {args.env_file}: no such file")
    try:
        settings = load_grafana(args.env_file)
    except ConfigError as exc:
        print(f"powerview-config-api import: error: {exc}", file=sys.stderr)
        return ExitCode.USAGE
    target = args.to or settings.config_api_url
    if not target:
        print("powerview-config-api import: error: give --to URL or set CONFIG_API_URL", file=sys.stderr)
        return ExitCode.USAGE
    if _url(target) == _url(args.source):
        print("powerview-config-api import: error: --from and --to are the same API", file=sys.stderr)
        return ExitCode.USAGE
    importer = Importer(
        Http(_url(args.source)), Http(_url(target), settings.config_api_token), settings.data_dir, args.dry_run
    )
    try:
        clients = grafana_clients(settings)
    except ImportFailure as exc:
        print(f"powerview-config-api import: error: {exc}", file=sys.stderr)
        return ExitCode.REJECTED
    importer.say(f"{len(clients)} client(s) in Grafana's data sources")
    importer.run(clients)
    return ExitCode.REJECTED if importer.failures else ExitCode.OK
