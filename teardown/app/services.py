"""Application services: the few functions the CLI calls, wiring adapters to the engine.

``plan_servers`` reads the cloud and plans; ``run_plan`` executes a plan (or ``resume_run`` an
existing run) with the ports of the profile's cloud (an :class:`teardown.ports.provider.Account`
from the provider registry), the SSH fetcher and the local store, then writes the report.
Nothing here parses flags or prints: that is the CLI's job.
"""

from __future__ import annotations

import dataclasses
import sqlite3
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from teardown.adapters.confusables import fold
from teardown.adapters.object_fetcher import ObjectStoreFetcher
from teardown.adapters.objstore import ObjectStore
from teardown.adapters.pulumi.state import StackState
from teardown.adapters.push import PushFetcher
from teardown.adapters.run_archive import (
    JournalUploader,
    fetch_journal,
    release_scope,
    take_scope,
    upload_journal,
    upload_reports,
)
from teardown.adapters.ssh.fetcher import SshFetcher
from teardown.adapters.store import LocalStore
from teardown.adapters.store_urls import apply_retention
from teardown.app.providers import account_from_pulumi_config, open_account, provider_of
from teardown.core.config import Config, SshConfig
from teardown.core.errors import ConfigError, InputError, TeardownError
from teardown.core.model import Kind, Plan, Resource
from teardown.core.phases import StepStatus
from teardown.core.planner import make_plan
from teardown.core.selection import selected
from teardown.core.views import backup_storage as storage_estimate
from teardown.engine.codec import plan_from_json
from teardown.engine.events import Observer
from teardown.engine.journal import Journal, RunRecord
from teardown.engine.report import build_report, vault_month, write_report
from teardown.engine.report_html import timeline_from_events
from teardown.engine.runner import Ports, Runner, RunResult, new_run_id
from teardown.ports import Clock, Destroyer, Fetcher
from teardown.ports.provider import Account
from teardown.support.clock import SystemClock
from teardown.support.retry import RetryPolicy


@dataclass(frozen=True)
class Targets:
    """What to tear down: servers by id, or by tag (``key=value``), or both."""

    server_ids: tuple[str, ...] = ()
    tags: tuple[tuple[str, str], ...] = ()

    def scope(self) -> str:
        parts = [f"{k}={v}" for k, v in self.tags] + list(self.server_ids)
        return "servers:" + ",".join(parts)


@dataclass(frozen=True)
class Tuning:
    """How the engine waits: injected so tests and benchmarks can speed it up."""

    sleep: Callable[[float], None] = time.sleep
    poll_interval: float = 2.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    on_commit: Callable[[str], None] | None = None
    """Called after every journal transition (the crash matrix kills the process here)."""
    env: Mapping[str, str] = field(default_factory=dict, repr=False)
    """Values for ``${env:NAME}`` in before/after commands (the CLI passes its environment)."""


def resolve_profile(path: Path | None, env: Mapping[str, str]) -> Account:
    """The account of the profile file given, else of the credentials in the environment
    (whichever registered provider recognises them); else a ConfigError saying what to give."""
    return open_account(path, env)


STACK_PROFILE_KEY = "teardown:profile"
"""The stack config key naming a profile file (relative paths: to the Pulumi project)."""


def stack_names_profile(stack_config: Mapping[str, str]) -> bool:
    """Whether the stack config names a profile file (``teardown:profile``): that counts as
    ``--profile``, so ``plan --stack`` then asks the cloud as a run does."""
    return bool(stack_config.get(STACK_PROFILE_KEY, "").strip())


def resolve_stack_profile(
    path: Path | None,
    stack_config: Mapping[str, str],
    env: Mapping[str, str],
    *,
    project_dir: Path,
) -> Account:
    """The account for a Pulumi stack, first found wins: ``--profile FILE`` (``path``) >
    ``teardown:profile`` in the stack config (relative to ``project_dir``, where the Pulumi
    program, and so the hooks, run) > the ``huaweicloud:`` provider config in the stack,
    completed by the environment (the provider's ``from_pulumi_config``) > the environment alone
    (:func:`resolve_profile`). ``stack_config`` maps full keys to values, secrets decrypted
    (never logged). ``HUAWEICLOUD_VAULT_ID`` in the environment names the CBR vault, as for any
    profile without one."""
    if path is not None:
        return open_account(path, env)
    if stack_names_profile(stack_config):
        named = Path(stack_config[STACK_PROFILE_KEY].strip()).expanduser()
        return open_account(named if named.is_absolute() else project_dir / named, env)
    account = account_from_pulumi_config(stack_config, env)
    return account if account is not None else open_account(None, env)


