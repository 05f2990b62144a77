"""A durable outbox: messages that must reach another service, one JSON file each, sent in order.

    <folder>/<20-digit ns>-<pid>-<seq>.json   waiting messages; names sort by creation
    <folder>/.tmp/                            messages being written
    <folder>/rejected/                        messages the receiver refused for good (kept for a look)
    <folder>/.lock                            flock held while one process delivers

A message is written to .tmp/, fsync'ed, renamed into place, and the folder fsync'ed: after a
crash (kill -9, power cut) a message is either absent (never acknowledged to anyone) or whole.
It is deleted only after the receiver accepted it; delivery stops at the first failure so that
later messages never overtake an earlier one.
"""

from __future__ import annotations

import fcntl
import itertools
import json
import logging
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from powerview.core.fsutil import fsync_dir, write_durably

log = logging.getLogger(__name__)

SUFFIX = ".json"
TMP_DIR, REJECTED_DIR, LOCK_FILE = ".tmp", "rejected", ".lock"
_sequence = itertools.count()


class Refused(Exception):
    """The receiver will never accept this message (it is set aside in rejected/)."""


class Outbox:
    def __init__(self, folder: Path | str):
        self.folder = Path(folder)

    def _ensure(self) -> None:
        (self.folder / TMP_DIR).mkdir(parents=True, exist_ok=True)

    def put(self, message: dict) -> Path:
        """Store a message durably; returns its file. Raises OSError when it cannot be stored."""
        self._ensure()
        path = self.folder / f"{time.time_ns():020d}-{os.getpid():07d}-{next(_sequence):06d}{SUFFIX}"
        data = json.dumps(message, ensure_ascii=False, sort_keys=True).encode()
        write_durably(path, data, tmp_dir=self.folder / TMP_DIR, mode=0o666)
        return path

    def waiting(self) -> list[Path]:
        """The stored messages, oldest first."""
        try:
            return sorted(p for p in self.folder.iterdir() if p.suffix == SUFFIX and not p.name.startswith("."))
        except FileNotFoundError:
            return []

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the outbox's lock (blocks while another process delivers)."""
        self._ensure()
        with open(self.folder / LOCK_FILE, "a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def deliver(self, send: Callable[[dict], None]) -> tuple[list[Path], Exception | None]:
        """Send waiting messages oldest first (call under `locked()`). `send` returns when the
        receiver accepted, raises Refused when it never will, anything else when it failed now.
        Returns (the files delivered, the failure that stopped the delivery or None)."""
        delivered: list[Path] = []
        for path in self.waiting():
            try:
                message = json.loads(path.read_text())
                if not isinstance(message, dict):
                    raise ValueError("not a JSON object")
            except (OSError, ValueError) as exc:
                self._reject(path, f"unreadable: {exc}")
                continue
            try:
                send(message)
            except Refused as exc:
                self._reject(path, str(exc))
                continue
            except Exception as exc:  # down, timeout, 5xx: keep it and stop, order matters
                return delivered, exc
            try:
                path.unlink()
                fsync_dir(self.folder)
            except OSError as exc:  # accepted but not removable (owner): sent again later, harmless
                return delivered, exc
            delivered.append(path)
        return delivered, None

    def was_rejected(self, path: Path) -> bool:
        return (self.folder / REJECTED_DIR / path.name).exists()

    def _reject(self, path: Path, reason: str) -> None:
        target = self.folder / REJECTED_DIR
        target.mkdir(exist_ok=True)
        os.rename(path, target / path.name)
        (target / (path.name + ".reason")).write_text(reason + "\n")
        log.error("outbox %s: %s set aside in %s: %s", self.folder, path.name, target, reason)
