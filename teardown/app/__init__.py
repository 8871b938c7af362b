"""The application services: what the CLI (and the Pulumi plugin) call. One public face over
private modules (``services``: plan, run, resume; ``targets``: what to tear down;
``planfile``: reviewed plans; ``config``: loading ``teardown.toml``; ``pulumi_hooks``: the
hooks' logic; ``providers``: the registry of clouds), as Pulumi's automation package does.

Example::

    from teardown import app

    plan = app.plan_servers(profile, app.Targets(tags=(("env", "test"),)), config, now=now)
    outcome = app.run_plan(profile, plan, config)
"""

from teardown.app.services import (
    CLOUD_DESTROYS,
    Outcome,
    Targets,
    Tuning,
    backup_storage,
    build_runner,
    check_runnable,
    destroyed_any,
    destroyed_urns,
    enrich_from_cloud,
    fetch_run,
    plan_servers,
    plan_state,
    recorded_plan,
    resolve_profile,
    resume_run,
    run_plan,
    ssh_settings,
    unfinished_runs,
)

__all__ = [
    "CLOUD_DESTROYS",
    "Outcome",
    "Targets",
    "Tuning",
    "backup_storage",
    "build_runner",
    "check_runnable",
    "destroyed_any",
    "destroyed_urns",
    "enrich_from_cloud",
    "fetch_run",
    "plan_servers",
    "plan_state",
    "recorded_plan",
    "resolve_profile",
    "resume_run",
    "run_plan",
    "ssh_settings",
    "unfinished_runs",
]
