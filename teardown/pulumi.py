"""teardown as a Pulumi plugin: resource hooks that make ``pulumi destroy`` back up first.

Bind them to every resource that holds data::

    from teardown.pulumi import teardown_hooks

    web = huaweicloud.ecs.Instance(
        "web-1", ...,
        opts=pulumi.ResourceOptions(hooks=teardown_hooks(pull_paths=["/var/www"])),
    )

``before_delete`` backs the resource up and verifies it (CBR backup, SSH pull with sha256 checks)
through teardown's engine and journal, and raises, stopping the delete, unless every backup is
verified; Pulumi shows ``before hook "<name>" failed: <message>``. ``after_delete`` confirms with
the cloud that the resource is gone (Pulumi also calls it for ``retainOnDelete``,
``deletedWith`` and external resources) and closes the billing (records the refund of a prepaid
resource); it never raises: a failure is a Pulumi warning and a journal entry that
``teardown resume`` finishes. The hooks are ``async`` and do the blocking work in a thread, so
parallel deletes are backed up in parallel. The engine stores the bindings in state as
``"resourceHooks": {"BeforeDelete": [names], "AfterDelete": [names]}``.

Settings come from stack config, read when a hook runs: ``teardown:profile`` (a cloud
profile), ``teardown:config`` (a teardown.toml) and ``teardown:journal`` (the journal path);
any other ``teardown:`` key sets that teardown.toml key (``teardown:backup.retention_days``), over
the file; without a profile the account comes from the cloud provider's own config in the stack
(``huaweicloud:region``, ``huaweicloud:accessKey``...), then the environment
(docs/pulumi-config.md).

Once hooks are in the state, ``pulumi destroy`` must run the program (``--run-program``) so the
hooks exist; the program must register them on every run. Hooks take only static settings, never
other resources' outputs (pulumi/pulumi#23921).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import weakref
from collections.abc import Mapping, MutableMapping, Sequence
from pathlib import Path
from typing import Any

import pulumi
from pulumi.runtime import config as rc

from teardown import app
from teardown.adapters.pulumi.automation import StackConfigValue
from teardown.app import pulumi_hooks as hooks
from teardown.core.config import PullRule

_HOOKS: MutableMapping[object, dict[str, pulumi.ResourceHook]] = weakref.WeakKeyDictionary()
"""Hooks by program run (its event loop), then by name: the engine wants each name registered
once per run, and every run registers its own (an Automation API process runs its inline
program once per ``up`` or ``destroy``, each in a new event loop; a hook registered in an
earlier run is unknown to the next: ``hook "..." was not registered``)."""


class _NoLoop:
    """The run key outside any event loop (a hook binding made outside a program run)."""


_NO_LOOP = _NoLoop()


def _this_run() -> dict[str, pulumi.ResourceHook]:
    try:
        run: object = asyncio.get_running_loop()
    except RuntimeError:
        run = _NO_LOOP
    return _HOOKS.setdefault(run, {})


def _settings(pull: PullRule | None) -> hooks.HookSettings:
    cfg = pulumi.Config("teardown")

    def path(key: str) -> Path | None:
        value = cfg.get(key)
        return Path(value) if value else None

    return hooks.HookSettings(
        scope=pulumi.get_stack(),
        profile=path("profile"),
        config=path("config"),
        journal=path("journal"),
        pull=pull,
        env=dict(os.environ),  # the program is the entry point here, as the CLI is elsewhere
        tuning=app.Tuning(env=dict(os.environ)),
        stack_config=stack_config(),
    )


def stack_config() -> dict[str, StackConfigValue]:
    """The running program's whole stack config by full key, secrets flagged. A program the CLI
    starts gets it in ``PULUMI_CONFIG`` (``get_config_env``); an Automation API inline program
    in the SDK's ``CONFIG``; objects and lists (``--path``) as JSON text."""
    values = {**rc.get_config_env(), **rc.CONFIG.get()}
    secret = set(rc.get_config_secret_keys_env())
    return {
        key: StackConfigValue(
            value if isinstance(value, str) else json.dumps(value),
            key in secret or rc.is_config_secret(key),
        )
        for key, value in values.items()
    }