def check_runnable(plan: Plan, account: Account) -> None:
    """ConfigError naming the setting when the run of ``plan`` could not start with this
    account: ``plan`` and ``run`` both ask, so a plan that says ready can run."""
    account.check_runnable(plan)


def backup_storage(plan: Plan, config: Config, account: Account | None) -> dict[str, Any]:
    """What the plan's cloud backups will take (estimates), and the vaults they go into as the
    cloud reports them now (``vaults``: empty offline; ``vault_error`` when they could not be
    read). A vault bills by its capacity, whatever it holds."""
    out = storage_estimate(plan, config.billing.prices.backup_gb_month)
    out["vaults"] = []
    pulls = sum(1 for rp in plan.resources for b in rp.backups if b.pull is not None)
    if config.store.url is not None and pulls:
        # What the pulls will keep in the object store is known only once they are made: the
        # report gives it; the plan says where and at what price.
        price = config.billing.prices.object_storage_gb_month
        out["object_store"] = {
            "url": config.store.url,
            "transfer": config.backup.transfer,
            "pulls": pulls,
            "retention_days": config.store.retention_days,
            "price_per_gb_month": None if price is None else str(price),
        }
    if account is None or not out["backups"]:
        return out
    try:
        vaults = account.snapshotter(time.sleep, config.run.poll_interval).vaults()
    except TeardownError as e:
        out["vault_error"] = str(e)
        return out
    price = config.billing.prices.backup_gb_month
    out["vaults"] = [
        dataclasses.asdict(v)
        | {"monthly_cost": vault_month(v.capacity_gb, price), "free_gb": _free(v)}
        for v in vaults
    ]
    return out


def _free(v: Any) -> float | None:
    return None if v.capacity_gb is None else round(v.capacity_gb - v.used_gb, 3)


def ssh_settings(config: Config, account: Account) -> SshConfig:
    """``[ssh]`` from the config, completed by the account's defaults (a sandbox profile's
    known_hosts and key)."""
    ssh, defaults = config.ssh, account.ssh
    if defaults.known_hosts and defaults.known_hosts not in ssh.known_hosts:
        ssh = replace(ssh, known_hosts=(*ssh.known_hosts, defaults.known_hosts))
    if ssh.identity_file is None and defaults.identity_file:
        ssh = replace(ssh, identity_file=defaults.identity_file)
    if ssh.user is None and defaults.user:
        ssh = replace(ssh, user=defaults.user)
    return ssh


def enrich_from_cloud(
    resources: Sequence[Resource], account: Account, tuning: Tuning = Tuning()
) -> list[Resource]:
    """Stack resources completed with what the cloud says now (billing, orders, disks, tags),
    matched by cloud id; identity (URN) and names stay the stack's."""
    ids = [r.cloud_id for r in resources if r.kind is Kind.SERVER and r.cloud_id]
    if not ids:
        return list(resources)
    live = account.inventory(tuning.sleep).resources(ids)
    by_id = {r.cloud_id: r for r in live}
    out = []
    for r in resources:
        cloud = by_id.get(r.cloud_id) if r.cloud_id else None
        if cloud is None:
            out.append(r)
            continue
        tags = dict(cloud.tags) | dict(r.tags)  # what the stack recorded wins
        out.append(
            replace(
                r,
                billing=cloud.billing,
                disks=cloud.disks,
                addresses=cloud.addresses or r.addresses,
                tags=tuple(sorted(tags.items())),
                account=cloud.account,
                created_at=cloud.created_at,
                disks_known=cloud.disks_known,
            )
        )
    return out


CLOUD_DESTROYS = frozenset({Kind.SERVER, Kind.VOLUME})
"""What the cloud adapter destroys when a stack is torn down through the cloud API; the rest
of the stack (network, addresses) is left for ``pulumi destroy`` after a refresh."""


def plan_state(
    state: StackState,
    config: Config,
    scope: str,
    *,
    profile: Account | None,
    now: datetime,
    destroy_with_cloud: bool,
    tuning: Tuning = Tuning(),
    include_foreign: bool = False,
) -> Plan:
    """Plan a Pulumi stack read from its exported state, completed by the cloud when a profile
    is given (billing facts, disks). Reads only."""
    resources: Sequence[Resource] = state.resources
    if profile is not None:
        resources = enrich_from_cloud(resources, profile, tuning)
    keep = frozenset(Kind) - CLOUD_DESTROYS if destroy_with_cloud else frozenset()
    return make_plan(
        resources,
        config,
        scope,
        skipped=state.skipped,
        now=now if profile is not None else None,
        keep_kinds=keep,
        include_foreign=include_foreign,
        fold=fold,
        estimator=provider_of(profile).estimator(profile) if profile is not None else None,
    )


