"""A run's journal and reports in the object store (``[store] url``), and its scope lock there.

Under ``<prefix>/runs/<run_id>/``: ``journal.db``, a consistent copy of the journal (SQLite's
online backup), uploaded as the run goes (at each phase change of a resource, at most every few
seconds, and when the run ends), and ``report.json``, ``report.md``, ``report.html`` when the
run is reported. A run can then be resumed from another machine: ``teardown resume RUN --store
s3://...`` fetches the journal first (:func:`fetch_journal`), and verified pulls are found in the
bucket, not sent again.

The scope lock (``<prefix>/locks/<scope>.json``, a conditional write) keeps two runners of
different machines off one scope: a second one is refused naming the holder.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from teardown.adapters.objstore import ObjectStore
from teardown.core.errors import LockHeld, TeardownError
from teardown.engine.events import Event, PhaseChanged, RunFinished

UPLOAD_EVERY = 5.0
"""Seconds between journal uploads while a run goes (a run's end is always uploaded)."""


def journal_key(run_id: str) -> str:
    return f"runs/{run_id}/journal.db"


def snapshot(journal: Path, dest: Path) -> None:
    """A consistent copy of the SQLite journal at ``journal`` (online backup: the run may be
    writing to it)."""
    src = sqlite3.connect(f"file:{journal}?mode=ro", uri=True)
    try:
        out = sqlite3.connect(dest)
        try:
            src.backup(out)
        finally:
            out.close()
    finally:
        src.close()


def upload_journal(store: ObjectStore, journal: Path, run_id: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "journal.db"
        snapshot(journal, copy)
        store.put_file(journal_key(run_id), copy)


def upload_reports(store: ObjectStore, run_id: str, paths: tuple[Path, ...]) -> None:
    for path in paths:
        store.put_file(f"runs/{run_id}/{path.name}", path)


def fetch_journal(store: ObjectStore, run_id: str, journal: Path) -> bool:
    """Put the bucket's copy of ``run_id``'s journal at ``journal`` when there is none there;
    True when it was fetched. An existing local journal is never overwritten."""
    if journal.exists():
        return False
    if store.head(journal_key(run_id)) is None:
        raise TeardownError(
            f"run {run_id}: no journal in {store.where(journal_key(run_id))} (was it run with "
            "this [store] url?)"
        )
    journal.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    store.get_file(journal_key(run_id), journal)
    os.chmod(journal, 0o600)
    return True


class JournalUploader:
    """An observer: uploads the journal as a run goes (throttled) and when it ends. A failed
    upload is a warning for the run, never its failure (the cloud decides the run)."""

    def __init__(
        self,
        store: ObjectStore,
        journal: Path,
        warn: Callable[[str], None],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.journal = journal
        self.warn = warn
        self.clock = clock
        self.last = float("-inf")
        self._lock = threading.Lock()
        self.label = "the journal upload to the object store"

    def __call__(self, event: Event) -> None:
        due = isinstance(event, PhaseChanged) and self.clock() - self.last >= UPLOAD_EVERY
        if isinstance(event, RunFinished) or due:
            self.upload(event.run_id)

    def upload(self, run_id: str) -> None:
        with self._lock:
            self.last = self.clock()
            try:
                upload_journal(self.store, self.journal, run_id)
            except (TeardownError, OSError, sqlite3.Error) as e:
                self.warn(f"the journal could not be uploaded: {e}")


def holder(run_id: str) -> dict[str, object]:
    return {"run_id": run_id, "host": socket.gethostname(), "pid": os.getpid()}


def take_scope(store: ObjectStore, scope: str, run_id: str) -> None:
    """The scope's lock in the bucket, or LockHeld naming who holds it. The same run resumed
    (on this machine or another, after a crash) takes its own lock over."""
    mine = holder(run_id)
    result = store.lock(scope, mine)
    if not result.acquired:
        held = result.holder or {}
        if held.get("run_id") == run_id:
            store.put_bytes(store.lock_key(scope), json.dumps(mine, sort_keys=True).encode())
            return
        raise LockHeld(
            scope,
            str(held.get("run_id", "?")),
            int(str(held.get("pid", 0)) or 0),
            f"{held.get('host', '?')} (lock {store.where(store.lock_key(scope))})",
        )


def release_scope(store: ObjectStore, scope: str, run_id: str) -> None:
    store.unlock(scope, holder(run_id))


__all__ = [
    "JournalUploader",
    "fetch_journal",
    "journal_key",
    "release_scope",
    "snapshot",
    "take_scope",
    "upload_journal",
    "upload_reports",
]