def plain_properties(props: Mapping[str, Any] | None, resource_id: str = "") -> dict[str, Any]:
    """A hook's old outputs or inputs as plain JSON data, never reading a secret.

    The SDK hands top-level secrets to a hook as secret ``Output`` objects; turning one into
    text logs a warning (or raises with ``PULUMI_ERROR_OUTPUT_STRING=true``), so they are
    dropped, as are unknowns, assets and anything else that is not data. Nested secrets stay
    in Pulumi's serialized form, which the state reader treats as absent. ``resource_id`` (the
    hook's ``args.id``) fills a missing ``id`` output: dynamic-provider outputs carry none."""
    out: dict[str, Any] = {}
    for key, value in (props or {}).items():
        data = _data(value)
        if data is not _DROP:
            out[key] = data
    if resource_id and not isinstance(out.get("id"), str):
        out["id"] = resource_id
    return out


_DROP = object()


def _data(value: object) -> Any:
    if value is None or isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, Mapping):
        return {k: v for k, v in ((str(k), _data(v)) for k, v in value.items()) if v is not _DROP}
    if isinstance(value, list | tuple):
        return [v for v in (_data(x) for x in value) if v is not _DROP]
    return _DROP  # an Output (a top-level secret), an unknown, an asset or archive


def _hook(name: str, fn: hooks.HookFunction, pull: PullRule | None) -> pulumi.ResourceHook:
    hooks_of_run = _this_run()
    if name not in hooks_of_run:

        async def run(args: pulumi.ResourceHookArgs) -> None:
            # Async, with the blocking work in a thread: the engine calls the hooks of parallel
            # deletes at once, and a sync hook would hold the program's event loop (one backup
            # at a time).
            settings = _settings(pull)
            outputs = plain_properties(args.old_outputs, args.id or "")
            inputs = plain_properties(args.old_inputs)
            warning = await asyncio.to_thread(fn, args.urn, args.type, outputs, inputs, settings)
            if warning:
                pulumi.log.warn(warning)

        hooks_of_run[name] = pulumi.ResourceHook(name, run)
    return hooks_of_run[name]


def teardown_hooks(
    *,
    pull_paths: Sequence[str] = (),
    excludes: Sequence[str] = (),
    before: Sequence[str] = (),
    after: Sequence[str] = (),
    name: str = "teardown",
) -> pulumi.ResourceHookBinding:
    """A hook binding: back up and verify before delete, close the billing after.

    ``pull_paths`` are pulled over SSH (with ``excludes``; ``before``/``after`` commands run on
    the host around the pull, e.g. a database dump). Identical settings share one pair of
    named hooks; the names are stable, so a later ``pulumi destroy --run-program`` finds them.
    """
    for value in (*pull_paths, *excludes, *before, *after, name):
        if not isinstance(value, str):
            raise TypeError("teardown_hooks takes plain strings, not Outputs (pulumi#23921)")
    pull = None
    if pull_paths:
        pull = PullRule(
            paths=tuple(pull_paths),
            excludes=tuple(excludes),
            before=tuple(before),
            after=tuple(after),
            name="pulumi-hook",
        )
    key = hashlib.sha256(
        json.dumps([list(pull_paths), list(excludes), list(before), list(after)]).encode()
    ).hexdigest()[:10]
    return pulumi.ResourceHookBinding(
        before_delete=[_hook(f"{name}-before-delete-{key}", hooks.before_delete, pull)],
        after_delete=[_hook(f"{name}-after-delete-{key}", hooks.after_delete, pull)],
    )


HOOK_TAG = "teardown:before-delete"
"""The tag key that declares a resource's teardown before-delete hook to teardown's policy pack
(``stacks/policy``): Pulumi shows policies a resource's options without its hooks."""


def hook_tag(binding: pulumi.ResourceHookBinding) -> dict[str, str]:
    """``{HOOK_TAG: <name of binding's before-delete hook>}``: merge it into the resource's
    ``tags`` so the policy pack knows the hook is bound. A policy cannot see hooks (the
    analyzer's resource options carry none), so the tag is a declaration, not a proof: take
    it from the same binding you pass as ``hooks=``."""
    names = [h.name for h in binding.before_delete or [] if isinstance(h, pulumi.ResourceHook)]
    if not names:
        raise ValueError("the binding has no before-delete hook: make it with teardown_hooks()")
    return {HOOK_TAG: names[0]}


__all__ = ["HOOK_TAG", "hook_tag", "plain_properties", "teardown_hooks"]
