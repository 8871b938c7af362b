"""What teardown's Pulumi resource hooks do, without Pulumi: plain functions over a resource's
URN, type and outputs, so they can be tested against the sandbox without the Pulumi engine.

``before_delete`` backs the resource up and verifies it through the engine and the journal, and
raises (stopping Pulumi's delete) unless every backup the plan requires is verified, is a copy of
this very resource (same account, cloud id and creation time), survives the delete, and still
exists and matches its checksums right now (I1). It returns at once for resources that hold no
data; verified backups of this resource made by an earlier call or by ``teardown run`` (within
``backup.reuse_within``) are reused after that check, not made again.

``after_delete`` confirms with the cloud that the resource is gone, records the delete and runs
the billing close (I4): the refund of a prepaid resource is read from its unsubscribe order. It
never raises (see :func:`after_delete`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from teardown.adapters.confusables import fold
from teardown.adapters.pulumi.automation import StackConfigValue
from teardown.adapters.pulumi.state import resource_from_outputs, with_kinds
from teardown.app import services as app
from teardown.app.config import apply_stack_config, load_config
from teardown.core.config import Config, DestroyConfig, DestroyMethod, PullRule
from teardown.core.errors import JournalError, TeardownError
from teardown.core.model import DATA_KINDS, Kind, Plan, Resource
from teardown.core.planner import make_plan
from teardown.engine.journal import Journal
from teardown.engine.runner import Runner
from teardown.ports import Presence
from teardown.ports.provider import Account
from teardown.support.clock import SystemClock

HookFunction = Callable[
    [str, str, Mapping[str, Any] | None, Mapping[str, Any] | None, "HookSettings"], str | None
]
"""A hook's logic: (urn, type, old outputs, old inputs, settings) -> a warning for Pulumi's log
or None; raises :class:`DeleteRefused` to stop the delete."""


class DeleteRefused(TeardownError):
    """Raised by the ``before_delete`` hook: Pulumi stops this delete."""


@dataclass(frozen=True)
class HookSettings:
    """Everything a hook needs, gathered from Pulumi config (``teardown:`` namespace) and the
    hook factory's arguments."""

    scope: str
    """The stack name: the same scope as ``teardown run --stack``, so backups are shared."""
    profile: Path | None = None
    config: Path | None = None
    journal: Path | None = None
    pull: PullRule | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    tuning: app.Tuning = field(default_factory=app.Tuning)
    stack_config: Mapping[str, StackConfigValue] = field(default_factory=dict)
    """The running stack's whole config by full key (``teardown:backup.retention_days``,
    ``huaweicloud:region``), secrets decrypted and flagged: the ``teardown:`` keys set
    teardown.toml keys and the cloud provider's config gives the account, as for
    ``teardown run --stack`` (docs/pulumi-config.md)."""


def _account(settings: HookSettings) -> Account:
    """``teardown:profile`` (``settings.profile``) > the stack's provider config > the
    environment, as :func:`teardown.app.services.resolve_stack_profile` decides for ``--stack``."""
    values = {key: v.value for key, v in settings.stack_config.items()}
    return app.resolve_stack_profile(settings.profile, values, settings.env, project_dir=Path.cwd())


def _config(settings: HookSettings) -> Config:
    config = apply_stack_config(
        load_config(settings.config), settings.stack_config, f"stack {settings.scope} config"
    )
    config = replace(config, destroy=DestroyConfig(method=DestroyMethod.PULUMI))
    if settings.pull is not None:
        config = replace(config, backup=replace(config.backup, pull=(settings.pull,)))
    if settings.journal is not None:
        config = replace(config, journal=replace(config.journal, path=str(settings.journal)))
    return config


def _resource(
    urn: str,
    type_: str,
    outputs: Mapping[str, Any] | None,
    inputs: Mapping[str, Any] | None,
    config: Config,
) -> Resource:
    """The resource a hook is called for, read as the state reader reads it, with
    ``[types] kinds`` (so dynamic-provider and other providers' types can be guarded)."""
    return resource_from_outputs(urn, type_, outputs, inputs, with_kinds(None, config.types.kinds))


def _plan(resource: Resource, settings: HookSettings) -> tuple[Plan, Config]:
    """A one-resource plan; billing facts (order, expiry) come from the cloud when a profile is
    at hand, since a stack's outputs do not carry them all."""
    config = _config(settings)
    if settings.profile is not None or settings.env or settings.stack_config:
        profile = _account(settings)
        (resource,) = app.enrich_from_cloud([resource], profile, settings.tuning)
    plan = make_plan([resource], config, settings.scope, now=SystemClock().now(), fold=fold)
    return plan, config


def run_id_for(scope: str, urn: str, cloud_id: str | None = None) -> str:
    """One journal run per stack, resource and cloud id, so repeated hook calls resume it, and
    a resource re-created under the same URN (a new machine) gets a run of its own."""
    key = f"{scope}\x1f{urn}\x1f{cloud_id or ''}"
    return "hook-" + hashlib.sha256(key.encode()).hexdigest()[:16]


