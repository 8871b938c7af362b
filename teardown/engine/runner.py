"""The runner: executes a plan through the ports, journal first, invariants checked in one place.

Order of work (each stage in parallel across resources, bounded by ``parallel``):

1. cancel orders pending payment (allowed before anything else, I4);
2. backups, each verified; a resource is VERIFIED only when all of its backups are;
3. destroys, in waves that respect the plan's ``after`` edges, each gated by ``may_destroy`` (I1)
   evaluated on what the *journal* records, not on in-memory results;
4. billing close, each gated by ``may_close_billing`` (I4).

Every side effect is an intent in the journal first and an outcome after (I2). A step found with
an intent and no outcome is reconciled by asking the cloud; only when the cloud says the effect is
absent is the call made again.
"""

from __future__ import annotations

import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import timedelta
from functools import partial
from typing import Any, TypeVar

from teardown.core.errors import (
    ClaimHeld,
    JournalError,
    PermanentError,
    TeardownError,
    TransientError,
    UnfinishedRun,
)
from teardown.core.invariants import may_close_billing, may_destroy
from teardown.core.model import (
    BACKUP_STEPS,
    Artifact,
    DestroyAction,
    Kind,
    Plan,
    Resource,
    ResourcePlan,
    SnapshotKind,
    Step,
    StepKind,
)
from teardown.core.phases import Phase, RunPhase, StepStatus
from teardown.engine.codec import plan_digest, plan_from_json, plan_to_json
from teardown.engine.events import (
    Event,
    Observer,
    PhaseChanged,
    Progress,
    RunFinished,
    RunStarted,
    StepFailed,
    StepStarted,
    StepSucceeded,
)
from teardown.engine.journal import Journal
from teardown.ports import (
    Billing,
    Claim,
    Claims,
    Clock,
    Destroyer,
    Fetcher,
    OrderState,
    Presence,
    RefundRecord,
    Snapshotter,
)
from teardown.support.retry import RetryPolicy


@dataclass(frozen=True)
class Ports:
    """The adapters a run needs."""

    snapshotter: Snapshotter
    fetcher: Fetcher
    destroyer: Destroyer
    billing: Billing
    claims: Claims | None = None
    """Claims on the cloud resources themselves (None: the journal's lock only)."""


@dataclass(frozen=True)
class RunResult:
    """How a run ended, per resource."""

    run_id: str
    phase: RunPhase
    phases: dict[str, Phase]
    errors: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class _Outcome:
    result: dict[str, Any]
    artifact: Artifact | None = None
    refund: RefundRecord | None = None


class _StepError(TeardownError):
    """A step ended without its effect (e.g. a backup that did not verify)."""


T = TypeVar("T")
CLAIM_STALE = timedelta(minutes=10)
"""A claim (or a journal lock) whose run has not said it is alive for this long is stale."""
HEARTBEAT_EVERY = 60.0
"""Seconds between heartbeats of a running run (journal lock and cloud claims), whatever the
step is doing (a long backup included)."""
CLAIM_SETTLE = 0.5
"""Seconds to wait after claiming before reading the claims back (two runs that claimed at the
same moment then both see that they did, and neither acts)."""
REUSE_BACKUPS_FOR = timedelta(hours=1)
"""By default, a backup of the same machine with the same settings verified by another run (or
a Pulumi hook) this recently is reused, not redone (``backup.reuse_within``)."""
_MUTATING = frozenset(
    {
        StepKind.DESTROY,
        StepKind.CANCEL_PENDING_ORDER,
        StepKind.UNSUBSCRIBE_RENEWALS,
        StepKind.CANCEL_AUTO_RENEW,
    }
)

ORDER_TYPE = "teardown:billing:PendingOrder"
"""The type of the stand-in resource an account-level pending order is journalled under."""

_FINISHED = (Phase.DONE, Phase.BLOCKED)
_DESTROYED_OR_LATER = (Phase.DESTROYED, Phase.CLOSING, Phase.DONE)


def _order_plan(step: Step) -> ResourcePlan:
    """A stand-in owner for an account-level pending order (not tied to a planned resource)."""
    order = Resource(
        urn=step.urn,
        type=ORDER_TYPE,
        kind=Kind.STATELESS,
        name=step.order_id or step.urn,
    )
    return ResourcePlan(resource=order, action=DestroyAction.KEEP)


