"""The downsampling tasks the deployed version left in InfluxDB 2, `downsample_<bucket>_<level>`
(one per company bucket and level 1h, 1d, 1w, created by its manage_influx_tokens.py). They write
the mean of the raw data into the same derived series as powerview.delivery.derived, at the same
window-end timestamps, so they overwrite our exact values: after the backfill they are set
inactive through the InfluxDB 2 tasks API; setting them active again is the rollback.

API (InfluxDB 2 OSS, http/task_service.go): GET /api/v2/tasks?org=<org>&name=<name> lists the
tasks of that exact name; PATCH /api/v2/tasks/<id> {"status": "active"|"inactive"} answers the
updated task. Nothing else is changed (the Flux script stays as it was, for the rollback).
"""

from __future__ import annotations

from dataclasses import dataclass

from powerview.delivery.influx import InfluxRejected
from powerview.delivery.influx_http import Connection

ACTIVE, INACTIVE = "active", "inactive"


def task_name(bucket: str, level: str) -> str:
    """The deployed version's name of the task of `bucket` and `level` (1h, 1d, 1w)."""
    return f"downsample_{bucket}_{level}"


@dataclass(frozen=True)
class TaskChange:
    name: str
    task_id: str | None  # None: no such task (nothing to do)
    before: str | None
    after: str | None

    def line(self, dry_run: bool) -> str:
        if self.task_id is None:
            return f"task {self.name}: absent, nothing to do"
        if self.before == self.after:
            return f"task {self.name} ({self.task_id}): already {self.after}"
        verb = "would set" if dry_run else "set"
        return f"task {self.name} ({self.task_id}): {self.before} -> {verb} {self.after}"


class TasksAPI:
    """The two calls, with the admin token, on the project's HTTP layer (`influx_http`: retries
    within the budget, InfluxDB's statuses classified as for every other call)."""

    def __init__(self, url: str, org: str, token: str, timeout_s: float = 30.0, budget_s: float = 60.0):
        self.org = org
        self.connection = Connection(
            url, ("token", token), timeout_s, budget_s, credentials="INFLUXDB_ADMIN_TOKEN (with task rights)"
        )

    def _call(self, method: str, path: str, **kwargs) -> dict:
        answer = self.connection.call(method, path, f"{method} {path}", ok_statuses=(200,), **kwargs)
        try:
            body = answer.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise InfluxRejected(f"{method} {path} answered HTTP {answer.status_code}: {answer.text[:200]}")
        return body

    def find(self, name: str) -> list[dict]:
        body = self._call("GET", "/api/v2/tasks", params={"org": self.org, "name": name, "limit": 500})
        tasks = body.get("tasks")
        if not isinstance(tasks, list):
            raise InfluxRejected("GET /api/v2/tasks: no 'tasks' list in the answer (is this InfluxDB 2?)")
        return [t for t in tasks if isinstance(t, dict) and t.get("name") == name]

    def set_status(self, task_id: str, status: str) -> dict:
        return self._call("PATCH", f"/api/v2/tasks/{task_id}", json={"status": status})


def switch(api: TasksAPI, buckets: list[str], levels: tuple[str, ...], status: str, dry_run: bool) -> list[TaskChange]:
    """Set every deployed task of `buckets` x `levels` to `status` (idempotent: a task already
    there is not written; with dry_run nothing is written)."""
    changes = []
    for bucket in buckets:
        for level in levels:
            name = task_name(bucket, level)
            found = api.find(name)
            if not found:
                changes.append(TaskChange(name, None, None, None))
            for task in found:
                before = str(task.get("status"))
                if before != status and not dry_run:
                    after = str(api.set_status(str(task["id"]), status).get("status"))
                    if after != status:
                        raise InfluxRejected(f"task {name} ({task['id']}): still {after} after the update")
                changes.append(TaskChange(name, str(task["id"]), before, status))
    return changes
