"""Step handlers: what each kind of step does, and how to ask the cloud whether it already did.

One handler per ``StepKind``, registered under its kind and looked up by it, never switched on
(everything pluggable is registered by name). A new step kind gets a ``StepHandler`` subclass
here, decorated with ``@HANDLERS.register(StepKind.NEW)``; until it has one, importing this
module fails with ``IncompleteRegistry`` naming the kind, so no run (and no test) can start
with a step nobody knows how to perform.

Handlers see a narrow ``StepContext`` (the cloud's ports, the clock, progress events, the
destroy's order ids), never the runner or the journal: writing the intent before the call and the
outcome after it (I2) stays the runner's job.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from enum import Enum
from typing import Any, ClassVar, TypeVar

from teardown.core.errors import PermanentError, TeardownError, TransientError
from teardown.core.model import Artifact, DestroyAction, ResourcePlan, SnapshotKind, Step, StepKind
from teardown.engine.events import Event, Progress
from teardown.ports import (
    Billing,
    Clock,
    Destroyer,
    Fetcher,
    OrderState,
    Presence,
    RefundRecord,
    Snapshotter,
)

__all__ = [
    "HANDLERS",
    "IncompleteRegistry",
    "Outcome",
    "StepContext",
    "StepError",
    "StepHandler",
    "StepRegistry",
    "check_complete",
    "checked",
]


@dataclass(frozen=True)
class Outcome:
    """What a step produced: the result the journal records, and an artifact or refund."""

    result: dict[str, Any]
    artifact: Artifact | None = None
    refund: RefundRecord | None = None


class StepError(TeardownError):
    """A step ended without its effect (e.g. a backup that did not verify)."""


@dataclass(frozen=True)
class StepContext:
    """All a handler may use: the cloud's ports, the clock, a way to report progress, and the
    journal's answer to the one question a handler has for it."""

    run_id: str
    snapshotter: Snapshotter
    fetcher: Fetcher
    destroyer: Destroyer
    billing: Billing
    clock: Clock
    emit: Callable[[Event], None]
    """Delivers an event to the run's observers (a failing observer never fails the step)."""
    destroy_orders: Callable[[ResourcePlan], tuple[str, ...]]
    """The unsubscribe order ids the resource's destroy step recorded (empty if none)."""


class StepHandler(ABC):
    """Performs one kind of step, and tells whether a step whose outcome was lost took effect.

    Example::

        @HANDLERS.register(StepKind.CANCEL_AUTO_RENEW)
        class CancelAutoRenew(StepHandler):
            mutating = True

            def do(self, ctx, step, rp, key):
                ctx.billing.cancel_auto_renew(rp.resource, key)
                return Outcome({"auto_renew": False})

            def reconcile(self, ctx, step, rp, key):
                return None if ctx.billing.auto_renew(rp.resource) else Outcome({...})
    """

    mutating: ClassVar[bool] = False
    """A side effect the cloud may have performed before the call failed (a 500 after it
    acted): before trying again, the runner asks ``reconcile`` (I2: never repeat blindly)."""

    @abstractmethod
    def do(self, ctx: StepContext, step: Step, rp: ResourcePlan, key: str) -> Outcome:
        """Perform the step with idempotency key ``key``; raise a TeardownError if it failed."""

    @abstractmethod
    def reconcile(self, ctx: StepContext, step: Step, rp: ResourcePlan, key: str) -> Outcome | None:
        """Ask the cloud whether the step made with ``key`` took effect. None: it did not."""


H = TypeVar("H", bound=StepHandler)


class IncompleteRegistry(RuntimeError):
    """Step kinds without a handler, or handlers for kinds that do not exist: a programming
    error, found when the module is imported, before any run."""

    def __init__(self, missing: Iterable[str], unknown: Iterable[str] = ()) -> None:
        self.missing = tuple(sorted(missing))
        self.unknown = tuple(sorted(unknown))
        parts = []
        if self.missing:
            parts.append("no handler for step kind(s): " + ", ".join(self.missing))
        if self.unknown:
            parts.append("a handler for unknown step kind(s): " + ", ".join(self.unknown))
        super().__init__(
            "; ".join(parts) + " (every StepKind needs exactly one StepHandler in "
            "teardown/engine/steps.py)"
        )


