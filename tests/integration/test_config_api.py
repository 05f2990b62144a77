"""powerview-config-api under a real uvicorn on loopback, with a real SQLite file."""

from __future__ import annotations

import sqlite3
import subprocess
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from config_api_server import ConfigAPI

# the body the deployed parser sends (channelLabel/deviceMasterSn may be null)
BODY = {
    "campaign": "camp1",
    "channels": [
        {
            "fieldId": "M02001283_Ch1_V",
            "channelId": "M02001283_Ch1",
            "channelUnit": "V",
            "channelLabel": "Ph 1 V",
            "deviceMasterSn": "02001283",
        },
        {
            "fieldId": "M02001283_Ch4_W",
            "channelId": "M02001283_Ch4",
            "channelUnit": "W",
            "channelLabel": "Voie1 W",
            "deviceMasterSn": "02001283",
        },
        {
            "fieldId": "S02001300_Ch1_A",
            "channelId": "S02001300_Ch1",
            "channelUnit": "A",
            "channelLabel": None,
            "deviceMasterSn": None,
        },
    ],
}
TOKEN = "s3cret-token"


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    with ConfigAPI(tmp_path_factory.mktemp("api") / "powerview-config-api.sqlite3") as server:
        yield server


@pytest.fixture(scope="module")
def api_with_token(tmp_path_factory):
    with ConfigAPI(tmp_path_factory.mktemp("api_token") / "api.sqlite3", token=TOKEN) as server:
        yield server


def post(api, bucket, body, **kw):
    return requests.post(f"{api.url}/buckets/{bucket}/channels", json=body, timeout=10, **kw)


def test_health_and_openapi(api):
    health = requests.get(api.url + "/health", timeout=5).json()
    assert health["status"] == "ok" and health["schemaVersion"] == 1 and health["auth"] == "open"
    paths = requests.get(api.url + "/openapi.json", timeout=5).json()["paths"]
    assert set(paths) == {
        "/health",
        "/buckets/{bucket}/channels",
        "/clients/{client_id}",
        "/clients/{client_id}/series-config/configs",
    }


def test_upsert_is_idempotent_and_keeps_first_seen(api):
    first = post(api, "acme", BODY)
    assert first.status_code == 200 and first.json() == {"inserted": 3, "updated": 0}
    before = {c["fieldId"]: c for c in requests.get(f"{api.url}/buckets/acme/channels", timeout=5).json()}
    again = post(api, "acme", BODY)
    assert again.json() == {"inserted": 0, "updated": 3}
    listed = requests.get(f"{api.url}/buckets/acme/channels", params={"campaign": "camp1"}, timeout=5).json()
    assert [c["fieldId"] for c in listed] == [c["fieldId"] for c in BODY["channels"]]
    for sent, got in zip(BODY["channels"], listed):
        assert {k: got[k] for k in sent} == sent
        assert got["campaign"] == "camp1"
        assert got["firstSeen"] == before[sent["fieldId"]]["firstSeen"] <= got["lastSeen"]
    # a later file without a label keeps the known label
    partial = {
        "campaign": "camp1",
        "channels": [
            {
                "fieldId": "M02001283_Ch1_V",
                "channelId": "M02001283_Ch1",
                "channelUnit": "V",
                "channelLabel": None,
                "deviceMasterSn": None,
            }
        ],
    }
    assert post(api, "acme", partial).json() == {"inserted": 0, "updated": 1}
    got = requests.get(f"{api.url}/buckets/acme/channels", timeout=5).json()[0]
    assert got["channelLabel"] == "Ph 1 V" and got["deviceMasterSn"] == "02001283"
    # other campaign, other bucket: separate rows
    assert post(api, "acme", {**BODY, "campaign": "camp2"}).json() == {"inserted": 3, "updated": 0}
    assert requests.get(f"{api.url}/buckets/other/channels", timeout=5).json() == []
    assert len(requests.get(f"{api.url}/buckets/acme/channels", timeout=5).json()) == 6


def test_campaign_names_people_type_are_kept_exactly(api):
    for campaign in ("Campagne été 2025", "L'usine"):
        assert post(api, "people", {**BODY, "campaign": campaign}).json() == {"inserted": 3, "updated": 0}
        got = requests.get(f"{api.url}/buckets/people/channels", params={"campaign": campaign}, timeout=5).json()
        assert len(got) == 3
    assert post(api, "people", {**BODY, "campaign": "{{ x }}"}).status_code == 422


