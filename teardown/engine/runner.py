"""The runner: executes a plan through the ports, journal first, invariants checked in one place.

Order of work (each stage in parallel across resources, bounded by ``parallel``):

1. cancel orders pending payment (allowed before anything else, I4);
2. backups, each verified; a resource is VERIFIED only when all of its backups are;
3. destroys, in waves that respect the plan's ``after`` edges, each gated by ``may_destroy`` (I1)
   evaluated on what the *journal* records, not on in-memory results;
4. billing close, each gated by ``may_close_billing`` (I4).

Every side effect is an intent in the journal first and an outcome after (I2): each step runs
that way in ``engine.execution`` through its kind's handler in ``engine.steps``; the run's cloud
claims and heartbeats are ``engine.claims``.
"""

from __future__ import annotations

import dataclasses
import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial
from typing import TypeVar

from teardown.core.errors import JournalError, TeardownError, UnfinishedRun
from teardown.core.invariants import may_close_billing, may_destroy
from teardown.core.model import (
    DestroyAction,
    Kind,
    Plan,
    Resource,
    ResourcePlan,
    Step,
    StepKind,
)
from teardown.core.phases import Phase, RunPhase, StepStatus
from teardown.engine.claims import CLAIM_SETTLE, CLAIM_STALE, HEARTBEAT_EVERY, RunClaims
from teardown.engine.codec import plan_digest, plan_from_json, plan_to_json
from teardown.engine.events import (
    Event,
    Observer,
    PhaseChanged,
    RunFinished,
    RunStarted,
    StepFailed,
)
from teardown.engine.execution import Ports, StepExecutor
from teardown.engine.journal import VAULT_FACT, Journal
from teardown.ports import Clock, Presence
from teardown.support.retry import RetryPolicy

__all__ = [
    "CLAIM_SETTLE",
    "CLAIM_STALE",
    "HEARTBEAT_EVERY",
    "ORDER_TYPE",
    "REUSE_BACKUPS_FOR",
    "Ports",
    "RunResult",
    "Runner",
    "new_run_id",
]


@dataclass(frozen=True)
class RunResult:
    """How a run ended, per resource."""

    run_id: str
    phase: RunPhase
    phases: dict[str, Phase]
    errors: dict[str, str] = field(default_factory=dict)


T = TypeVar("T")
REUSE_BACKUPS_FOR = timedelta(hours=1)
"""By default, a backup of the same machine with the same settings verified by another run (or
a Pulumi hook) this recently is reused, not redone (``backup.reuse_within``)."""

ORDER_TYPE = "teardown:billing:PendingOrder"
"""The type of the stand-in resource an account-level pending order is journalled under."""

