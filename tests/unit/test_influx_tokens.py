"""manage_influx_tokens.py against the InfluxDB 2 stand-in: create, reuse, exact permissions,
--write, rotation when the server hides token values, --rotate, --revoke, --list, errors."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from click.testing import CliRunner

from powerview.cli.tokens import main

from stand_ins.influxdb2 import InfluxDB2StandIn

PROJECT = Path(__file__).resolve().parents[2]
DESCRIPTION = "powerview_token_for_bucket_acme"


@pytest.fixture()
def env_file(tmp_path):
    path = tmp_path / "empty.env"
    path.write_text("")
    return path


def settings_env(influx2, **overrides):
    env = {
        "INFLUXDB_HOST": influx2.url if influx2 else "",
        "INFLUXDB_ORG": "powerview",
        "INFLUXDB_ADMIN_TOKEN": influx2.admin_token if influx2 else "admin-token",
        "TSV_INFLUX_RETRY_MAX_SECONDS": "1",
        "TSV_LOG_LEVEL": "INFO",
        "INFLUXDB_URL": "",
    }
    env.update(overrides)
    return env


def cli(influx2, env_file, *args, **env):
    result = CliRunner().invoke(main, ["--env-file", str(env_file), *args], env=settings_env(influx2, **env))
    return result


def ours(influx2, description=DESCRIPTION):
    return [a for a in influx2.authorizations if a["description"] == description]


COVERED = ("acme", "acme_1h", "acme_1d", "acme_1w")


def on_all(influx2, *actions):
    """The wanted permissions: each action on the company bucket and its derived buckets."""
    return sorted((a, "buckets", influx2.buckets[name]["id"]) for name in COVERED for a in actions)


def perms(auth):
    return sorted((p["action"], p["resource"]["type"], p["resource"].get("id")) for p in auth["permissions"])


def test_creates_the_bucket_and_a_read_only_token_printed_alone(influx2, env_file):
    result = cli(influx2, env_file, "--bucket", "acme")
    assert result.exit_code == 0, result.stderr
    token = result.stdout
    assert token.endswith("\n") and token.count("\n") == 1
    assert set(COVERED) <= set(influx2.buckets)
    [auth] = ours(influx2)
    assert auth["token"] == token.strip()
    assert auth["status"] == "active"
    assert perms(auth) == on_all(influx2, "read")
    assert token.strip() not in result.stderr
    assert "created read-only token" in result.stderr


def test_reuses_the_token(influx2, env_file):
    first = cli(influx2, env_file, "--bucket", "acme").stdout
    second = cli(influx2, env_file, "--bucket", "acme")
    assert second.exit_code == 0 and second.stdout == first
    assert len(ours(influx2)) == 1
    assert "reusing token" in second.stderr


def test_write_is_a_separate_token_and_never_widens_the_read_only_one(influx2, env_file):
    read = cli(influx2, env_file, "--bucket", "acme").stdout.strip()
    both = cli(influx2, env_file, "--bucket", "acme", "--write")
    assert both.exit_code == 0
    assert both.stdout.strip() != read
    by_token = {a["token"]: a for a in ours(influx2)}
    assert perms(by_token[read]) == on_all(influx2, "read")  # untouched
    assert perms(by_token[both.stdout.strip()]) == on_all(influx2, "read", "write")
    assert "other permissions: left as it is" in both.stderr
    # asking for read only again gives the read-only token back, not the wider one
    assert cli(influx2, env_file, "--bucket", "acme").stdout.strip() == read


def test_a_token_with_other_permissions_is_not_reused(influx2, env_file):
    # someone widened ours by hand: read on every bucket
    admin = influx2.authorizations[0]
    requests.post(
        f"{influx2.url}/api/v2/authorizations",
        timeout=10,
        headers={"Authorization": f"Token {influx2.admin_token}"},
        json={
            "orgID": influx2.org_id,
            "description": DESCRIPTION,
            "permissions": [{"action": "read", "resource": {"type": "buckets", "orgID": influx2.org_id}}],
        },
    ).raise_for_status()
    wide = ours(influx2)[0]["token"]
    token = cli(influx2, env_file, "--bucket", "acme").stdout.strip()
    assert token != wide and token != admin["token"]
    assert len(ours(influx2)) == 2


def test_redacted_listing_means_rotation(env_file):
    with InfluxDB2StandIn(redact_tokens=True) as influx2:
        first = cli(influx2, env_file, "--bucket", "acme")
        assert first.exit_code == 0
        [old] = ours(influx2)
        second = cli(influx2, env_file, "--bucket", "acme", "--json")
        assert second.exit_code == 0, second.stderr
        [new] = ours(influx2)  # the old one is gone
        assert new["id"] != old["id"]
        out = json.loads(second.stdout)
        assert out["token"] == new["token"] and out["rotated"] is True and out["deleted"] == [old["id"]]
        assert perms(new) == perms(old)


def test_rotate_creates_then_deletes_the_old(influx2, env_file):
    # (a read-only token lives in Grafana's data sources: its rotation goes through them, see
    # test_token_migration.py; a write token is printed alone)
    old = cli(influx2, env_file, "--bucket", "acme", "--write").stdout.strip()
    old_id = ours(influx2)[0]["id"]
    rotated = cli(influx2, env_file, "--bucket", "acme", "--write", "--rotate")
    assert rotated.exit_code == 0
    new = rotated.stdout.strip()
    assert new and new != old
    [auth] = ours(influx2)
    assert auth["token"] == new and auth["id"] != old_id
    assert "deleted authorization " + old_id in rotated.stderr


def test_revoke_deletes_ours_only(influx2, env_file):
    cli(influx2, env_file, "--bucket", "acme")
    cli(influx2, env_file, "--bucket", "acme", "--write")
    cli(influx2, env_file, "--bucket", "other")
    result = cli(influx2, env_file, "--bucket", "acme", "--revoke")
    assert result.exit_code == 0 and result.stdout == ""
    assert ours(influx2) == []
    assert len(ours(influx2, "powerview_token_for_bucket_other")) == 1
    assert any(a["token"] == influx2.admin_token for a in influx2.authorizations)
    assert "acme" in influx2.buckets  # the data stays


def test_list_shows_ids_never_values(influx2, env_file):
    token = cli(influx2, env_file, "--bucket", "acme").stdout.strip()
    listed = cli(influx2, env_file, "--bucket", "acme", "--list")
    assert listed.exit_code == 0
    [line] = listed.stdout.splitlines()
    assert line.split("\t")[0] == ours(influx2)[0]["id"]
    assert "read:buckets/" in line and DESCRIPTION in line
    assert token not in listed.stdout + listed.stderr
    assert influx2.admin_token not in listed.stdout + listed.stderr


def test_dry_run_changes_nothing(influx2, env_file):
    result = cli(influx2, env_file, "--bucket", "acme", "--dry-run", "--json")
    assert result.exit_code == 0
    assert '"action": "create"' in result.stdout and '"bucket_exists": false' in result.stdout
    assert "acme" not in influx2.buckets and ours(influx2) == []
    assert all(r.method == "GET" for r in influx2.requests)


@pytest.mark.parametrize("missing", ["INFLUXDB_HOST", "INFLUXDB_ORG", "INFLUXDB_ADMIN_TOKEN"])
def test_missing_setting_is_named_exit_2(influx2, env_file, missing):
    result = cli(influx2, env_file, "--bucket", "acme", **{missing: ""})
    assert result.exit_code == 2
    assert missing in result.stderr and result.stdout == ""


def test_bad_bucket_name_exit_2_before_any_request(influx2, env_file):
    for name in ("../x", "a b", "_system", ".hidden"):
        result = cli(influx2, env_file, "--bucket", name)
        assert result.exit_code == 2 and "not allowed" in result.stderr
    assert influx2.requests == []


def test_refused_token_and_unknown_org_exit_2(influx2, env_file):
    refused = cli(influx2, env_file, "--bucket", "acme", INFLUXDB_ADMIN_TOKEN="not-the-token")
    assert refused.exit_code == 2 and "INFLUXDB_ADMIN_TOKEN" in refused.stderr
    unknown = cli(influx2, env_file, "--bucket", "acme", INFLUXDB_ORG="nope")
    assert unknown.exit_code == 2 and "INFLUXDB_ORG" in unknown.stderr


def test_influxdb_unavailable_exit_75(env_file):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = cli(None, env_file, "--bucket", "acme", INFLUXDB_HOST=f"http://127.0.0.1:{port}")
    assert result.exit_code == 75 and "unreachable" in result.stderr


def test_exclusive_options_and_help(influx2, env_file):
    assert cli(influx2, env_file, "--bucket", "acme", "--list", "--revoke").exit_code == 2
    help_text = CliRunner().invoke(main, ["--help"]).stdout
    assert "Exit codes:" in help_text
    for code in ("0", "2", "70", "75"):
        assert re.search(rf"^\s+{code}\s+\S", help_text, re.M), code
    assert "--bucket" in help_text and "--rotate" in help_text


def test_entry_point_separates_stdout_and_stderr(influx2, env_file):
    proc = subprocess.run(
        [sys.executable, str(PROJECT / "manage_influx_tokens.py"), "--bucket", "acme", "--env-file", str(env_file)],
        env={"PATH": "/usr/bin:/bin", **settings_env(influx2)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == ours(influx2)[0]["token"]
    assert "manage_influx_tokens:" in proc.stderr and proc.stdout.strip() not in proc.stderr


def _token_on_company_bucket_alone(influx2) -> dict:
    """A token as the deployed tool made it: read on the company bucket only."""
    requests.post(
        f"{influx2.url}/api/v2/buckets",
        timeout=10,
        headers={"Authorization": f"Token {influx2.admin_token}"},
        json={"orgID": influx2.org_id, "name": "acme", "retentionRules": []},
    ).raise_for_status()
    answer = requests.post(
        f"{influx2.url}/api/v2/authorizations",
        timeout=10,
        headers={"Authorization": f"Token {influx2.admin_token}"},
        json={
            "orgID": influx2.org_id,
            "description": DESCRIPTION,
            "permissions": [
                {
                    "action": "read",
                    "resource": {"type": "buckets", "orgID": influx2.org_id, "id": influx2.buckets["acme"]["id"]},
                }
            ],
        },
    )
    answer.raise_for_status()
    return answer.json()


def test_a_token_without_the_derived_buckets_is_rotated_never_widened(influx2, env_file):
    old = _token_on_company_bucket_alone(influx2)
    planned = cli(influx2, env_file, "--bucket", "acme", "--dry-run", "--json")
    assert json.loads(planned.stdout)["action"] == "create"  # the derived buckets do not exist yet
    result = cli(influx2, env_file, "--bucket", "acme", "--json")
    assert result.exit_code == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["rotated"] is True and out["deleted"] == [old["id"]]
    [new] = ours(influx2)
    assert new["id"] != old["id"] and perms(new) == on_all(influx2, "read")
    assert cli(influx2, env_file, "--bucket", "acme").stdout.strip() == new["token"]  # then reused


def test_dry_run_says_rotate_for_an_outdated_token(influx2, env_file):
    _token_on_company_bucket_alone(influx2)
    for name in COVERED[1:]:
        requests.post(
            f"{influx2.url}/api/v2/buckets",
            timeout=10,
            headers={"Authorization": f"Token {influx2.admin_token}"},
            json={"orgID": influx2.org_id, "name": name, "retentionRules": []},
        ).raise_for_status()
    planned = json.loads(cli(influx2, env_file, "--bucket", "acme", "--dry-run", "--json").stdout)
    assert planned["action"] == "rotate" and planned["changed"] is True
    assert len(ours(influx2)) == 1


def test_levels_off_means_the_company_bucket_alone(influx2, env_file):
    result = cli(influx2, env_file, "--bucket", "acme", TSV_DOWNSAMPLE_LEVELS="")
    assert result.exit_code == 0
    [auth] = ours(influx2)
    assert perms(auth) == [("read", "buckets", influx2.buckets["acme"]["id"])]
    assert "acme_1h" not in influx2.buckets


@pytest.mark.parametrize("version", ["1", "3"])
def test_other_generations_are_refused_clearly(influx2, env_file, version):
    result = cli(influx2, env_file, "--bucket", "acme", INFLUXDB_VERSION=version)
    assert result.exit_code == 2
    assert f"INFLUXDB_VERSION={version}" in result.stderr and "InfluxDB 2 only" in result.stderr


def test_the_tenancy_migration_gets_the_playbooks_token_from_the_token_manager(influx2, tmp_path):
    """powerview-grafana-tenancy calls TokenManager itself (no subprocess): its settings file,
    nothing made in check mode, the same token as manage_influx_tokens.py, faults named."""
    from powerview.onboarding.grafana.company import ProvisioningError
    from powerview.onboarding.grafana.tenancy import BucketTokens

    env_file = tmp_path / "pv.env"
    env_file.write_text("".join(f"{k}={v}\n" for k, v in settings_env(influx2).items()))
    plan = BucketTokens(env_file)("acme", True)
    assert plan["action"] == "create" and "token" not in plan and ours(influx2) == []
    made = BucketTokens(env_file)("acme", False)
    assert made["changed"] and len(ours(influx2)) == 1 and made["id"] == ours(influx2)[0]["id"]
    assert made["token"] == cli(influx2, env_file, "--bucket", "acme").stdout.strip()  # what the playbook gets
    again = BucketTokens(env_file)("acme", False)
    assert again == {**made, "changed": False}

    with pytest.raises(ProvisioningError, match=r"token of bucket \.\./x: .*bucket name"):
        BucketTokens(env_file)("../x", True)
    env_file.write_text(env_file.read_text() + "INFLUXDB_VERSION=1\n")
    with pytest.raises(ProvisioningError, match=r"token of bucket acme: INFLUXDB_VERSION=1: .*InfluxDB 2 only"):
        BucketTokens(env_file)("acme", False)


def test_the_tenancy_migration_names_an_unreachable_influxdb(tmp_path):
    """InfluxDB down during a tenancy migration: that company fails with the cause (exit 1 in the
    command), and no token value nor admin token in the message."""
    from powerview.onboarding.grafana.company import ProvisioningError
    from powerview.onboarding.grafana.tenancy import BucketTokens

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env_file = tmp_path / "pv.env"
    env = settings_env(None, INFLUXDB_HOST=f"http://127.0.0.1:{port}")
    env_file.write_text("".join(f"{k}={v}\n" for k, v in env.items()))
    with pytest.raises(ProvisioningError, match=r"token of bucket acme: .*unreachable") as failed:
        BucketTokens(env_file)("acme", False)
    assert "admin-token" not in str(failed.value)