def test_channel_ids_derived_from_field_id(api):
    body = {"campaign": "c", "channels": [{"fieldId": "M1_Ch2_kWh"}]}
    assert post(api, "derived", body).json() == {"inserted": 1, "updated": 0}
    got = requests.get(f"{api.url}/buckets/derived/channels", timeout=5).json()[0]
    assert (got["channelId"], got["channelUnit"], got["channelLabel"]) == ("M1_Ch2", "kWh", None)


@pytest.mark.parametrize(
    "bucket, body, expected",
    [
        ("_monitoring", BODY, "cannot start with '_'"),
        ("a b", BODY, "is not allowed"),
        ("acme", {**BODY, "campaign": "bad\nname"}, "is not allowed"),
        ("acme", {**BODY, "campaign": "parsed"}, "reserved"),
        ("acme", {"campaign": "c", "channels": []}, "at least 1 item"),
        ("acme", {"campaign": "c"}, "Field required"),
        ("acme", {**BODY, "extra": 1}, "Extra inputs are not permitted"),
        (
            "acme",
            {"campaign": "c", "channels": [{"fieldId": "A_V", "channelId": "B", "channelUnit": "V"}]},
            "must be channelId + '_' + channelUnit",
        ),
        ("acme", {"campaign": "c", "channels": [{"fieldId": "nounit"}]}, "is not <channelId>_<channelUnit>"),
        ("acme", {"campaign": "c", "channels": [{"fieldId": "A_V", "channelLabel": "x" * 257}]}, "at most 256"),
        (
            "acme",
            {"campaign": "c", "channels": [{"fieldId": "A_V", "channelLabel": "two\nlines"}]},
            "control characters",
        ),
        ("acme", {"campaign": "c", "channels": [{"fieldId": f"C{i}_V"} for i in range(2001)]}, "at most 2000"),
    ],
)
def test_bad_channel_posts_are_422(api, bucket, body, expected):
    answer = post(api, bucket, body)
    assert answer.status_code == 422
    assert expected in answer.text


def test_not_json_and_too_large(api):
    answer = requests.post(
        f"{api.url}/buckets/acme/channels", data=b"<html>", timeout=5, headers={"Content-Type": "application/json"}
    )
    assert answer.status_code == 422
    big = b'{"campaign": "c", "channels": [' + b" " * (1 << 20) + b"]}"
    answer = requests.post(
        f"{api.url}/buckets/acme/channels", data=big, timeout=5, headers={"Content-Type": "application/json"}
    )
    assert answer.status_code == 413 and "larger than 1048576 bytes" in answer.text

    def chunks():  # no Content-Length: the limit still holds
        for _ in range(20):
            yield b" " * 65536

    answer = requests.post(
        f"{api.url}/buckets/acme/channels", data=chunks(), timeout=5, headers={"Content-Type": "application/json"}
    )
    assert answer.status_code == 413


def test_clients_contract(api):
    url = f"{api.url}/clients/acme_jdoe"
    assert requests.get(url, timeout=5).status_code == 404
    assert requests.delete(url, timeout=5).status_code == 404
    created = requests.put(url, json={"bucket": "acme"}, timeout=5)
    assert created.status_code == 201 and created.json() == {"clientId": "acme_jdoe", "bucket": "acme"}
    same = requests.put(url, json={"bucket": "acme"}, timeout=5)
    assert same.status_code == 200 and same.json() == {"clientId": "acme_jdoe", "bucket": "acme"}
    other = requests.put(url, json={"bucket": "globex"}, timeout=5)
    assert other.status_code == 409 and "registered with bucket 'acme'" in other.text
    assert requests.get(url, timeout=5).json() == {"clientId": "acme_jdoe", "bucket": "acme"}
    assert requests.delete(url, timeout=5).status_code == 204
    assert requests.get(url, timeout=5).status_code == 404
    assert requests.put(f"{api.url}/clients/a%0Ab", json={"bucket": "acme"}, timeout=5).status_code == 422
    assert requests.put(f"{api.url}/clients/.hidden", json={"bucket": "acme"}, timeout=5).status_code == 422
    assert requests.put(url, json={"bucket": "_tasks"}, timeout=5).status_code == 422
    assert requests.put(url, json={}, timeout=5).status_code == 422
    # a login with '@' is a valid client id
    assert (
        requests.put(f"{api.url}/clients/acme_j.doe@example.org", json={"bucket": "acme"}, timeout=5).status_code == 201
    )