PRESENCE_UNKNOWN = "teardown:presence-unknown"
"""A journal fact: the cloud could not say whether a resource still exists (``urn``,
``error``)."""

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
        self._steps = StepExecutor(
            journal,
            ports,
            clock=clock,
            retry=self.retry,
            sleep=sleep,
            emit=self._emit,
            reuse_within=reuse_within,
        )
        self._claims = RunClaims(
            ports.claims,
            journal,
            clock=clock,
            host=self.host,
            retry=self.retry,
            sleep=sleep,
            heartbeat_every=heartbeat_every,
            claim_settle=claim_settle,
            warn=self._warn,
        )

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
                self._claims.take(plan, run_id)  # wherever the other run's journal is
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
            self._claims.take(plan, run_id)
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

    def cloud_presence(self, run_id: str, urn: str) -> Presence | None:
        """What the cloud says of ``urn`` of run ``run_id`` now (with the retry policy), or None
        when it cannot tell; the error is then recorded as a :data:`PRESENCE_UNKNOWN` fact.

        After someone else's destroy (Pulumi's) this is the proof: GONE or GOING means the
        delete happened in the cloud, EXISTS that it did not (Pulumi also calls its delete hooks
        for ``retainOnDelete``, ``deletedWith`` and external resources)."""
        plan = plan_from_json(self.journal.run(run_id).plan_json, f"journal run {run_id}")
        resource = plan.resource_plan(urn).resource
        try:
            return self._retrying(lambda: self.ports.destroyer.presence(resource))
        except TeardownError as e:
            self.journal.record_fact(run_id, PRESENCE_UNKNOWN, {"urn": urn, "error": str(e)})
            return None

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
        try:
            with self._claims.beating(run_id, plan):
                return self._execute_plan(run_id, plan)
        finally:
            self._claims.release(plan, run_id)

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
            failed = self._failed(run_id) & self._steps.attempted
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
        self._record_vault(run_id, plan)

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
            return
        self._move(run_id, urn, Phase.FAILED, "destroy failed")
        # A refused unsubscribe must not turn into a renewal: auto-renew off (after the same
        # verified backups; the resource stays, so nothing is lost).
        for step in rp.fallback:
            if may_close_billing(step, frozenset(self._succeeded(run_id))).ok:
                self._run_step(run_id, step, rp)

    def _may_go(
        self, run_id: str, rp: ResourcePlan, plan: Plan, what: str, *, own_claim: bool = True
    ) -> bool:
        """I1 at the moment of the destroy: the journal records every backup verified, of this
        very resource (``may_destroy``), and each still exists and matches its checksums now.
        A backup found gone or changed is invalidated (a resume makes it anew); the resource
        fails with the backup named."""
        carried = [plan.resource_plan(u) for u in rp.carries if u in _urns(plan)]
        try:
            taken = self._claims.still_ours(run_id, rp) if own_claim else None
        except TeardownError as e:
            taken = f"its claim could not be checked: {e}"
        if taken is not None:
            self._fail_resource(run_id, rp, f"refused to {what}: {rp.resource.name} is {taken}")
            return False
        cover = plan.resource_plan(rp.covered_by) if rp.covered_by in _urns(plan) else None
        verdict = may_destroy(rp, self.journal.artifacts(run_id), carried, cover)
        if not verdict.ok:
            self._fail_resource(run_id, rp, f"refused to {what}: " + "; ".join(verdict.reasons))
            return False
        artifacts = self.journal.artifacts(run_id)
        problems: list[str] = []
        for owner in (rp, *carried, *((cover,) if cover is not None else ())):
            for step in owner.backups:
                try:
                    problem = self._retrying(
                        partial(self._steps.confirm, step, owner.resource, artifacts[step.id])
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

    def _run_step(self, run_id: str, step: Step, rp: ResourcePlan) -> bool:
        """One step, journal first (I2); False when it failed (recorded, not raised)."""
        return self._steps.run(run_id, step, rp)

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

    def _phase(self, run_id: str, urn: str) -> Phase:
        return self.journal.resource_phases(run_id).get(urn, Phase.PLANNED)

    def _move(self, run_id: str, urn: str, phase: Phase, detail: str = "") -> None:
        if self._phase(run_id, urn) is phase and not detail:
            return
        self.journal.set_phase(run_id, urn, phase, detail)
        self._emit(PhaseChanged(run_id, urn, phase, detail))

    def _record_vault(self, run_id: str, plan: Plan) -> None:
        """The backup vaults as the cloud reports them after this run's backups: they bill
        while they exist, so the report lists them (recorded in the journal)."""
        days = {s.retention_days for s in plan.steps if s.kind is StepKind.SNAPSHOT}
        if not days:
            return
        try:
            vaults = self._retrying(self.ports.snapshotter.vaults)
        except TeardownError as e:
            self.journal.record_fact(run_id, VAULT_FACT, {"error": str(e)})
            return
        fact = {"vaults": [dataclasses.asdict(v) for v in vaults], "retention_days": max(days)}
        self.journal.record_fact(run_id, VAULT_FACT, fact)

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

    def _warn(self, warning: str) -> None:
        with self._warn_lock:
            self.warnings.append(warning)

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
