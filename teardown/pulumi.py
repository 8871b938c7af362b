"""teardown as a Pulumi plugin: resource hooks that make ``pulumi destroy`` back up first.

Bind them to every resource that holds data::

    from teardown.pulumi import teardown_hooks

    web = huaweicloud.ecs.Instance(
        "web-1", ...,
        opts=pulumi.ResourceOptions(hooks=teardown_hooks(pull_paths=["/var/www"])),
    )

``before_delete`` backs the resource up and verifies it (CBR backup, SSH pull with sha256 checks)
through teardown's engine and journal, and raises, stopping the delete, unless every backup is
verified. ``after_delete`` closes the billing (records the refund of a prepaid resource).

Settings come from stack config in the ``teardown:`` namespace, read when a hook runs:
``teardown:profile`` (a cloud profile; else credentials from the environment),
``teardown:config`` (a teardown.toml) and ``teardown:journal`` (the journal path).

Once hooks are in the state, ``pulumi destroy`` must run the program (``--run-program``) so the
hooks exist; the program must register them on every run. Hooks take only static settings, never
other resources' outputs (pulumi/pulumi#23921).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path

import pulumi

from teardown import app
from teardown.app import pulumi_hooks as hooks
from teardown.core.config import PullRule

_HOOKS: dict[str, pulumi.ResourceHook] = {}
"""Hooks by name: Pulumi wants each name registered once per program run."""


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
    )


def _hook(name: str, fn: hooks.HookFunction, pull: PullRule | None) -> pulumi.ResourceHook:
    if name not in _HOOKS:

        def run(args: pulumi.ResourceHookArgs) -> None:
            fn(args.urn, args.type, args.old_outputs, args.old_inputs, _settings(pull))

        _HOOKS[name] = pulumi.ResourceHook(name, run)
    return _HOOKS[name]


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


__all__ = ["teardown_hooks"]
