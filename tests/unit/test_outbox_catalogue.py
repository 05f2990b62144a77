"""The outbox (durable, ordered delivery) and the catalogue's request bodies and settings."""

from __future__ import annotations

import json
import os
import time

import pytest

from powerview.core.outcome import FileOutcome, Status
from powerview.core.settings import ConfigError
from powerview.delivery import catalogue
from powerview.delivery.outbox import Outbox, Refused


def test_messages_are_delivered_oldest_first_and_removed(tmp_path):
    box = Outbox(tmp_path / "box")
    paths = [box.put({"n": i}) for i in range(5)]
    assert box.waiting() == paths == sorted(paths)
    seen = []
    delivered, failure = box.deliver(lambda m: seen.append(m["n"]))
    assert (seen, delivered, failure) == ([0, 1, 2, 3, 4], paths, None)
    assert box.waiting() == []


def test_a_failure_stops_the_delivery_and_keeps_the_rest_in_order(tmp_path):
    box = Outbox(tmp_path / "box")
    paths = [box.put({"n": i}) for i in range(4)]
    seen = []

    def send(message):
        if message["n"] == 2:
            raise ConnectionError("down")
        seen.append(message["n"])

    delivered, failure = box.deliver(send)
    assert seen == [0, 1] and delivered == paths[:2] and isinstance(failure, ConnectionError)
    assert box.waiting() == paths[2:]
    seen.clear()
    assert box.deliver(lambda m: seen.append(m["n"]))[1] is None
    assert seen == [2, 3]


def test_refused_and_unreadable_messages_are_set_aside_not_blocking(tmp_path):
    box = Outbox(tmp_path / "box")
    first = box.put({"n": 0})
    (tmp_path / "box" / "00000000000000000001-0000001-000000.json").write_text("{trunc")
    box.put({"n": 2})

    def send(message):
        if message["n"] == 0:
            raise Refused("HTTP 422: bad name")

    delivered, failure = box.deliver(send)
    assert failure is None and len(delivered) == 1 and box.waiting() == []
    rejected = sorted(p.name for p in (tmp_path / "box" / "rejected").iterdir())
    assert rejected == sorted(
        [
            "00000000000000000001-0000001-000000.json",
            "00000000000000000001-0000001-000000.json.reason",
            first.name,
            first.name + ".reason",
        ]
    )
    assert box.was_rejected(first)
    assert "HTTP 422: bad name" in (tmp_path / "box" / "rejected" / (first.name + ".reason")).read_text()


def test_a_half_written_message_is_never_seen(tmp_path):
    box = Outbox(tmp_path / "box")
    box.put({"n": 0})
    (tmp_path / "box" / ".tmp" / "99999999999999999999-0000001-000001.json").write_text('{"n": ')  # killed mid-write
    assert [json.loads(p.read_text()) for p in box.waiting()] == [{"n": 0}]


def test_put_fails_loudly_on_an_unwritable_folder(tmp_path):
    if os.geteuid() == 0:
        target = tmp_path / "file"
        target.write_text("not a folder")
        with pytest.raises(OSError):
            Outbox(target / "box").put({"n": 0})
    else:
        (tmp_path / "ro").mkdir(mode=0o500)
        with pytest.raises(OSError):
            Outbox(tmp_path / "ro" / "box").put({"n": 0})


def test_bodies_follow_the_deployed_shape():
    channels = {
        "M02001283_U1": {"unit": "V", "label": "U1", "name": "Ph 1", "device_sn": "02001283"},
        "M02001283_Ch4": {"unit": "W", "label": "Ch4\nbad", "name": "Voie1"},
        "M02001283_Ch9": {"unit": "", "label": "Ch9"},  # no unit: left out, as deployed
    }
    assert catalogue.bodies_for("camp1", "02001283", channels) == [
        {
            "campaign": "camp1",
            "channels": [
                {
                    "fieldId": "M02001283_U1_V",
                    "channelId": "M02001283_U1",
                    "channelUnit": "V",
                    "channelLabel": "U1",
                    "deviceMasterSn": "02001283",
                },
                {
                    "fieldId": "M02001283_Ch4_W",
                    "channelId": "M02001283_Ch4",
                    "channelUnit": "W",
                    "channelLabel": "Ch4 bad",
                    "deviceMasterSn": "02001283",
                },
            ],
        }
    ]
    many = {f"C{i}": {"unit": "W", "label": "x" * 300} for i in range(4001)}
    bodies = catalogue.bodies_for("c", None, many)
    assert [len(b["channels"]) for b in bodies] == [2000, 2000, 1]
    assert len(bodies[0]["channels"][0]["channelLabel"]) == 256
    assert catalogue.bodies_for("c", None, {"X": {"unit": ""}}) == []


