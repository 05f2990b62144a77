"""The config API's SQLite file: creation, schema migrations, and every query.

The file is ours only: it is created in a temporary file beside the target, marked (SQLite
`application_id`), migrated, then linked into place, so the target path never holds a
half-created database. An existing file is opened only when its header carries our marker: the
deployed API's own SQLite file lives in the same volume and is never touched.
"""

from __future__ import annotations

import errno
import os
import sqlite3
import struct
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

APPLICATION_ID = 0x50564341  # "PVCA": PowerView config API
SQLITE_MAGIC = b"SQLite format 3\x00"

# Schema migrations, in order: version N is MIGRATIONS[N - 1]. Never edit a released one: append.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE channels (
        bucket            TEXT NOT NULL,
        campaign          TEXT NOT NULL,
        field_id          TEXT NOT NULL,
        channel_id        TEXT NOT NULL,
        channel_unit      TEXT NOT NULL,
        channel_label     TEXT,
        device_master_sn  TEXT,
        first_seen        TEXT NOT NULL,
        last_seen         TEXT NOT NULL,
        PRIMARY KEY (bucket, campaign, field_id)
    );
    CREATE TABLE clients (
        client_id   TEXT PRIMARY KEY,
        bucket      TEXT NOT NULL,
        created_at  TEXT NOT NULL
    );
    CREATE TABLE series_configs (
        client_id     TEXT NOT NULL REFERENCES clients(client_id) ON DELETE CASCADE,
        campaign      TEXT NOT NULL,
        field_id      TEXT NOT NULL,
        display_name  TEXT,
        visible       INTEGER,
        unit          TEXT,
        sort_order    INTEGER,
        color         TEXT,
        updated_at    TEXT NOT NULL,
        PRIMARY KEY (client_id, campaign, field_id)
    );
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)


class ForeignDatabase(Exception):
    """The path holds a file this program did not create: it is never opened."""


class NotFound(Exception):
    pass


class Conflict(Exception):
    pass


class UnknownChannels(Exception):
    def __init__(self, field_ids: list[str]):
        super().__init__(f"not in the catalogue of this bucket and campaign: {', '.join(field_ids)}")
        self.field_ids = field_ids


def now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


HEALTH_PROBE_BYTES = 64 * 1024  # more than a write transaction of a few pages needs


def header_problem(path: Path) -> str | None:
    """Why the existing file at `path` is not ours, or None when its header carries our marker."""
    try:
        with open(path, "rb") as fh:
            header = fh.read(100)
    except OSError as exc:
        return f"cannot read it: {exc.strerror}"
    if len(header) < 100 or not header.startswith(SQLITE_MAGIC):
        return "it is not an SQLite database"
    (app_id,) = struct.unpack(">I", header[68:72])
    if app_id != APPLICATION_ID:
        return "it is an SQLite database of another program (no powerview-config-api marker)"
    return None