def unfinished_runs(config: Config, scope: str) -> list[RunRecord]:
    """Runs of ``scope`` in the journal that acted and did not finish (none without a journal)."""
    path = Path(config.journal.path)
    if not path.exists():
        return []
    with Journal.open(path, SystemClock(), create=False) as journal:
        return journal.unfinished_runs(scope)


def recorded_plan(config: Config, run_id: str) -> Plan:
    """The plan a run recorded in the journal."""
    with Journal.open(Path(config.journal.path), SystemClock(), create=False) as journal:
        return plan_from_json(journal.run(run_id).plan_json, f"journal run {run_id}")


def destroyed_any(config: Config, run_id: str) -> bool:
    """Whether the run destroyed anything, as far as its journal can still be read."""
    try:
        return bool(destroyed_urns(Path(config.journal.path), run_id))
    except (TeardownError, OSError, sqlite3.Error):
        return True  # unknown: say "partially done", the careful answer


def destroyed_urns(journal_path: Path, run_id: str) -> list[str]:
    """The resources a run destroyed (for the stack reconcile commands)."""
    with Journal.open(journal_path, SystemClock(), create=False) as journal:
        plan = plan_from_json(journal.run(run_id).plan_json, f"journal run {run_id}")
        done = {s.step_id for s in journal.steps(run_id) if s.status is StepStatus.SUCCEEDED}
        return [rp.resource.urn for rp in plan.resources if rp.destroy and rp.destroy.id in done]


def plan_servers(
    profile: Account,
    targets: Targets,
    config: Config,
    *,
    now: datetime,
    tuning: Tuning = Tuning(),
    include_foreign: bool = False,
    all_regions: bool = False,
) -> Plan:
    """Inventory the targets (and pending orders) and plan. Reads only; changes nothing.

    With ``billing.pending_orders = "account"`` the plan cancels the account's pending orders
    that touch the profile's region, or every one with ``all_regions`` (``--all-regions``)."""
    inventory = profile.inventory(tuning.sleep)
    found = inventory.resources(targets.server_ids, targets.tags)
    # Re-checked here against every selector, whatever the cloud's filters did (I3).
    resources, _dropped = selected(found, targets.server_ids, targets.tags)
    missing = [i for i in targets.server_ids if i not in {r.cloud_id for r in found}]
    if missing:
        raise InputError(
            "--server",
            f"no server {', '.join(missing)}"
            + (" with the given tags" if targets.tags else "")
            + f" in {profile.where}: check the id and the profile's region",
        )
    ids = {r.cloud_id for r in resources}
    account_orders: list[str] = []
    if config.billing.pending_orders == "account":
        account_orders = [
            o.order_id for o in inventory.pending_orders() if all_regions or o.in_region
        ]
    else:
        account_orders = [
            o.order_id for o in inventory.pending_orders() if ids & set(o.resource_ids)
        ]
    scope = config.scope.name or targets.scope()
    return make_plan(
        resources,
        config,
        scope,
        now=now,
        orders=account_orders,
        skipped=[r.urn for r in _dropped],  # returned by the cloud, not selected: listed
        selectors=targets.tags,
        include_foreign=include_foreign,
        fold=fold,
        estimator=provider_of(profile).estimator(profile),
    )


def build_runner(
    profile: Account,
    config: Config,
    journal: Journal,
    clock: Clock,
    observers: Sequence[Observer],
    tuning: Tuning,
    destroyer: Destroyer | None = None,
) -> Runner:
    ssh = SshFetcher(
        LocalStore(Path(config.store.path)),
        ssh_settings(config, profile),
        tuning.env,
        local_ports=dict(profile.ssh.ports),
    )
    fetcher: Fetcher = ssh
    if config.backup.transfer == "push" and config.store.url is None:
        raise ConfigError(
            "backup.transfer", 'push needs an object store: set [store] url = "s3://..."'
        )
    if config.store.url is not None:  # the object store, with [store] path as staging
        store = ObjectStore.open(config.store, tuning.env)
        via_runner = ObjectStoreFetcher(ssh, store)
        fetcher = PushFetcher(via_runner, store) if config.backup.transfer == "push" else via_runner
    ports = Ports(
        snapshotter=profile.snapshotter(tuning.sleep, tuning.poll_interval),
        fetcher=fetcher,
        destroyer=destroyer or profile.destroyer(tuning.sleep, tuning.poll_interval),
        billing=profile.billing(),
        claims=profile.claims(tuning.sleep),
    )
    return Runner(
        journal,
        ports,
        clock=clock,
        retry=tuning.retry,
        sleep=tuning.sleep,
        parallel=config.run.parallel,
        observers=observers,
        reuse_within=timedelta(seconds=config.backup.reuse_seconds),
        claim_settle=config.run.claim_settle,
    )


