"""The real tsv_parser.py publishes every ingested file's channels to the real config API, through
its outbox: with the API down, answering 500, too slow, answering an HTML page, then back; and
after a kill -9 in the middle of a delivery. Points go to a real VictoriaMetrics (/api/v2/write)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import requests

import samples
from config_api_server import ConfigAPI, free_port
from stand_ins.base import StandIn, StandInHandler

EXAMPLES = samples.PROJECT_DIR / "examples" / "data"
INGESTED = 3  # of the 4 example files (the T202 one is rejected)


class BrokenAPI(StandIn):
    """An HTTP server that fails as a sick config API or a proxy in front of it would."""

    def __init__(self, mode: str, delay: float = 3.0):
        super().__init__()
        self.mode, self.delay = mode, delay
        self.start()  # listening at once: its url goes into a settings file before `with`

    def serve(self, h: StandInHandler) -> None:
        self.requests.append((h.command, h.path))
        h.read_body()
        if self.mode == "slow":
            time.sleep(self.delay)
        if self.mode == "html":
            body = b"<html><body>Bad gateway</body></html>"
            h.send_response(200)
            h.send_header("Content-Type", "text/html")
            h.send_header("Content-Length", str(len(body)))
            h.end_headers()
            h.wfile.write(body)
        else:
            h.send_json(500, {"detail": "boom"})


def place_examples(root: Path, campaign: str) -> None:
    """The example files, in a campaign folder of their own (VictoriaMetrics has no buckets)."""
    for source in EXAMPLES.rglob("*.tsv"):
        rel = source.relative_to(EXAMPLES)
        target = root / rel.parts[0] / campaign / Path(*rel.parts[2:])
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(source.read_bytes())


def write_env(tmp_path: Path, vm_url: str, api_url: str, extra: str = "") -> Path:
    env_file = tmp_path / "test.env"
    env_file.write_text(
        f"INFLUXDB_HOST={vm_url}\nINFLUXDB_ORG=powerview\nINFLUXDB_ADMIN_TOKEN=unused-by-vm\n"
        f"TSV_INFLUX_CREATE_BUCKETS=false\nTSV_REPORT_DIR={tmp_path / 'reports'}\n"
        f"POWERVIEW_SPOOL_DIR={tmp_path / 'spool'}\nCONFIG_API_URL={api_url}\n{extra}"
    )
    return env_file


parser = samples.run_tsv_parser


def last_report(tmp_path: Path) -> dict:
    return json.loads(sorted((tmp_path / "reports").glob("tsv_parser_*.json"))[-1].read_text())


def outbox_files(tmp_path: Path) -> list[Path]:
    folder = tmp_path / "spool" / "outbox" / "catalogue"
    return sorted(folder.glob("*.json")) if folder.is_dir() else []


def expected_catalogue(reports: list[dict]) -> dict[str, set[str]]:
    """campaign → every fieldId of every ingested file, from the parser's own reports."""
    want: dict[str, set[str]] = {}
    for report in reports:
        for entry in report["files"]:
            if entry["status"] == "success":
                want.setdefault(entry["campaign"], set()).update(
                    f"{cid}_{ch['unit']}" for cid, ch in entry["channels"].items()
                )
    return want


def catalogue_of(api: ConfigAPI, bucket: str) -> dict[str, set[str]]:
    got: dict[str, set[str]] = {}
    for row in requests.get(f"{api.url}/buckets/{bucket}/channels", timeout=5).json():
        got.setdefault(row["campaign"], set()).add(row["fieldId"])
    return got


