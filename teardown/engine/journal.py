"""The journal: a SQLite file (WAL) recording runs, step intents and outcomes, artifacts, billing
records, events and scope locks. One transaction per transition; written before every side effect.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from teardown.core.errors import JournalError, LockHeld
from teardown.core.model import BACKUP_STEPS, Artifact, Step, StepKind
from teardown.core.phases import (
    STEP_TRANSITIONS,
    IllegalTransition,
    Phase,
    RunPhase,
    StepStatus,
    check_transition,
)
from teardown.engine.journal_records import (
    ARTIFACT_COLUMNS,
    SCHEMA,
    SCHEMA_VERSION,
    BillingRecord,
    EarlierArtifact,
    EventRecord,
    RunRecord,
    StepRecord,
    artifact_meta,
    artifact_of,
    ts,
)
from teardown.ports import Clock, RefundRecord

VAULT_FACT = "vault"
"""The run fact holding the backup vault as the cloud reported it after the backups."""


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Journal:
    """The durable record of every run. Thread-safe; each public mutator is one transaction.

    Example::

        with Journal.open(Path(".teardown/journal.db"), clock) as journal:
            journal.create_run(run_id, plan.scope, plan_json, digest)
            journal.record_intent(run_id, step, key)   # before the side effect
            ...                                        # the side effect
            journal.record_success(run_id, step.id, result)

    ``on_commit`` (if given) is called with a short label after every committed transition; the
    crash harness uses it to kill the process at each transition in turn.
    """

    def __init__(
        self,
        conn: sqlite3.Connection,
        path: Path,
        clock: Clock,
        on_commit: Callable[[str], None] | None = None,
    ) -> None:
        self._conn = conn
        self.path = path
        self._clock = clock
        self._lock = threading.RLock()
        self._on_commit = on_commit

    # -- opening -------------------------------------------------------------------------

    @classmethod
    def open(
        cls,
        path: Path,
        clock: Clock,
        *,
        create: bool = True,
        on_commit: Callable[[str], None] | None = None,
    ) -> Journal:
        """Open (and with ``create``, make) the journal; JournalError on a wrong schema version."""
        if not path.exists():
            if not create:
                raise JournalError(f"{path}: no journal here (no run has been recorded yet)")
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
        try:
            conn = sqlite3.connect(
                str(path), isolation_level=None, check_same_thread=False, timeout=30.0
            )
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.executescript(SCHEMA)
            row = conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
            if row is None:
                conn.execute(
                    "INSERT OR IGNORE INTO meta(key, value) VALUES ('schema_version', ?)",
                    (str(SCHEMA_VERSION),),
                )
                row = (str(SCHEMA_VERSION),)
            if row[0] == "1":
                # Version 1 recorded no origin: its artifacts stay, and never match a plan.
                conn.execute("BEGIN IMMEDIATE")
                conn.execute("ALTER TABLE artifacts ADD COLUMN meta TEXT NOT NULL DEFAULT '{}'")
                conn.execute("UPDATE meta SET value='2' WHERE key='schema_version'")
                conn.execute("COMMIT")
                row = ("2",)
        except sqlite3.DatabaseError as e:
            raise JournalError(f"{path}: not a usable teardown journal ({e})") from None
        if row[0] != str(SCHEMA_VERSION):
            conn.close()
            raise JournalError(
                f"{path}: journal schema version {row[0]}, this teardown reads version "
                f"{SCHEMA_VERSION}"
            )
        return cls(conn, path, clock, on_commit)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    @contextmanager
    def _tx(self, label: str) -> Iterator[sqlite3.Connection]:
        """One transaction. A journal that cannot be written (a full disk, a read-only file)
        is a JournalError: the caller stops before the side effect it was about to record."""
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                try:
                    yield self._conn
                except BaseException:
                    self._conn.execute("ROLLBACK")
                    raise
                self._conn.execute("COMMIT")
            except sqlite3.OperationalError as e:
                with contextlib.suppress(sqlite3.Error):
                    self._conn.execute("ROLLBACK")
                raise JournalError(f"{self.path}: the journal could not be written ({e})") from None
        if self._on_commit is not None:
            self._on_commit(label)

    def _now(self) -> str:
        return self._clock.now().isoformat()

    def _event(self, conn: sqlite3.Connection, run_id: str, type_: str, **data: Any) -> None:
        conn.execute(
            "INSERT INTO events(run_id, at, type, data) VALUES (?, ?, ?, ?)",
            (run_id, self._now(), type_, json.dumps(data, sort_keys=True, default=str)),
        )

    # -- runs ----------------------------------------------------------------------------

    def create_run(self, run_id: str, scope: str, plan_json: str, digest: str) -> None:
        now = self._now()
        with self._tx("run.create") as c:
            c.execute(
                "INSERT INTO runs(id, scope, phase, plan_json, plan_digest, created_at, "
                "updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (run_id, scope, RunPhase.RUNNING.value, plan_json, digest, now, now),
            )
            self._event(c, run_id, "run.created", scope=scope, digest=digest)

    def set_run_phase(self, run_id: str, phase: RunPhase) -> None:
        with self._tx(f"run.{phase.value}") as c:
            c.execute(
                "UPDATE runs SET phase=?, updated_at=? WHERE id=?",
                (phase.value, self._now(), run_id),
            )
            self._event(c, run_id, "run.phase", phase=phase.value)

    def run(self, run_id: str) -> RunRecord:
        with self._lock:
            row = self._conn.execute("SELECT * FROM runs WHERE id=?", (run_id,)).fetchone()
        if row is None:
            raise JournalError(f"{self.path}: no run {run_id!r}")
        return self._run_record(row)

    def runs_of_plan(self, digest: str) -> list[RunRecord]:
        """Runs of a plan (by its digest), most recent first."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT * FROM runs WHERE plan_digest=? ORDER BY created_at DESC, rowid DESC",
                (digest,),
            ).fetchall()
        return [self._run_record(r) for r in rows]

    def unfinished_runs(self, scope: str) -> list[RunRecord]:
        """Runs of ``scope`` that acted and did not finish: killed while running, or partially
        done (something destroyed, something left). Runs of a Pulumi hook (``hook-...``) are
        not counted: they destroy nothing themselves. Oldest first."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT * FROM runs WHERE scope=? AND phase IN (?, ?) AND id NOT LIKE 'hook-%' "
                "ORDER BY created_at, rowid",
                (scope, RunPhase.RUNNING.value, RunPhase.PARTIALLY_FAILED.value),
            ).fetchall()
        return [self._run_record(r) for r in rows]

    def runs(self, limit: int = 20) -> list[RunRecord]:
        """Most recent first."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT * FROM runs ORDER BY created_at DESC, rowid DESC LIMIT ?", (limit,)
            ).fetchall()
        return [self._run_record(r) for r in rows]

    @staticmethod
    def _run_record(row: tuple[Any, ...]) -> RunRecord:
        created, updated = ts(row[5]), ts(row[6])
        assert created is not None and updated is not None
        return RunRecord(row[0], row[1], RunPhase(row[2]), row[3], row[4], created, updated)

    # -- resources -----------------------------------------------------------------------

    def resource_phases(self, run_id: str) -> dict[str, Phase]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT urn, phase FROM resources WHERE run_id=?", (run_id,)
            ).fetchall()
        return {u: Phase(p) for u, p in rows}

    def resource_details(self, run_id: str) -> dict[str, str]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT urn, detail FROM resources WHERE run_id=?", (run_id,)
            ).fetchall()
        return dict(rows)

    def set_phase(self, run_id: str, urn: str, phase: Phase, detail: str = "") -> None:
        """Move a resource to ``phase`` (checked against the transition table)."""
        with self._tx(f"phase.{phase.value}") as c:
            row = c.execute(
                "SELECT phase FROM resources WHERE run_id=? AND urn=?", (run_id, urn)
            ).fetchone()
            current = Phase(row[0]) if row else Phase.PLANNED
            check_transition(current, phase)
            c.execute(
                "INSERT INTO resources(run_id, urn, phase, detail, updated_at) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT(run_id, urn) DO UPDATE SET "
                "phase=excluded.phase, detail=excluded.detail, updated_at=excluded.updated_at",
                (run_id, urn, phase.value, detail, self._now()),
            )
            self._event(c, run_id, "resource.phase", urn=urn, phase=phase.value, detail=detail)

    # -- steps ---------------------------------------------------------------------------

    def step(self, run_id: str, step_id: str) -> StepRecord | None:
        with self._lock:
            row = self._conn.execute(
                "SELECT * FROM steps WHERE run_id=? AND step_id=?", (run_id, step_id)
            ).fetchone()
        return self._step_record(row) if row else None

    def steps(self, run_id: str) -> list[StepRecord]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT * FROM steps WHERE run_id=? ORDER BY rowid", (run_id,)
            ).fetchall()
        return [self._step_record(r) for r in rows]

    @staticmethod
    def _step_record(row: tuple[Any, ...]) -> StepRecord:
        return StepRecord(
            run_id=row[0],
            step_id=row[1],
            urn=row[2],
            kind=StepKind(row[3]),
            status=StepStatus(row[4]),
            attempt=row[5],
            idem_key=row[6],
            intent_at=ts(row[7]),
            outcome_at=ts(row[8]),
            error=row[9],
            result=json.loads(row[10]),
        )

    def _move_step(
        self, c: sqlite3.Connection, run_id: str, step_id: str, new: StepStatus
    ) -> StepRecord | None:
        row = c.execute(
            "SELECT * FROM steps WHERE run_id=? AND step_id=?", (run_id, step_id)
        ).fetchone()
        rec = self._step_record(row) if row else None
        current = rec.status if rec else StepStatus.PENDING
        if new not in STEP_TRANSITIONS[current]:
            raise IllegalTransition(f"step {step_id} cannot move from {current} to {new}")
        return rec

    def record_intent(self, run_id: str, step: Step, key: str) -> int:
        """Write the intent (status STARTED, attempt + 1) before the side effect; return attempt."""
        with self._tx(f"intent.{step.kind.value}") as c:
            rec = self._move_step(c, run_id, step.id, StepStatus.STARTED)
            attempt = (rec.attempt if rec else 0) + 1
            c.execute(
                "INSERT INTO steps(run_id, step_id, urn, kind, status, attempt, idem_key, "
                "intent_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(run_id, step_id) DO "
                "UPDATE SET status=excluded.status, attempt=excluded.attempt, "
                "idem_key=excluded.idem_key, intent_at=excluded.intent_at, outcome_at=NULL, "
                "error=NULL",
                (
                    run_id,
                    step.id,
                    step.urn,
                    step.kind.value,
                    StepStatus.STARTED.value,
                    attempt,
                    key,
                    self._now(),
                ),
            )
            self._event(
                c,
                run_id,
                "step.intent",
                step=step.id,
                kind=step.kind.value,
                urn=step.urn,
                attempt=attempt,
            )
        return attempt

    def record_success(
        self,
        run_id: str,
        step_id: str,
        result: dict[str, Any],
        *,
        artifact: Artifact | None = None,
        refund: RefundRecord | None = None,
    ) -> None:
        """Write the outcome (and the artifact or billing record it produced) in one transaction."""
        now = self._now()
        with self._tx("outcome.succeeded") as c:
            rec = self._move_step(c, run_id, step_id, StepStatus.SUCCEEDED)
            assert rec is not None
            c.execute(
                "UPDATE steps SET status=?, outcome_at=?, result=?, error=NULL "
                "WHERE run_id=? AND step_id=?",
                (
                    StepStatus.SUCCEEDED.value,
                    now,
                    json.dumps(result, sort_keys=True, default=str),
                    run_id,
                    step_id,
                ),
            )
            if artifact is not None:
                c.execute(
                    "INSERT OR REPLACE INTO artifacts(run_id, step_id, urn, kind, ref, verified, "
                    "survives, size, sha256, detail, created_at, meta) "
                    "VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                    (
                        run_id,
                        step_id,
                        rec.urn,
                        artifact.kind,
                        artifact.ref,
                        int(artifact.verified),
                        int(artifact.survives_destroy),
                        artifact.size,
                        artifact.sha256,
                        artifact.detail,
                        now,
                        artifact_meta(artifact),
                    ),
                )
            if refund is not None:
                c.execute(
                    "INSERT OR REPLACE INTO billing(run_id, step_id, urn, order_ids, refund, "
                    "consumed, fee, currency, created_at) VALUES (?,?,?,?,?,?,?,?,?)",
                    (
                        run_id,
                        step_id,
                        rec.urn,
                        json.dumps(list(refund.order_ids)),
                        str(refund.refund),
                        str(refund.consumed),
                        str(refund.fee),
                        refund.currency,
                        now,
                    ),
                )
            self._event(c, run_id, "step.succeeded", step=step_id, urn=rec.urn)

    def record_failure(self, run_id: str, step_id: str, error: str) -> None:
        with self._tx("outcome.failed") as c:
            rec = self._move_step(c, run_id, step_id, StepStatus.FAILED)
            assert rec is not None
            if rec.status is StepStatus.SUCCEEDED:
                raise IllegalTransition(f"step {step_id} succeeded; its outcome stands")
            c.execute(
                "UPDATE steps SET status=?, outcome_at=?, error=? WHERE run_id=? AND step_id=?",
                (StepStatus.FAILED.value, self._now(), error, run_id, step_id),
            )
            self._event(c, run_id, "step.failed", step=step_id, urn=rec.urn, error=error)

    # -- artifacts and billing -----------------------------------------------------------

    def artifacts(self, run_id: str) -> dict[str, Artifact]:
        """step id -> the artifact recorded when that step succeeded."""
        with self._lock:
            rows = self._conn.execute(
                f"SELECT step_id, {ARTIFACT_COLUMNS} FROM artifacts WHERE run_id=?",
                (run_id,),
            ).fetchall()
        return {r[0]: artifact_of(r[1:]) for r in rows}

    def verified_artifacts(
        self, step_ids: Iterable[str], since: datetime | None = None
    ) -> dict[str, EarlierArtifact]:
        """The latest verified artifact of each step id, in any run, made at or after ``since``
        (backup step ids are deterministic per scope, resource identity and settings, so one
        run finds another's)."""
        wanted = list(step_ids)
        if not wanted:
            return {}
        marks = ",".join("?" * len(wanted))
        after = since.isoformat() if since else ""
        with self._lock:
            rows = self._conn.execute(
                f"SELECT step_id, run_id, created_at, {ARTIFACT_COLUMNS} FROM artifacts "
                f"WHERE verified=1 AND step_id IN ({marks}) AND created_at >= ? "
                "ORDER BY created_at",
                [*wanted, after],
            ).fetchall()
        return {
            r[0]: EarlierArtifact(artifact_of(r[3:]), r[1], datetime.fromisoformat(r[2]))
            for r in rows
        }

    def invalidate_backup(self, run_id: str, step_id: str, why: str) -> None:
        """A verified backup was found missing or changed before the destroy that relied on it:
        its step becomes FAILED (a resumed run makes it anew) and its artifact unverified."""
        with self._tx("outcome.invalidated") as c:
            rec = self._move_step(c, run_id, step_id, StepStatus.FAILED)
            assert rec is not None
            if rec.kind not in BACKUP_STEPS:
                raise IllegalTransition(f"step {step_id} is not a backup: it cannot be undone")
            c.execute(
                "UPDATE steps SET status=?, outcome_at=?, error=? WHERE run_id=? AND step_id=?",
                (StepStatus.FAILED.value, self._now(), why, run_id, step_id),
            )
            c.execute(
                "UPDATE artifacts SET verified=0, detail=? WHERE run_id=? AND step_id=?",
                (why, run_id, step_id),
            )
            self._event(c, run_id, "step.invalidated", step=step_id, urn=rec.urn, error=why)

    def billing_records(self, run_id: str) -> list[BillingRecord]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT step_id, urn, order_ids, refund, consumed, fee, currency FROM billing "
                "WHERE run_id=? ORDER BY rowid",
                (run_id,),
            ).fetchall()
        return [
            BillingRecord(
                r[0],
                r[1],
                RefundRecord(
                    tuple(json.loads(r[2])), Decimal(r[3]), Decimal(r[4]), Decimal(r[5]), r[6]
                ),
            )
            for r in rows
        ]

    def record_fact(self, run_id: str, type_: str, data: dict[str, Any]) -> None:
        """Record something the cloud said about the run as a whole (e.g. the backup vault's
        size after the backups), for the report."""
        with self._tx(f"fact {type_}") as conn:
            self._event(conn, run_id, type_, **data)

    def fact(self, run_id: str, type_: str) -> dict[str, Any] | None:
        """The latest fact of ``type_`` recorded for the run, or None."""
        with self._lock:
            row = self._conn.execute(
                "SELECT data FROM events WHERE run_id=? AND type=? ORDER BY id DESC LIMIT 1",
                (run_id, type_),
            ).fetchone()
        return None if row is None else dict(json.loads(row[0]))

    def events(self, run_id: str) -> list[EventRecord]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT id, run_id, at, type, data FROM events WHERE run_id=? ORDER BY id",
                (run_id,),
            ).fetchall()
        out = []
        for r in rows:
            at = ts(r[2])
            assert at is not None
            out.append(EventRecord(r[0], r[1], at, r[3], json.loads(r[4])))
        return out

    # -- locks (I6) ----------------------------------------------------------------------

    def acquire_lock(
        self, scope: str, run_id: str, *, stale_after: timedelta = timedelta(minutes=10)
    ) -> None:
        """Take the scope's lock, or raise LockHeld naming the holder.

        A lock is stale, and taken over, when its holder ran on this host and its process is gone,
        or (any host) when its heartbeat is older than ``stale_after``.
        """
        pid, host = os.getpid(), socket.gethostname()
        now = self._clock.now()
        with self._tx("lock.acquire") as c:
            row = c.execute(
                "SELECT run_id, pid, host, heartbeat_at FROM locks WHERE scope=?", (scope,)
            ).fetchone()
            if row is not None:
                held_run, held_pid, held_host, beat = row[0], int(row[1]), row[2], ts(row[3])
                mine = held_pid == pid and held_host == host
                if held_host == host:
                    stale = not _pid_alive(held_pid)
                else:
                    stale = beat is None or now - beat > stale_after
                if not mine and not stale:
                    raise LockHeld(scope, held_run, held_pid, held_host)
                if stale:
                    self._event(
                        c,
                        held_run,
                        "lock.stale_taken_over",
                        scope=scope,
                        by=run_id,
                        pid=held_pid,
                        host=held_host,
                    )
            c.execute(
                "INSERT OR REPLACE INTO locks(scope, run_id, pid, host, acquired_at, "
                "heartbeat_at) VALUES (?, ?, ?, ?, ?, ?)",
                (scope, run_id, pid, host, now.isoformat(), now.isoformat()),
            )

    def heartbeat(self, scope: str, run_id: str) -> None:
        with self._lock:
            self._conn.execute(
                "UPDATE locks SET heartbeat_at=? WHERE scope=? AND run_id=?",
                (self._now(), scope, run_id),
            )

    def release_lock(self, scope: str, run_id: str) -> None:
        with self._tx("lock.release") as c:
            c.execute("DELETE FROM locks WHERE scope=? AND run_id=?", (scope, run_id))


__all__ = [
    "SCHEMA_VERSION",
    "VAULT_FACT",
    "BillingRecord",
    "EarlierArtifact",
    "EventRecord",
    "Journal",
    "RunRecord",
    "StepRecord",
]
