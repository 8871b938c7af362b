"""What to tear down, and the plan for it: one ``TargetSource`` type (servers by id, servers by
tag, a Pulumi state file, a Pulumi stack) and the one function that resolves it, used by every
command, so that ``plan``, ``run`` and ``apply`` can never disagree about what a target means.

A stack's config takes part (docs/pulumi-config.md): its ``teardown:`` keys set teardown.toml
keys (:func:`teardown.app.config.apply_stack_config`), and its ``teardown:profile`` or
``huaweicloud:`` provider config give the cloud account when ``--profile`` does not
(:func:`teardown.app.services.resolve_stack_profile`).

Example::

    source = TargetSource(tags=(("env", "test"),))
    planned = plan_targets(source, config, profile_path=None, env=os.environ, need_profile=True)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

from teardown.adapters.pulumi.automation import PulumiStack, StackRef
from teardown.adapters.pulumi.state import ROUTINE_SKIPS, StackState, read_state, with_kinds
from teardown.app import services
from teardown.app.config import apply_stack_config, load_config
from teardown.app.providers import provider_of
from teardown.core.config import Config, DestroyConfig, DestroyMethod
from teardown.core.errors import InputError
from teardown.core.model import Plan
from teardown.ports.provider import Account, Catalog
from teardown.support.clock import SystemClock


@dataclass(frozen=True)
class TargetSource:
    """Exactly one of: server ids and/or tags, a state file, a stack (with its project dir)."""

    servers: tuple[str, ...] = ()
    tags: tuple[tuple[str, str], ...] = ()
    state: Path | None = None
    stack: str | None = None
    work_dir: Path = Path(".")
    destroy_with: str | None = None
    """``cloud`` or ``pulumi`` (None: the default for the source)."""
    include_foreign: bool = False
    all_regions: bool = False
    """Account-wide pending orders (``billing.pending_orders = "account"``) of every region,
    not only the profile's."""
    config_given: bool = True
    """The caller's config was named (``--config``); otherwise a stack's ``teardown:config``
    (a teardown.toml, relative to the project) is loaded in its place."""

    def check(self) -> None:
        """InputError unless exactly one source is given and the destroy mode fits it."""
        sources = sum(1 for x in (self.state, self.stack) if x) + bool(self.servers or self.tags)
        if sources != 1:
            raise InputError(
                "targets",
                "give exactly one: --state FILE, --stack NAME, or --server ID / --tag K=V",
            )
        self.destroy_mode()

    def destroy_mode(self) -> str:
        """``cloud`` or ``pulumi``: pulumi by default for a stack, the cloud otherwise (a state
        file is offline; servers are not a stack)."""
        if self.stack is not None:
            return self.destroy_with or "pulumi"
        if self.destroy_with == "pulumi":
            what = "--state FILE is offline" if self.state is not None else "servers are no stack"
            raise InputError("--destroy-with pulumi", f"needs --stack NAME ({what})")
        return "cloud"


@dataclass(frozen=True)
class Planned:
    """A plan and what running it needs."""

    plan: Plan
    profile: Account | None
    stack: PulumiStack | None = None
    """The stack to destroy through (``--stack`` with the Pulumi engine)."""
    stack_name: str | None = None
    """The stack whose resources the cloud API destroys (reconcile it afterwards)."""
    config: Config | None = None
    """The configuration the plan was made with: the caller's, with a stack's ``teardown:``
    keys applied. Run the plan with this one (None: the caller's, unchanged)."""
    skip_notes: tuple[str, ...] = ()
    """A state's entries left out for a reason worth saying (``pendingReplacement``: already
    deleted; external; an old copy without a cloud id...), as ``<urn>: <why>``."""


def _catalog(profile: Account | None, config: Config) -> Catalog:
    """The type catalog of the profile's cloud (the state reader's default, Huawei Cloud's, for
    an offline preview), with ``[types] kinds`` over it."""
    base = None if profile is None else provider_of(profile).catalog
    return with_kinds(base, config.types.kinds)


def _skip_notes(state: StackState) -> tuple[str, ...]:
    return tuple(f"{urn}: {why}" for urn, why in state.skip_reasons if why not in ROUTINE_SKIPS)


def plan_targets(
    source: TargetSource,
    config: Config,
    *,
    profile_path: Path | None,
    env: Mapping[str, str],
    need_profile: bool = False,
    now: datetime | None = None,
) -> Planned:
    """The plan for ``source``, exactly as a run would execute it. With a profile (or
    ``need_profile``), the cloud completes the facts and the settings a run needs are checked
    (ConfigError naming the setting), so a plan that says ready can run.

    For a stack, its config's ``teardown:`` keys are applied over ``config`` (flags, such as
    ``--destroy-with``, still win), and the account comes from ``--profile`` >
    ``teardown:profile`` > the stack's provider config > the environment; a stack that names
    a profile file (``teardown:profile``) is planned with it as with ``--profile``."""
    source.check()
    now = now or SystemClock().now()
    mode = source.destroy_mode()
    profile: Account | None = None
    wants_profile = profile_path is not None or need_profile
    if source.stack is None and (wants_profile or source.servers or source.tags):
        profile = services.resolve_profile(profile_path, env)
    if source.servers or source.tags:
        assert profile is not None
        targets = services.Targets(source.servers, source.tags)
        plan = services.plan_servers(
            profile,
            targets,
            config,
            now=now,
            include_foreign=source.include_foreign,
            all_regions=source.all_regions,
        )
        planned = Planned(plan, profile, config=config)
    elif source.stack is not None:
        stack = PulumiStack(StackRef(source.stack, source.work_dir))
        settings = stack.config()
        where = f"stack {source.stack} config"
        values = {key: v.value for key, v in settings.items()}
        named = values.get("teardown:config", "").strip()
        if named and not source.config_given:
            path = Path(named).expanduser()
            config = load_config(path if path.is_absolute() else source.work_dir / path)
        config = apply_stack_config(config, settings, where)
        if wants_profile or services.stack_names_profile(values):
            profile = services.resolve_stack_profile(
                profile_path, values, env, project_dir=source.work_dir
            )
        state = stack.export(_catalog(profile, config))
        cloud = mode == "cloud"
        method = DestroyMethod.CLOUD if cloud else DestroyMethod.PULUMI
        plan = services.plan_state(
            state,
            replace(config, destroy=DestroyConfig(method=method)),
            config.scope.name or source.stack,
            profile=profile,
            now=now,
            destroy_with_cloud=cloud,
            include_foreign=source.include_foreign,
        )
        planned = Planned(
            plan,
            profile,
            None if cloud else stack,
            source.stack if cloud else None,
            config,
            _skip_notes(state),
        )
    else:
        assert source.state is not None
        state = read_state(source.state, _catalog(profile, config))
        plan = services.plan_state(
            state,
            config,
            config.scope.name or state.stack or source.state.stem,
            profile=profile,
            now=now,
            destroy_with_cloud=True,
            include_foreign=source.include_foreign,
        )
        planned = Planned(
            plan, profile, None, state.stack or source.state.stem, config, _skip_notes(state)
        )
    if profile is not None:
        services.check_runnable(planned.plan, profile)
    return planned


__all__ = ["Planned", "TargetSource", "plan_targets"]
