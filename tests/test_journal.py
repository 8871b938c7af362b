"""The journal: durable, versioned, transition-checked, and the scope lock (I6)."""

from __future__ import annotations

import sqlite3
import stat
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from teardown.core.errors import JournalError, LockHeld
from teardown.core.model import Artifact, Step, StepKind
from teardown.core.phases import IllegalTransition, Phase, StepStatus
from teardown.engine.journal import SCHEMA_VERSION, Journal
from tests.helpers import FakeClock

STEP = Step(id="s1", kind=StepKind.SNAPSHOT, urn="urn:x")


def open_journal(tmp_path: Path, clock: FakeClock | None = None) -> Journal:
    j = Journal.open(tmp_path / "j" / "journal.db", clock or FakeClock())
    j.create_run("r1", "dev", "{}", "digest")
    return j


def test_journal_file_is_readable_by_the_owner_only(tmp_path: Path) -> None:
    j = open_journal(tmp_path)
    assert stat.S_IMODE(j.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(j.path.parent.stat().st_mode) == 0o700


def test_intent_then_outcome_with_artifact_survives_reopening(tmp_path: Path) -> None:
    j = open_journal(tmp_path)
    assert j.record_intent("r1", STEP, "s1-1") == 1
    art = Artifact("cbr", "cp-1", verified=True, survives_destroy=True, size=5)
    j.record_success("r1", "s1", {"ref": "cp-1"}, artifact=art)
    j.close()
    again = Journal.open(j.path, FakeClock(), create=False)
    rec = again.step("r1", "s1")
    assert rec is not None and rec.status is StepStatus.SUCCEEDED and rec.idem_key == "s1-1"
    assert again.artifacts("r1") == {"s1": art}


def test_a_succeeded_step_cannot_be_started_again(tmp_path: Path) -> None:
    j = open_journal(tmp_path)
    j.record_intent("r1", STEP, "k")
    j.record_success("r1", "s1", {})
    with pytest.raises(IllegalTransition):
        j.record_intent("r1", STEP, "k2")


def test_outcome_without_intent_is_refused(tmp_path: Path) -> None:
    j = open_journal(tmp_path)
    with pytest.raises(IllegalTransition):
        j.record_success("r1", "s1", {})


def test_failed_step_can_be_retried_with_a_new_attempt(tmp_path: Path) -> None:
    j = open_journal(tmp_path)
    j.record_intent("r1", STEP, "k1")
    j.record_failure("r1", "s1", "boom")
    assert j.record_intent("r1", STEP, "k2") == 2


def test_resource_phases_follow_the_transition_table(tmp_path: Path) -> None:
    j = open_journal(tmp_path)
    j.set_phase("r1", "urn:x", Phase.BACKING_UP)
    with pytest.raises(IllegalTransition):
        j.set_phase("r1", "urn:x", Phase.DESTROYING)
    assert j.resource_phases("r1") == {"urn:x": Phase.BACKING_UP}


def test_every_transition_is_one_commit_reported_to_the_hook(tmp_path: Path) -> None:
    labels: list[str] = []
    j = Journal.open(tmp_path / "j.db", FakeClock(), on_commit=labels.append)
    j.create_run("r1", "dev", "{}", "d")
    j.record_intent("r1", STEP, "k")
    j.record_success("r1", "s1", {})
    assert labels == ["run.create", "intent.snapshot", "outcome.succeeded"]
    assert [e.type for e in j.events("r1")] == ["run.created", "step.intent", "step.succeeded"]


def test_wrong_schema_version_is_refused_with_both_numbers(tmp_path: Path) -> None:
    j = open_journal(tmp_path)
    j.close()
    with sqlite3.connect(j.path) as c:
        c.execute("UPDATE meta SET value='99' WHERE key='schema_version'")
    with pytest.raises(JournalError, match=f"version 99.*version {SCHEMA_VERSION}"):
        Journal.open(j.path, FakeClock())


def test_a_file_that_is_not_a_journal_is_refused(tmp_path: Path) -> None:
    bogus = tmp_path / "journal.db"
    bogus.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(JournalError, match="not a usable teardown journal"):
        Journal.open(bogus, FakeClock())


def test_opening_without_create_does_not_make_a_file(tmp_path: Path) -> None:
    with pytest.raises(JournalError, match="no journal"):
        Journal.open(tmp_path / "none.db", FakeClock(), create=False)
    assert not (tmp_path / "none.db").exists()


def _hold_lock(j: Journal, pid: int, host: str, at: str) -> None:
    with sqlite3.connect(j.path) as c:
        c.execute(
            "INSERT OR REPLACE INTO locks VALUES ('dev', 'other-run', ?, ?, ?, ?)",
            (pid, host, at, at),
        )


def test_lock_held_by_a_live_process_on_this_host_is_refused(tmp_path: Path) -> None:
    j = open_journal(tmp_path)
    import socket

    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        _hold_lock(j, child.pid, socket.gethostname(), FakeClock().now().isoformat())
        with pytest.raises(LockHeld) as info:
            j.acquire_lock("dev", "r1")
        assert info.value.pid == child.pid and info.value.run_id == "other-run"
    finally:
        child.kill()
        child.wait()
    j.acquire_lock("dev", "r1")  # the holder is dead: stale, taken over
    assert [e.type for e in j.events("other-run")] == ["lock.stale_taken_over"]


def test_lock_from_another_host_goes_stale_only_after_its_heartbeat_ages(tmp_path: Path) -> None:
    clock = FakeClock()
    j = open_journal(tmp_path, clock)
    _hold_lock(j, 1, "elsewhere", clock.now().isoformat())
    with pytest.raises(LockHeld):
        j.acquire_lock("dev", "r1", stale_after=timedelta(minutes=10))
    clock.advance(11 * 60)
    j.acquire_lock("dev", "r1", stale_after=timedelta(minutes=10))
    assert _lock_holder(j) == "r1"


def _lock_holder(j: Journal) -> str | None:
    with sqlite3.connect(j.path) as c:
        row = c.execute("SELECT run_id FROM locks WHERE scope='dev'").fetchone()
    return None if row is None else str(row[0])


def test_released_lock_can_be_taken_by_the_next_run(tmp_path: Path) -> None:
    j = open_journal(tmp_path)
    j.acquire_lock("dev", "r1")
    assert _lock_holder(j) == "r1"
    j.release_lock("dev", "r1")
    assert _lock_holder(j) is None
    _hold_lock(j, 1, "elsewhere", FakeClock().now().isoformat())
    j.release_lock("dev", "other-run")
    assert _lock_holder(j) is None
    j.acquire_lock("dev", "r2")
    assert _lock_holder(j) == "r2"
