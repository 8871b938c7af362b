"""One step, journal first (I2): the intent is written before the call and the outcome after.

A step found with an intent and no outcome is reconciled by asking the cloud; only when the
cloud says the effect is absent is the call made again. What a step does is its handler's
business (``teardown.engine.steps``); how any step is journalled, retried and reconciled is
decided here, once for all kinds.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import TypeVar

from teardown.core.errors import TeardownError
from teardown.core.model import BACKUP_STEPS, Artifact, Resource, ResourcePlan, Step, StepKind
from teardown.core.phases import StepStatus
from teardown.engine.events import Event, StepFailed, StepStarted, StepSucceeded
from teardown.engine.journal import Journal
from teardown.engine.steps import HANDLERS, Outcome, StepContext
from teardown.ports import Billing, Claims, Clock, Destroyer, Fetcher, Snapshotter
from teardown.support.retry import RetryPolicy

__all__ = ["Ports", "StepExecutor"]

T = TypeVar("T")


@dataclass(frozen=True)
class Ports:
    """The adapters a run needs."""

    snapshotter: Snapshotter
    fetcher: Fetcher
    destroyer: Destroyer
    billing: Billing
    claims: Claims | None = None
    """Claims on the cloud resources themselves (None: the journal's lock only)."""


class StepExecutor:
    """Runs steps of a runner's runs through their handlers, journal first.

    Example::

        steps = StepExecutor(journal, ports, clock=clock, retry=RetryPolicy(), emit=emit)
        ok = steps.run(run_id, step, resource_plan)   # False: recorded as failed
    """

    def __init__(
        self,
        journal: Journal,
        ports: Ports,
        *,
        clock: Clock,
        retry: RetryPolicy,
        sleep: Callable[[float], None] = time.sleep,
        emit: Callable[[Event], None],
        reuse_within: timedelta,
    ) -> None:
        self.journal = journal
        self.ports = ports
        self.clock = clock
        self.retry = retry
        self.sleep = sleep
        self.emit = emit
        self.reuse_within = reuse_within
        self.attempted: set[str] = set()
        """Steps tried in this process (their failures are final for this pass)."""
        self._scopes: dict[str, str] = {}

    def run(self, run_id: str, step: Step, rp: ResourcePlan) -> bool:
        """Run ``step`` (owned by ``rp``) unless the journal records it done. True on success;
        a failure is recorded in the journal and delivered as StepFailed, never raised."""
        self.attempted.add(step.id)
        rec = self.journal.step(run_id, step.id)
        if rec is not None and rec.status is StepStatus.SUCCEEDED:
            return True
        self.journal.heartbeat(self._scope(run_id), run_id)
        handler = HANDLERS.get(step.kind)
        ctx = self.context(run_id)
        if rec is not None and rec.status is StepStatus.STARTED:
            try:
                found = self._retrying(lambda: handler.reconcile(ctx, step, rp, rec.idem_key))
            except TeardownError as e:
                self.journal.record_failure(run_id, step.id, f"reconcile: {e}")
                self.emit(StepFailed(run_id, step.id, step.urn, step.kind, str(e)))
                return False
            if found is not None:
                self._succeeded(run_id, step, found, reconciled=True)
                return True
        attempt = (rec.attempt if rec else 0) + 1
        key = self.key(run_id, step, attempt)
        if rec is None and step.kind in BACKUP_STEPS and self._reuse(run_id, step, rp, key):
            return True
        self.journal.record_intent(run_id, step, key)
        self.emit(StepStarted(run_id, step.id, step.urn, step.kind, attempt))
        tried = False

        def once() -> Outcome:
            # A transient failure may hide an effect that happened (a 500 after the cloud acted):
            # before trying a side effect again, ask the cloud (I2: never repeat blindly).
            nonlocal tried
            if tried and handler.mutating:
                found = handler.reconcile(ctx, step, rp, key)
                if found is not None:
                    return found
            tried = True
            return handler.do(ctx, step, rp, key)

        try:
            outcome = self._retrying(once)
        except TeardownError as e:
            self.journal.record_failure(run_id, step.id, str(e))
            self.emit(StepFailed(run_id, step.id, step.urn, step.kind, str(e)))
            return False
        self._succeeded(run_id, step, outcome)
        return True

    def context(self, run_id: str) -> StepContext:
        """What the handlers of ``run_id``'s steps may use."""
        p = self.ports
        return StepContext(
            run_id=run_id,
            snapshotter=p.snapshotter,
            fetcher=p.fetcher,
            destroyer=p.destroyer,
            billing=p.billing,
            clock=self.clock,
            emit=self.emit,
            destroy_orders=lambda rp: self._destroy_orders(run_id, rp),
        )

    def confirm(self, step: Step, resource: Resource, art: Artifact) -> str | None:
        """None when the backup recorded for ``step`` still exists and is intact; else why not."""
        if step.kind is StepKind.PULL:
            assert step.pull is not None
            return self.ports.fetcher.check(resource, step.pull, art)
        return self.ports.snapshotter.check(resource, art)

    @staticmethod
    def key(run_id: str, step: Step, attempt: int) -> str:
        """The idempotency key of one attempt of ``step``."""
        # Pulls resume into the same store location (files verified there are not sent again;
        # the rest is compared with the host anew). Other steps get a fresh key per run and
        # attempt: a failed cloud-side backup is never mistaken for the new one, and an old
        # backup is never found by its key (only reused, within backup.reuse_within).
        if step.kind is StepKind.PULL:
            return step.id
        return f"{step.id}-{run_id}-{attempt}"

    def _succeeded(
        self, run_id: str, step: Step, out: Outcome, *, reconciled: bool = False
    ) -> None:
        self.journal.record_success(
            run_id, step.id, out.result, artifact=out.artifact, refund=out.refund
        )
        self.emit(StepSucceeded(run_id, step.id, step.urn, step.kind, reconciled=reconciled))

    def _reuse(self, run_id: str, step: Step, rp: ResourcePlan, key: str) -> bool:
        """Reuse a backup another run (or a Pulumi hook) made of this very resource with these
        very settings (the step id says both) within ``reuse_within``, after checking it is
        still there and intact. True when reused."""
        if self.reuse_within <= timedelta(0):
            return False
        since = self.clock.now() - self.reuse_within
        earlier = self.journal.verified_artifacts([step.id], since).get(step.id)
        if earlier is None or earlier.run_id == run_id:
            return False
        art = earlier.artifact
        if step.expect is not None and step.expect.differences(art.origin):
            return False  # an artifact of another machine or settings: never counted
        try:
            problem = self._retrying(lambda: self.confirm(step, rp.resource, art))
        except TeardownError:
            problem = "could not be checked"
        if problem is not None:
            return False  # gone or changed since: make a new one
        made_at = earlier.made_at.isoformat()
        self.journal.record_intent(run_id, step, key)
        self.journal.record_success(
            run_id,
            step.id,
            {"ref": art.ref, "reused_from": earlier.run_id, "made_at": made_at},
            artifact=art,
        )
        self.emit(
            StepSucceeded(
                run_id,
                step.id,
                step.urn,
                step.kind,
                reconciled=True,
                reused_from=earlier.run_id,
                made_at=made_at,
            )
        )
        return True

    def _destroy_orders(self, run_id: str, rp: ResourcePlan) -> tuple[str, ...]:
        """The unsubscribe order ids the destroy step recorded (empty if it was reconciled)."""
        if rp.destroy is None:
            return ()
        rec = self.journal.step(run_id, rp.destroy.id)
        return tuple(rec.result.get("order_ids", ())) if rec else ()

    def _scope(self, run_id: str) -> str:
        scope = self._scopes.get(run_id)
        if scope is None:
            scope = self._scopes[run_id] = self.journal.run(run_id).scope
        return scope

    def _retrying(self, fn: Callable[[], T]) -> T:
        result: T = self.retry.retrying(sleep=self.sleep)(fn)
        return result
