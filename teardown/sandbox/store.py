"""The sandbox's state: one SQLite file under the sandbox directory, surviving restarts.

Asynchronous work (jobs, snapshots, checkpoints, releases) is stored as *timers*: rows with a due
time and a kind. Every API request first runs ``advance(now)``, which applies the effects of every
timer that has come due, in order. So the sandbox's notion of progress depends only on its clock,
which tests inject, and never on background threads.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 1

COMPUTE_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS servers (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, status TEXT NOT NULL,
    created TEXT NOT NULL, updated TEXT NOT NULL,
    flavor TEXT NOT NULL, az TEXT NOT NULL, image_id TEXT NOT NULL,
    charging_mode TEXT NOT NULL,             -- '0' postPaid, '1' prePaid, '2' spot
    order_id TEXT, product_id TEXT,
    locked INTEGER NOT NULL DEFAULT 0, lock_source_id TEXT, lock_scene TEXT,
    frozen INTEGER NOT NULL DEFAULT 0,
    tags TEXT NOT NULL DEFAULT '[]',         -- JSON list of "key=value"
    private_ip TEXT, public_ip TEXT,
    ssh_port INTEGER NOT NULL DEFAULT 0,
    hourly_price TEXT NOT NULL DEFAULT '0',  -- pay-per-use price, CNY per hour
    deleted INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS volumes (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, status TEXT NOT NULL, size INTEGER NOT NULL,
    volume_type TEXT NOT NULL, bootable INTEGER NOT NULL DEFAULT 0,
    server_id TEXT, device TEXT,
    bound INTEGER NOT NULL DEFAULT 1,        -- bought with its server (released with it)
    charging_mode TEXT NOT NULL,             -- 'postPaid' | 'prePaid'
    order_id TEXT, az TEXT NOT NULL,
    created TEXT NOT NULL, updated TEXT NOT NULL,
    tags TEXT NOT NULL DEFAULT '{}',
    hourly_price TEXT NOT NULL DEFAULT '0',
    deleted INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS eips (
    id TEXT PRIMARY KEY, public_ip TEXT NOT NULL, alias TEXT,
    status TEXT NOT NULL,                    -- 'ACTIVE' bound, 'DOWN' unbound, 'PENDING_DELETE'
    server_id TEXT, port_id TEXT, private_ip TEXT,  -- set only while bound
    charging_mode TEXT NOT NULL,             -- 'postPaid' | 'prePaid'
    order_id TEXT, product_id TEXT,          -- a yearly/monthly EIP's order
    bandwidth_id TEXT NOT NULL, bandwidth_name TEXT NOT NULL,
    bandwidth_size INTEGER NOT NULL,         -- Mbit/s, dedicated (PER)
    hourly_price TEXT NOT NULL DEFAULT '0',  -- pay-per-use: the EIP and its bandwidth, CNY/hour
    delete_on_termination INTEGER NOT NULL DEFAULT 0,
    created TEXT NOT NULL, updated TEXT NOT NULL,
    deleted INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS snapshots (
    id TEXT PRIMARY KEY, volume_id TEXT NOT NULL, name TEXT NOT NULL, description TEXT,
    status TEXT NOT NULL, size INTEGER NOT NULL, metadata TEXT NOT NULL DEFAULT '{}',
    created TEXT NOT NULL, updated TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY, service TEXT NOT NULL, job_type TEXT NOT NULL, status TEXT NOT NULL,
    begin_time TEXT NOT NULL, end_time TEXT, error_code TEXT, fail_reason TEXT,
    entities TEXT NOT NULL DEFAULT '{}');
CREATE TABLE IF NOT EXISTS vaults (id TEXT PRIMARY KEY, name TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS checkpoints (
    id TEXT PRIMARY KEY, vault_id TEXT NOT NULL, status TEXT NOT NULL, name TEXT,
    description TEXT, resources TEXT NOT NULL, skipped TEXT NOT NULL DEFAULT '[]',
    retention_days INTEGER, created TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS backups (
    id TEXT PRIMARY KEY, checkpoint_id TEXT NOT NULL, vault_id TEXT NOT NULL,
    parent_id TEXT, resource_id TEXT NOT NULL, resource_type TEXT NOT NULL,
    resource_name TEXT NOT NULL, resource_size INTEGER NOT NULL, status TEXT NOT NULL,
    snapshot_id TEXT, bootable INTEGER NOT NULL DEFAULT 0, system_disk INTEGER NOT NULL DEFAULT 0,
    created TEXT NOT NULL, updated TEXT NOT NULL, expired_at TEXT);
CREATE TABLE IF NOT EXISTS timers (
    id INTEGER PRIMARY KEY AUTOINCREMENT, due_at TEXT NOT NULL, kind TEXT NOT NULL,
    payload TEXT NOT NULL, done INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS calls (
    id INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL, service TEXT NOT NULL,
    operation TEXT NOT NULL, status INTEGER NOT NULL, detail TEXT NOT NULL DEFAULT '{}');
"""
"""Compute, storage and backup state. BSS adds its own tables (see ``bss.py``)."""

