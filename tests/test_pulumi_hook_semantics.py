"""teardown's Pulumi hooks under the engine's real semantics (pulumi/pulumi
``pkg/resource/deploy/step.go`` and ``deployment.go``; the Python SDK's
``sdk/python/lib/pulumi/runtime/_callbacks.py``):

* the delete hooks also run for ``retainOnDelete``, ``deletedWith`` and external resources, which
  are not deleted in the cloud: after-delete is not proof of deletion;
* from CLI 3.238 an error of an after-delete hook fails the deployment although the delete is
  committed: the hook records the failure and ``teardown resume`` finishes the billing;
* top-level secret outputs reach a hook as secret ``Output`` objects (``outputtify_secrets``);
* the engine calls the hooks of parallel deletes at once: the hooks must not hold the
  program's event loop.

The hooks run against the sandbox, as in ``test_pulumi_hooks.py``.
"""

from __future__ import annotations

import asyncio
import json
import threading
import weakref
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any

import pulumi
import pytest
from click.testing import CliRunner

from teardown import pulumi as teardown_pulumi
from teardown.adapters.huawei.clients import Clients
from teardown.adapters.huawei.destroyer import HuaweiDestroyer
from teardown.adapters.huawei.inventory import HuaweiInventory
from teardown.adapters.huawei.profile import load_profile
from teardown.adapters.pulumi.automation import StackConfigValue
from teardown.adapters.pulumi.state import resource_from_outputs
from teardown.app import pulumi_hooks as hook_logic
from teardown.app.pulumi_hooks import (
    CLOSE_DEFERRED,
    NOT_DELETED,
    DeleteRefused,
    HookSettings,
    after_delete,
    before_delete,
    run_id_for,
)
from teardown.cli.main import cli
from teardown.core.errors import TeardownError
from teardown.core.model import DestroyAction, StepKind
from teardown.core.phases import Phase
from teardown.engine.journal import Journal
from teardown.sandbox.config import Faults
from teardown.sandbox.runtime import Sandbox
from teardown.support.clock import SystemClock
from tests.test_pulumi_hooks import SERVER, outputs, sandbox, urn

__all__ = ["sandbox"]  # the fixture, shared with test_pulumi_hooks.py

BSS_OPERATIONS = (
    "bss.ListCustomerOrders",
    "bss.ShowCustomerOrderDetails",
    "bss.ShowRefundOrderDetails",
    "bss.ListPayPerUseCustomerResources",
    "bss.CancelResourcesSubscription",
    "bss.CancelAutoRenewalResources",
)


def journal_of(settings: HookSettings) -> Journal:
    assert settings.config is not None
    return Journal.open(settings.config.parent / "journal.db", SystemClock(), create=False)


def sandbox_calls(sb: Sandbox, prefix: str) -> list[str]:
    assert sb.store is not None
    rows = sb.store.conn.execute("SELECT operation FROM calls ORDER BY id")
    return [r[0] for r in rows if r[0].startswith(prefix)]


def unsubscribe_as_the_provider_does(sb: Sandbox, name: str) -> None:
    """pulumi-huaweicloud deletes a prepaid server by unsubscribing it."""
    profile = load_profile(sb.layout.profile)
    (server,) = [r for r in HuaweiInventory(Clients(profile)).resources() if r.name == name]
    HuaweiDestroyer(Clients(profile), poll_interval=0.05).destroy(
        server, DestroyAction.UNSUBSCRIBE, "pulumi"
    )


def run_in_new_loop(coro: Coroutine[Any, Any, None]) -> None:
    """Run ``coro`` in a loop of its own, leaving the thread's current loop alone (``asyncio.run``
    would unset it, and the Pulumi mocks of other tests use it)."""
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(coro)
    finally:
        loop.close()


def facts(journal: Journal, run_id: str, type_: str) -> list[dict[str, Any]]:
    return [dict(e.data) for e in journal.events(run_id) if e.type == type_]


# -- after-delete is not proof of deletion ---------------------------------------------------


