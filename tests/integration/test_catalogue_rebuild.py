"""powerview-catalogue rebuilds the catalogue from a real InfluxDB 1.x after a real ingestion
(InfluxQL SHOW SERIES on /query), into the real config API."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from pathlib import Path

import requests
from click.testing import CliRunner

from powerview.cli.catalogue import main
from powerview.ingestion import ingest, layout
from powerview.ingestion.formats import RowRules

import samples
from config_api_server import ConfigAPI

NOW = datetime.now(UTC)


class Influx1Writer:
    def __init__(self, server):
        self.server, self.databases = server, set()

    def write(self, bucket: str, body: bytes) -> None:
        if bucket not in self.databases:
            self.server.create_db(bucket)
            self.databases.add(bucket)
        assert self.server.write(bucket, body, precision="s").status_code == 204

    def close(self) -> None:
        pass


def ingest_examples(influxd1, tmp_path: Path, company: str) -> list[dict]:
    root = samples.copy_tree(samples.PROJECT_DIR / "examples" / "data", tmp_path / "data")
    (root / "demo_energie").rename(root / company)
    # a label that needs escaping in a series key
    samples.place(
        root,
        company,
        "odd.camp",
        "0201",
        "T302_260302_100000.tsv",
        samples.v002(
            ["0201"] * 5,
            ["Ph 1 V", "Voie, 2=a W", 'Ï "quoted" kWh', "x=y,z k W/m2"],
            [samples.row("02/03/26 10:00:00", 230.1, 1, 2, 3)],
        ),
    )
    options = ingest.RunOptions(root, RowRules.for_now(date(2021, 1, 1), "UTC", now=NOW), 5000, dry_run=False)
    entries, config_error = ingest.run(
        [layout.locate(root, p) for p in layout.discover(root)], options, Influx1Writer(influxd1)
    )
    assert config_error is None
    return entries


def run(args: list[str], env: dict):
    return CliRunner().invoke(main, args, env=env, catch_exceptions=False)


def test_rebuild_from_influxdb1_matches_what_was_ingested(influxd1, tmp_path):
    company = f"cat{uuid.uuid4().hex[:8]}"
    entries = ingest_examples(influxd1, tmp_path, company)
    want: dict[str, dict[str, tuple]] = {}
    for entry in entries:
        if entry.status == "success":
            for cid, ch in entry.channels.items():
                want.setdefault(entry.campaign, {})[f"{cid}_{ch['unit']}"] = (cid, ch["unit"], ch["label"])
    assert set(want) == {"audit_2026", "odd.camp"}
    for extra in (f"{company}_1h", "powerview_meta", "_internal_copy"):
        influxd1.create_db(extra)

    with ConfigAPI(tmp_path / "api.sqlite3", token="tk") as api:
        env = {
            "INFLUXDB_HOST": influxd1.url,
            "INFLUXDB_ORG": "powerview",
            "INFLUXDB_ADMIN_TOKEN": "t",
            "CONFIG_API_URL": api.url,
            "CONFIG_API_TOKEN": "tk",
            "POWERVIEW_SPOOL_DIR": str(tmp_path / "spool"),
        }
        env_file = str(tmp_path / "none.env")
        (tmp_path / "none.env").write_text("")

        dry = run(["--bucket", company, "--dry-run", "--env-file", env_file], env)
        assert dry.exit_code == 0, dry.output
        assert f"{company}/audit_2026: {len(want['audit_2026'])} channel(s) (dry run" in dry.output
        assert requests.get(f"{api.url}/buckets/{company}/channels", timeout=5).json() == []

        done = run(["--bucket", company, "--env-file", env_file], env)
        assert done.exit_code == 0, done.output
        assert f"{company}/odd.camp: 4 channel(s), inserted 4, updated 0" in done.output
        rows = requests.get(f"{api.url}/buckets/{company}/channels", timeout=5).json()
        got: dict[str, dict[str, tuple]] = {}
        for row in rows:
            got.setdefault(row["campaign"], {})[row["fieldId"]] = (
                row["channelId"],
                row["channelUnit"],
                row["channelLabel"],
            )
        assert got == want

        every = run(["--all", "--env-file", env_file], env)
        assert every.exit_code == 0, every.output
        assert f"{company}/audit_2026: {len(want['audit_2026'])} channel(s), inserted 0," in every.output
        assert f"{company}_1h: skipped (derived bucket)" in every.output
        assert "powerview_meta: skipped (meta bucket)" in every.output
        assert "_internal_copy: skipped (system bucket)" in every.output

        assert run(["--bucket", "powerview_meta", "--env-file", env_file], env).exit_code == 2
        assert run(["--env-file", env_file], env).exit_code == 2
        wrong = run(["--bucket", company, "--env-file", env_file], {**env, "CONFIG_API_TOKEN": "bad"})
        assert wrong.exit_code == 2 and "HTTP 401" in wrong.output
    down = run(["--bucket", company, "--env-file", env_file], env)
    assert down.exit_code == 75 and "ConnectionError" in down.output


def test_deliver_outbox_command(tmp_path):
    from powerview.delivery.outbox import Outbox

    box = Outbox(tmp_path / "spool" / "outbox" / "catalogue")
    box.put({"bucket": "acme", "body": {"campaign": "c", "channels": [{"fieldId": "M1_U1_V"}]}})
    (tmp_path / "none.env").write_text("")
    with ConfigAPI(tmp_path / "api.sqlite3") as api:
        env = {"CONFIG_API_URL": api.url, "POWERVIEW_SPOOL_DIR": str(tmp_path / "spool")}
        done = run(["--deliver-outbox", "--env-file", str(tmp_path / "none.env")], env)
        assert done.exit_code == 0, done.output
        assert "1 publication(s) delivered, 0 waiting" in done.output
        assert [r["fieldId"] for r in requests.get(f"{api.url}/buckets/acme/channels", timeout=5).json()] == ["M1_U1_V"]