TimerHandler = Callable[[sqlite3.Connection, dict[str, Any], datetime], None]
_TIMERS: dict[str, TimerHandler] = {}


def timer(kind: str) -> Callable[[TimerHandler], TimerHandler]:
    """Register the handler applied when a timer of ``kind`` comes due."""

    def register(fn: TimerHandler) -> TimerHandler:
        _TIMERS[kind] = fn
        return fn

    return register


def new_id(prefix: str = "") -> str:
    return prefix + str(uuid.uuid4())


def dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def ts(t: datetime) -> str:
    """Huawei-style UTC timestamp ``YYYY-MM-DDTHH:MM:SSZ``."""
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_ts(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


class Store:
    """A serialized SQLite connection; ``tx()`` is one transaction (BEGIN IMMEDIATE)."""

    def __init__(self, path: Path, schemas: tuple[str, ...] = ()) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.RLock()
        self.conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self.conn.row_factory = sqlite3.Row
        self.conn.execute("PRAGMA journal_mode=WAL")
        for schema in (COMPUTE_SCHEMA, *schemas):
            self.conn.executescript(schema)
        self.conn.execute(
            "INSERT OR IGNORE INTO meta(key, value) VALUES ('schema_version', ?)",
            (str(SCHEMA_VERSION),),
        )

    @contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                yield self.conn
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            self.conn.execute("COMMIT")

    def close(self) -> None:
        with self._lock:
            self.conn.close()

    def meta(self, key: str) -> str | None:
        with self._lock:
            row = self.conn.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        with self.tx() as c:
            c.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, value))


def schedule(
    conn: sqlite3.Connection, now: datetime, after: timedelta, kind: str, **payload: Any
) -> None:
    """Apply ``kind`` with ``payload`` once the clock reaches ``now + after``."""
    if kind not in _TIMERS:
        raise KeyError(f"no timer handler for {kind!r}")
    conn.execute(
        "INSERT INTO timers(due_at, kind, payload) VALUES (?, ?, ?)",
        ((now + after).isoformat(), kind, dumps(payload)),
    )


def advance(conn: sqlite3.Connection, now: datetime) -> int:
    """Apply every timer due at ``now`` (oldest first, including ones they schedule); count them."""
    applied = 0
    while True:
        row = conn.execute(
            "SELECT id, kind, payload FROM timers WHERE done=0 AND due_at<=? "
            "ORDER BY due_at, id LIMIT 1",
            (now.isoformat(),),
        ).fetchone()
        if row is None:
            return applied
        conn.execute("UPDATE timers SET done=1 WHERE id=?", (row["id"],))
        _TIMERS[row["kind"]](conn, json.loads(row["payload"]), now)
        applied += 1