class Store:
    def __init__(self, path: Path | str, busy_timeout_s: float = 30.0):
        self.path = Path(path)
        self.busy_timeout_s = busy_timeout_s
        if self.path.exists():
            problem = header_problem(self.path)
            if problem:
                raise ForeignDatabase(
                    f"{self.path}: refusing to open: {problem}; "
                    "give the config API a path of its own (--db, CONFIG_API_DB)"
                )
        else:
            self._create()
        self._migrate()

    # -- connections ---------------------------------------------------------------------
    def _connect(self, path: Path | None = None) -> sqlite3.Connection:
        # the database itself is opened read-write, never created: a file deleted under the
        # running API makes requests fail (and /health say so) instead of leaving an empty file
        target = f"file:{quote(str(path))}" if path is not None else f"file:{quote(str(self.path))}?mode=rw"
        conn = sqlite3.connect(
            target, timeout=self.busy_timeout_s, isolation_level=None, check_same_thread=False, uri=True
        )
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout_s * 1000)}")
        return conn

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, taken at once (BEGIN IMMEDIATE): writers are serialized."""
        conn = self._connect()
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        finally:
            conn.close()

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        conn = self._connect()
        try:
            yield conn
        finally:
            conn.close()

    def _create(self) -> None:
        if self.path.parent.exists() and not self.path.parent.is_dir():
            raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(self.path.parent))
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.creating")
        tmp.unlink(missing_ok=True)
        try:
            conn = self._connect(tmp)
            try:
                conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
                conn.execute("PRAGMA journal_mode = WAL")
            finally:
                conn.close()
            fd = os.open(tmp, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            try:
                os.link(tmp, self.path)  # never replaces a file created meanwhile
            except FileExistsError:
                problem = header_problem(self.path)
                if problem:
                    raise ForeignDatabase(f"{self.path}: refusing to open: {problem}") from None
        finally:
            tmp.unlink(missing_ok=True)

    def _migrate(self) -> None:
        conn = self._connect()
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("BEGIN IMMEDIATE")
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                conn.execute("ROLLBACK")
                raise ForeignDatabase(
                    f"{self.path}: schema version {version} is newer than this program's "
                    f"({SCHEMA_VERSION}): run the newer powerview-config-api"
                )
            for number in range(version + 1, SCHEMA_VERSION + 1):
                for statement in MIGRATIONS[number - 1].split(";"):
                    if statement.strip():
                        conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {number}")
            conn.execute("COMMIT")
        finally:
            conn.close()

    def schema_version(self) -> int:
        with self._read() as conn:
            return conn.execute("PRAGMA user_version").fetchone()[0]

    # -- the channel catalogue -----------------------------------------------------------
    def upsert_channels(self, bucket: str, campaign: str, channels: list[dict]) -> tuple[int, int]:
        inserted = updated = 0
        seen = now_iso()
        with self._write() as conn:
            for ch in channels:
                exists = conn.execute(
                    "SELECT 1 FROM channels WHERE bucket=? AND campaign=? AND field_id=?",
                    (bucket, campaign, ch["fieldId"]),
                ).fetchone()
                conn.execute(
                    """INSERT INTO channels (bucket, campaign, field_id, channel_id, channel_unit, channel_label,
                                             device_master_sn, first_seen, last_seen)
                       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                       ON CONFLICT (bucket, campaign, field_id) DO UPDATE SET
                         channel_id = excluded.channel_id,
                         channel_unit = excluded.channel_unit,
                         channel_label = COALESCE(excluded.channel_label, channels.channel_label),
                         device_master_sn = COALESCE(excluded.device_master_sn, channels.device_master_sn),
                         last_seen = excluded.last_seen""",
                    (
                        bucket,
                        campaign,
                        ch["fieldId"],
                        ch["channelId"],
                        ch["channelUnit"],
                        ch["channelLabel"],
                        ch["deviceMasterSn"],
                        seen,
                        seen,
                    ),
                )
                if exists:
                    updated += 1
                else:
                    inserted += 1
        return inserted, updated

    def channels(self, bucket: str, campaign: str | None = None) -> list[dict]:
        query = "SELECT * FROM channels WHERE bucket = ?"
        params: list = [bucket]
        if campaign is not None:
            query += " AND campaign = ?"
            params.append(campaign)
        with self._read() as conn:
            rows = conn.execute(query + " ORDER BY campaign, rowid", params).fetchall()
        return [_channel(row) for row in rows]

    # -- clients -------------------------------------------------------------------------
    def put_client(self, client_id: str, bucket: str) -> bool:
        """Register a client; True when created. Raises Conflict when it exists with another bucket."""
        with self._write() as conn:
            row = conn.execute("SELECT bucket FROM clients WHERE client_id = ?", (client_id,)).fetchone()
            if row is not None:
                if row["bucket"] != bucket:
                    raise Conflict(
                        f"client {client_id!r} is registered with bucket {row['bucket']!r}, "
                        f"not {bucket!r}: delete it first"
                    )
                return False
            conn.execute(
                "INSERT INTO clients (client_id, bucket, created_at) VALUES (?, ?, ?)", (client_id, bucket, now_iso())
            )
            return True

    def client_bucket(self, client_id: str) -> str:
        with self._read() as conn:
            row = conn.execute("SELECT bucket FROM clients WHERE client_id = ?", (client_id,)).fetchone()
        if row is None:
            raise NotFound(f"unknown client {client_id!r}: register it with PUT /clients/{client_id}")
        return row["bucket"]

    def delete_client(self, client_id: str) -> None:
        with self._write() as conn:
            if conn.execute("DELETE FROM clients WHERE client_id = ?", (client_id,)).rowcount == 0:
                raise NotFound(f"unknown client {client_id!r}")

    # -- series configuration ------------------------------------------------------------
    def series_configs(self, client_id: str, campaign: str | None) -> list[dict]:
        """One entry per catalogued channel of the client's bucket (and campaign): the defaults
        from the catalogue, overridden by what was saved."""
        bucket = self.client_bucket(client_id)
        query = """SELECT c.*, s.display_name, s.visible, s.unit, s.sort_order, s.color, s.updated_at
                   FROM channels c LEFT JOIN series_configs s
                     ON s.client_id = ? AND s.campaign = c.campaign AND s.field_id = c.field_id
                   WHERE c.bucket = ?"""
        params: list = [client_id, bucket]
        if campaign is not None:
            query += " AND c.campaign = ?"
            params.append(campaign)
        with self._read() as conn:
            rows = conn.execute(query + " ORDER BY c.campaign, c.rowid", params).fetchall()
        entries = []
        position: dict[str, int] = {}
        for row in rows:
            default_order = position.get(row["campaign"], 0)
            position[row["campaign"]] = default_order + 1
            entry = _channel(row)
            entry.update(
                clientId=client_id,
                displayName=row["display_name"]
                if row["display_name"] is not None
                else (row["channel_label"] or row["channel_id"]),
                visible=bool(row["visible"]) if row["visible"] is not None else True,
                unit=row["unit"] if row["unit"] is not None else row["channel_unit"],
                order=row["sort_order"] if row["sort_order"] is not None else default_order,
                color=row["color"],
                saved=row["updated_at"] is not None,
            )
            entries.append(entry)
        return entries

    def save_series_configs(self, client_id: str, campaign: str, configs: list[dict]) -> None:
        """Save overrides (a None value keeps the default). Raises NotFound, UnknownChannels."""
        stamp = now_iso()
        with self._write() as conn:
            row = conn.execute("SELECT bucket FROM clients WHERE client_id = ?", (client_id,)).fetchone()
            if row is None:
                raise NotFound(f"unknown client {client_id!r}: register it with PUT /clients/{client_id}")
            bucket = row["bucket"]
            known = {
                row[0]
                for row in conn.execute(
                    "SELECT field_id FROM channels WHERE bucket = ? AND campaign = ?", (bucket, campaign)
                )
            }
            unknown = sorted({c["fieldId"] for c in configs} - known)
            if unknown:
                raise UnknownChannels(unknown)
            for c in configs:
                conn.execute(
                    """INSERT INTO series_configs (client_id, campaign, field_id, display_name, visible, unit,
                                                   sort_order, color, updated_at)
                       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                       ON CONFLICT (client_id, campaign, field_id) DO UPDATE SET
                         display_name = excluded.display_name, visible = excluded.visible,
                         unit = excluded.unit, sort_order = excluded.sort_order, color = excluded.color,
                         updated_at = excluded.updated_at""",
                    (
                        client_id,
                        campaign,
                        c["fieldId"],
                        c.get("displayName"),
                        None if c.get("visible") is None else int(c["visible"]),
                        c.get("unit"),
                        c.get("order"),
                        c.get("color"),
                        stamp,
                    ),
                )

    def reset_series_configs(self, client_id: str, campaign: str, field_id: str | None) -> int:
        """Forget saved entries (all of the campaign, or one channel); returns how many."""
        self.client_bucket(client_id)
        with self._write() as conn:
            if field_id is None:
                cur = conn.execute(
                    "DELETE FROM series_configs WHERE client_id = ? AND campaign = ?", (client_id, campaign)
                )
            else:
                cur = conn.execute(
                    "DELETE FROM series_configs WHERE client_id = ? AND campaign = ? AND field_id = ?",
                    (client_id, campaign, field_id),
                )
            return cur.rowcount

    def ping(self) -> None:
        with self._read() as conn:
            conn.execute("SELECT 1 FROM channels LIMIT 1").fetchall()

    def write_problem(self) -> str | None:
        """Why a write would fail now (the database gone or read-only, a full disk), or None.
        A probe of HEALTH_PROBE_BYTES is written and synced beside the database, then removed."""
        if not self.path.is_file():
            return f"{self.path} does not exist any more"
        if not os.access(self.path, os.W_OK):
            return f"{self.path} is read-only"
        probe = self.path.with_name(f".{self.path.name}.health-{os.getpid()}")
        try:
            fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
            try:
                data = memoryview(bytes(HEALTH_PROBE_BYTES))
                while data:  # a short write is what a nearly full disk gives first
                    data = data[os.write(fd, data) :]
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            return f"cannot write in {self.path.parent}: {exc.strerror or exc}"
        finally:
            try:
                probe.unlink()
            except OSError:
                pass
        return None


def _channel(row: sqlite3.Row) -> dict:
    return {
        "campaign": row["campaign"],
        "fieldId": row["field_id"],
        "channelId": row["channel_id"],
        "channelUnit": row["channel_unit"],
        "channelLabel": row["channel_label"],
        "deviceMasterSn": row["device_master_sn"],
        "firstSeen": row["first_seen"],
        "lastSeen": row["last_seen"],
    }
