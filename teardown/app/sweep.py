"""``teardown sweep``: every expired test environment, each a normal teardown run.

The selection is pure (:mod:`teardown.core.sweep`); here the candidates are read (servers from
the cloud's inventory, stacks from the Pulumi project through the Automation API), marked
(``--mark``) or run: each selected scope is planned and run exactly as ``teardown run`` would
(its own plan, journal run, scope lock and report), scopes in parallel up to a bound, a failing
scope never stopping the others. The sweep's own report lists a line per scope, with the run's
money and what still bills, and is written beside the journal (``sweeps/<sweep id>/``);
``resume`` continues the unfinished runs of the last sweep.

Exit code of a sweep (the worst scope decides): 0 every scope completed (or nothing was
selected); 3 a scope was refused or blocked; 4 a scope failed or partially failed while another
completed; 1 every scope that ran failed.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Any

from teardown.adapters.pulumi.automation import PulumiDestroyer, PulumiProject
from teardown.app import services
from teardown.app.targets import TargetSource, plan_targets
from teardown.core.config import Config
from teardown.core.errors import PlanError, TeardownError
from teardown.core.model import Kind
from teardown.core.phases import RunPhase
from teardown.core.sweep import (
    MARK_TAG,
    Scope,
    ScopeKind,
    Selection,
    ServerCandidate,
    StackCandidate,
    SweepRules,
    mark_value,
    select,
)
from teardown.engine.events import Observer
from teardown.engine.runner import new_run_id
from teardown.engine.sweep_report import write_sweep_report
from teardown.ports import Clock
from teardown.ports.provider import Account

EXIT_OK, EXIT_FAILED, EXIT_BLOCKED, EXIT_PARTIAL = 0, 1, 3, 4

RUN_EXIT = {
    RunPhase.COMPLETED: EXIT_OK,
    RunPhase.RUNNING: EXIT_PARTIAL,
    RunPhase.PARTIALLY_FAILED: EXIT_PARTIAL,
    RunPhase.FAILED: EXIT_FAILED,
    RunPhase.BLOCKED: EXIT_BLOCKED,
}


@dataclass(frozen=True)
class SweepTargets:
    """Where candidates come from, besides the rules."""

    work_dir: Path = Path(".")
    """The Pulumi project whose stacks are candidates (``--cwd``)."""
    destroy_with: str | None = None
    """``--destroy-with`` for stack scopes (as for ``teardown run --stack``)."""


def candidates(
    account: Account, rules: SweepRules, targets: SweepTargets, tuning: services.Tuning
) -> tuple[list[ServerCandidate], list[StackCandidate]]:
    """The servers carrying the rules' tags (asked of the cloud, then re-checked by
    :func:`select`) and, when the rules name stack globs, the project's stacks."""
    servers: list[ServerCandidate] = []
    if rules.tags:  # no tags: no server is a candidate (core.sweep)
        found = account.inventory(tuning.sleep).servers(rules.tags)
        servers = [
            ServerCandidate(r.cloud_id or r.urn, r.name, dict(r.tags), r.created_at)
            for r in found
            if r.kind is Kind.SERVER
        ]
    stacks: list[StackCandidate] = []
    if rules.stack_globs:
        project = PulumiProject(targets.work_dir)
        stacks = [
            StackCandidate(s.name, s.last_update, project.tags(s.name)) for s in project.stacks()
        ]
    return servers, stacks


def choose(
    account: Account,
    rules: SweepRules,
    targets: SweepTargets,
    now: datetime,
    tuning: services.Tuning,
) -> Selection:
    """What a sweep with ``rules`` would act on now, and what it leaves (with the reasons)."""
    servers, stacks = candidates(account, rules, targets, tuning)
    return select(servers, stacks, rules, now)


def mark(
    account: Account,
    selection: Selection,
    targets: SweepTargets,
    now: datetime,
    notice: timedelta,
    tuning: services.Tuning,
) -> str:
    """Tag every selected server and stack with ``teardown:sweep-after`` (``now`` + ``notice``);
    nothing else changes. People remove the tag to keep an environment. Returns the date."""
    value = mark_value(now, notice)
    ids = {i for s in selection.scopes for i in s.server_ids}
    if ids:
        found = account.inventory(tuning.sleep).resources(tuple(sorted(ids)), ())
        servers = [r for r in found if r.cloud_id in ids and r.kind is Kind.SERVER]
        account.claims(tuning.sleep).tag(servers, [(MARK_TAG, value)])
    stacks = [s.stack for s in selection.scopes if s.stack is not None]
    if stacks:
        project = PulumiProject(targets.work_dir)
        for name in stacks:
            project.tag(name, MARK_TAG, value)
    return value


@dataclass
class ScopeResult:
    """How one scope of a sweep ended."""

    scope: Scope
    exit_code: int
    run_id: str | None = None
    phase: str | None = None
    report: dict[str, Any] | None = None
    error: str | None = None
    blockers: tuple[str, ...] = ()


