"""The hook's durable job queue: atomic job files, due times, backoff, failed jobs, operators' commands."""

from __future__ import annotations

import json
import os
import time

import pytest

from powerview.operations.spool import INGEST, PROVISION, SCAN, WAITING_INFLUXDB, Job, Spool, backoff, new_id


@pytest.fixture
def spool(tmp_path):
    return Spool(tmp_path / "spool").ensure()


def test_a_job_is_one_json_file_and_reads_back(spool):
    job = Job.new(INGEST, {"action": "upload", "user": "acme"}, path="/data/a b.tsv")
    path = spool.add(job)
    assert path == spool.jobs_dir / f"{job.id}.json"
    data = json.loads(path.read_text())
    assert (data["kind"], data["path"], data["attempts"], data["version"]) == ("ingest", "/data/a b.tsv", 0, 1)
    assert data["event"] == {"action": "upload", "user": "acme"}
    assert spool.pending() == [job]
    assert list(spool.tmp_dir.iterdir()) == []  # written through tmp/ and renamed


def test_ids_sort_in_creation_order_and_are_unique():
    base = 1_800_000_000.0
    ids = [new_id(base + i * 0.000001) for i in range(5)] + [new_id(base + 1)]
    assert ids == sorted(ids)
    assert len({new_id(base) for _ in range(200)}) == 200


def test_pending_is_oldest_first(spool):
    jobs = [Job.new(SCAN, now=1_800_000_000 + i) for i in (3, 1, 2)]
    for job in jobs:
        spool.add(job)
    assert [j.created for j in spool.pending()] == [1_800_000_001, 1_800_000_002, 1_800_000_003]


def test_due_respects_next_try(spool):
    now = time.time()
    early, later = Job.new(SCAN, now=now), Job.new(SCAN, now=now)
    later.next_try = now + 60
    spool.add(early)
    spool.add(later)
    assert [j.id for j in spool.due(now)] == [early.id]
    assert {j.id for j in spool.due(now + 61)} == {early.id, later.id}


@pytest.mark.parametrize("attempts, expected", [(0, 0), (1, 30), (2, 60), (3, 120), (6, 900), (100, 900)])
def test_backoff_doubles_up_to_the_maximum(attempts, expected):
    assert backoff(attempts, 30, 900) == expected


def test_update_replaces_but_does_not_bring_back_a_purged_job(spool):
    job = Job.new(INGEST, path="/x.tsv")
    spool.add(job)
    job.attempts = 3
    spool.update(job)
    assert spool.pending()[0].attempts == 3
    assert spool.purge([job.id]) == [job.id]
    job.attempts = 4
    spool.update(job)
    assert spool.pending() == []
    assert list(spool.tmp_dir.iterdir()) == []


def test_give_up_moves_to_failed_and_retry_brings_it_back(spool):
    job = Job.new(PROVISION, company="acme", campaign=None)
    spool.add(job)
    job.attempts = 20
    spool.give_up(job, "ansible-playbook failed (exit 2)")
    assert spool.pending() == []
    [failed] = spool.failed()
    assert (failed.id, failed.last_error) == (job.id, "ansible-playbook failed (exit 2)")
    assert [j.id for j in spool.retry([job.id])] == [job.id]
    [back] = spool.pending()
    assert (back.attempts, back.last_error) == (0, None)
    assert back.next_try <= time.time()
    assert spool.failed() == []


def test_retry_all_makes_pending_jobs_due(spool):
    job = Job.new(INGEST, path="/x.tsv")
    job.next_try = time.time() + 3600
    spool.add(job)
    assert spool.due() == []
    spool.retry(None)
    assert [j.id for j in spool.due()] == [job.id]


def test_purge_all_or_failed_only(spool):
    kept = Job.new(SCAN)
    spool.add(kept)
    gone = Job.new(SCAN)
    spool.add(gone)
    spool.give_up(gone, "x")
    assert spool.purge(None, failed_only=True) == [gone.id]
    assert [j.id for j in spool.pending()] == [kept.id]
    assert spool.purge(None) == [kept.id]
    assert spool.pending() == [] and spool.failed() == []


def test_wake_only_touches_jobs_waiting_for_influxdb(spool):
    later = time.time() + 3600
    waiting = Job.new(INGEST, path="/a.tsv", waiting=WAITING_INFLUXDB)
    other = Job.new(PROVISION, company="acme")
    for job in (waiting, other):
        job.next_try = later
        spool.add(job)
    assert [j.id for j in spool.wake(WAITING_INFLUXDB)] == [waiting.id]
    assert [j.id for j in spool.due()] == [waiting.id]


def test_an_unreadable_job_file_is_set_aside(spool):
    (spool.jobs_dir / "20260101T000000.000000Z-deadbeef.json").write_text("{not json")
    (spool.jobs_dir / "20260101T000000.000001Z-deadbeef.json").write_text(json.dumps({"version": 99}))
    good = Job.new(SCAN)
    spool.add(good)
    assert [j.id for j in spool.pending()] == [good.id]
    assert len(spool.corrupt_files()) == 2
    assert sorted(os.listdir(spool.jobs_dir)) == [f"{good.id}.json"]


def test_clean_tmp_removes_only_old_leftovers(spool):
    old, fresh = spool.tmp_dir / "old.tmp", spool.tmp_dir / "fresh.tmp"
    old.write_text("x")
    fresh.write_text("x")
    os.utime(old, (time.time() - 7200, time.time() - 7200))
    assert spool.clean_tmp(3600) == 1
    assert [p.name for p in spool.tmp_dir.iterdir()] == ["fresh.tmp"]


def test_unknown_kinds_are_refused():
    with pytest.raises(ValueError):
        Job.new("reboot")


def test_a_changed_job_file_is_read_again_and_changes_to_a_listed_job_stay_in_memory(spool):
    job = Job.new(INGEST, path="/a.tsv")
    spool.add(job)
    [listed] = spool.pending()
    listed.attempts = 7  # changed in memory only
    assert spool.pending()[0].attempts == 0
    other = Spool(spool.root)  # another process updates the file
    changed = other.pending()[0]
    changed.attempts = 2
    other.update(changed)
    assert spool.pending()[0].attempts == 2
    other.remove(changed)
    assert spool.pending() == []