def test_series_configs_defaults_save_reset(api):
    post(api, "initech", BODY)
    url = f"{api.url}/clients/initech/series-config/configs"
    assert requests.get(url, params={"campaign": "camp1"}, timeout=5).status_code == 404  # not registered
    assert requests.put(f"{api.url}/clients/initech", json={"bucket": "initech"}, timeout=5).status_code == 201

    defaults = requests.get(url, params={"campaign": "camp1"}, timeout=5).json()
    assert [(e["fieldId"], e["displayName"], e["visible"], e["unit"], e["order"], e["saved"]) for e in defaults] == [
        ("M02001283_Ch1_V", "Ph 1 V", True, "V", 0, False),
        ("M02001283_Ch4_W", "Voie1 W", True, "W", 1, False),
        ("S02001300_Ch1_A", "S02001300_Ch1", True, "A", 2, False),
    ]
    assert requests.get(url, params={"campaign": "nothing"}, timeout=5).json() == []

    saved = requests.put(
        url,
        json={
            "campaign": "camp1",
            "configs": [
                {"fieldId": "M02001283_Ch4_W", "displayName": "Pompe", "visible": False, "order": 0},
                {"fieldId": "M02001283_Ch1_V", "order": 5, "color": "#ff0000"},
            ],
        },
        timeout=5,
    )
    assert saved.status_code == 200
    by_field = {e["fieldId"]: e for e in saved.json()}
    assert (
        by_field["M02001283_Ch4_W"]["displayName"],
        by_field["M02001283_Ch4_W"]["visible"],
        by_field["M02001283_Ch4_W"]["order"],
        by_field["M02001283_Ch4_W"]["saved"],
    ) == ("Pompe", False, 0, True)
    assert (
        by_field["M02001283_Ch1_V"]["displayName"],
        by_field["M02001283_Ch1_V"]["order"],
        by_field["M02001283_Ch1_V"]["color"],
    ) == ("Ph 1 V", 5, "#ff0000")
    assert by_field["S02001300_Ch1_A"]["saved"] is False
    assert requests.get(url, params={"campaign": "camp1"}, timeout=5).json() == saved.json()

    unknown = requests.put(url, json={"campaign": "camp1", "configs": [{"fieldId": "NOPE_V"}]}, timeout=5)
    assert unknown.status_code == 422 and "NOPE_V" in unknown.text
    bad = requests.put(
        url, json={"campaign": "camp1", "configs": [{"fieldId": "M02001283_Ch1_V", "order": -1}]}, timeout=5
    )
    assert bad.status_code == 422

    one = requests.delete(url, params={"campaign": "camp1", "fieldId": "M02001283_Ch1_V"}, timeout=5)
    assert one.json() == {"reset": 1}
    after = {e["fieldId"]: e for e in requests.get(url, params={"campaign": "camp1"}, timeout=5).json()}
    assert after["M02001283_Ch1_V"]["saved"] is False and after["M02001283_Ch4_W"]["saved"] is True
    assert requests.delete(url, params={"campaign": "camp1"}, timeout=5).json() == {"reset": 1}
    assert requests.get(url, params={"campaign": "camp1"}, timeout=5).json() == defaults
    assert requests.delete(url, timeout=5).status_code == 422  # campaign required
    # deleting the client forgets its settings
    requests.put(
        url, json={"campaign": "camp1", "configs": [{"fieldId": "M02001283_Ch1_V", "visible": False}]}, timeout=5
    )
    assert requests.delete(f"{api.url}/clients/initech", timeout=5).status_code == 204
    requests.put(f"{api.url}/clients/initech", json={"bucket": "initech"}, timeout=5)
    assert requests.get(url, params={"campaign": "camp1"}, timeout=5).json() == defaults