ObserversFor = Callable[[Scope], tuple[Sequence[Observer], Callable[[], None]]]
"""The observers of one scope's run (events, progress), and what to call when it ends."""


@dataclass(frozen=True)
class SweepContext:
    """What every scope's run needs, as ``teardown run`` has it."""

    config: Config
    profile_path: Path | None
    env: Mapping[str, str]
    targets: SweepTargets
    tuning: services.Tuning
    clock: Clock
    observers: ObserversFor = field(default=lambda _scope: ((), lambda: None))


def _source(scope: Scope, targets: SweepTargets) -> TargetSource:
    if scope.stack is not None:
        return TargetSource(
            stack=scope.stack, work_dir=targets.work_dir, destroy_with=targets.destroy_with
        )
    return TargetSource(servers=scope.server_ids)


def run_scope(scope: Scope, ctx: SweepContext) -> ScopeResult:
    """Plan and run one scope as ``teardown run`` would; any failure is this scope's only."""
    config = replace(ctx.config, scope=replace(ctx.config.scope, name=scope.name))
    try:
        planned = plan_targets(
            _source(scope, ctx.targets),
            config,
            profile_path=ctx.profile_path,
            env=ctx.env,
            need_profile=True,
        )
    except PlanError as e:
        return ScopeResult(scope, EXIT_BLOCKED, error=str(e))
    except TeardownError as e:
        return ScopeResult(scope, EXIT_FAILED, error=str(e))
    plan = planned.plan
    if plan.blocked:
        reasons = tuple(b.message for b in plan.blockers)
        return ScopeResult(scope, EXIT_BLOCKED, error="; ".join(reasons), blockers=reasons)
    assert planned.profile is not None
    observers, close = ctx.observers(scope)
    run_id = new_run_id(ctx.clock)
    try:
        outcome = services.run_plan(
            planned.profile,
            plan,
            planned.config or config,
            observers=observers,
            destroyer=PulumiDestroyer(planned.stack) if planned.stack is not None else None,
            tuning=ctx.tuning,
            run_id=run_id,
        )
    except TeardownError as e:
        return ScopeResult(scope, EXIT_FAILED, run_id=run_id, error=str(e))
    finally:
        close()
    phase = outcome.result.phase
    return ScopeResult(
        scope, RUN_EXIT[phase], run_id=run_id, phase=phase.value, report=outcome.report
    )


def resume_scope(scope: Scope, run_id: str, ctx: SweepContext) -> ScopeResult:
    """Continue one scope's unfinished run (``teardown resume RUN``)."""
    try:
        account = services.resolve_profile(ctx.profile_path, ctx.env)
        observers, close = ctx.observers(scope)
        try:
            outcome = services.resume_run(
                account, run_id, ctx.config, observers=observers, tuning=ctx.tuning
            )
        finally:
            close()
    except PlanError as e:
        return ScopeResult(scope, EXIT_BLOCKED, run_id=run_id, error=str(e))
    except TeardownError as e:
        return ScopeResult(scope, EXIT_FAILED, run_id=run_id, error=str(e))
    phase = outcome.result.phase
    return ScopeResult(
        scope, RUN_EXIT[phase], run_id=run_id, phase=phase.value, report=outcome.report
    )


def run_all(jobs: Sequence[Callable[[], ScopeResult]], parallel: int) -> list[ScopeResult]:
    """Each job (one scope) in a pool of ``parallel`` threads; results in the jobs' order."""
    if not jobs:
        return []
    with ThreadPoolExecutor(max_workers=max(1, min(parallel, len(jobs)))) as pool:
        return [f.result() for f in [pool.submit(job) for job in jobs]]


def sweep(selection: Selection, ctx: SweepContext, parallel: int) -> list[ScopeResult]:
    """Run every selected scope, ``parallel`` at a time."""
    return run_all([partial(run_scope, s, ctx) for s in selection.scopes], parallel)


def exit_code(results: Sequence[ScopeResult]) -> int:
    """The sweep's exit code (module docstring): the worst scope decides; a failed scope counts
    as partial (4) when another scope completed."""
    codes = [r.exit_code for r in results]
    if not codes or all(c == EXIT_OK for c in codes):
        return EXIT_OK
    failed = [c for c in codes if c in (EXIT_FAILED, EXIT_PARTIAL)]
    if failed:
        if EXIT_PARTIAL in failed or EXIT_OK in codes:
            return EXIT_PARTIAL
        return EXIT_FAILED
    return EXIT_BLOCKED


def _money(report: Mapping[str, Any] | None, key: str) -> Decimal:
    if not report:
        return Decimal(0)
    value = report.get("money", {}).get(key)
    return Decimal(str(value)) if value is not None else Decimal(0)


def _next_step(result: ScopeResult) -> str | None:
    if result.exit_code == EXIT_OK:
        return None
    if result.run_id is not None and result.exit_code in (EXIT_PARTIAL, EXIT_FAILED):
        return (
            "fix the cause, then `teardown sweep --resume --yes` "
            f"(or `teardown resume {result.run_id}`)"
        )
    if result.exit_code == EXIT_BLOCKED:
        return "see the reason: the scope was left as it is"
    return "see the error: nothing was changed in this scope"


