"""``teardown resume``, ``status`` and ``runs``: what the journal says about runs, and
finishing one that was interrupted. Registered by the main group with ``cli.add_command``.
"""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import click

from teardown import app
from teardown.adapters.store_urls import is_store_url, list_runs, open_at
from teardown.app.config import load_config
from teardown.cli import execute
from teardown.cli.common import (
    config_option,
    echo,
    errors_to_exit_codes,
    journal_option,
    json_option,
    profile_option,
)
from teardown.cli.progress import events_option, observers_for, quiet_option
from teardown.cli.render import render_status
from teardown.cli.tables import echo_table, table
from teardown.core.config import Config
from teardown.core.errors import InputError
from teardown.engine.journal import Journal
from teardown.engine.status import run_status
from teardown.support.clock import SystemClock


@click.command()
@click.argument("run_id")
@profile_option
@config_option
@json_option
@quiet_option
@events_option
@click.option(
    "--store",
    "store_url",
    metavar="URL",
    default=None,
    help="The object store of the run (s3://bucket/prefix; default: [store] url): its journal "
    "is fetched from there when this machine has none.",
)
@errors_to_exit_codes
def resume(
    run_id: str,
    profile_path: Path | None,
    config_path: Path | None,
    as_json: bool,
    quiet: bool,
    events_path: Path | None,
    store_url: str | None,
) -> None:
    """Continue an interrupted or partially failed run from what its journal records.

    With an object store (``[store] url``, or ``--store s3://bucket/prefix``) and no journal
    here, the run's journal is fetched from the bucket first: a run started on another machine
    is resumed here, and the pulls it verified are found in the bucket, not sent again.

    A second `resume` of a run that is still running is refused (the scope lock).

    \b
    Example:
      teardown resume 20261126T101500Z-a1b2c3 --profile /tmp/sb/profile.toml
    """
    config = load_config(config_path)
    if store_url is not None:
        try:
            config = replace(config, store=replace(config.store, url=store_url))
        except ValueError as e:
            raise InputError("--store", str(e)) from None
    profile = app.resolve_profile(profile_path, os.environ)
    if app.fetch_run(config, run_id, os.environ):
        where = store_url or config.store.url
        echo(f"teardown: fetched run {run_id}'s journal from {where}", err=True)
    the_plan = app.recorded_plan(config, run_id)
    observers, close = observers_for(the_plan, quiet=quiet, events_path=events_path)
    outcome = execute.carry_out(
        lambda: app.resume_run(
            profile, run_id, config, observers=observers, tuning=execute.tuning(config)
        ),
        close,
        run_id,
        profile_path,
        config_path,
        config,
    )
    execute.finish_run(outcome, as_json)


@click.command()
@click.argument("run_id", required=False)
@journal_option
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
    with Journal.open(path, SystemClock(), create=False) as journal:
        if run_id is None:
            _show_runs(journal, as_json)
            return
        view = run_status(journal, run_id)
    if as_json:
        click.echo(json.dumps(view, indent=2, default=str))
    else:
        render_status(view)


@click.command()
@journal_option
@config_option
@json_option
@click.option(
    "--store",
    "store_url",
    metavar="URL",
    default=None,
    help="List the runs kept in this object store (s3://bucket/prefix) instead of the journal's; "
    "the endpoint, region and credentials are [store]'s.",
)
@errors_to_exit_codes
def runs(
    journal_path: Path | None, config_path: Path | None, as_json: bool, store_url: str | None
) -> None:
    """Recent runs: id, state, scope, last change (the same as `teardown status`).

    With --store s3://bucket/prefix: the runs kept in the bucket (runs/<run_id>/), each with
    whether its journal and report.json are there, and the report's phase and scope.

    \b
    Examples:
      teardown runs
      teardown runs --store s3://team-teardown/ci --json
    """
    config = load_config(config_path)
    if store_url is not None:
        _show_stored_runs(config, store_url, as_json)
        return
    path = journal_path or Path(config.journal.path)
    with Journal.open(path, SystemClock(), create=False) as journal:
        _show_runs(journal, as_json)


def _show_runs(journal: Journal, as_json: bool) -> None:
    recent = journal.runs()
    if as_json:
        click.echo(json.dumps([_run_summary(r) for r in recent], indent=2))
    elif not recent:
        echo("No runs recorded.")
    else:
        when = "%Y-%m-%d %H:%M:%S"
        rows = [
            (r.id, r.phase.value, r.scope, f"{r.created_at:{when}}", f"{r.updated_at:{when}}")
            for r in recent
        ]
        echo_table(table(("RUN", "STATE", "SCOPE", "STARTED", "UPDATED"), rows))


def _show_stored_runs(config: Config, url: str, as_json: bool) -> None:
    if not is_store_url(url):
        raise InputError("--store", f"{url!r} is not s3://bucket[/prefix]")
    store = open_at(config.store, url, os.environ)
    stored = list_runs(store)
    if as_json:
        body = [
            {
                "run_id": r.run_id,
                "journal": r.journal,
                "report": r.report,
                "phase": r.phase,
                "scope": r.scope,
                "objects": r.files,
            }
            for r in stored
        ]
        click.echo(json.dumps(body, indent=2))
    elif not stored:
        echo(f"No runs in {store.where('runs/')}.")
    else:
        rows = [
            (
                r.run_id,
                r.phase or "-",
                r.scope or "-",
                "yes" if r.report else "no",
                "yes" if r.journal else "no",
            )
            for r in stored
        ]
        echo_table(table(("RUN", "STATE", "SCOPE", "REPORT", "JOURNAL"), rows))


def _run_summary(r: Any) -> dict[str, Any]:
    return {
        "run_id": r.id,
        "scope": r.scope,
        "phase": r.phase.value,
        "created_at": r.created_at.isoformat(),
        "updated_at": r.updated_at.isoformat(),
    }