def test_settings(tmp_path):
    missing_file = tmp_path / "none.env"
    s = catalogue.CatalogueSettings.load(
        missing_file, {"CONFIG_API_URL": "http://h:8000/", "CONFIG_API_TOKEN": "tk", "POWERVIEW_SPOOL_DIR": "/sp"}
    )
    assert (s.url, s.token, s.timeout_s, str(s.outbox_dir)) == ("http://h:8000", "tk", 10.0, "/sp/outbox/catalogue")
    assert "tk" not in repr(s)
    assert catalogue.CatalogueSettings.load(missing_file, {}).url is None
    with pytest.raises(ConfigError, match="CONFIG_API_URL must be a URL"):
        catalogue.CatalogueSettings.load(missing_file, {"CONFIG_API_URL": "localhost:8000"})
    with pytest.raises(ConfigError, match="CONFIG_API_TIMEOUT must be a finite number >= 0.1"):
        catalogue.CatalogueSettings.load(missing_file, {"CONFIG_API_URL": "http://h", "CONFIG_API_TIMEOUT": "0"})


def _entry(status="success"):
    return FileOutcome(
        file="/x.tsv",
        bucket="acme",
        campaign="c1",
        device_folder_sn="1",
        status=Status(status),
        device_master_sn="1",
        channels={"M1_U1": {"unit": "V", "label": "U1"}},
    )


def test_publish_is_off_without_url_in_dry_run_and_for_other_outcomes(tmp_path):
    entries = [_entry(), _entry("error")]
    catalogue.publish_entries(entries, catalogue.Recorder.load(tmp_path / "none.env", {}))
    assert [e.catalogue for e in entries] == ["off", "off"]
    env = {"CONFIG_API_URL": "http://127.0.0.1:9", "POWERVIEW_SPOOL_DIR": str(tmp_path / "spool")}
    catalogue.publish_entries(entries, catalogue.Recorder.load(tmp_path / "none.env", env), dry_run=True)
    assert [e.catalogue for e in entries] == ["off", "off"]
    assert not (tmp_path / "spool").exists()
    catalogue.publish_entries(
        entries, catalogue.Recorder.load(tmp_path / "none.env", {**env, "CONFIG_API_TIMEOUT": "nope"})
    )
    assert [e.catalogue for e in entries] == ["off", "off"]  # a bad setting never fails the run


def test_publish_queues_when_the_api_is_down(tmp_path):
    entries = [_entry(), _entry("error"), _entry()]
    env = {
        "CONFIG_API_URL": "http://127.0.0.1:9",
        "POWERVIEW_SPOOL_DIR": str(tmp_path / "spool"),
        "CONFIG_API_TIMEOUT": "2",
    }
    catalogue.publish_entries(entries, catalogue.Recorder.load(tmp_path / "none.env", env))
    assert [e.catalogue for e in entries] == ["queued", "off", "queued"]
    waiting = Outbox(tmp_path / "spool" / "outbox" / "catalogue").waiting()
    assert [json.loads(p.read_text())["body"]["channels"][0]["fieldId"] for p in waiting] == ["M1_U1_V"] * 2
    assert json.loads(waiting[0].read_text())["bucket"] == "acme"


def test_series_keys_and_bucket_rules():
    from powerview.core.names import raw_bucket_skip_reason
    from powerview.delivery.catalogue_rebuild import split_series_key

    assert split_series_key(r"electrical,campaign=c.1,channel_name=Voie\,\ 2\=a,channel_unit=W") == (
        "electrical",
        {"campaign": "c.1", "channel_name": "Voie, 2=a", "channel_unit": "W"},
    )
    assert split_series_key(r"electrical,x=a\\b") == ("electrical", {"x": "a\\b"})
    assert [
        raw_bucket_skip_reason(b, "powerview_meta")
        for b in ("_monitoring", "_tasks", "powerview_meta", "acme_1h", "acme_1d", "acme_1w", "acme", "acme_1hx")
    ] == [
        "system bucket",
        "system bucket",
        "meta bucket",
        "derived bucket",
        "derived bucket",
        "derived bucket",
        None,
        None,
    ]
    assert "not allowed" in raw_bucket_skip_reason("bad name", "powerview_meta")


def test_one_pass_stops_delivering_once_its_time_is_spent(tmp_path):
    """A long backlog of slow but successful deliveries does not hold the lock without bound."""
    outbox = Outbox(tmp_path / "outbox")
    for i in range(5):
        outbox.put({"n": i})
    sent = []

    def slow(message):
        time.sleep(0.1)
        sent.append(message["n"])

    delivered, failure = outbox.deliver(catalogue._within(0.15, slow))
    assert sent == [0, 1] and len(delivered) == 2
    assert isinstance(failure, catalogue.CatalogueUnavailable) and "spent" in str(failure)
    assert len(outbox.waiting()) == 3
