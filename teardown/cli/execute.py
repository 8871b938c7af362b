"""Carrying out a confirmed plan from the CLI: confirmation, the run itself with Ctrl-C and
interruption handling, unfinished earlier runs, the final report and its exit code. Used by
``plan``/``run``/``apply`` (:mod:`.main`) and ``resume`` (:mod:`.journal_commands`).
"""

from __future__ import annotations

import json
import os
import shlex
import sys
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

import click

from teardown import app
from teardown.adapters.pulumi.automation import (
    PulumiDestroyer,
    reconcile_commands,
)
from teardown.app.targets import Planned
from teardown.cli.common import (
    EXIT_BLOCKED,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_PARTIAL,
    RUN_PHASE_EXIT,
    echo,
)
from teardown.cli.progress import observers_for
from teardown.core.config import Config
from teardown.core.errors import JournalError
from teardown.core.model import Plan
from teardown.core.phases import RunPhase
from teardown.engine.report import render_markdown
from teardown.engine.runner import new_run_id
from teardown.ports.provider import Account
from teardown.support.clock import SystemClock


def resume_command(run_id: str, profile_path: Path | None, config_path: Path | None) -> str:
    parts = ["teardown", "resume", run_id]
    if profile_path is not None:
        parts += ["--profile", shlex.quote(str(profile_path))]
    if config_path is not None:
        parts += ["--config", shlex.quote(str(config_path))]
    return " ".join(parts)


def interrupted(run_id: str, profile_path: Path | None, config_path: Path | None) -> NoReturn:
    """Ctrl-C: the journal holds everything done so far; say how to carry on."""
    echo(
        f"teardown: interrupted: run {run_id} stopped where it was (the journal records every "
        "step); continue it with:",
        err=True,
    )
    echo(f"  {resume_command(run_id, profile_path, config_path)}", err=True)
    sys.exit(EXIT_INTERRUPTED)


def carry_out(
    go: Callable[[], app.Outcome],
    close: Callable[[], None],
    run_id: str,
    profile_path: Path | None,
    config_path: Path | None,
    config: Config,
) -> app.Outcome:
    """Run ``go`` (a run or a resume), then ``close`` its observers. Ctrl-C, or a journal that
    can no longer be written (a full disk), stops the run before its next step: one line, the
    exit code of what happened in the cloud so far, and the command that continues it."""
    try:
        try:
            return go()
        finally:
            close()
    except KeyboardInterrupt:
        interrupted(run_id, profile_path, config_path)
    except JournalError as e:
        echo(f"teardown: failed: {e}; the run stopped before its next step", err=True)
        echo("teardown: once the journal can be written again, continue with:", err=True)
        echo(f"  {resume_command(run_id, profile_path, config_path)}", err=True)
        sys.exit(EXIT_PARTIAL if app.destroyed_any(config, run_id) else EXIT_FAILED)


def finish_unfinished(
    config: Config,
    scope: str,
    *,
    resume: bool,
    profile: Account,
    profile_path: Path | None,
    config_path: Path | None,
    quiet: bool,
) -> bool:
    """Unfinished runs of ``scope`` are never forgotten: without ``resume``, refuse (exit 3)
    with the exact command that finishes each; with it, resume them. True when some were
    resumed (the caller plans again); exits with the resumed run's code if one did not
    complete."""
    unfinished = app.unfinished_runs(config, scope)
    if not unfinished:
        return False
    if not resume:
        for rec in unfinished:
            echo(
                f"teardown: refused: scope {scope!r} has an unfinished run {rec.id} "
                f"({rec.phase.value}, last change {rec.updated_at:%Y-%m-%d %H:%M:%S}); "
                "finish it first:",
                err=True,
            )
            echo(f"  {resume_command(rec.id, profile_path, config_path)}", err=True)
        echo("teardown: or run again with --resume-unfinished; nothing was changed.", err=True)
        sys.exit(EXIT_BLOCKED)
    for rec in unfinished:
        echo(f"teardown: resuming unfinished run {rec.id} of scope {scope!r} first", err=True)
        plan_of = app.recorded_plan(config, rec.id)
        observers, close = observers_for(plan_of, quiet=quiet, events_path=None)
        try:
            outcome = app.resume_run(
                profile, rec.id, config, observers=observers, tuning=tuning(config)
            )
        finally:
            close()
        if outcome.result.phase is not RunPhase.COMPLETED:
            echo(f"teardown: run {rec.id} did not complete; nothing new was started", err=True)
            finish_run(outcome, as_json=False)
    return True


