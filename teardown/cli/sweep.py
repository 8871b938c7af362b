"""``teardown sweep``: clean up every expired test environment (parse, call app, render)."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import click

from teardown import app
from teardown.app import sweep as sweeping
from teardown.app.config import load_config
from teardown.cli.common import (
    config_option,
    echo,
    errors_to_exit_codes,
    json_option,
    parse_tags,
    profile_option,
)
from teardown.cli.execute import tuning as tuning_of
from teardown.cli.progress import JsonLines, events_option, quiet_option
from teardown.core.errors import InputError, TeardownError
from teardown.core.sweep import Scope, ScopeKind, Selection, SweepRules, parse_duration
from teardown.engine.events import Event, Observer
from teardown.engine.runner import new_run_id
from teardown.engine.sweep_report import render_summary
from teardown.support.clock import SystemClock
from teardown.support.notify import post_summary


def _duration(ctx: click.Context, param: click.Parameter, value: str | None) -> timedelta | None:
    if value is None:
        return None
    try:
        return parse_duration(value)
    except ValueError as e:
        raise click.BadParameter(str(e)) from None


def _pairs(values: tuple[str, ...], flag: str) -> tuple[tuple[str, str], ...]:
    out = []
    for v in values:
        key, sep, value = v.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{v!r} is not KEY=VALUE", param_hint=flag)
        out.append((key, value))
    return tuple(out)


def _scoped(lines: JsonLines, scope: Scope) -> Observer:
    """Events of one scope's run as JSON lines carrying the scope's name."""

    def write(event: Event) -> None:
        lines(event, extra={"scope": scope.name})

    return write


def _progress(scope: Scope) -> Observer:
    from teardown.engine.events import PhaseChanged, StepFailed

    def show(event: Event) -> None:
        if isinstance(event, PhaseChanged):
            note = f": {event.detail}" if event.detail else ""
            echo(
                f"  [{scope.name}] {event.urn.rsplit('::', 1)[-1]} -> {event.phase}{note}", err=True
            )
        elif isinstance(event, StepFailed):
            echo(f"  [{scope.name}] {event.kind} failed: {event.error}", err=True)

    return show


def _show_selection(selection: Selection, dry: bool) -> None:
    if not selection.scopes:
        echo("teardown sweep: nothing to sweep.", err=True)
    for s in selection.scopes:
        what = f"stack {s.stack}" if s.stack else f"{len(s.server_ids)} server(s)"
        echo(f"{'would sweep' if dry else 'sweeping'} {s.name} ({what}): {s.why}", err=True)
    for left in selection.left:
        echo(f"left: {left.what}: {left.reason}", err=True)


@click.command()
@profile_option
@config_option
@click.option("--tag", "tags", multiple=True, help="Servers must carry tag KEY=VALUE (repeatable).")
@click.option(
    "--older-than",
    callback=_duration,
    metavar="DURATION",
    help="Created (servers) or last updated (stacks) longer ago than this: 6h, 2d, 1w.",
)
@click.option(
    "--newer-than",
    callback=_duration,
    metavar="DURATION",
    help="Created or updated more recently than this.",
)
@click.option(
    "--group-by",
    default="teardown:scope",
    show_default=True,
    help="Servers with the same value of this tag form one scope (one environment); a server "
    "without it is a scope of its own.",
)
@click.option(
    "--exclude",
    multiple=True,
    metavar="GLOB",
    help="Scope or server names to leave alone (repeatable).",
)
@click.option(
    "--keep-tag",
    default="keep",
    show_default=True,
    help="A resource carrying this tag is never swept.",
)
@click.option(
    "--stack-glob",
    "stack_globs",
    multiple=True,
    metavar="GLOB",
    help="Pulumi stacks of the project in --cwd to consider (repeatable).",
)
@click.option(
    "--stack-tag",
    "stack_tags",
    multiple=True,
    metavar="KEY=VALUE",
    help="Stacks must also carry this stack tag (repeatable).",
)
@click.option(
    "--cwd",
    "work_dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=Path("."),
    help="The Pulumi project directory (for --stack-glob).",
)
@click.option(
    "--destroy-with",
    type=click.Choice(["cloud", "pulumi"]),
    default=None,
    help="How stack scopes are destroyed (as for `teardown run --stack`).",
)
@click.option(
    "--mark",
    is_flag=True,
    help="Tag what would be swept with teardown:sweep-after=<now + --notice>; change nothing else.",
)
@click.option(
    "--notice",
    callback=_duration,
    default="24h",
    show_default=True,
    metavar="DURATION",
    help="How far ahead --mark dates the sweep.",
)
@click.option(
    "--require-mark",
    is_flag=True,
    help="Act only on resources whose teardown:sweep-after date has passed.",
)
@click.option(
    "--max-scopes",
    type=click.IntRange(1, 10_000),
    default=None,
    help="Refuse the whole sweep when more scopes than this are selected (default: "
    "[sweep] max_scopes, 50).",
)
@click.option(
    "--parallel-scopes",
    type=click.IntRange(1, 64),
    default=None,
    help="Scopes run at the same time (default: [sweep] parallel_scopes, 4).",
)
@click.option(
    "--yes", is_flag=True, help="Act. Without it the sweep is a dry run: it shows what it would do."
)
@click.option(
    "--resume",
    "resume_last",
    is_flag=True,
    help="Continue the unfinished scopes of the last sweep.",
)
@json_option
@events_option
@click.option(
    "--notify",
    metavar="URL",
    default=None,
    help='POST a Slack-compatible summary ({"text": ...}) to this URL; ${env:NAME} is read from '
    "the environment.",
)
@quiet_option
@errors_to_exit_codes
def sweep(
    profile_path: Path | None,
    config_path: Path | None,
    tags: tuple[str, ...],
    older_than: timedelta | None,
    newer_than: timedelta | None,
    group_by: str,
    exclude: tuple[str, ...],
    keep_tag: str,
    stack_globs: tuple[str, ...],
    stack_tags: tuple[str, ...],
    work_dir: Path,
    destroy_with: str | None,
    mark: bool,
    notice: timedelta,
    require_mark: bool,
    max_scopes: int | None,
    parallel_scopes: int | None,
    yes: bool,
    resume_last: bool,
    as_json: bool,
    events_path: Path | None,
    notify: str | None,
    quiet: bool,
) -> None:
    """Back up, destroy and close the billing of every expired test environment.

    A scope (one environment) is a group of servers sharing the --group-by tag's value, or a
    Pulumi stack (--stack-glob). A server is expired when it is older than --older-than, or by
    its own tags: teardown:expires-at=<UTC time> or teardown:ttl=<duration> (from its creation);
    an expiry in the future, a future teardown:sweep-after mark, the --keep-tag or an --exclude
    glob keeps it, and a scope is swept only when all its servers are. Each scope is a normal
    teardown run (its own plan, journal run, lock, report): backups verified before any
    destroy, billing closed, resumable. Scopes run in parallel; one failing never stops the
    others. Without --yes nothing changes.

    The sweep report (sweep.json, summary.md for a CI summary page, sweep.html) goes beside the
    journal, in sweeps/<sweep id>/.

    \b
    Exit codes: 0 every scope completed (or nothing to sweep), 1 every scope that ran failed,
                2 usage or bad input, 3 a scope was refused or blocked,
                4 a scope failed or partially failed while another completed.

    \b
    Examples:
      teardown sweep --tag env=ci --older-than 6h                 # dry run: what would go
      teardown sweep --tag env=ci --older-than 6h --yes --parallel-scopes 8
      teardown sweep --tag env=ci --older-than 6h --mark --notice 24h --yes
      teardown sweep --tag env=ci --require-mark --yes            # a day later
      teardown sweep --stack-glob 'ci-*' --older-than 24h --cwd infra --yes
      teardown sweep --resume --yes
    """
    config = load_config(config_path)
    max_scopes = max_scopes or config.sweep.max_scopes
    parallel_scopes = parallel_scopes or config.sweep.parallel_scopes
    rules = SweepRules(
        tags=parse_tags(tags),
        older_than=older_than,
        newer_than=newer_than,
        stack_globs=tuple(stack_globs),
        stack_tags=_pairs(stack_tags, "--stack-tag"),
        exclude=tuple(exclude),
        keep_tag=keep_tag,
        group_by=group_by,
        require_mark=require_mark,
        max_scopes=max_scopes,
    )
    if not rules.tags and not rules.stack_globs and not resume_last:
        raise InputError(
            "--tag",
            "give --tag KEY=VALUE (servers) or --stack-glob GLOB (stacks): a sweep of "
            "the whole account is never implied",
        )
    clock = SystemClock()
    now = clock.now()
    tuning = tuning_of(config)
    targets = sweeping.SweepTargets(work_dir=work_dir, destroy_with=destroy_with)
    lines = JsonLines(events_path) if events_path is not None else None

    def observers(scope: Scope) -> tuple[Sequence[Observer], Callable[[], None]]:
        obs: list[Observer] = []
        if lines is not None:
            obs.append(_scoped(lines, scope))
        if not quiet:
            obs.append(_progress(scope))
        return obs, lambda: None

    ctx = sweeping.SweepContext(
        config=config,
        profile_path=profile_path,
        env=dict(os.environ),
        targets=targets,
        tuning=tuning,
        clock=clock,
        observers=observers,
    )
    try:
        if resume_last:
            last = sweeping.last_sweep(config)
            if last is None:
                raise InputError("--resume", "no earlier sweep in this journal's directory")
            if not yes:
                for scope, run_id in sweeping.unfinished(last):
                    echo(f"would resume {scope.name} (run {run_id or 'not started'})", err=True)
                sys.exit(0)
            results = sweeping.resume(last, ctx, parallel_scopes)
            done = {r.scope.name for r in results}
            kept = [line for line in last["scopes"] if line["scope"] not in done]
            report = dict(last)
            report["scopes"] = kept + [sweeping.scope_line(r) for r in results]
            report["exit_code"] = _worst(report["scopes"])
            report["resumed_at"] = now.isoformat()
        else:
            account = app.resolve_profile(profile_path, os.environ)
            selection = sweeping.choose(account, rules, targets, now, tuning)
            if mark:
                _show_selection(selection, dry=not yes)
                if yes:
                    when = sweeping.mark(account, selection, targets, now, notice, tuning)
                    echo(f"marked {len(selection.scopes)} scope(s): swept after {when}", err=True)
                sys.exit(0)
            _show_selection(selection, dry=not yes)
            results = sweeping.sweep(selection, ctx, parallel_scopes) if yes else []
            report = sweeping.sweep_report(
                new_run_id(clock), now, selection, results, dry_run=not yes
            )
    finally:
        if lines is not None:
            lines.close()
    paths = sweeping.save(report, config)
    if notify is not None and not report.get("dry_run"):
        try:
            post_summary(notify, render_summary(report), env=os.environ)
        except TeardownError as e:
            echo(f"teardown: warning: the summary was not sent: {e}", err=True)
    if as_json:
        click.echo(json.dumps(report, indent=2, sort_keys=True))
    else:
        click.echo(render_summary(report))
        echo(f"sweep report: {paths[0]}, {paths[1]} and {paths[2]}")
    sys.exit(report["exit_code"])


def _worst(lines: Sequence[dict[str, Any]]) -> int:
    results = [
        sweeping.ScopeResult(Scope(x["scope"], ScopeKind(x["kind"]), (), None, ""), x["exit_code"])
        for x in lines
    ]
    return sweeping.exit_code(results)


__all__ = ["sweep"]
