"""``teardown sandbox``: a local Huawei-compatible cloud with real SSH servers."""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any

import click

from teardown.cli.backups import report_restore
from teardown.cli.common import echo, errors_to_exit_codes, json_option
from teardown.cli.tables import echo_table, table
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
    servers = [(s["name"], s["status"], s["charging_mode"], s["ssh_port"]) for s in view["servers"]]
    _section("servers", ("NAME", "STATUS", "BILLING", "SSH PORT"), servers, right={"SSH PORT"})
    disks = [
        (
            d["name"],
            d["size"],
            d["charging_mode"],
            names.get(d["server_id"], d["server_id"]) if d["server_id"] else "detached",
        )
        for d in view["disks"]
    ]
    _section("disks", ("NAME", "SIZE (GB)", "BILLING", "ATTACHED TO"), disks, right={"SIZE (GB)"})
    orders = [
        (
            o["id"],
            _ORDER_TYPES.get(o["order_type"], str(o["order_type"])),
            _ORDER_STATES.get(o["status"], str(o["status"])),
            f"{o['amount_after_discount']} {o['currency']}",
        )
        for o in view["orders"]
    ]
    _section("orders", ("ORDER", "TYPE", "STATUS", "AMOUNT"), orders, right={"AMOUNT"})
    billing = [_billing_row(b) for b in view["still_billing"]]
    _section("still billing", ("NAME", "KIND", "HOW IT BILLS"), billing)


_ORDER_TYPES = {1: "new", 2: "renew", 3: "change", 4: "unsubscribe"}
_ORDER_STATES = {3: "processing", 4: "cancelled", 5: "completed", 6: "pending payment"}


def _section(
    title: str,
    headers: Sequence[str],
    rows: Sequence[Sequence[object]],
    *,
    right: Collection[str] = (),
) -> None:
    """``title:``, then its table indented under it (or ``none``)."""
    echo(f"{title}:")
    if rows:
        echo_table(table(headers, rows, right=right), indent=2)
    else:
        echo("  none")


def _billing_row(b: dict[str, Any]) -> tuple[str, str, str]:
    if b["kind"] == "pending_order":
        end = b["pending_payment_end_time"]
        return (b["order_id"], "order", f"{b['amount']} pending payment until {end}")
    if b["billing"] != "prePaid":
        return (b["name"], b["kind"], f"pay-per-use, {b['hourly_price']} per hour")
    renew = (
        f"auto-renew on, next charge {b['next_renewal_charge']}"
        if b["auto_renew"]
        else "auto-renew off"
    )
    return (b["name"], b["kind"], f"prepaid until {b['expire_time']}, {renew}")