def tuning(config: Config) -> app.Tuning:
    """Waiting as configured; the environment for ``${env:NAME}`` in before/after commands."""
    return app.Tuning(poll_interval=config.run.poll_interval, env=dict(os.environ))


def confirm(the_plan: Plan, yes: bool) -> None:
    if yes:
        return
    if not sys.stdin.isatty():
        echo(
            "teardown: not confirmed: this shell is not interactive; nothing was changed. "
            "Review the plan above and run again with --yes.",
            err=True,
        )
        sys.exit(EXIT_BLOCKED)
    typed = click.prompt(f"Type the scope name ({the_plan.scope}) to back up and destroy")
    if typed.strip() != the_plan.scope:
        echo("teardown: not confirmed; nothing was changed.", err=True)
        sys.exit(EXIT_BLOCKED)


def finish_run(outcome: app.Outcome, as_json: bool) -> NoReturn:
    """Print the report and exit with the code of what happened in the cloud: a closed pipe
    (``| head``) or a failed report file never changes it."""
    try:
        if as_json:
            click.echo(json.dumps(outcome.report, indent=2, sort_keys=True))
        else:
            click.echo(render_markdown(outcome.report))
            if outcome.report_paths is not None:
                json_path, md_path, html_path = outcome.report_paths
                echo(f"report: {json_path}, {md_path} and {html_path}")
        sys.stdout.flush()
    except BrokenPipeError:
        quiet_stdout()
    for warning in outcome.warnings:
        try:
            echo(f"teardown: warning: {warning}", err=True)
        except BrokenPipeError:
            break
    sys.exit(RUN_PHASE_EXIT[outcome.result.phase])


def quiet_stdout() -> None:
    """Whoever read stdout has gone: send the rest nowhere (no error at interpreter exit)."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def execute(
    plan: Plan,
    planned: Planned,
    config: Config,
    *,
    quiet: bool,
    events_path: Path | None,
    profile_path: Path | None,
    config_path: Path | None,
    as_json: bool,
) -> None:
    """Carry out a confirmed plan (through Pulumi's engine for a stack), then report."""
    assert planned.profile is not None
    profile = planned.profile
    destroyer = PulumiDestroyer(planned.stack) if planned.stack is not None else None
    observers, close = observers_for(plan, quiet=quiet, events_path=events_path)
    run_id = new_run_id(SystemClock())
    outcome = carry_out(
        lambda: app.run_plan(
            profile,
            plan,
            config,
            observers=observers,
            destroyer=destroyer,
            tuning=tuning(config),
            run_id=run_id,
        ),
        close,
        run_id,
        profile_path,
        config_path,
        config,
    )
    reconcile_hint(planned, config, outcome)
    finish_run(outcome, as_json)


def reconcile_hint(planned: Planned, config: Config, outcome: app.Outcome) -> None:
    """After the cloud API destroyed stack resources: the commands that bring the stack in
    line."""
    if planned.stack_name is None:
        return
    urns = app.destroyed_urns(Path(config.journal.path), outcome.result.run_id)
    echo("The stack still lists what was destroyed; reconcile it with:", err=True)
    for command in reconcile_commands(planned.stack_name, urns):
        echo(f"  {command}", err=True)