def test_writes_need_the_token_when_configured(api_with_token):
    api = api_with_token
    assert requests.get(api.url + "/health", timeout=5).json()["auth"] == "token"
    for headers in (
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": f"Basic {TOKEN}"},
        {"Authorization": TOKEN},
    ):
        answer = post(api, "acme", BODY, headers=headers)
        assert answer.status_code == 401 and answer.headers["WWW-Authenticate"] == "Bearer"
        assert (
            requests.put(f"{api.url}/clients/acme", json={"bucket": "acme"}, headers=headers, timeout=5).status_code
            == 401
        )
    assert requests.get(f"{api.url}/buckets/acme/channels", timeout=5).json() == []  # nothing written
    assert post(api, "acme", BODY, headers=api.headers()).json() == {"inserted": 3, "updated": 0}
    assert (
        requests.put(f"{api.url}/clients/acme", json={"bucket": "acme"}, headers=api.headers(), timeout=5).status_code
        == 201
    )
    url = f"{api.url}/clients/acme/series-config/configs"
    assert (
        requests.put(
            url, json={"campaign": "camp1", "configs": [{"fieldId": "M02001283_Ch1_V"}]}, timeout=5
        ).status_code
        == 401
    )
    assert requests.delete(url, params={"campaign": "camp1"}, timeout=5).status_code == 401
    assert requests.delete(f"{api.url}/clients/acme", timeout=5).status_code == 401
    # reads stay open (Grafana's proxy)
    assert len(requests.get(url, params={"campaign": "camp1"}, timeout=5).json()) == 3
    assert requests.get(f"{api.url}/clients/acme", timeout=5).status_code == 200


def test_twenty_parallel_upserts_leave_one_row_each(api):
    with ThreadPoolExecutor(20) as pool:
        answers = list(pool.map(lambda _: post(api, "parallel", BODY), range(20)))
    assert [a.status_code for a in answers] == [200] * 20
    assert sum(a.json()["inserted"] for a in answers) == 3
    assert sum(a.json()["updated"] for a in answers) == 57
    rows = (
        sqlite3.connect(api.db)
        .execute("SELECT field_id, COUNT(*) FROM channels WHERE bucket = 'parallel' GROUP BY field_id")
        .fetchall()
    )
    assert sorted(rows) == sorted((c["fieldId"], 1) for c in BODY["channels"])


def test_restart_keeps_data(tmp_path):
    db = tmp_path / "api.sqlite3"
    with ConfigAPI(db) as api:
        post(api, "acme", BODY)
        requests.put(f"{api.url}/clients/acme", json={"bucket": "acme"}, timeout=5)
    with ConfigAPI(db) as api:
        assert len(requests.get(f"{api.url}/buckets/acme/channels", timeout=5).json()) == 3
        assert requests.get(f"{api.url}/clients/acme", timeout=5).json() == {"clientId": "acme", "bucket": "acme"}
    assert sqlite3.connect(db).execute("PRAGMA journal_mode").fetchone()[0] == "wal"


@pytest.mark.parametrize("kind", ["foreign_sqlite", "text", "empty", "newer_schema"])
def test_a_file_it_did_not_create_is_refused(tmp_path, kind):
    db = tmp_path / "config.db"
    if kind == "foreign_sqlite":  # the deployed API's file, say
        conn = sqlite3.connect(db)
        conn.execute("CREATE TABLE known_channels (x)")
        conn.commit()
        conn.close()
    elif kind == "text":
        db.write_text("hello\n")
    elif kind == "empty":
        db.touch()
    else:
        with ConfigAPI(db):
            pass
        conn = sqlite3.connect(db)
        conn.execute("PRAGMA user_version = 99")
        conn.close()
    before = db.read_bytes()
    api = ConfigAPI(db)
    done = subprocess.run(api.command(), env=api.env(), capture_output=True, text=True, timeout=30)
    assert done.returncode == 2
    assert f"{db}: " in done.stderr
    expected = {
        "foreign_sqlite": "SQLite database of another program",
        "text": "not an SQLite database",
        "empty": "not an SQLite database",
        "newer_schema": "schema version 99 is newer",
    }[kind]
    assert expected in done.stderr
    assert db.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.endswith(".log")) == ["config.db"]


def test_an_unusable_path_is_a_clear_error(tmp_path):
    (tmp_path / "file").write_text("x")
    api = ConfigAPI(tmp_path / "file" / "db.sqlite3")
    done = subprocess.run(api.command(), env=api.env(), capture_output=True, text=True, timeout=30)
    assert done.returncode == 2
    assert f"powerview-config-api: error: {tmp_path / 'file' / 'db.sqlite3'}: Not a directory" in done.stderr
