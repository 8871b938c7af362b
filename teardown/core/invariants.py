"""The safety checks, each in one place; the runner asks them before every destroy and billing."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from teardown.core.model import DATA_KINDS, Artifact, ResourcePlan, Step


@dataclass(frozen=True)
class Verdict:
    """Whether an action may go ahead, and if not, why (one reason per missing condition)."""

    ok: bool
    reasons: tuple[str, ...] = ()


def may_destroy(rp: ResourcePlan, artifacts: Mapping[str, Artifact]) -> Verdict:
    """I1: every backup the plan requires for ``rp`` is recorded verified and survives its destroy.

    ``artifacts`` maps step id -> the artifact the journal recorded for that step.
    """
    reasons: list[str] = []
    if rp.blockers:
        reasons.extend(b.message for b in rp.blockers)
    if rp.resource.kind in DATA_KINDS and not rp.backups and not rp.loss_accepted:
        reasons.append(f"{rp.resource.urn} holds data and has no backup in the plan")
    for step in rp.backups:
        art = artifacts.get(step.id)
        if art is None:
            reasons.append(f"backup {step.kind} ({step.id}) has no recorded artifact")
        elif not art.verified:
            reasons.append(f"backup {step.kind} ({step.id}) is not verified: {art.detail}")
        elif not art.survives_destroy:
            reasons.append(f"backup {step.kind} ({step.id}) would not survive the destroy")
    return Verdict(ok=not reasons, reasons=tuple(reasons))


def may_close_billing(step: Step, succeeded: frozenset[str]) -> Verdict:
    """I4: a billing step runs only after the steps it follows (its destroy) succeeded."""
    missing = tuple(s for s in step.after if s not in succeeded)
    if missing:
        return Verdict(False, tuple(f"step {s} has not succeeded" for s in missing))
    return Verdict(True)