class StepRegistry:
    """Handlers by step kind: registered once each, looked up by kind."""

    def __init__(self) -> None:
        self._handlers: dict[str, StepHandler] = {}

    def register(self, kind: StepKind) -> Callable[[type[H]], type[H]]:
        """A class decorator registering one handler (an instance of the class) for ``kind``."""

        def add(cls: type[H]) -> type[H]:
            if kind.value in self._handlers:
                held = type(self._handlers[kind.value]).__name__
                raise ValueError(f"step kind {kind.value} already has a handler ({held})")
            self._handlers[kind.value] = cls()
            return cls

        return add

    def get(self, kind: StepKind) -> StepHandler:
        """The handler for ``kind``."""
        try:
            return self._handlers[kind.value]
        except KeyError:
            raise PermanentError(f"no handler for step kind {kind}") from None

    def kinds(self) -> frozenset[str]:
        """The kinds (their values) that have a handler."""
        return frozenset(self._handlers)


def check_complete(registry: StepRegistry, kinds: Iterable[Enum]) -> None:
    """Raise IncompleteRegistry unless ``registry`` has a handler for exactly ``kinds``."""
    wanted = {str(k.value) for k in kinds}
    have = registry.kinds()
    if wanted != have:
        raise IncompleteRegistry(wanted - have, have - wanted)


def checked(step: Step, art: Artifact) -> Outcome:
    """A backup's outcome: verified, its origin completed with the creation time and settings
    of the step it was made for where the adapter could not observe them (a cloud backup knows
    neither); what the adapter observed stays as it is."""
    if not art.verified:
        raise StepError(f"backup {art.ref} not verified: {art.detail}")
    if step.expect is not None:
        origin = replace(
            art.origin,
            created_at=art.origin.created_at or step.expect.created_at,
            spec=art.origin.spec or step.expect.spec,
        )
        art = replace(art, origin=origin)
    return Outcome({"ref": art.ref, "kind": art.kind}, artifact=art)


HANDLERS = StepRegistry()
"""The handler of every StepKind (checked complete at import, at the end of this module)."""


@HANDLERS.register(StepKind.CANCEL_PENDING_ORDER)
class CancelPendingOrder(StepHandler):
    """Cancel an order still pending payment."""

    mutating = True

    def do(self, ctx: StepContext, step: Step, rp: ResourcePlan, key: str) -> Outcome:
        assert step.order_id is not None
        ctx.billing.cancel_order(step.order_id, key)
        return Outcome({"order_id": step.order_id, "state": "cancelled"})

    def reconcile(self, ctx: StepContext, step: Step, rp: ResourcePlan, key: str) -> Outcome | None:
        assert step.order_id is not None
        state = ctx.billing.order_state(step.order_id)
        if state is OrderState.CANCELLED:
            return Outcome({"order_id": step.order_id, "state": "cancelled"})
        if state is OrderState.PENDING_PAYMENT:
            return None
        raise PermanentError(f"order {step.order_id} is {state.value}, no longer pending payment")


@HANDLERS.register(StepKind.SNAPSHOT)
class Snapshot(StepHandler):
    """A cloud-side backup, found by its key before one is made, waited for until verified."""

    def do(self, ctx: StepContext, step: Step, rp: ResourcePlan, key: str) -> Outcome:
        r = rp.resource
        kind = step.snapshot or SnapshotKind.CBR
        ref = ctx.snapshotter.find(r, kind, key) or ctx.snapshotter.create(
            r, kind, key, retention_days=step.retention_days
        )
        return checked(step, ctx.snapshotter.wait(r, ref))

    def reconcile(self, ctx: StepContext, step: Step, rp: ResourcePlan, key: str) -> Outcome | None:
        r = rp.resource
        ref = ctx.snapshotter.find(r, step.snapshot or SnapshotKind.CBR, key)
        return None if ref is None else checked(step, ctx.snapshotter.wait(r, ref))


@HANDLERS.register(StepKind.PULL)
class Pull(StepHandler):
    """Files pulled over SSH into the store, with progress events while they come."""

    def do(self, ctx: StepContext, step: Step, rp: ResourcePlan, key: str) -> Outcome:
        assert step.pull is not None
        r = rp.resource
        began = ctx.clock.now()

        def progress(nbytes: int, files: int) -> None:
            elapsed = (ctx.clock.now() - began).total_seconds()
            rate = nbytes / elapsed if elapsed > 0 else 0.0
            ctx.emit(Progress(ctx.run_id, step.id, r.urn, nbytes, files, rate))

        return checked(step, ctx.fetcher.pull(r, step.pull, key, progress))

    def reconcile(self, ctx: StepContext, step: Step, rp: ResourcePlan, key: str) -> Outcome | None:
        assert step.pull is not None
        art = ctx.fetcher.find(rp.resource, step.pull, key)
        return None if art is None or not art.verified else checked(step, art)