def scope_line(result: ScopeResult) -> dict[str, Any]:
    """One line of the sweep report: what the scope's run backed up, destroyed, refunded and
    left billing, or why it did not run."""
    report = result.report or {}
    resources = report.get("resources", [])
    backed_up = sum(
        1 for rp in resources for b in rp.get("backups", []) if b.get("status") == "succeeded"
    )
    destroyed = sum(1 for rp in resources if (rp.get("destroy") or {}).get("status") == "succeeded")
    return {
        "scope": result.scope.name,
        "kind": result.scope.kind,
        "why": result.scope.why,
        "servers": list(result.scope.server_ids),
        "stack": result.scope.stack,
        "run_id": result.run_id,
        "phase": result.phase,
        "exit_code": result.exit_code,
        "backed_up": backed_up,
        "destroyed": destroyed,
        "refunded": str(_money(report, "recorded_refund")),
        "still_billing": report.get("still_billing", []),
        "error": result.error,
        "next_step": _next_step(result),
    }


def sweep_report(
    sweep_id: str,
    now: datetime,
    selection: Selection,
    results: Sequence[ScopeResult],
    *,
    dry_run: bool = False,
) -> dict[str, Any]:
    """The sweep's report: a line per scope, what was left and why, money totals, exit code."""
    lines = [scope_line(r) for r in results]
    reports = [r.report for r in results]
    currency = next(
        (rep["money"].get("currency") for rep in reports if rep and "money" in rep), "CNY"
    )
    return {
        "sweep_id": sweep_id,
        "created_at": now.isoformat(),
        "dry_run": dry_run,
        "scopes": lines,
        "left": [{"what": left.what, "reason": left.reason} for left in selection.left],
        "selected": [
            {
                "scope": s.name,
                "kind": s.kind,
                "why": s.why,
                "servers": list(s.server_ids),
                "stack": s.stack,
            }
            for s in selection.scopes
        ],
        "money": {
            "currency": currency,
            "refunded": str(sum((_money(rep, "recorded_refund") for rep in reports), Decimal(0))),
            "fees": str(sum((_money(rep, "recorded_fee") for rep in reports), Decimal(0))),
            # The backup vaults bill by capacity for the whole account: every run reports the
            # same vaults, so they are counted once, not once per scope.
            "backups_monthly": str(
                max((_money(rep, "backups_monthly") for rep in reports), default=Decimal(0))
            ),
        },
        "exit_code": exit_code(results),
    }


def sweeps_dir(config: Config) -> Path:
    """Where sweep reports go: beside the journal."""
    return Path(config.journal.path).parent / "sweeps"


def save(report: Mapping[str, Any], config: Config) -> tuple[Path, Path, Path]:
    """Write the sweep report (``sweep.json``, ``summary.md``, ``sweep.html``)."""
    return write_sweep_report(dict(report), sweeps_dir(config) / str(report["sweep_id"]))


def last_sweep(config: Config) -> dict[str, Any] | None:
    """The report of the latest sweep that acted (its id sorts last), or None."""
    root = sweeps_dir(config)
    if not root.is_dir():
        return None
    for directory in sorted(root.iterdir(), reverse=True):
        path = directory / "sweep.json"
        if path.is_file():
            report: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
            if not report.get("dry_run"):
                return report
    return None


def unfinished(report: Mapping[str, Any]) -> list[tuple[Scope, str | None]]:
    """The scopes of a sweep report that did not complete, with their run ids (None: the scope
    never ran, e.g. its planning failed)."""
    out: list[tuple[Scope, str | None]] = []
    for line in report.get("scopes", []):
        if line.get("exit_code") == EXIT_OK:
            continue
        scope = Scope(
            name=line["scope"],
            kind=ScopeKind(line["kind"]),
            server_ids=tuple(line.get("servers") or ()),
            stack=line.get("stack"),
            why=line.get("why", ""),
        )
        out.append((scope, line.get("run_id")))
    return out


def resume(report: Mapping[str, Any], ctx: SweepContext, parallel: int) -> list[ScopeResult]:
    """Continue every unfinished scope of a sweep: its run resumed, or (never run) run anew.
    Completed scopes keep their line."""
    jobs: list[Callable[[], ScopeResult]] = []
    for scope, run_id in unfinished(report):
        if run_id is not None:
            jobs.append(partial(resume_scope, scope, run_id, ctx))
        else:
            jobs.append(partial(run_scope, scope, ctx))
    return run_all(jobs, parallel)


__all__ = [
    "ScopeResult",
    "SweepContext",
    "SweepTargets",
    "choose",
    "exit_code",
    "last_sweep",
    "mark",
    "resume",
    "save",
    "sweep",
    "sweep_report",
    "unfinished",
]
