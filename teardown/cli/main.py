"""The ``teardown`` command. Thin: parse, load settings, call the library, render, map exit codes.

Exit codes: 0 done, 1 failed, 2 usage or bad input, 3 blocked before anything was destroyed,
4 partially done (the report lists what remains and how to resume).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from teardown import __version__
from teardown.adapters.clock import SystemClock
from teardown.adapters.pulumi.state import read_state
from teardown.cli.common import (
    EXIT_BLOCKED,
    config_option,
    errors_to_exit_codes,
    json_option,
)
from teardown.cli.render import render_plan, render_runs, render_status
from teardown.cli.sandbox import sandbox
from teardown.config import load_config
from teardown.core.config import Config
from teardown.core.planner import make_plan
from teardown.core.views import plan_view
from teardown.engine.journal import Journal
from teardown.engine.status import run_status


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="teardown")
def cli() -> None:
    """Back up before you destroy or unsubscribe.

    teardown finds the targets (a Pulumi stack or cloud servers), plans, backs up and verifies,
    destroys only what is verified, then closes the billing, with every step in a journal.

    \b
    Exit codes: 0 done, 1 failed, 2 usage or bad input,
                3 blocked before anything was destroyed, 4 partially done.
    """


@cli.command()
@click.option(
    "--state",
    "state_path",
    type=click.Path(path_type=Path, dir_okay=False),
    required=True,
    help="A `pulumi stack export` file, or a checkpoint file of the local backend.",
)
@config_option
@json_option
@errors_to_exit_codes
def plan(state_path: Path, config_path: Path | None, as_json: bool) -> None:
    """Show what a run would do to a stack, without changing anything.

    Per resource: kind, billing mode, backups, destroy action, billing actions and blockers.
    Exits 3 when the plan is blocked (e.g. an unknown resource type), 0 otherwise.

    \b
    Example:
      teardown plan --state dev-export.json --config teardown.toml --json
    """
    config = load_config(config_path)
    state = read_state(state_path)
    scope = config.scope.name or state.stack or state_path.stem
    the_plan = make_plan(state.resources, config, scope, skipped=state.skipped)
    if as_json:
        click.echo(json.dumps(plan_view(the_plan), indent=2))
    else:
        render_plan(the_plan)
    if the_plan.blocked:
        for b in the_plan.blockers:
            click.echo(f"teardown: blocked: {b.message}", err=True)
        sys.exit(EXIT_BLOCKED)


@cli.command()
@click.argument("run_id", required=False)
@click.option(
    "--journal",
    "journal_path",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Journal file (default: journal.path from the config, .teardown/journal.db).",
)
@config_option
@json_option
@errors_to_exit_codes
def status(
    run_id: str | None, journal_path: Path | None, config_path: Path | None, as_json: bool
) -> None:
    """Show recent runs, or one run in detail (per resource: phase, backups, destroy, billing).

    \b
    Examples:
      teardown status                 # recent runs
      teardown status 20261126T101500Z-a1b2c3 --json
    """
    config: Config = load_config(config_path)
    path = journal_path or Path(config.journal.path)
    journal = Journal.open(path, SystemClock(), create=False)
    try:
        if run_id is None:
            runs = journal.runs()
            if as_json:
                click.echo(json.dumps([_run_summary(r) for r in runs], indent=2))
            else:
                render_runs(runs)
            return
        view = run_status(journal, run_id)
        if as_json:
            click.echo(json.dumps(view, indent=2, default=str))
        else:
            render_status(view)
    finally:
        journal.close()


def _run_summary(r: Any) -> dict[str, Any]:
    return {
        "run_id": r.id,
        "scope": r.scope,
        "phase": r.phase.value,
        "created_at": r.created_at.isoformat(),
        "updated_at": r.updated_at.isoformat(),
    }


cli.add_command(sandbox)


def main() -> None:
    """Console-script entry point."""
    cli()


if __name__ == "__main__":
    main()