def test_every_channel_reaches_the_catalogue_through_outages(victoria_metrics, tmp_path):
    root = tmp_path / "data"
    token = "tok-" + uuid.uuid4().hex
    reports = []
    dead_url = f"http://127.0.0.1:{free_port()}"
    runs = [
        ("down", None),
        ("500", BrokenAPI("500")),
        ("slow", BrokenAPI("slow", delay=3)),
        ("html", BrokenAPI("html")),
    ]
    for name, broken in runs:
        campaign = f"{name}_{uuid.uuid4().hex[:6]}"
        place_examples(root, campaign)
        env_file = write_env(
            tmp_path,
            victoria_metrics.url,
            broken.url if broken else dead_url,
            f"CONFIG_API_TOKEN={token}\nCONFIG_API_TIMEOUT=1\n",
        )
        if broken:
            with broken:
                done = parser(root, env_file)
            assert len(broken.requests) == 1  # one failed try, then everything waits in the outbox
        else:
            done = parser(root, env_file)
        assert done.returncode == 1, done.stderr  # as without a config API: the T202 sample is rejected
        report = last_report(tmp_path)
        reports.append(report)
        outcomes = sorted((e["status"], e["catalogue"]) for e in report["files"])
        assert outcomes == [("error", "off")] + [("success", "queued")] * INGESTED
        assert len(list(root.rglob(f"{campaign}/*/parsed/*.tsv"))) == INGESTED
    assert len(outbox_files(tmp_path)) == 4 * INGESTED
    assert "config API unavailable, 12 publication(s) kept" in done.stderr

    db = tmp_path / "api.sqlite3"
    with ConfigAPI(db, token=token) as api:
        # a run with a wrong token: 401 keeps everything queued
        place_examples(root, "badtoken")
        done = parser(root, write_env(tmp_path, victoria_metrics.url, api.url, "CONFIG_API_TOKEN=wrong\n"))
        assert done.returncode == 1
        reports.append(last_report(tmp_path))
        assert len(outbox_files(tmp_path)) == 5 * INGESTED and catalogue_of(api, "demo_energie") == {}

        # back, with the right token: the next run delivers the queue, then its own files
        place_examples(root, "back")
        done = parser(root, write_env(tmp_path, victoria_metrics.url, api.url, f"CONFIG_API_TOKEN={token}\n"))
        assert done.returncode == 1, done.stderr
        report = last_report(tmp_path)
        reports.append(report)
        assert sorted(e["catalogue"] for e in report["files"]) == ["off"] + ["published"] * INGESTED
        assert outbox_files(tmp_path) == []
        assert catalogue_of(api, "demo_energie") == expected_catalogue(reports)
        assert len(expected_catalogue(reports)) == 6

        # without CONFIG_API_URL nothing is published and the report says so
        place_examples(root, "nourl")
        env_file = write_env(tmp_path, victoria_metrics.url, "")
        assert parser(root, env_file).returncode == 1
        assert sorted(e["catalogue"] for e in last_report(tmp_path)["files"]) == ["off"] * (INGESTED + 1)


def test_the_outbox_survives_kill_9_of_the_parser_mid_delivery(victoria_metrics, tmp_path):
    root = tmp_path / "data"
    campaign = f"kill_{uuid.uuid4().hex[:6]}"
    place_examples(root, campaign)
    with BrokenAPI("slow", delay=60) as hanging:
        proc = parser(
            root, write_env(tmp_path, victoria_metrics.url, hanging.url, "CONFIG_API_TIMEOUT=60\n"), wait=False
        )
        deadline = time.monotonic() + 60
        while not hanging.requests and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        assert len(hanging.requests) == 1, proc.communicate()[1]
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    # the files were ingested and moved before the publication; every publication is on disk, whole
    assert len(list(root.rglob("parsed/*.tsv"))) == INGESTED
    kept = outbox_files(tmp_path)
    assert len(kept) == INGESTED
    assert all(json.loads(p.read_text())["body"]["campaign"] == campaign for p in kept)

    with ConfigAPI(tmp_path / "api.sqlite3") as api:
        done = parser(root, write_env(tmp_path, victoria_metrics.url, api.url))  # nothing new to ingest
        assert done.returncode == 0, done.stderr
        assert outbox_files(tmp_path) == []
        dry_root = tmp_path / "dry"
        place_examples(dry_root, campaign)
        dry = subprocess.run(
            [sys.executable, str(samples.PROJECT_DIR / "tsv_parser.py"), "--dataFolder", str(dry_root), "--dry-run"],
            capture_output=True,
            text=True,
            env={"PATH": os.environ["PATH"]},
        )
        assert dry.returncode == 1, dry.stderr
        want = expected_catalogue([json.loads(dry.stdout)])[campaign]
        assert len(want) > 10
        assert catalogue_of(api, "demo_energie") == {campaign: want}
