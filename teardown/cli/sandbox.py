"""``teardown sandbox``: a local Huawei-compatible cloud with real SSH servers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from teardown.cli.backups import report_restore
from teardown.cli.common import echo, errors_to_exit_codes, json_option
from teardown.sandbox import runtime
from teardown.sandbox.restore import restore_cbr

dir_option = click.option(
    "--dir",
    "root",
    type=click.Path(path_type=Path, file_okay=False),
    required=True,
    help="The sandbox directory (state, disks, keys, profile.toml).",
)


@click.group()
def sandbox() -> None:
    """Run a local cloud that speaks Huawei Cloud's API, with an SSH server per cloud server.

    \b
    Example:
      teardown sandbox up --dir /tmp/sb --scenario demo --detach
      teardown plan ... --profile /tmp/sb/profile.toml
      teardown sandbox status --dir /tmp/sb
      teardown sandbox down --dir /tmp/sb
    """


def _print_ready(info: dict[str, Any], root: Path) -> None:
    echo(f"sandbox ready in {root.resolve()} (pid {info['pid']})")
    for service, url in info["endpoints"].items():
        echo(f"  {service:<4} {url}")
    for sid, port in sorted(info["ssh"].items(), key=lambda kv: kv[1]):
        echo(f"  ssh  127.0.0.1:{port}  server {sid}")
    echo(f"  profile {root.resolve() / 'profile.toml'}")


@sandbox.command()
@dir_option
@click.option(
    "--scenario",
    default=None,
    help="Bundled scenario name (demo, empty) or a scenario TOML file; used when DIR is new.",
)
@click.option("--detach", is_flag=True, help="Run in the background; return once ready.")
@click.option("--seed", "seed_value", type=int, default=None, help="Fault-injection seed.")
@click.option("--reset", is_flag=True, help="Start from the scenario again (drops the state).")
@errors_to_exit_codes
def up(root: Path, scenario: str | None, detach: bool, seed_value: int | None, reset: bool) -> None:
    """Start the sandbox: API listeners on 127.0.0.1, SSH servers, DIR/profile.toml.

    State survives restarts: a scenario seeds DIR only when it has no state yet (or --reset).
    """
    if reset:
        runtime.reset(root)
    if detach:
        _print_ready(runtime.start_detached(root, scenario, seed_value), root)
        return

    def ready(sb: runtime.Sandbox) -> None:
        assert sb.endpoints is not None
        info = {"pid": "this process", "endpoints": sb.endpoints.as_dict(), "ssh": sb.ssh_ports}
        _print_ready(info, root)
        echo("press Ctrl-C to stop")

    runtime.serve(root, scenario, seed_value, on_ready=ready)


@sandbox.command()
@dir_option
@errors_to_exit_codes
def down(root: Path) -> None:
    """Stop a detached sandbox and every process it started."""
    if runtime.stop_detached(root):
        echo(f"sandbox in {root.resolve()} stopped")
    else:
        echo(f"no sandbox running in {root.resolve()}")


@sandbox.command("restore")
@click.argument("backup_id")
@dir_option
@click.option(
    "--to",
    "dest",
    type=click.Path(path_type=Path, file_okay=False),
    required=True,
    help="A local directory to restore into (files already there are never overwritten).",
)
@json_option
@errors_to_exit_codes
def restore_command(backup_id: str, root: Path, dest: Path, as_json: bool) -> None:
    """Copy a sandbox CBR backup's disk files to a local directory and verify every checksum.

    A server backup gives one sub-directory per disk, named by volume id.

    \b
    Exit codes: 0 restored and every file matches, 1 a file does not match,
                2 bad input or a destination that already holds a path.
    Example:
      teardown sandbox restore <backup id> --dir /tmp/sb --to /tmp/restored
    """
    report_restore(restore_cbr(root, backup_id, dest), as_json)


@sandbox.command()
@dir_option
@json_option
@errors_to_exit_codes
def status(root: Path, as_json: bool) -> None:
    """Servers, disks, orders and what is still billing."""
    view = runtime.status(root)
    if as_json:
        click.echo(json.dumps(view, indent=2, default=str))
        return
    state = f"running (pid {view['pid']})" if view["running"] else "stopped"
    echo(f"sandbox {view['dir']}: {state}, scenario {view['scenario']}")
    names = {s["id"]: s["name"] for s in view["servers"]}
    echo("servers:")
    for s in view["servers"]:
        echo(f"  {s['name']:<12} {s['status']:<8} {s['charging_mode']:<9} ssh {s['ssh_port']}")
    echo("disks:")
    for d in view["disks"]:
        where = f"on {names.get(d['server_id'], d['server_id'])}" if d["server_id"] else "detached"
        echo(f"  {d['name']:<12} {d['size']:>4} GB  {d['charging_mode']:<9} {where}")
    echo("orders:")
    for o in view["orders"]:
        kind = _ORDER_TYPES.get(o["order_type"], str(o["order_type"]))
        state = _ORDER_STATES.get(o["status"], str(o["status"]))
        echo(f"  {o['id']}  {kind:<11} {state:<15} {o['amount_after_discount']:>9} {o['currency']}")
    echo("still billing:")
    for b in view["still_billing"]:
        echo("  " + _billing_line(b))


_ORDER_TYPES = {1: "new", 2: "renew", 3: "change", 4: "unsubscribe"}
_ORDER_STATES = {3: "processing", 4: "cancelled", 5: "completed", 6: "pending payment"}


def _billing_line(b: dict[str, Any]) -> str:
    if b["kind"] == "pending_order":
        return (
            f"order {b['order_id']}: {b['amount']} pending payment until "
            f"{b['pending_payment_end_time']}"
        )
    if b["billing"] != "prePaid":
        return f"{b['name']:<12} {b['kind']:<7} pay-per-use, {b['hourly_price']} per hour"
    renew = (
        f"auto-renew on, next charge {b['next_renewal_charge']}"
        if b["auto_renew"]
        else "auto-renew off"
    )
    return f"{b['name']:<12} {b['kind']:<7} prepaid until {b['expire_time']}, {renew}"