def test_after_delete_of_a_retained_resource_closes_no_billing_and_says_why(
    sandbox: tuple[Sandbox, HookSettings],
) -> None:
    sb, settings = sandbox
    out = outputs(sb, "cache-1")  # prepaid: an unsubscribe would release it
    before_delete(urn("cache-1"), SERVER, out, None, settings)
    bss_before = sandbox_calls(sb, "bss.")

    # retainOnDelete: the engine drops it from state and calls the delete hooks, but nothing
    # deletes it in the cloud.
    warning = after_delete(urn("cache-1"), SERVER, out, None, settings)

    assert warning is None
    since = sandbox_calls(sb, "bss.")[len(bss_before) :]
    # Only reads (the presence check asks BSS whether a prepaid server is closed): no unsubscribe,
    # no auto-renew change, no order cancelled.
    assert since and all(op.startswith(("bss.List", "bss.Show")) for op in since), since
    run_id = run_id_for("dev", urn("cache-1"), out["id"])
    with journal_of(settings) as journal:
        (fact,) = facts(journal, run_id, NOT_DELETED)
        assert fact["urn"] == urn("cache-1")
        assert "still exists in the cloud" in fact["why"] and "retainOnDelete" in fact["why"]
        assert journal.billing_records(run_id) == []
        assert journal.resource_phases(run_id)[urn("cache-1")] is Phase.VERIFIED
    names = {r.name for r in HuaweiInventory(Clients(load_profile(sb.layout.profile))).resources()}
    assert "cache-1" in names  # still there, still the user's


def test_after_delete_of_a_deleted_resource_records_the_refund_once(
    sandbox: tuple[Sandbox, HookSettings],
) -> None:
    sb, settings = sandbox
    out = outputs(sb, "cache-1")
    before_delete(urn("cache-1"), SERVER, out, None, settings)
    unsubscribe_as_the_provider_does(sb, "cache-1")

    assert after_delete(urn("cache-1"), SERVER, out, None, settings) is None
    assert after_delete(urn("cache-1"), SERVER, out, None, settings) is None  # a second call

    run_id = run_id_for("dev", urn("cache-1"), out["id"])
    with journal_of(settings) as journal:
        (record,) = journal.billing_records(run_id)
        assert record.refund.refund > 0
        assert facts(journal, run_id, NOT_DELETED) == []
        assert journal.resource_phases(run_id)[urn("cache-1")] is Phase.DONE
    assert sandbox_calls(sb, "bss.CancelResourcesSubscription") == [
        "bss.CancelResourcesSubscription"
    ]  # the provider's own, none of teardown's


def test_a_failing_billing_close_after_delete_does_not_raise_and_resume_finishes_it(
    sandbox: tuple[Sandbox, HookSettings],
) -> None:
    sb, settings = sandbox
    out = outputs(sb, "cache-1")
    before_delete(urn("cache-1"), SERVER, out, None, settings)
    unsubscribe_as_the_provider_does(sb, "cache-1")
    assert sb.api is not None
    app = sb.api.app
    healthy = app.config
    app.config = replace(healthy, faults=Faults(server_error=dict.fromkeys(BSS_OPERATIONS, 1.0)))

    warning = after_delete(urn("cache-1"), SERVER, out, None, settings)  # must not raise

    run_id = run_id_for("dev", urn("cache-1"), out["id"])
    assert warning is not None and "billing close of cache-1 failed" in warning
    assert f"teardown resume {run_id}" in warning
    with journal_of(settings) as journal:
        (fact,) = facts(journal, run_id, CLOSE_DEFERRED)
        assert fact["urn"] == urn("cache-1")
        assert journal.billing_records(run_id) == []
        (destroy,) = [s for s in journal.steps(run_id) if s.kind is StepKind.DESTROY]
        assert destroy.result == {"destroyed_by": "external"}

    app.config = healthy
    result = CliRunner().invoke(
        cli,
        ["resume", run_id, "--profile", str(settings.profile), "--config", str(settings.config)],
    )
    assert result.exit_code == 0, result.output
    with journal_of(settings) as journal:
        (record,) = journal.billing_records(run_id)
        assert record.refund.refund > 0
        assert journal.resource_phases(run_id)[urn("cache-1")] is Phase.DONE


# -- the Pulumi side: secrets, args.id, and parallel hooks -----------------------------------


