"""The safety checks, each in one place; the runner asks them before every destroy and billing."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from teardown.core.model import DATA_KINDS, Artifact, ResourcePlan, Step, StepKind


@dataclass(frozen=True)
class Verdict:
    """Whether an action may go ahead, and if not, why (one reason per missing condition)."""

    ok: bool
    reasons: tuple[str, ...] = ()


def may_destroy(
    rp: ResourcePlan,
    artifacts: Mapping[str, Artifact],
    carried: Sequence[ResourcePlan] = (),
    cover: ResourcePlan | None = None,
) -> Verdict:
    """I1: every backup the plan requires for ``rp`` (and for the ``carried`` resources its
    destroy also deletes, Pulumi ``deletedWith``) is recorded verified, survives the destroy, and
    is a copy of this very resource made with these very settings (its recorded origin matches
    the step's expected one in full). Disks deleted with a server must each be held by a cloud
    backup of it.

    A disk covered by its server's whole-server backup (``rp.covered_by``; ``cover`` is that
    server's plan) must be held by one of that server's cloud backups: verified, surviving, a
    copy of that server as planned, and listing this disk among the disks it holds.

    ``artifacts`` maps step id -> the artifact the journal recorded for that step.
    """
    reasons: list[str] = []
    for plan in (rp, *carried):
        reasons.extend(_backups_hold(plan, artifacts))
    for plan in (rp, *carried):
        if plan.covered_by is not None:
            # a carried disk is usually held by the backup of the very server that carries it
            holder = rp if plan is not rp and plan.covered_by == rp.resource.urn else cover
            reasons.extend(_covered(plan, holder, artifacts))
    destroy = rp.destroy
    if destroy is not None and destroy.delete_volumes and not rp.loss_accepted:
        covered = {
            disk
            for step in rp.backups
            if step.kind is StepKind.SNAPSHOT and step.id in artifacts
            for disk in artifacts[step.id].covers
        }
        for d in rp.resource.disks:
            if not d.system and d.id not in covered:
                reasons.append(
                    f"disk {d.id} would be deleted with {rp.resource.name}, but no cloud backup "
                    "holds it"
                )
    return Verdict(ok=not reasons, reasons=tuple(reasons))


def _backups_hold(rp: ResourcePlan, artifacts: Mapping[str, Artifact]) -> list[str]:
    reasons: list[str] = []
    if rp.blockers:
        reasons.extend(b.message for b in rp.blockers)
    if (
        rp.resource.kind in DATA_KINDS
        and not rp.backups
        and not rp.loss_accepted
        and rp.covered_by is None
    ):
        reasons.append(f"{rp.resource.urn} holds data and has no backup in the plan")
    for step in rp.backups:
        art = artifacts.get(step.id)
        if art is None:
            reasons.append(f"backup {step.kind} ({step.id}) has no recorded artifact")
        elif not art.verified:
            reasons.append(f"backup {step.kind} ({step.id}) is not verified: {art.detail}")
        elif not art.survives_destroy:
            reasons.append(f"backup {step.kind} ({step.id}) would not survive the destroy")
        elif step.expect is not None and step.expect.differences(art.origin):
            reasons.append(
                f"backup {step.kind} ({step.id}) is not a copy of {rp.resource.name} as planned: "
                + "; ".join(step.expect.differences(art.origin))
            )
    return reasons


def _covered(
    rp: ResourcePlan, cover: ResourcePlan | None, artifacts: Mapping[str, Artifact]
) -> list[str]:
    """Reasons the server backup meant to hold disk ``rp`` does not (empty when one does)."""
    disk = rp.resource
    if cover is None or cover.resource.urn != rp.covered_by:
        return [f"{disk.name} is to be held by a backup of {rp.covered_by}, which is not planned"]
    if _backups_hold(cover, artifacts):
        return [f"{disk.name} is held by the backups of {cover.resource.name}, which do not hold"]
    holding = [
        s
        for s in cover.backups
        if s.kind is StepKind.SNAPSHOT
        and s.id in artifacts
        and disk.cloud_id in artifacts[s.id].covers
    ]
    if not holding:
        return [
            f"no cloud backup of {cover.resource.name} holds disk {disk.cloud_id} "
            f"({disk.name}): it is not backed up"
        ]
    return []


def may_close_billing(step: Step, succeeded: frozenset[str]) -> Verdict:
    """I4: a billing step runs only after the steps it follows (its destroy) succeeded."""
    missing = tuple(s for s in step.after if s not in succeeded)
    if missing:
        return Verdict(False, tuple(f"step {s} has not succeeded" for s in missing))
    return Verdict(True)