@dataclass(frozen=True)
class Outcome:
    result: RunResult
    report: dict[str, Any]
    report_paths: tuple[Path, Path, Path] | None
    """None when the report files could not be written (see ``warnings``)."""
    warnings: tuple[str, ...] = ()
    """What went wrong around the run, not in the cloud: events, report files."""


def _finish(
    journal: Journal,
    result: RunResult,
    config: Config,
    account: Account,
    warnings: Sequence[str] = (),
) -> Outcome:
    arrival = provider_of(account).refund_arrival
    report = build_report(
        journal,
        result.run_id,
        refund_arrival=arrival,
        backup_gb_month=config.billing.prices.backup_gb_month,
        public_ip_hour=config.billing.prices.public_ip_hour,
        object_storage_gb_month=config.billing.prices.object_storage_gb_month,
    )
    directory = Path(config.journal.path).parent / "runs" / result.run_id
    try:
        paths: tuple[Path, Path, Path] | None = write_report(
            report, directory, timeline_from_events(journal.events(result.run_id))
        )
    except OSError as e:
        # The destroys happened: a full disk must not hide them. The report is still printed.
        paths = None
        warnings = (*warnings, f"the report files could not be written to {directory}: {e}")
    return Outcome(result, report, paths, tuple(warnings))


def _with_journal(
    profile: Account,
    config: Config,
    clock: Clock | None,
    observers: Sequence[Observer],
    tuning: Tuning,
    go: Callable[[Runner], RunResult],
    *,
    create: bool,
    destroyer: Destroyer | None = None,
    run_id: str,
    scope: str | None = None,
) -> Outcome:
    """Open the journal, run ``go`` and report. With an object store (``[store] url``): the
    scope's lock is taken in the bucket too (a runner elsewhere is refused, naming the holder),
    the journal is uploaded as the run goes and the reports when it ends."""
    clock = clock or SystemClock()
    path = Path(config.journal.path)
    store = ObjectStore.open(config.store, tuning.env) if config.store.url else None
    notes: list[str] = []
    with Journal.open(path, clock, create=create, on_commit=tuning.on_commit) as journal:
        if store is not None:
            uploader = JournalUploader(store, path, notes.append)
            observers = [*observers, uploader]
            scope = scope or journal.run(run_id).scope
            take_scope(store, scope, run_id)
            if config.store.retention_days:
                apply_retention(store, config.store.retention_days, notes.append)
        try:
            runner = build_runner(profile, config, journal, clock, observers, tuning, destroyer)
            result = go(runner)
        finally:
            if store is not None and scope is not None:
                release_scope(store, scope, run_id)
        outcome = _finish(journal, result, config, profile, [*runner.warnings, *notes])
    if store is not None:
        try:
            upload_journal(store, path, run_id)
            if outcome.report_paths is not None:
                upload_reports(store, run_id, outcome.report_paths)
        except TeardownError as e:
            note = f"the journal and reports could not be uploaded to the object store: {e}"
            outcome = replace(outcome, warnings=(*outcome.warnings, note))
    return outcome


def fetch_run(config: Config, run_id: str, env: Mapping[str, str]) -> bool:
    """With an object store and no local journal: the run's journal fetched from the bucket,
    so that it can be resumed on this machine (True when fetched)."""
    if config.store.url is None:
        return False
    store = ObjectStore.open(config.store, env)
    return fetch_journal(store, run_id, Path(config.journal.path))


def run_plan(
    profile: Account,
    plan: Plan,
    config: Config,
    *,
    clock: Clock | None = None,
    observers: Sequence[Observer] = (),
    tuning: Tuning = Tuning(),
    destroyer: Destroyer | None = None,
    run_id: str | None = None,
) -> Outcome:
    """Execute ``plan`` (journal first, I1 before every destroy) and write the report.
    ``destroyer`` replaces the cloud's (e.g. Pulumi's engine for ``--stack``); ``run_id`` names
    the run (the CLI chooses it first, to say how to resume after an interruption)."""
    check_runnable(plan, profile)
    clock = clock or SystemClock()
    run_id = run_id or new_run_id(clock)
    return _with_journal(
        profile,
        config,
        clock,
        observers,
        tuning,
        lambda r: r.start(plan, run_id),
        create=True,
        destroyer=destroyer,
        run_id=run_id,
        scope=plan.scope,
    )


def resume_run(
    profile: Account,
    run_id: str,
    config: Config,
    *,
    clock: Clock | None = None,
    observers: Sequence[Observer] = (),
    tuning: Tuning = Tuning(),
) -> Outcome:
    """Continue an interrupted or partially failed run, then write its report again."""
    return _with_journal(
        profile,
        config,
        clock,
        observers,
        tuning,
        lambda r: r.resume(run_id),
        create=False,
        run_id=run_id,
    )