class _Hooks:
    """Hooks made by ``teardown.pulumi`` for one test, with the SDK's registration replaced by
    a record (registration needs the engine's callback server; what is tested here is what the
    registered function does with the arguments the SDK builds)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.made: dict[str, Callable[[pulumi.ResourceHookArgs], Any]] = {}
        made = self.made

        class Recorded:
            def __init__(self, name: str, func: Callable[[pulumi.ResourceHookArgs], Any]) -> None:
                made[name] = func
                self.name = name

        monkeypatch.setattr(teardown_pulumi, "_HOOKS", weakref.WeakKeyDictionary())
        monkeypatch.setattr(pulumi, "ResourceHook", Recorded)
        monkeypatch.setattr(pulumi, "ResourceHookBinding", lambda **kw: kw, raising=True)

    def make(self, fn: Any, name: str = "t") -> Callable[[pulumi.ResourceHookArgs], Any]:
        teardown_pulumi._hook(name, fn, None)
        return self.made[name]


def secret_args(**extra: Any) -> pulumi.ResourceHookArgs:
    """Arguments as the SDK builds them for a delete hook: ``outputtify_secrets`` turns each
    top-level secret into a secret Output; nested secrets stay in their serialized form."""
    nested = {"4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270", "value": "x"}
    return pulumi.ResourceHookArgs(
        urn=urn("web-1"),
        id="srv-123",
        name="web-1",
        type=SERVER,
        old_outputs={
            "name": "web-1",
            "adminPass": pulumi.Output.secret("hunter2"),
            "metadata": {"token": nested, "role": "web"},
            **extra,
        },
        old_inputs={"adminPass": pulumi.Output.secret("hunter2"), "name": "web-1"},
    )


def test_secret_outputs_are_dropped_without_warning_text_or_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PULUMI_ERROR_OUTPUT_STRING", "true")
    warned: list[str] = []
    monkeypatch.setattr(pulumi.log, "warn", lambda msg, *a, **k: warned.append(msg))
    monkeypatch.setattr(teardown_pulumi, "_settings", lambda pull: HookSettings(scope="dev"))
    seen: list[tuple[Mapping[str, Any] | None, Mapping[str, Any] | None]] = []

    def fn(
        urn_: str, type_: str, out: Mapping[str, Any] | None, inp: Mapping[str, Any] | None, _s: Any
    ) -> None:
        seen.append((out, inp))
        resource_from_outputs(urn_, type_, out, inp)  # the real reader

    hook = _Hooks(monkeypatch).make(fn)

    async def call() -> None:  # Outputs are made in the program's event loop, as the SDK does
        await hook(secret_args())

    run_in_new_loop(call())

    ((out, inp),) = seen
    assert out == {
        "name": "web-1",
        "metadata": {
            "token": {"4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270",
                      "value": "x"},
            "role": "web",
        },
        "id": "srv-123",  # args.id, since the outputs carry none
    }  # fmt: skip
    assert inp == {"name": "web-1"}
    assert warned == []


def test_a_real_hook_run_with_a_secret_output_backs_up_without_warnings(
    sandbox: tuple[Sandbox, HookSettings], monkeypatch: pytest.MonkeyPatch
) -> None:
    sb, settings = sandbox
    monkeypatch.setenv("PULUMI_ERROR_OUTPUT_STRING", "true")
    warned: list[str] = []
    monkeypatch.setattr(pulumi.log, "warn", lambda msg, *a, **k: warned.append(msg))
    monkeypatch.setattr(teardown_pulumi, "_settings", lambda pull: settings)
    out = outputs(sb, "web-1")
    hook = _Hooks(monkeypatch).make(hook_logic.before_delete)

    async def call() -> None:  # Outputs are made in the program's event loop, as the SDK does
        secret = {**out, "adminPass": pulumi.Output.secret("hunter2")}
        await hook(
            pulumi.ResourceHookArgs(
                urn("web-1"), out["id"], "web-1", SERVER, None, out, old_outputs=secret
            )
        )

    run_in_new_loop(call())  # raises DeleteRefused unless backed up and verified
    assert warned == []
    with journal_of(settings) as journal:
        run_id = run_id_for("dev", urn("web-1"), out["id"])
        assert journal.resource_phases(run_id)[urn("web-1")] is Phase.VERIFIED


def test_the_hooks_of_two_parallel_deletes_back_up_concurrently(
    sandbox: tuple[Sandbox, HookSettings], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The engine calls both hooks at once (the callbacks server awaits each hook in the
    program's event loop); the two backups must overlap in time, as the journal records them."""
    sb, settings = sandbox
    monkeypatch.setattr(teardown_pulumi, "_settings", lambda pull: settings)
    threads: set[int] = set()

    def before(*a: Any) -> None:
        threads.add(threading.get_ident())
        hook_logic.before_delete(*a)

    hook = _Hooks(monkeypatch).make(before)
    names = ("web-1", "db-1")
    outs = {n: outputs(sb, n) for n in names}

    async def both() -> None:
        await asyncio.gather(
            *(
                hook(pulumi.ResourceHookArgs(urn(n), outs[n]["id"], n, SERVER, old_outputs=outs[n]))
                for n in names
            )
        )

    run_in_new_loop(both())

    spans: dict[str, tuple[datetime, datetime]] = {}
    with journal_of(settings) as journal:
        for n in names:
            run_id = run_id_for("dev", urn(n), outs[n]["id"])
            steps = [
                s for s in journal.steps(run_id) if s.kind in (StepKind.SNAPSHOT, StepKind.PULL)
            ]
            assert steps and all(s.intent_at and s.outcome_at for s in steps), n
            spans[n] = (
                min(s.intent_at for s in steps if s.intent_at),
                max(s.outcome_at for s in steps if s.outcome_at),
            )
    (a_start, a_end), (b_start, b_end) = spans["web-1"], spans["db-1"]
    assert a_start < b_end and b_start < a_end, spans  # the two backups overlap
    assert len(threads) == 2  # each hook's blocking work ran off the event loop


