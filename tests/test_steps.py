"""The step-handler registry: every StepKind has exactly one handler, and a kind without one
stops the program at import, before any run can reach it."""

from __future__ import annotations

import enum
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import cast

import pytest

from teardown.core.model import ResourcePlan, Step, StepKind
from teardown.engine.steps import (
    HANDLERS,
    IncompleteRegistry,
    Outcome,
    StepContext,
    StepHandler,
    StepRegistry,
    check_complete,
)

ROOT = Path(__file__).resolve().parent.parent


def step_kinds(members: dict[str, str]) -> type[enum.StrEnum]:
    """An enum like StepKind with these members (name: value)."""
    return cast(type[enum.StrEnum], enum.StrEnum("StepKind", members))


def import_steps_with(extra_member: str | None) -> subprocess.CompletedProcess[str]:
    """Import teardown.engine.steps in a fresh interpreter, StepKind first given one more
    member (its name upper-cased) when ``extra_member`` is set."""
    script = textwrap.dedent(
        f"""
        import enum
        import teardown.core.model as model

        extra = {extra_member!r}
        if extra is not None:
            members = {{m.name: m.value for m in model.StepKind}}
            members[extra.upper()] = extra
            model.StepKind = enum.StrEnum("StepKind", members)
        try:
            import teardown.engine.steps
        except Exception as e:
            print(type(e).__name__, e)
            raise SystemExit(3)
        print("imported", sorted(teardown.engine.steps.HANDLERS.kinds()))
        """
    )
    return subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60
    )


def test_a_step_kind_without_a_handler_is_refused_naming_it() -> None:
    grown = step_kinds({**{m.name: m.value for m in StepKind}, "NEW_KIND": "new_kind"})
    with pytest.raises(IncompleteRegistry) as info:
        check_complete(HANDLERS, grown)
    assert info.value.missing == ("new_kind",)
    assert info.value.unknown == ()
    assert "no handler for step kind(s): new_kind" in str(info.value)


def test_importing_the_handlers_fails_when_a_step_kind_has_none() -> None:
    added = import_steps_with("new_kind")
    assert added.returncode == 3, added.stdout + added.stderr
    assert added.stdout.startswith("IncompleteRegistry no handler for step kind(s): new_kind")
    # The same import without the extra member succeeds: the failure is the missing handler.
    plain = import_steps_with(None)
    assert plain.returncode == 0, plain.stdout + plain.stderr
    assert plain.stdout.startswith("imported")


def test_the_registry_covers_exactly_the_step_kinds() -> None:
    check_complete(HANDLERS, StepKind)
    assert HANDLERS.kinds() == {k.value for k in StepKind}
    handlers = [HANDLERS.get(k) for k in StepKind]
    assert len({id(h) for h in handlers}) == len(StepKind)  # one of its own per kind


def test_a_handler_for_a_kind_that_no_longer_exists_is_refused() -> None:
    shrunk = step_kinds({m.name: m.value for m in StepKind if m is not StepKind.RECORD_REFUND})
    with pytest.raises(IncompleteRegistry) as info:
        check_complete(HANDLERS, shrunk)
    assert info.value.missing == ()
    assert info.value.unknown == ("record_refund",)


def test_a_step_kind_cannot_have_two_handlers() -> None:
    registry = StepRegistry()

    class Nothing(StepHandler):
        def do(self, ctx: StepContext, step: Step, rp: ResourcePlan, key: str) -> Outcome:
            return Outcome({})

        def reconcile(
            self, ctx: StepContext, step: Step, rp: ResourcePlan, key: str
        ) -> Outcome | None:
            return None

    registry.register(StepKind.DESTROY)(Nothing)
    with pytest.raises(ValueError, match="destroy already has a handler"):
        registry.register(StepKind.DESTROY)(Nothing)
    assert registry.kinds() == {"destroy"}


def test_only_side_effects_are_reconciled_before_a_retry() -> None:
    # A retry of a mutating step first asks the cloud whether the failed call took effect;
    # backups find their own earlier attempt by key, and reading refunds is harmless to repeat.
    mutating = {k for k in StepKind if HANDLERS.get(k).mutating}
    assert mutating == {
        StepKind.DESTROY,
        StepKind.CANCEL_PENDING_ORDER,
        StepKind.UNSUBSCRIBE_RENEWALS,
        StepKind.CANCEL_AUTO_RENEW,
        StepKind.KEEP_FROM_PAY_PER_USE,
    }