@HANDLERS.register(StepKind.DESTROY)
class Destroy(StepHandler):
    """Delete or unsubscribe the resource (the runner has checked I1 just before)."""

    mutating = True

    def do(self, ctx: StepContext, step: Step, rp: ResourcePlan, key: str) -> Outcome:
        assert step.action is not None
        r = rp.resource
        if ctx.destroyer.presence(r) is Presence.GONE:
            # Already gone (e.g. a disk deleted together with its server): nothing to do.
            return Outcome({"already_gone": True})
        if step.action is DestroyAction.WITH_PARENT:
            raise PermanentError(
                f"{r.name} still exists after the destroy of {r.deleted_with} it is "
                "deleted with (Pulumi deletedWith); it was not destroyed on its own"
            )
        res = ctx.destroyer.destroy(r, step.action, key, delete_volumes=step.delete_volumes)
        if res.presence is not Presence.GONE:
            raise TransientError(f"{r.name} is still {res.presence.value} after destroy")
        return Outcome({"job_id": res.job_id, "order_ids": list(res.order_ids)})

    def reconcile(self, ctx: StepContext, step: Step, rp: ResourcePlan, key: str) -> Outcome | None:
        r = rp.resource
        presence = ctx.destroyer.presence(r)
        if presence is Presence.GONE:
            return Outcome({"reconciled": True})
        if presence is Presence.GOING:
            raise TransientError(f"{r.name} is still going away")
        return None


@HANDLERS.register(StepKind.UNSUBSCRIBE_RENEWALS)
class UnsubscribeRenewals(StepHandler):
    """Unsubscribe renewal periods not yet in effect."""

    mutating = True

    def do(self, ctx: StepContext, step: Step, rp: ResourcePlan, key: str) -> Outcome:
        orders = ctx.billing.unsubscribe_renewals(rp.resource, key)
        return Outcome({"order_ids": list(orders)})

    def reconcile(self, ctx: StepContext, step: Step, rp: ResourcePlan, key: str) -> Outcome | None:
        pending = ctx.billing.renewals_pending(rp.resource)
        return None if pending else Outcome({"reconciled": True})


@HANDLERS.register(StepKind.CANCEL_AUTO_RENEW)
class CancelAutoRenew(StepHandler):
    """Turn auto-renew off on a resource that is kept."""

    mutating = True

    def do(self, ctx: StepContext, step: Step, rp: ResourcePlan, key: str) -> Outcome:
        ctx.billing.cancel_auto_renew(rp.resource, key)
        return Outcome({"auto_renew": False})

    def reconcile(self, ctx: StepContext, step: Step, rp: ResourcePlan, key: str) -> Outcome | None:
        return None if ctx.billing.auto_renew(rp.resource) else Outcome({"auto_renew": False})


@HANDLERS.register(StepKind.KEEP_FROM_PAY_PER_USE)
class KeepFromPayPerUse(StepHandler):
    """Cancel "switch to pay-per-use at expiry": the resource then ends at expiry."""

    mutating = True

    def do(self, ctx: StepContext, step: Step, rp: ResourcePlan, key: str) -> Outcome:
        ctx.billing.keep_from_pay_per_use(rp.resource, key)
        return Outcome({"to_pay_per_use_at_expiry": False})

    def reconcile(self, ctx: StepContext, step: Step, rp: ResourcePlan, key: str) -> Outcome | None:
        switching = ctx.billing.expire_policy(rp.resource) == _TO_PAY_PER_USE
        return None if switching else Outcome({"to_pay_per_use_at_expiry": False})


_TO_PAY_PER_USE = 1
"""``Billing.expire_policy`` value "switch to pay-per-use at expiry" (see the port)."""


@HANDLERS.register(StepKind.RECORD_REFUND)
class RecordRefund(StepHandler):
    """Read the unsubscribe orders of a released resource: refund and fees."""

    def do(self, ctx: StepContext, step: Step, rp: ResourcePlan, key: str) -> Outcome:
        refund = ctx.billing.refund(rp.resource, ctx.destroy_orders(rp))
        return Outcome({"order_ids": list(refund.order_ids)}, refund=refund)

    def reconcile(self, ctx: StepContext, step: Step, rp: ResourcePlan, key: str) -> Outcome | None:
        return None  # read-only: simply read again


check_complete(HANDLERS, StepKind)