# -- stack config --------------------------------------------------------------------------


def test_teardown_keys_of_the_stack_config_reach_the_hooks_plan(
    sandbox: tuple[Sandbox, HookSettings], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The program's stack config (as the CLI hands it over in ``PULUMI_CONFIG``) is read by
    ``teardown.pulumi`` and its ``teardown:`` keys set teardown.toml keys for the hook's plan."""
    sb, base = sandbox
    monkeypatch.setenv(
        "PULUMI_CONFIG",
        json.dumps({"teardown:scope.refuse_patterns": '["de*"]', "other:key": "x"}),
    )
    read = teardown_pulumi.stack_config()
    assert read["teardown:scope.refuse_patterns"].value == '["de*"]'
    settings = replace(base, stack_config=read)
    out = outputs(sb, "web-1")
    with pytest.raises(TeardownError, match=r"scope 'dev' matches refused pattern 'de\*'"):
        before_delete(urn("web-1"), SERVER, out, None, settings)
    before_delete(urn("web-1"), SERVER, out, None, base)  # without the key: backed up


DYNAMIC = "pulumi-python:dynamic:Resource"


def test_a_hook_on_a_type_teardown_does_not_know_stops_the_delete_until_it_is_mapped(
    sandbox: tuple[Sandbox, HookSettings],
) -> None:
    """A dynamic-provider server: unknown to the catalog, so the hook refuses (I7) and says how
    to map it; mapped through ``[types] kinds`` (here from the stack config) it is backed up as
    a server."""
    sb, base = sandbox
    out = outputs(sb, "web-1")
    dyn_urn = f"urn:pulumi:dev::shop::{DYNAMIC}::web-1"
    with pytest.raises(DeleteRefused, match=r"\[types\] kinds") as info:
        before_delete(dyn_urn, DYNAMIC, out, None, base)
    assert DYNAMIC in str(info.value)

    kinds = StackConfigValue(f'{{ "{DYNAMIC}" = "server" }}')
    settings = replace(base, stack_config={"teardown:types.kinds": kinds})
    before_delete(dyn_urn, DYNAMIC, out, None, settings)  # backed up, verified: no raise
    with journal_of(settings) as journal:
        run_id = run_id_for("dev", dyn_urn, out["id"])
        kinds_done = {s.kind for s in journal.steps(run_id) if s.outcome_at}
        assert {StepKind.SNAPSHOT, StepKind.PULL} <= kinds_done
        assert journal.resource_phases(run_id)[dyn_urn] is Phase.VERIFIED


def test_each_program_run_registers_its_own_hooks(monkeypatch: pytest.MonkeyPatch) -> None:
    """An Automation API process runs its inline program once per ``up`` or ``destroy``, each
    in a new event loop; a hook object of an earlier run is unknown to the engine's next one
    (``hook "..." was not registered``, seen with the real CLI)."""
    hooks = _Hooks(monkeypatch)
    made: list[object] = []

    async def program_run() -> None:
        first: Any = teardown_pulumi.teardown_hooks(name="teardown-web-1")
        again: Any = teardown_pulumi.teardown_hooks(name="teardown-web-1")
        assert first["before_delete"] == again["before_delete"]  # once per run
        made.append(first["before_delete"][0])

    run_in_new_loop(program_run())
    run_in_new_loop(program_run())
    assert len(made) == 2 and made[0] is not made[1]
    assert len(hooks.made) == 2  # both names (before, after) made in each run: same names