def _urns(plan: Plan) -> set[str]:
    return {rp.resource.urn for rp in plan.resources}


def new_run_id(clock: Clock) -> str:
    """``YYYYmmddTHHMMSSZ-xxxxxx``: sortable, unique enough for one journal."""
    return clock.now().strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(3)


class Runner:
    """Runs plans. One Runner per journal; thread-safe only through the journal.

    Example::

        runner = Runner(journal, ports, clock=SystemClock(), retry=RetryPolicy())
        result = runner.start(plan)          # or runner.resume(run_id)
    """

    def __init__(
        self,
        journal: Journal,
        ports: Ports,
        *,
        clock: Clock,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        parallel: int = 4,
        observers: Sequence[Observer] = (),
        reuse_within: timedelta = REUSE_BACKUPS_FOR,
        heartbeat_every: float = HEARTBEAT_EVERY,
        claim_settle: float = CLAIM_SETTLE,
        host: str | None = None,
    ) -> None:
        self.journal = journal
        self.reuse_within = reuse_within
        self.heartbeat_every = heartbeat_every
        self.claim_settle = claim_settle
        self.host = host or socket.gethostname()
        self.ports = ports
        self.clock = clock
        self.retry = retry or RetryPolicy()
        self.sleep = sleep
        self.parallel = max(1, parallel)
        self.observers = list(observers)
        self.warnings: list[str] = []
        """What went wrong around the run, not in it (an observer that failed)."""
        self._warn_lock = threading.Lock()
        self._scopes: dict[str, str] = {}
        self._attempted: set[str] = set()
        """Steps tried in this process (their failures are final for this pass)."""

    # -- entry points --------------------------------------------------------------------

    def start(self, plan: Plan, run_id: str | None = None) -> RunResult:
        """Record the plan as a new run and execute it. A blocked plan changes nothing."""
        run_id = run_id or new_run_id(self.clock)
        text = plan_to_json(plan)
        self.journal.acquire_lock(plan.scope, run_id)
        try:
            # An unfinished run is resumed, never forgotten by a new one (I6).
            unfinished = self.journal.unfinished_runs(plan.scope)
            if unfinished:
                raise UnfinishedRun(plan.scope, unfinished[0].id, unfinished[0].phase.value)
            if not plan.blocked:
                self._take_claims(plan, run_id)  # wherever the other run's journal is
            self.journal.create_run(run_id, plan.scope, text, plan_digest(text))
            self._emit(RunStarted(run_id, plan.scope, len(plan.resources), resumed=False))
            if plan.blocked:
                for rp in plan.resources:
                    if rp.blockers:
                        self._move(
                            run_id,
                            rp.resource.urn,
                            Phase.BLOCKED,
                            "; ".join(b.message for b in rp.blockers),
                        )
                return self._finish(run_id, RunPhase.BLOCKED)
            return self._execute(run_id, plan)
        finally:
            self.journal.release_lock(plan.scope, run_id)

    def resume(self, run_id: str) -> RunResult:
        """Continue an interrupted or partially failed run from what the journal records."""
        rec = self.journal.run(run_id)
        plan = plan_from_json(rec.plan_json, f"journal run {run_id}")
        if rec.phase in (RunPhase.COMPLETED, RunPhase.BLOCKED):
            return self._result(run_id, rec.phase)
        self.journal.acquire_lock(plan.scope, run_id)
        try:
            self._take_claims(plan, run_id)
            self._emit(RunStarted(run_id, plan.scope, len(plan.resources), resumed=True))
            if rec.phase is not RunPhase.RUNNING:
                self.journal.set_run_phase(run_id, RunPhase.RUNNING)
            return self._execute(run_id, plan)
        finally:
            self.journal.release_lock(plan.scope, run_id)

    def guard(self, plan: Plan, run_id: str, lock_scope: str | None = None) -> RunResult:
        """Back up (and cancel pending orders) for a destroy that someone else performs, e.g.
        Pulumi's engine calling a ``before_delete`` hook. Nothing is destroyed here; the run
        stays RUNNING until ``external_destroy_done``. Idempotent: calling it again resumes."""
        try:
            rec = self.journal.run(run_id)
        except JournalError:
            rec = None
        lock = lock_scope or plan.scope
        self.journal.acquire_lock(lock, run_id)
        try:
            if rec is None:
                text = plan_to_json(plan)
                self.journal.create_run(run_id, plan.scope, text, plan_digest(text))
            elif rec.phase is not RunPhase.RUNNING:
                self.journal.set_run_phase(run_id, RunPhase.RUNNING)
            self._emit(RunStarted(run_id, plan.scope, len(plan.resources), resumed=rec is not None))
            urns = {rp.resource.urn for rp in plan.resources}
            for step in plan.pre:
                owner = plan.resource_plan(step.urn) if step.urn in urns else _order_plan(step)
                self._run_step(run_id, step, owner)
            self._parallel(lambda rp: self._backups(run_id, rp), plan.resources)
            return self._result(run_id, RunPhase.RUNNING)
        finally:
            self.journal.release_lock(lock, run_id)

    def ready(self, run_id: str, urn: str) -> tuple[str, ...]:
        """For a destroy someone else performs (after ``guard``): the reasons ``urn`` may not be
        destroyed now, empty when it may. The same check as before the runner's own destroys:
        every backup recorded verified, of this very resource, and still there and intact."""
        plan = plan_from_json(self.journal.run(run_id).plan_json, f"journal run {run_id}")
        rp = plan.resource_plan(urn)
        # The destroy is someone else's (Pulumi's, perhaps driven by a run that claimed it).
        if self._may_go(run_id, rp, plan, "destroy", own_claim=False):
            return ()
        return (self.journal.resource_details(run_id).get(urn) or "not ready",)

    def external_destroy_done(
        self, run_id: str, urn: str, lock_scope: str | None = None
    ) -> RunResult:
        """Record that ``urn`` was destroyed outside the runner (after ``guard`` verified its
        backups), then run its billing close (I4)."""
        plan = plan_from_json(self.journal.run(run_id).plan_json, f"journal run {run_id}")
        rp = plan.resource_plan(urn)
        lock = lock_scope or plan.scope
        self.journal.acquire_lock(lock, run_id)
        try:
            if rp.destroy is not None and rp.destroy.id not in self._succeeded(run_id):
                phase = self._phase(run_id, urn)
                if phase is Phase.FAILED:
                    self._move(run_id, urn, Phase.VERIFIED)
                if self._phase(run_id, urn) is Phase.VERIFIED:
                    self._move(run_id, urn, Phase.DESTROYING)
                rec = self.journal.step(run_id, rp.destroy.id)
                if rec is None or rec.status is not StepStatus.STARTED:
                    self.journal.record_intent(run_id, rp.destroy, f"{rp.destroy.id}-external")
                self.journal.record_success(run_id, rp.destroy.id, {"destroyed_by": "external"})
                self._move(run_id, urn, Phase.DESTROYED)
            self._close(run_id, rp, plan)
            done = self.journal.resource_phases(run_id).get(urn) is Phase.DONE
            return self._finish(run_id, RunPhase.COMPLETED if done else RunPhase.PARTIALLY_FAILED)
        finally:
            self.journal.release_lock(lock, run_id)

    # -- stages --------------------------------------------------------------------------

    def _execute(self, run_id: str, plan: Plan) -> RunResult:
        stop = threading.Event()
        beat = threading.Thread(
            target=self._heartbeats, args=(run_id, plan, stop), name="heartbeat", daemon=True
        )
        beat.start()
        try:
            return self._execute_plan(run_id, plan)
        finally:
            stop.set()
            beat.join()
            self._release_claims(plan, run_id)

    def _execute_plan(self, run_id: str, plan: Plan) -> RunResult:
        phases = self.journal.resource_phases(run_id)
        live = [rp for rp in plan.resources if phases.get(rp.resource.urn) not in _FINISHED]

        urns = {rp.resource.urn for rp in plan.resources}
        for step in plan.pre:
            owner = plan.resource_plan(step.urn) if step.urn in urns else _order_plan(step)
            self._run_step(run_id, step, owner)

        self._parallel(lambda rp: self._backups(run_id, rp), live)

        pending = [rp for rp in live if rp.destroy is not None]
        while pending:
            done = self._succeeded(run_id)
            # Only a failure of this pass is final here: a step that failed in an earlier run
            # (before a resume) is retried when its own resource comes up.
            failed = self._failed(run_id) & self._attempted
            ready = [rp for rp in pending if rp.destroy and set(rp.destroy.after) <= done]
            stuck = [
                rp
                for rp in pending
                if rp not in ready and rp.destroy and set(rp.destroy.after) & failed
            ]
            for rp in stuck:
                if self._phase(run_id, rp.resource.urn) is not Phase.FAILED:
                    self._fail_resource(run_id, rp, "waits for a step that failed")
            if not ready:
                for rp in pending:
                    if rp not in stuck and self._phase(run_id, rp.resource.urn) is not Phase.FAILED:
                        self._fail_resource(run_id, rp, "waits for a step that did not run")
                break
            self._parallel(lambda rp: self._destroy(run_id, rp, plan), ready)
            pending = [rp for rp in pending if rp not in ready and rp not in stuck]

        self._parallel(lambda rp: self._close(run_id, rp, plan), live)

        final = self.journal.resource_phases(run_id)
        succeeded = self._succeeded(run_id)
        if all(final.get(rp.resource.urn) is Phase.DONE for rp in plan.resources):
            phase = RunPhase.COMPLETED
        elif any(rp.destroy and rp.destroy.id in succeeded for rp in plan.resources):
            phase = RunPhase.PARTIALLY_FAILED
        else:
            phase = RunPhase.FAILED
        return self._finish(run_id, phase)

    def _backups(self, run_id: str, rp: ResourcePlan) -> None:
        urn = rp.resource.urn
        phase = self._phase(run_id, urn)
        if phase not in (Phase.PLANNED, Phase.BACKING_UP, Phase.FAILED):
            return
        succeeded = self._succeeded(run_id)
        if all(s.id in succeeded for s in rp.backups):
            self._move(run_id, urn, Phase.VERIFIED)
            return
        self._move(run_id, urn, Phase.BACKING_UP)
        ok = True
        for step in rp.backups:
            ok = self._run_step(run_id, step, rp) and ok
        if ok:
            self._move(run_id, urn, Phase.VERIFIED)
        else:
            self._move(run_id, urn, Phase.FAILED, "a backup failed; nothing destroyed")

    def _destroy(self, run_id: str, rp: ResourcePlan, plan: Plan) -> None:
        urn = rp.resource.urn
        assert rp.destroy is not None
        phase = self._phase(run_id, urn)
        if phase in _DESTROYED_OR_LATER:
            return
        if phase is Phase.FAILED and self._backups_done(run_id, rp):
            self._move(run_id, urn, Phase.VERIFIED)
            phase = Phase.VERIFIED
        if phase not in (Phase.VERIFIED, Phase.DESTROYING):
            return
        if not self._may_go(run_id, rp, plan, "destroy"):
            return
        self._move(run_id, urn, Phase.DESTROYING)
        if self._run_step(run_id, rp.destroy, rp):
            self._move(run_id, urn, Phase.DESTROYED)
        else:
            self._move(run_id, urn, Phase.FAILED, "destroy failed")

    # -- claims and heartbeats (I6 across journals and machines) --------------------------

    @staticmethod
    def _claimed(plan: Plan) -> list[Resource]:
        """What a run acts on: resources it destroys or whose billing it closes."""
        return [rp.resource for rp in plan.resources if rp.destroy is not None or rp.billing]

    def _live(self, claim: Claim) -> bool:
        return claim.beat is not None and self.clock.now() - claim.beat < CLAIM_STALE

    def _refuse_others(self, plan: Plan, held: dict[str, Claim], run_id: str) -> None:
        names = {rp.resource.urn: rp.resource.name for rp in plan.resources}
        for urn, claim in sorted(held.items()):
            if claim.run_id != run_id and self._live(claim):
                beat = claim.beat.isoformat() if claim.beat else "unknown"
                raise ClaimHeld(names.get(urn, urn), claim.run_id, claim.host, beat)

    def _take_claims(self, plan: Plan, run_id: str) -> None:
        """Claim every resource the run acts on, in the cloud itself: refused (ClaimHeld)
        when another live run claims one, or claimed one at the same moment."""
        claims = self.ports.claims
        resources = self._claimed(plan)
        if claims is None or not resources:
            return
        self._refuse_others(plan, self._retrying(lambda: claims.holders(resources)), run_id)
        self._retrying(lambda: claims.claim(resources, run_id, self.host, self.clock.now()))
        self.sleep(self.claim_settle)
        held = self._retrying(lambda: claims.holders(resources))
        if any(c.run_id != run_id for c in held.values()):
            self._retrying(lambda: claims.release(resources, run_id))
            self._refuse_others(plan, held, run_id)

    def _release_claims(self, plan: Plan, run_id: str) -> None:
        claims = self.ports.claims
        if claims is None:
            return
        try:
            self._retrying(lambda: claims.release(self._claimed(plan), run_id))
        except TeardownError as e:
            self.warnings.append(f"claims could not be removed (they expire by themselves): {e}")

    def _heartbeats(self, run_id: str, plan: Plan, stop: threading.Event) -> None:
        """Every ``heartbeat_every`` seconds while the run works, however long a step takes:
        the journal lock's heartbeat and the cloud claims' beat. A failure is a warning (the
        lock and the claims go stale after 10 minutes, and a run checks its claim before each
        destroy)."""
        claims = self.ports.claims
        while not stop.wait(self.heartbeat_every):
            try:
                self.journal.heartbeat(plan.scope, run_id)
                if claims is not None:
                    claims.claim(self._claimed(plan), run_id, self.host, self.clock.now())
            except Exception as e:  # a heartbeat must never kill the run
                with self._warn_lock:
                    self.warnings.append(f"a heartbeat failed: {type(e).__name__}: {e}")

    def _claim_still_ours(self, run_id: str, rp: ResourcePlan) -> str | None:
        """Just before a destroy: why the resource is not ours to destroy, or None."""
        claims = self.ports.claims
        if claims is None:
            return None
        held = self._retrying(lambda: claims.holders([rp.resource])).get(rp.resource.urn)
        if held is not None and held.run_id != run_id and self._live(held):
            return f"claimed by run {held.run_id} on {held.host or 'an unknown host'}"
        return None

    def _may_go(
        self, run_id: str, rp: ResourcePlan, plan: Plan, what: str, *, own_claim: bool = True
    ) -> bool:
        """I1 at the moment of the destroy: the journal records every backup verified, of this
        very resource (``may_destroy``), and each still exists and matches its checksums now.
        A backup found gone or changed is invalidated (a resume makes it anew); the resource
        fails with the backup named."""
        carried = [plan.resource_plan(u) for u in rp.carries if u in _urns(plan)]
        try:
            taken = self._claim_still_ours(run_id, rp) if own_claim else None
        except TeardownError as e:
            taken = f"its claim could not be checked: {e}"
        if taken is not None:
            self._fail_resource(run_id, rp, f"refused to {what}: {rp.resource.name} is {taken}")
            return False
        verdict = may_destroy(rp, self.journal.artifacts(run_id), carried)
        if not verdict.ok:
            self._fail_resource(run_id, rp, f"refused to {what}: " + "; ".join(verdict.reasons))
            return False
        artifacts = self.journal.artifacts(run_id)
        problems: list[str] = []
        for owner in (rp, *carried):
            for step in owner.backups:
                try:
                    problem = self._retrying(
                        partial(self._confirm, step, owner.resource, artifacts[step.id])
                    )
                except TeardownError as e:
                    problems.append(f"could not confirm backup {step.kind} ({step.id}): {e}")
                    continue
                if problem is not None:
                    why = f"backup {step.kind} ({step.id}) of {owner.resource.name}: {problem}"
                    self.journal.invalidate_backup(run_id, step.id, why)
                    self._emit(StepFailed(run_id, step.id, step.urn, step.kind, why))
                    problems.append(why + " (a resume makes it anew)")
        if problems:
            self._fail_resource(run_id, rp, f"refused to {what}: " + "; ".join(problems))
            return False
        return True

    def _confirm(self, step: Step, resource: Resource, art: Artifact) -> str | None:
        """None when the backup recorded for ``step`` still exists and is intact; else why not."""
        if step.kind is StepKind.PULL:
            assert step.pull is not None
            return self.ports.fetcher.check(resource, step.pull, art)
        return self.ports.snapshotter.check(resource, art)

    def _close(self, run_id: str, rp: ResourcePlan, plan: Plan) -> None:
        urn = rp.resource.urn
        phase = self._phase(run_id, urn)
        kept = rp.destroy is None
        if phase is Phase.DESTROYED and not rp.billing:
            self._move(run_id, urn, Phase.DONE)
            return
        if phase is Phase.FAILED:
            # Resume into billing only from a billing failure: destroy done, or nothing to destroy.
            if not (self._backups_done(run_id, rp) and (kept or self._destroy_done(run_id, rp))):
                return
        elif not (phase in (Phase.DESTROYED, Phase.CLOSING) or (phase is Phase.VERIFIED and kept)):
            return
        # Unsubscribing renewals dooms the data at expiry: the same I1 gate as a destroy.
        if kept and rp.billing and not self._may_go(run_id, rp, plan, "close"):
            return
        self._move(run_id, urn, Phase.CLOSING)
        why = ""
        for step in rp.billing:
            verdict = may_close_billing(step, frozenset(self._succeeded(run_id)))
            if not verdict.ok:
                why = "; ".join(verdict.reasons)
                break
            if not self._run_step(run_id, step, rp):
                why = f"{step.kind} failed"
        if why:
            self._move(run_id, urn, Phase.FAILED, f"billing close failed: {why}")
        else:
            self._move(run_id, urn, Phase.DONE)

    # -- one step, journal first (I2) ----------------------------------------------------

    def _run_step(self, run_id: str, step: Step, rp: ResourcePlan) -> bool:
        self._attempted.add(step.id)
        rec = self.journal.step(run_id, step.id)
        if rec is not None and rec.status is StepStatus.SUCCEEDED:
            return True
        self.journal.heartbeat(self._scope(run_id), run_id)
        if rec is not None and rec.status is StepStatus.STARTED:
            try:
                found = self._retrying(lambda: self._reconcile(step, rp, rec.idem_key))
            except TeardownError as e:
                self.journal.record_failure(run_id, step.id, f"reconcile: {e}")
                self._emit(StepFailed(run_id, step.id, step.urn, step.kind, str(e)))
                return False
            if found is not None:
                self.journal.record_success(
                    run_id, step.id, found.result, artifact=found.artifact, refund=found.refund
                )
                self._emit(StepSucceeded(run_id, step.id, step.urn, step.kind, reconciled=True))
                return True
        attempt = (rec.attempt if rec else 0) + 1
        key = self._key(run_id, step, attempt)
        if rec is None and step.kind in BACKUP_STEPS and self._reuse(run_id, step, rp, key):
            return True
        self.journal.record_intent(run_id, step, key)
        self._emit(StepStarted(run_id, step.id, step.urn, step.kind, attempt))
        tried = False

        def once() -> _Outcome:
            # A transient failure may hide an effect that happened (a 500 after the cloud acted):
            # before trying a side effect again, ask the cloud (I2: never repeat blindly).
            nonlocal tried
            if tried and step.kind in _MUTATING:
                found = self._reconcile(step, rp, key)
                if found is not None:
                    return found
            tried = True
            return self._do(run_id, step, rp, key)

        try:
            outcome = self._retrying(once)
        except TeardownError as e:
            self.journal.record_failure(run_id, step.id, str(e))
            self._emit(StepFailed(run_id, step.id, step.urn, step.kind, str(e)))
            return False
        self.journal.record_success(
            run_id, step.id, outcome.result, artifact=outcome.artifact, refund=outcome.refund
        )
        self._emit(StepSucceeded(run_id, step.id, step.urn, step.kind))
        return True

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
            problem = self._retrying(lambda: self._confirm(step, rp.resource, art))
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
        self._emit(
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

    @staticmethod
    def _key(run_id: str, step: Step, attempt: int) -> str:
        # Pulls resume into the same store location (files verified there are not sent again;
        # the rest is compared with the host anew). Other steps get a fresh key per run and
        # attempt: a failed cloud-side backup is never mistaken for the new one, and an old
        # backup is never found by its key (only reused, within backup.reuse_within).
        if step.kind is StepKind.PULL:
            return step.id
        return f"{step.id}-{run_id}-{attempt}"

    def _do(self, run_id: str, step: Step, rp: ResourcePlan, key: str) -> _Outcome:
        p = self.ports
        r = rp.resource
        match step.kind:
            case StepKind.SNAPSHOT:
                kind = step.snapshot or SnapshotKind.CBR
                ref = p.snapshotter.find(r, kind, key) or p.snapshotter.create(r, kind, key)
                return self._checked(step, p.snapshotter.wait(r, ref))
            case StepKind.PULL:
                assert step.pull is not None

                began = self.clock.now()

                def progress(nbytes: int, files: int) -> None:
                    elapsed = (self.clock.now() - began).total_seconds()
                    rate = nbytes / elapsed if elapsed > 0 else 0.0
                    self._emit(Progress(run_id, step.id, r.urn, nbytes, files, rate))

                return self._checked(step, p.fetcher.pull(r, step.pull, key, progress))
            case StepKind.DESTROY:
                assert step.action is not None
                if p.destroyer.presence(r) is Presence.GONE:
                    # Already gone (e.g. a disk deleted together with its server): nothing to do.
                    return _Outcome({"already_gone": True})
                if step.action is DestroyAction.WITH_PARENT:
                    raise PermanentError(
                        f"{r.name} still exists after the destroy of {r.deleted_with} it is "
                        "deleted with (Pulumi deletedWith); it was not destroyed on its own"
                    )
                res = p.destroyer.destroy(r, step.action, key, delete_volumes=step.delete_volumes)
                if res.presence is not Presence.GONE:
                    raise TransientError(f"{r.name} is still {res.presence.value} after destroy")
                return _Outcome({"job_id": res.job_id, "order_ids": list(res.order_ids)})
            case StepKind.CANCEL_PENDING_ORDER:
                assert step.order_id is not None
                p.billing.cancel_order(step.order_id, key)
                return _Outcome({"order_id": step.order_id, "state": "cancelled"})
            case StepKind.UNSUBSCRIBE_RENEWALS:
                orders = p.billing.unsubscribe_renewals(r, key)
                return _Outcome({"order_ids": list(orders)})
            case StepKind.CANCEL_AUTO_RENEW:
                p.billing.cancel_auto_renew(r, key)
                return _Outcome({"auto_renew": False})
            case StepKind.RECORD_REFUND:
                refund = p.billing.refund(r, self._destroy_orders(run_id, rp))
                return _Outcome({"order_ids": list(refund.order_ids)}, refund=refund)
        raise PermanentError(f"no handler for step kind {step.kind}")  # pragma: no cover

    def _reconcile(self, step: Step, rp: ResourcePlan, key: str) -> _Outcome | None:
        """Ask the cloud whether a step whose outcome was lost took effect. None: it did not."""
        p = self.ports
        r = rp.resource
        match step.kind:
            case StepKind.SNAPSHOT:
                kind = step.snapshot or SnapshotKind.CBR
                ref = p.snapshotter.find(r, kind, key)
                return None if ref is None else self._checked(step, p.snapshotter.wait(r, ref))
            case StepKind.PULL:
                assert step.pull is not None
                art = p.fetcher.find(r, step.pull, key)
                return None if art is None or not art.verified else self._checked(step, art)
            case StepKind.DESTROY:
                presence = p.destroyer.presence(r)
                if presence is Presence.GONE:
                    return _Outcome({"reconciled": True})
                if presence is Presence.GOING:
                    raise TransientError(f"{r.name} is still going away")
                return None
            case StepKind.CANCEL_PENDING_ORDER:
                assert step.order_id is not None
                state = p.billing.order_state(step.order_id)
                if state is OrderState.CANCELLED:
                    return _Outcome({"order_id": step.order_id, "state": "cancelled"})
                if state is OrderState.PENDING_PAYMENT:
                    return None
                raise PermanentError(
                    f"order {step.order_id} is {state.value}, no longer pending payment"
                )
            case StepKind.UNSUBSCRIBE_RENEWALS:
                return None if p.billing.renewals_pending(r) else _Outcome({"reconciled": True})
            case StepKind.CANCEL_AUTO_RENEW:
                return None if p.billing.auto_renew(r) else _Outcome({"auto_renew": False})
            case StepKind.RECORD_REFUND:
                return None  # read-only: simply read again
        raise PermanentError(f"no handler for step kind {step.kind}")  # pragma: no cover

    def _destroy_orders(self, run_id: str, rp: ResourcePlan) -> tuple[str, ...]:
        """The unsubscribe order ids the destroy step recorded (empty if it was reconciled)."""
        if rp.destroy is None:
            return ()
        rec = self.journal.step(run_id, rp.destroy.id)
        return tuple(rec.result.get("order_ids", ())) if rec else ()

    @staticmethod
    def _checked(step: Step, art: Artifact) -> _Outcome:
        """A backup's outcome: verified, its origin completed with the creation time and
        settings of the step it was made for where the adapter could not observe them (a cloud
        backup knows neither); what the adapter observed stays as it is."""
        if not art.verified:
            raise _StepError(f"backup {art.ref} not verified: {art.detail}")
        if step.expect is not None:
            origin = replace(
                art.origin,
                created_at=art.origin.created_at or step.expect.created_at,
                spec=art.origin.spec or step.expect.spec,
            )
            art = replace(art, origin=origin)
        return _Outcome({"ref": art.ref, "kind": art.kind}, artifact=art)

    # -- helpers -------------------------------------------------------------------------

    def _retrying(self, fn: Callable[[], T]) -> T:
        result: T = self.retry.retrying(sleep=self.sleep)(fn)
        return result

    def _parallel(self, fn: Callable[[ResourcePlan], None], items: Iterable[ResourcePlan]) -> None:
        items = list(items)
        if self.parallel == 1 or len(items) <= 1:
            for it in items:
                fn(it)
            return
        with ThreadPoolExecutor(max_workers=self.parallel) as pool:
            for fut in [pool.submit(fn, it) for it in items]:
                fut.result()

    def _scope(self, run_id: str) -> str:
        scope = self._scopes.get(run_id)
        if scope is None:
            scope = self._scopes[run_id] = self.journal.run(run_id).scope
        return scope

    def _phase(self, run_id: str, urn: str) -> Phase:
        return self.journal.resource_phases(run_id).get(urn, Phase.PLANNED)

    def _move(self, run_id: str, urn: str, phase: Phase, detail: str = "") -> None:
        if self._phase(run_id, urn) is phase and not detail:
            return
        self.journal.set_phase(run_id, urn, phase, detail)
        self._emit(PhaseChanged(run_id, urn, phase, detail))

    def _fail_resource(self, run_id: str, rp: ResourcePlan, why: str) -> None:
        self._move(run_id, rp.resource.urn, Phase.FAILED, why)

    def _succeeded(self, run_id: str) -> set[str]:
        return {s.step_id for s in self.journal.steps(run_id) if s.status is StepStatus.SUCCEEDED}

    def _failed(self, run_id: str) -> set[str]:
        return {s.step_id for s in self.journal.steps(run_id) if s.status is StepStatus.FAILED}

    def _backups_done(self, run_id: str, rp: ResourcePlan) -> bool:
        done = self._succeeded(run_id)
        return all(s.id in done for s in rp.backups)

    def _destroy_done(self, run_id: str, rp: ResourcePlan) -> bool:
        return rp.destroy is not None and rp.destroy.id in self._succeeded(run_id)

    def _finish(self, run_id: str, phase: RunPhase) -> RunResult:
        self.journal.set_run_phase(run_id, phase)
        self._emit(RunFinished(run_id, phase))
        return self._result(run_id, phase)

    def _result(self, run_id: str, phase: RunPhase) -> RunResult:
        return RunResult(
            run_id=run_id,
            phase=phase,
            phases=self.journal.resource_phases(run_id),
            errors={u: d for u, d in self.journal.resource_details(run_id).items() if d},
        )

    def _emit(self, event: Event) -> None:
        """Deliver an event. An observer that fails (an events file on a full disk, a closed
        terminal) is dropped with a warning: what the cloud and the journal say decides the
        run, never a failure to show it."""
        for obs in list(self.observers):
            try:
                obs(event)
            except Exception as e:
                with self._warn_lock:
                    if obs in self.observers:
                        self.observers.remove(obs)
                        label = getattr(obs, "label", type(obs).__name__)
                        self.warnings.append(
                            f"stopped delivering events to {label}: {type(e).__name__}: {e}"
                        )
