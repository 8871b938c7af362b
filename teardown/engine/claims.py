"""One run per resource anywhere (I6 across journals and machines): a run claims what it acts
on in the cloud itself, and a heartbeat keeps that claim and the journal lock alive while the
run works, however long a step takes."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import TypeVar

from teardown.core.errors import ClaimHeld, TeardownError
from teardown.core.model import Plan, Resource, ResourcePlan
from teardown.engine.journal import Journal
from teardown.ports import Claim, Claims, Clock
from teardown.support.retry import RetryPolicy

__all__ = ["CLAIM_SETTLE", "CLAIM_STALE", "HEARTBEAT_EVERY", "RunClaims", "claimed"]

T = TypeVar("T")
CLAIM_STALE = timedelta(minutes=10)
"""A claim (or a journal lock) whose run has not said it is alive for this long is stale."""
HEARTBEAT_EVERY = 60.0
"""Seconds between heartbeats of a running run (journal lock and cloud claims), whatever the
step is doing (a long backup included)."""
CLAIM_SETTLE = 0.5
"""Seconds to wait after claiming before reading the claims back (two runs that claimed at the
same moment then both see that they did, and neither acts)."""


def claimed(plan: Plan) -> list[Resource]:
    """What a run acts on: resources it destroys or whose billing it closes."""
    return [rp.resource for rp in plan.resources if rp.destroy is not None or rp.billing]


class RunClaims:
    """A runner's claims on cloud resources (the Claims port; None: the journal's lock only)
    and the heartbeat timer of its runs.

    Example::

        claims.take(plan, run_id)              # ClaimHeld when another live run holds one
        try:
            with claims.beating(run_id, plan):
                ...                            # the run's work
        finally:
            claims.release(plan, run_id)
    """

    def __init__(
        self,
        claims: Claims | None,
        journal: Journal,
        *,
        clock: Clock,
        host: str,
        retry: RetryPolicy,
        sleep: Callable[[float], None] = time.sleep,
        heartbeat_every: float = HEARTBEAT_EVERY,
        claim_settle: float = CLAIM_SETTLE,
        warn: Callable[[str], None],
    ) -> None:
        self.claims = claims
        self.journal = journal
        self.clock = clock
        self.host = host
        self.retry = retry
        self.sleep = sleep
        self.heartbeat_every = heartbeat_every
        self.claim_settle = claim_settle
        self.warn = warn
        """Records what went wrong around the run, not in it (thread-safe)."""

    def take(self, plan: Plan, run_id: str) -> None:
        """Claim every resource the run acts on, in the cloud itself: refused (ClaimHeld)
        when another live run claims one, or claimed one at the same moment."""
        claims = self.claims
        resources = claimed(plan)
        if claims is None or not resources:
            return
        self._refuse_others(plan, self._retrying(lambda: claims.holders(resources)), run_id)
        self._retrying(lambda: claims.claim(resources, run_id, self.host, self.clock.now()))
        self.sleep(self.claim_settle)
        held = self._retrying(lambda: claims.holders(resources))
        if any(c.run_id != run_id for c in held.values()):
            self._retrying(lambda: claims.release(resources, run_id))
            self._refuse_others(plan, held, run_id)

    def release(self, plan: Plan, run_id: str) -> None:
        """Remove the run's claims; a failure is a warning (claims expire by themselves)."""
        claims = self.claims
        if claims is None:
            return
        try:
            self._retrying(lambda: claims.release(claimed(plan), run_id))
        except TeardownError as e:
            self.warn(f"claims could not be removed (they expire by themselves): {e}")

    def still_ours(self, run_id: str, rp: ResourcePlan) -> str | None:
        """Just before a destroy: why the resource is not ours to destroy, or None."""
        claims = self.claims
        if claims is None:
            return None
        held = self._retrying(lambda: claims.holders([rp.resource])).get(rp.resource.urn)
        if held is not None and held.run_id != run_id and self._live(held):
            return f"claimed by run {held.run_id} on {held.host or 'an unknown host'}"
        return None

    @contextmanager
    def beating(self, run_id: str, plan: Plan) -> Iterator[None]:
        """Heartbeats on a timer thread for as long as the block runs."""
        stop = threading.Event()
        beat = threading.Thread(
            target=self._heartbeats, args=(run_id, plan, stop), name="heartbeat", daemon=True
        )
        beat.start()
        try:
            yield
        finally:
            stop.set()
            beat.join()

    def _heartbeats(self, run_id: str, plan: Plan, stop: threading.Event) -> None:
        """Every ``heartbeat_every`` seconds while the run works, however long a step takes:
        the journal lock's heartbeat and the cloud claims' beat. A failure is a warning (the
        lock and the claims go stale after 10 minutes, and a run checks its claim before each
        destroy)."""
        claims = self.claims
        while not stop.wait(self.heartbeat_every):
            try:
                self.journal.heartbeat(plan.scope, run_id)
                if claims is not None:
                    claims.claim(claimed(plan), run_id, self.host, self.clock.now())
            except Exception as e:  # a heartbeat must never kill the run
                self.warn(f"a heartbeat failed: {type(e).__name__}: {e}")

    def _live(self, claim: Claim) -> bool:
        return claim.beat is not None and self.clock.now() - claim.beat < CLAIM_STALE

    def _refuse_others(self, plan: Plan, held: dict[str, Claim], run_id: str) -> None:
        names = {rp.resource.urn: rp.resource.name for rp in plan.resources}
        for urn, claim in sorted(held.items()):
            if claim.run_id != run_id and self._live(claim):
                beat = claim.beat.isoformat() if claim.beat else "unknown"
                raise ClaimHeld(names.get(urn, urn), claim.run_id, claim.host, beat)

    def _retrying(self, fn: Callable[[], T]) -> T:
        result: T = self.retry.retrying(sleep=self.sleep)(fn)
        return result
