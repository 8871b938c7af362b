"""The ``teardown`` command. Thin: parse, load settings, call the library, render, map exit codes.

Exit codes: 0 done, 1 failed, 2 usage or bad input, 3 blocked before anything was destroyed,
4 partially done (the report lists what remains and how to resume).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import click

from teardown import __version__, app
from teardown.app.config import load_config, parse_config
from teardown.app.planfile import (
    check_still_valid,
    read_plan_file,
    write_plan_file,
)
from teardown.app.targets import Planned, TargetSource, plan_targets
from teardown.cli import execute
from teardown.cli.backups import restore, verify
from teardown.cli.bills import bills
from teardown.cli.common import (
    EXIT_BLOCKED,
    check_servers,
    config_option,
    echo,
    errors_to_exit_codes,
    json_option,
    parse_tags,
    profile_option,
    server_option,
    tag_option,
)
from teardown.cli.journal_commands import resume, runs, status
from teardown.cli.orders import orders
from teardown.cli.progress import events_option, quiet_option
from teardown.cli.render import render_plan
from teardown.cli.sandbox import sandbox
from teardown.cli.sweep import sweep
from teardown.core.config import Config
from teardown.core.model import Plan
from teardown.core.phases import RunPhase
from teardown.core.views import plan_view
from teardown.engine.codec import plan_digest, plan_to_json
from teardown.engine.journal import Journal
from teardown.ports.provider import Account
from teardown.support.clock import SystemClock


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


F = TypeVar("F", bound=Callable[..., Any])

state_option = click.option(
    "--state",
    "state_path",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="A `pulumi stack export` file, or a checkpoint file of the local backend (offline).",
)
stack_option = click.option(
    "--stack", "stack_name", default=None, help="A Pulumi stack (needs the pulumi CLI)."
)
cwd_option = click.option(
    "--cwd",
    "work_dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=Path("."),
    show_default=True,
    help="The Pulumi project directory for --stack.",
)


destroy_with_option = click.option(
    "--destroy-with",
    type=click.Choice(["cloud", "pulumi"]),
    default=None,
    help="For stacks: destroy through the cloud API (then reconcile the stack) or Pulumi's "
    "engine. Default: pulumi with --stack, cloud with --state (the only way offline).",
)


include_foreign_option = click.option(
    "--include-foreign",
    is_flag=True,
    help="Take resources tagged for another scope (teardown:scope, or a selector's key with "
    "another value) with a warning instead of blocking the plan.",
)


all_regions_option = click.option(
    "--all-regions",
    is_flag=True,
    help='With billing.pending_orders = "account": cancel the account\'s pending orders of '
    "every region, not only those touching the profile's region (BSS orders are account-wide).",
)


def target_options(command: F) -> F:
    """The options that name a scope and how to treat it, shared by `plan` and `run`."""
    for option in reversed(
        (
            state_option,
            stack_option,
            cwd_option,
            profile_option,
            server_option,
            tag_option,
            config_option,
            json_option,
            destroy_with_option,
            include_foreign_option,
            all_regions_option,
        )
    ):
        command = option(command)
    return command


resume_unfinished_option = click.option(
    "--resume-unfinished",
    is_flag=True,
    help="When the scope has an unfinished run (killed, or partially done), resume it first, "
    "then plan and run anew. Without it such a run is refused (exit 3) with the resume command.",
)


def _make_plan(
    config: Config,
    *,
    state_path: Path | None,
    stack_name: str | None,
    work_dir: Path,
    profile_path: Path | None,
    servers: tuple[str, ...],
    tags: tuple[str, ...],
    destroy_with: str | None = None,
    need_profile: bool = False,
    include_foreign: bool = False,
    all_regions: bool = False,
    config_given: bool = True,
) -> Planned:
    """The command line's targets, checked, as the app's one TargetSource, planned.
    ``config_given``: ``--config`` was given (else a stack's ``teardown:config`` is used)."""
    source = TargetSource(
        servers=check_servers(tuple(servers)),
        tags=parse_tags(tags),
        state=state_path,
        stack=stack_name,
        work_dir=work_dir,
        destroy_with=destroy_with,
        include_foreign=include_foreign,
        all_regions=all_regions,
        config_given=config_given,
    )
    return plan_targets(
        source, config, profile_path=profile_path, env=os.environ, need_profile=need_profile
    )


def _reusable(the_plan: Plan, config: Config) -> dict[str, str]:
    """Backups of the plan another run verified within ``backup.reuse_within``: step id ->
    ``reused from run X (made at T)`` (a run reuses them after checking they are intact)."""
    path = Path(config.journal.path)
    seconds = config.backup.reuse_seconds
    if seconds <= 0 or not path.exists():
        return {}
    clock = SystemClock()
    with Journal.open(path, clock, create=False) as journal:
        ids = [s.id for rp in the_plan.resources for s in rp.backups]
        since = clock.now() - timedelta(seconds=seconds)
        found = journal.verified_artifacts(ids, since)
    return {
        step_id: f"reused from run {e.run_id} (made at {e.made_at.isoformat()})"
        for step_id, e in found.items()
    }


OFFLINE = (
    "offline preview (no --profile): without the cloud's billing facts, creation times and "
    "account, the plan a run records (and its backup identities) will differ"
)


def _show_plan(
    the_plan: Plan,
    as_json: bool,
    config: Config | None = None,
    *,
    offline: bool = False,
    account: Account | None = None,
) -> None:
    """Print the plan; a reader that went away (``| head``) changes nothing that follows."""
    storage = app.backup_storage(the_plan, config, account) if config is not None else None
    try:
        _print_plan(the_plan, as_json, config, offline=offline, storage=storage)
        sys.stdout.flush()
    except BrokenPipeError:
        execute.quiet_stdout()


def _print_plan(
    the_plan: Plan,
    as_json: bool,
    config: Config | None = None,
    *,
    offline: bool = False,
    storage: dict[str, Any] | None = None,
) -> None:
    reusable = _reusable(the_plan, config) if config is not None else {}
    if as_json:
        view = plan_view(the_plan)
        if reusable:
            view["reusable_backups"] = reusable
        if offline:
            view["offline_preview"] = OFFLINE
        if storage is not None:
            view["backup_storage"] = storage
        click.echo(json.dumps(view, indent=2))
    else:
        render_plan(the_plan, reusable, OFFLINE if offline else "", storage)


@cli.command()
@target_options
@click.option(
    "--out",
    "out_path",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Write the reviewed plan to this file, for `teardown apply FILE`.",
)
@errors_to_exit_codes
def plan(
    state_path: Path | None,
    stack_name: str | None,
    work_dir: Path,
    profile_path: Path | None,
    servers: tuple[str, ...],
    tags: tuple[str, ...],
    config_path: Path | None,
    as_json: bool,
    destroy_with: str | None,
    include_foreign: bool,
    all_regions: bool,
    out_path: Path | None,
) -> None:
    """Show what a run would do, without changing anything.

    Per resource: kind, billing mode, backups, destroy action, billing actions, the money
    (estimated refund, fee, consumption, 5-day rule, next auto-renew charge) and blockers.
    Exits 3 when the plan is blocked (e.g. an unknown resource type), 0 otherwise.

    \b
    Examples:
      teardown plan --state dev-export.json --json
      teardown plan --state dev-export.json --profile /tmp/sb/profile.toml
      teardown plan --stack dev --cwd stacks/test_env --destroy-with cloud --profile P
      teardown plan --profile /tmp/sb/profile.toml --tag env=test

    Without --profile (or credentials in the environment), --state and --stack give an
    offline preview: no billing facts, and backup identities (which need the cloud's account
    and creation times) differ from the run's.
    """
    config = load_config(config_path)
    planned = _make_plan(
        config,
        state_path=state_path,
        stack_name=stack_name,
        work_dir=work_dir,
        profile_path=profile_path,
        servers=servers,
        tags=tags,
        destroy_with=destroy_with,
        include_foreign=include_foreign,
        all_regions=all_regions,
        config_given=config_path is not None,
    )
    config = planned.config or config  # with the stack's `teardown:` keys
    _show_plan(
        planned.plan,
        as_json,
        config,
        offline=planned.profile is None,
        account=planned.profile,
    )
    for note in planned.skip_notes:
        echo(f"teardown: not planned: {note}", err=True)
    if planned.plan.blocked:
        for b in planned.plan.blockers:
            echo(f"teardown: blocked: {b.message}", err=True)
        sys.exit(EXIT_BLOCKED)
    if out_path is not None:
        targets: dict[str, Any] = {
            "servers": list(servers),
            "tags": [list(t) for t in parse_tags(tags)],
        }
        if state_path is not None:
            targets = {"state": str(state_path.resolve())}
        elif stack_name is not None:
            targets = {"stack": stack_name, "cwd": str(work_dir.resolve())}
        if destroy_with is not None:
            targets["destroy_with"] = destroy_with
        if include_foreign:
            targets["include_foreign"] = True
        if all_regions:
            targets["all_regions"] = True
        digest = write_plan_file(
            out_path, planned.plan, targets, _config_text(config_path), SystemClock().now()
        )
        echo(
            f"plan written to {out_path} (digest {digest[:12]}); apply it with "
            f"`teardown apply {out_path}`",
            err=True,
        )


def _config_text(config_path: Path | None) -> str:
    path = config_path or (Path("teardown.toml") if Path("teardown.toml").exists() else None)
    return path.read_text(encoding="utf-8") if path is not None else ""


@cli.command()
@click.argument("plan_path", type=click.Path(path_type=Path, dir_okay=False))
@profile_option
@json_option
@click.option("--yes", is_flag=True, help="Do not ask for confirmation (pipelines).")
@quiet_option
@events_option
@resume_unfinished_option
@errors_to_exit_codes
def apply(
    plan_path: Path,
    profile_path: Path | None,
    as_json: bool,
    yes: bool,
    quiet: bool,
    events_path: Path | None,
    resume_unfinished: bool,
) -> None:
    """Run a plan written by `teardown plan --out`, exactly as reviewed.

    Reads the live inventory again and refuses (exit 3, with the differences) when anything
    relevant changed since the plan: a server added or gone, billing mode, orders, disks (I5).
    Applying the same plan twice does nothing the second time.

    \b
    Example:
      teardown plan --profile P --tag env=test --out plan.json   # review it
      teardown apply plan.json --profile P --yes
    """
    reviewed = read_plan_file(plan_path)
    config = (
        parse_config(reviewed.config_text, f"{plan_path} (config)")
        if reviewed.config_text
        else Config()
    )
    done = _already_applied(config, reviewed.plan)
    if done is not None:
        echo(f"teardown: plan already applied in run {done}; nothing to do", err=True)
        return
    profile_first = app.resolve_profile(profile_path, os.environ)
    execute.finish_unfinished(
        config,
        reviewed.plan.scope,
        resume=resume_unfinished,
        profile=profile_first,
        profile_path=profile_path,
        config_path=None,
        quiet=quiet,
    )  # a resumed run changes the inventory: the drift check below then says so
    t = reviewed.targets
    live = _make_plan(
        config,
        state_path=Path(t["state"]) if "state" in t else None,
        stack_name=t.get("stack"),
        work_dir=Path(t.get("cwd", ".")),
        profile_path=profile_path,
        servers=tuple(t.get("servers", ())),
        tags=tuple(f"{k}={v}" for k, v in t.get("tags", ())),
        destroy_with=t.get("destroy_with"),
        need_profile=True,
        include_foreign=bool(t.get("include_foreign")),
        all_regions=bool(t.get("all_regions")),
    )
    check_still_valid(reviewed, live.plan, str(plan_path))
    config = live.config or config  # with the stack's `teardown:` keys
    profile = live.profile or app.resolve_profile(profile_path, os.environ)
    execute.confirm(reviewed.plan, yes)
    execute.execute(
        reviewed.plan,
        replace(live, profile=profile),
        config,
        quiet=quiet,
        events_path=events_path,
        profile_path=profile_path,
        config_path=None,
        as_json=as_json,
    )


def _already_applied(config: Config, the_plan: Plan) -> str | None:
    path = Path(config.journal.path)
    if not path.exists():
        return None
    with Journal.open(path, SystemClock(), create=False) as journal:
        digest = plan_digest(plan_to_json(the_plan))
        for run_rec in journal.runs_of_plan(digest):
            if run_rec.phase is RunPhase.COMPLETED:
                return run_rec.id
        return None


@cli.command()
@target_options
@click.option("--yes", is_flag=True, help="Do not ask for confirmation (pipelines).")
@click.option("--dry-run", is_flag=True, help="Plan and stop (same as `teardown plan`).")
@quiet_option
@events_option
@resume_unfinished_option
@errors_to_exit_codes
def run(
    state_path: Path | None,
    stack_name: str | None,
    work_dir: Path,
    profile_path: Path | None,
    servers: tuple[str, ...],
    tags: tuple[str, ...],
    config_path: Path | None,
    as_json: bool,
    yes: bool,
    dry_run: bool,
    quiet: bool,
    events_path: Path | None,
    destroy_with: str | None,
    include_foreign: bool,
    all_regions: bool,
    resume_unfinished: bool,
) -> None:
    """Back up, verify, destroy what is verified, close the billing, and report.

    Asks you to type the scope name unless --yes; in a non-interactive shell without --yes it
    plans and stops. Exit codes: 0 done, 1 failed, 3 blocked (nothing destroyed), 4 partially
    done (the report says what remains and how to resume).

    \b
    Examples:
      teardown run --profile /tmp/sb/profile.toml --tag env=test --yes
      teardown run --stack dev --cwd stacks/test_env --profile P --yes
      teardown run --stack dev --cwd stacks/test_env --destroy-with cloud --profile P --yes
      teardown run --state dev.json --destroy-with cloud --profile P --yes

    `teardown plan` with the same options shows exactly this plan.
    """
    config = load_config(config_path)

    def make() -> Planned:
        return _make_plan(
            config,
            state_path=state_path,
            stack_name=stack_name,
            work_dir=work_dir,
            profile_path=profile_path,
            servers=servers,
            tags=tags,
            destroy_with=destroy_with,
            need_profile=True,
            include_foreign=include_foreign,
            all_regions=all_regions,
            config_given=config_path is not None,
        )

    planned = make()
    assert planned.profile is not None
    config = planned.config or config  # with the stack's `teardown:` keys
    if not dry_run and execute.finish_unfinished(
        config,
        planned.plan.scope,
        resume=resume_unfinished,
        profile=planned.profile,
        profile_path=profile_path,
        config_path=config_path,
        quiet=quiet,
    ):
        planned = make()  # the resumed run changed what exists
    the_plan, profile = planned.plan, planned.profile
    assert profile is not None
    if as_json and not dry_run:
        pass  # stdout carries the report's JSON only; the plan is in the report and the journal
    else:
        _show_plan(the_plan, as_json, config, account=profile)
    if the_plan.blocked:
        for b in the_plan.blockers:
            echo(f"teardown: blocked: {b.message}", err=True)
        sys.exit(EXIT_BLOCKED)
    if dry_run:
        return
    execute.confirm(the_plan, yes)
    execute.execute(
        the_plan,
        planned,
        config,
        quiet=quiet,
        events_path=events_path,
        profile_path=profile_path,
        config_path=config_path,
        as_json=as_json,
    )


cli.add_command(sandbox)
cli.add_command(orders)
cli.add_command(bills)
cli.add_command(resume)
cli.add_command(status)
cli.add_command(runs)
cli.add_command(verify)
cli.add_command(restore)
cli.add_command(sweep)


def main() -> None:
    """Console-script entry point."""
    cli()


if __name__ == "__main__":
    main()