@contextmanager
def _engine(settings: HookSettings, config: Config) -> Iterator[tuple[Journal, Runner]]:
    """The journal and a runner wired to the cloud profile, closed afterwards."""
    profile = _account(settings)
    clock = SystemClock()
    with Journal.open(Path(config.journal.path), clock) as journal:
        yield journal, app.build_runner(profile, config, journal, clock, (), settings.tuning)


def before_delete(
    urn: str,
    type_: str,
    outputs: Mapping[str, Any] | None,
    inputs: Mapping[str, Any] | None,
    settings: HookSettings,
) -> None:
    """Back up and verify; raise DeleteRefused unless the delete may go ahead (I1)."""
    config = _config(settings)
    resource = _resource(urn, type_, outputs, inputs, config)
    if resource.kind is Kind.UNKNOWN and type_ not in config.types.stateless:
        # The hook was bound to it, so someone thinks it holds data (I7: never guess).
        raise DeleteRefused(
            f"teardown: {resource.name} is of type {type_}, which teardown does not know, so "
            f'its delete was stopped: map it in teardown.toml ([types] kinds = {{ "{type_}" = '
            f'"server" }}, or "volume"), or list it in [types] stateless if it holds no data'
        )
    if resource.kind not in DATA_KINDS:
        return
    run_id = run_id_for(settings.scope, urn, resource.cloud_id)
    plan, config = _plan(resource, settings)
    if plan.blocked:
        raise DeleteRefused("teardown: " + "; ".join(b.message for b in plan.blockers))
    app.check_runnable(plan, _account(settings))
    with _engine(settings, config) as (_journal, runner):
        runner.guard(plan, run_id, lock_scope=run_id)  # reuses backups `teardown run` made
        reasons = runner.ready(run_id, urn)  # ...each re-checked to exist, right now
        if reasons:  # a backup gone since it was verified is made again, once
            runner.guard(plan, run_id, lock_scope=run_id)
            reasons = runner.ready(run_id, urn)
    if reasons:
        raise DeleteRefused(
            f"teardown: {resource.name} is not backed up, so its delete was stopped: "
            + "; ".join(reasons)
            + f" (journal run {run_id}; fix the cause and run the destroy again)"
        )


NOT_DELETED = "teardown:hook:not-deleted"
"""A journal fact: Pulumi's after-delete hook ran but the resource still exists in the cloud
(``urn``, ``why``); its billing was not closed."""

CLOSE_DEFERRED = "teardown:hook:close-deferred"
"""A journal fact: the billing close after Pulumi's delete failed or could not start (``urn``,
``why``); ``teardown resume RUN`` finishes it."""


def after_delete(
    urn: str,
    type_: str,
    outputs: Mapping[str, Any] | None,
    inputs: Mapping[str, Any] | None,
    settings: HookSettings,
) -> str | None:
    """Confirm with the cloud that the resource is gone, record the delete and close its billing
    (refund, auto-renew). Returns a warning for Pulumi's log, or None.

    Pulumi calls after-delete hooks also for resources it does not delete in the cloud
    (``retainOnDelete``, ``deletedWith``, external ones): a resource the cloud still shows is
    recorded as not deleted (:data:`NOT_DELETED`) and its billing is left alone, since
    unsubscribing it would release it. A failure here never raises: from CLI 3.238 an error of
    an after-delete hook fails the deployment although the delete is committed, so the failure
    is recorded in the journal (:data:`CLOSE_DEFERRED`) and ``teardown resume RUN`` finishes
    the billing."""
    config = _config(settings)
    resource = _resource(urn, type_, outputs, inputs, config)
    if resource.kind not in DATA_KINDS:
        return None
    run_id = run_id_for(settings.scope, urn, resource.cloud_id)
    with _engine(settings, config) as (journal, runner):
        try:
            journal.run(run_id)  # the plan recorded before the delete holds the billing facts
        except JournalError:
            plan, config = _plan(resource, settings)
            runner.guard(plan, run_id, lock_scope=run_id)
        presence = runner.cloud_presence(run_id, urn)
        if presence is Presence.EXISTS:
            why = (
                f"{resource.name} still exists in the cloud after Pulumi's delete (retained with "
                "retainOnDelete, left to the resource it is deleted with, or external): its "
                "billing was not closed"
            )
            journal.record_fact(run_id, NOT_DELETED, {"urn": urn, "why": why})
            return None
        if presence is None:
            why = (
                f"the cloud could not confirm that {resource.name} is gone, so its billing was "
                f"not closed (journal run {run_id}; `teardown resume {run_id}` checks again)"
            )
            journal.record_fact(run_id, CLOSE_DEFERRED, {"urn": urn, "why": why})
            return "teardown: " + why
        # A hook runs inside `pulumi destroy`, perhaps started by `teardown run`, which holds
        # the stack's lock: hooks lock only their own resource's run.
        result = runner.external_destroy_done(run_id, urn, lock_scope=run_id)
        if not result.errors:
            return None
        why = (
            f"billing close of {resource.name} failed: "
            + "; ".join(result.errors.values())
            + f" (journal run {run_id}; `teardown resume {run_id}` retries it)"
        )
        journal.record_fact(run_id, CLOSE_DEFERRED, {"urn": urn, "why": why})
    return "teardown: " + why
