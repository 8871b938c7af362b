"""``teardown orders``: renewal reminders for prepaid (yearly/monthly) resources.

Reads only. Registered by the main group with ``cli.add_command(orders)``; this module does not
import ``teardown.cli.main`` (which imports it), so the target options are declared here with the
same names and help as the other commands'.
"""

from __future__ import annotations

import json
import os
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import click

from teardown import app
from teardown.app.config import load_config
from teardown.app.providers import provider_of
from teardown.cli.common import (
    EXIT_RENEWING,
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
from teardown.cli.tables import echo_table, table
from teardown.core.reminders import Reminder, parse_window, without_expiry
from teardown.ports import PendingOrder
from teardown.support.clock import SystemClock

DEFAULT_WINDOW = "30d"


def _window(ctx: click.Context, param: click.Parameter, value: str) -> timedelta:
    try:
        return parse_window(value)
    except ValueError as e:
        raise click.BadParameter(str(e), ctx, param) from None


def _span(window: timedelta) -> str:
    if window % timedelta(days=1) == timedelta(0):
        n = window // timedelta(days=1)
        return f"{n} day{'s' if n != 1 else ''}"
    n = window // timedelta(hours=1)
    return f"{n} hour{'s' if n != 1 else ''}"


def _when(t: datetime | None) -> str:
    return f"{t:%Y-%m-%d %H:%M %Z}" if t is not None else "-"


def listed(items: list[Reminder], now: datetime, window: timedelta) -> list[Reminder]:
    """The reminders to show: expiring within the window, or auto-renew charging within it."""
    end = now + window
    return [r for r in items if r.expires_at <= end or r.charge_in_window]


def reminder_view(r: Reminder) -> dict[str, Any]:
    return {
        "name": r.name,
        "urn": r.urn,
        "cloud_id": r.cloud_id,
        "kind": r.kind,
        "expires_at": r.expires_at.isoformat(),
        "days_left": r.days_left,
        "auto_renew": r.auto_renew,
        "next_charge": r.next_charge.isoformat() if r.next_charge else None,
        "charge_in_window": r.charge_in_window,
        "estimated_refund": str(r.estimated_refund) if r.estimated_refund is not None else None,
        "five_day": r.five_day,
        "explanation": r.explanation,
    }


def pending_view(o: PendingOrder) -> dict[str, Any]:
    return {
        "order_id": o.order_id,
        "amount": str(o.amount),
        "resource_ids": list(o.resource_ids),
        "created": o.created.isoformat() if o.created else None,
        "pay_by": o.pay_by.isoformat() if o.pay_by else None,
    }


HEADERS = (
    "NAME",
    "EXPIRES",
    "DAYS LEFT",
    "AUTO-RENEW",
    "NEXT CHARGE",
    "EST. REFUND TODAY",
    "5-DAY?",
)


def _row(r: Reminder) -> tuple[str, ...]:
    return (
        r.name,
        _when(r.expires_at),
        str(r.days_left),
        "on" if r.auto_renew else "off",
        _when(r.next_charge) + (" !" if r.charge_in_window else ""),
        f"{r.estimated_refund} CNY" if r.estimated_refund is not None else "refused",
        "yes" if r.five_day else "no",
    )


def render_table(items: list[Reminder], window: timedelta, total: int) -> None:
    span = _span(window)
    if not items:
        echo(f"No prepaid resource expires or auto-renews within {span} ({total} prepaid).")
        return
    echo(f"{len(items)} of {total} prepaid resource(s) expire or auto-renew within {span}:")
    echo_table(table(HEADERS, [_row(r) for r in items], right={"DAYS LEFT", "EST. REFUND TODAY"}))
    if any(r.charge_in_window for r in items):
        echo(f"! auto-renew charges within {span}: cancel it before then to avoid the charge")
    for r in items:
        echo(f"- {r.name}: {r.explanation}")


@click.command()
@profile_option
@server_option
@tag_option
@config_option
@click.option(
    "--expiring",
    "window",
    metavar="WINDOW",
    callback=_window,
    default=DEFAULT_WINDOW,
    show_default=True,
    help="List what expires (or auto-renews) within this window: Nh, Nd or Nw, e.g. 48h, 14d, 2w.",
)
@json_option
@click.option(
    "--fail-if-renewing",
    is_flag=True,
    help="Exit 5 when a listed resource's auto-renew charge date falls inside the window.",
)
@errors_to_exit_codes
def orders(
    profile_path: Path | None,
    servers: tuple[str, ...],
    tags: tuple[str, ...],
    config_path: Path | None,
    window: timedelta,
    as_json: bool,
    fail_if_renewing: bool,
) -> None:
    """Renewal reminders for prepaid (yearly/monthly) servers and disks. Reads only.

    Lists the prepaid resources that expire, or whose auto-renew charges, within the window:
    expiry, days left, auto-renew and its next charge (03:00 of the site's local time, UTC+8 on
    the Chinese site, 7 days before expiry; shown with its zone), the estimated refund if
    unsubscribed today and whether the 5-day full refund still applies
    (using billing.five_day_quota_used from the config), and which of them switch to
    pay-per-use when they expire; then the account's orders pending payment. Without --server or
    --tag, every server of the account (and its separately bought disks) is looked at.

    \b
    Exit codes: 0 done, 1 failed, 2 usage or bad input,
                5 --fail-if-renewing and an auto-renew charge falls inside the window.

    \b
    Examples:
      teardown orders --profile /tmp/sb/profile.toml
      teardown orders --tag env=test --expiring 14d --fail-if-renewing
      teardown orders --server 2b1d6f3b-... --json
    """
    config = load_config(config_path)
    profile = app.resolve_profile(profile_path, os.environ)
    targets = app.Targets(check_servers(tuple(servers)), parse_tags(tags))
    now = SystemClock().now()
    resources = profile.inventory(time.sleep).resources(targets.server_ids, targets.tags)
    for res in without_expiry(resources):
        echo(
            f"teardown: warning: {res.name} ({res.cloud_id or res.urn}) is prepaid but BSS reports "
            "no expiry: not listed",
            err=True,
        )
    every = provider_of(profile).reminders(
        profile,
        resources,
        now=now,
        window=window,
        quota_used=config.billing.five_day_quota_used or 0,
    )
    shown = listed(every, now, window)
    switching = {r.urn for r in resources if r.billing.to_pay_per_use_at_expiry}
    pending = profile.inventory(time.sleep).pending_orders()
    if as_json:
        view = {
            "now": now.isoformat(),
            "window_hours": window // timedelta(hours=1),
            "prepaid": len(every),
            "reminders": [
                reminder_view(r) | {"switches_to_pay_per_use": r.urn in switching} for r in shown
            ],
            "pending_orders": [pending_view(o) for o in pending],
        }
        click.echo(json.dumps(view, indent=2))
    else:
        render_table(shown, window, len(every))
        for r in shown:
            if r.urn in switching:
                echo(
                    f"- {r.name}: switches to pay-per-use when it expires and then bills by the "
                    'hour (`teardown run` with billing.prepaid = "keep_to_expiry" cancels '
                    "that)"
                )
        for o in pending:
            echo(
                f"Order {o.order_id} is pending payment ({o.amount} CNY"
                + (f", cancelled by the cloud unless paid by {_when(o.pay_by)}" if o.pay_by else "")
                + "): nothing is provisioned until it is paid"
            )
    renewing = [r for r in shown if r.charge_in_window]
    if fail_if_renewing and renewing:
        for r in renewing:
            echo(
                f"teardown: {r.name} ({r.cloud_id or r.urn}) auto-renews: charge on "
                f"{_when(r.next_charge)}, within {_span(window)} (cancel auto-renew before "
                "then to avoid it)",
                err=True,
            )
        click.get_current_context().exit(EXIT_RENEWING)
