"""Typed events the runner delivers to observers (progress bars, JSON lines, reports)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from teardown.core.model import StepKind
from teardown.core.phases import Phase, RunPhase


@dataclass(frozen=True)
class RunStarted:
    run_id: str
    scope: str
    resources: int
    resumed: bool


@dataclass(frozen=True)
class PhaseChanged:
    run_id: str
    urn: str
    phase: Phase
    detail: str = ""


@dataclass(frozen=True)
class StepStarted:
    run_id: str
    step_id: str
    urn: str
    kind: StepKind
    attempt: int


@dataclass(frozen=True)
class StepSucceeded:
    run_id: str
    step_id: str
    urn: str
    kind: StepKind
    reconciled: bool = False
    """True when a lost outcome was recovered by asking the cloud instead of repeating the call."""
    reused_from: str | None = None
    """A backup: the run that made it, when an earlier verified backup was reused."""
    made_at: str | None = None
    """A reused backup: when it was made (ISO 8601)."""

    @property
    def reuse_note(self) -> str:
        """``reused from run X (made at T)``, or '' when nothing was reused."""
        if self.reused_from is None:
            return ""
        return f"reused from run {self.reused_from} (made at {self.made_at})"


@dataclass(frozen=True)
class StepFailed:
    run_id: str
    step_id: str
    urn: str
    kind: StepKind
    error: str


@dataclass(frozen=True)
class Progress:
    """A pull moving data: bytes and files so far in this step, and the rate (bytes/s)."""

    run_id: str
    step_id: str
    urn: str
    bytes: int
    files: int
    rate: float = 0.0


@dataclass(frozen=True)
class RunFinished:
    run_id: str
    phase: RunPhase


Event = (
    RunStarted | PhaseChanged | StepStarted | StepSucceeded | StepFailed | Progress | RunFinished
)
Observer = Callable[[Event], None]
