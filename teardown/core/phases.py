"""Phases of resources, steps and runs, and the one table of allowed transitions."""

from __future__ import annotations

from enum import StrEnum

from teardown.core.errors import TeardownError


class Phase(StrEnum):
    """Where one resource is in its teardown."""

    PLANNED = "planned"
    """In the plan; nothing done yet."""
    BACKING_UP = "backing_up"
    """Backups are being made."""
    VERIFIED = "verified"
    """Every required backup is recorded as verified (or none is required)."""
    DESTROYING = "destroying"
    """Delete or unsubscribe has an intent in the journal."""
    DESTROYED = "destroyed"
    """The cloud confirmed the resource is gone (or kept to expiry by policy)."""
    CLOSING = "closing"
    """Billing close for this resource is running."""
    DONE = "done"
    """Nothing left to do."""
    FAILED = "failed"
    """A step failed; a resumed run continues from here."""
    BLOCKED = "blocked"
    """The plan says it cannot proceed; needs a person."""


TRANSITIONS: dict[Phase, frozenset[Phase]] = {
    Phase.PLANNED: frozenset({Phase.BACKING_UP, Phase.VERIFIED, Phase.BLOCKED, Phase.FAILED}),
    Phase.BACKING_UP: frozenset({Phase.VERIFIED, Phase.FAILED}),
    Phase.VERIFIED: frozenset({Phase.DESTROYING, Phase.CLOSING, Phase.FAILED}),
    Phase.DESTROYING: frozenset({Phase.DESTROYED, Phase.FAILED}),
    Phase.DESTROYED: frozenset({Phase.CLOSING, Phase.DONE}),
    Phase.CLOSING: frozenset({Phase.DONE, Phase.FAILED}),
    Phase.FAILED: frozenset(
        {Phase.BACKING_UP, Phase.VERIFIED, Phase.DESTROYING, Phase.CLOSING, Phase.FAILED}
    ),
    Phase.DONE: frozenset(),
    Phase.BLOCKED: frozenset(),
}
"""Allowed moves. VERIFIED -> CLOSING is the keep-to-expiry path (no destroy). A resumed run
re-enters from FAILED, or carries on from the phase it was killed in."""


class IllegalTransition(TeardownError):
    """A phase change the table does not allow: a bug, never a user error."""


def check_transition(current: Phase, new: Phase) -> None:
    """Raise IllegalTransition unless ``current -> new`` is allowed (same phase: a no-op)."""
    if current == new and current not in (Phase.DONE, Phase.BLOCKED):
        return
    if new not in TRANSITIONS[current]:
        raise IllegalTransition(f"phase {current} cannot move to {new}")


class StepStatus(StrEnum):
    """A step's record in the journal."""

    PENDING = "pending"
    """No intent yet."""
    STARTED = "started"
    """Intent written, outcome not yet: on resume, reconcile by asking the cloud."""
    SUCCEEDED = "succeeded"
    """Outcome written: done, never repeated."""
    FAILED = "failed"
    """Outcome written: failed; a resumed run may try again."""


STEP_TRANSITIONS: dict[StepStatus, frozenset[StepStatus]] = {
    StepStatus.PENDING: frozenset({StepStatus.STARTED}),
    StepStatus.STARTED: frozenset({StepStatus.SUCCEEDED, StepStatus.FAILED, StepStatus.STARTED}),
    StepStatus.FAILED: frozenset({StepStatus.STARTED}),
    StepStatus.SUCCEEDED: frozenset({StepStatus.FAILED}),
}
"""STARTED -> STARTED is a new attempt after reconciliation found the effect absent.
SUCCEEDED -> FAILED only for a backup found missing or changed before the destroy that relied
on it (``Journal.invalidate_backup``); a destroy or billing step that succeeded never goes back."""


class RunPhase(StrEnum):
    """Where a whole run is."""

    RUNNING = "running"
    """Started and not finished (or killed: resume it)."""
    COMPLETED = "completed"
    """Every resource is DONE."""
    PARTIALLY_FAILED = "partially_failed"
    """Some resources were destroyed, others failed: the report says what remains."""
    FAILED = "failed"
    """Nothing was destroyed and something failed."""
    BLOCKED = "blocked"
    """The plan was blocked; nothing was changed."""
