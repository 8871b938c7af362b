"""`teardown bills`: what still costs money in the whole account and region, not only in a
scope. Reads only."""

from __future__ import annotations

import json
import os
import time
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import click

from teardown import app
from teardown.app.config import load_config
from teardown.cli.common import (
    config_option,
    echo,
    errors_to_exit_codes,
    json_option,
    profile_option,
)
from teardown.cli.tables import echo_table, table
from teardown.ports import BillItem

HEADERS = ("KIND", "NAME", "ID", "CHARGING", "COST", "EXPIRES", "AUTO-RENEW", "NEXT CHARGE")


def _when(t: datetime | None) -> str:
    return f"{t:%Y-%m-%d %H:%M %Z}" if t is not None else "-"


def _cost(b: BillItem, public_ip_hour: Decimal | None, gb_month: Decimal) -> str:
    if b.charging == "hourly":
        price = b.hourly_price
        if price is None and b.kind == "eip":
            price = public_ip_hour
        return f"{price} CNY/h" if price is not None else "per hour (price unknown)"
    if b.charging == "storage":
        used = f"{b.size_gb:g}" if b.size_gb is not None else "?"
        size = f"{used} of {b.capacity_gb:g} GB" if b.capacity_gb else f"{used} GB used"
        month = b.monthly_price
        if month is None and b.capacity_gb is not None:
            month = vault_month_decimal(b.capacity_gb, gb_month)
        return f"{size}, about {month} CNY/month (estimate)" if month is not None else size
    if b.monthly_price is not None:
        return f"{b.monthly_price} CNY/month"
    return "-"


def vault_month_decimal(capacity_gb: float, gb_month: Decimal) -> Decimal:
    return (Decimal(str(capacity_gb)) * gb_month).quantize(Decimal("0.01"))


def bill_view(b: BillItem, public_ip_hour: Decimal | None, gb_month: Decimal) -> dict[str, Any]:
    return {
        "resource_id": b.resource_id,
        "kind": b.kind,
        "name": b.name,
        "charging": b.charging,
        "hourly_price": str(b.hourly_price) if b.hourly_price is not None else None,
        "monthly_price": str(b.monthly_price) if b.monthly_price is not None else None,
        "cost": _cost(b, public_ip_hour, gb_month),
        "expires_at": b.expires_at.isoformat() if b.expires_at else None,
        "auto_renew": b.auto_renew,
        "expire_policy": b.expire_policy,
        "next_charge": b.next_charge.isoformat() if b.next_charge else None,
        "size_gb": b.size_gb,
        "capacity_gb": b.capacity_gb,
        "parent_id": b.parent_id,
    }


@click.command()
@profile_option
@config_option
@json_option
@errors_to_exit_codes
def bills(profile_path: Path | None, config_path: Path | None, as_json: bool) -> None:
    """What still costs money in the whole account and region. Reads only.

    Every prepaid subscription in force (with its expiry, auto-renew and next charge), every
    pay-per-use server, disk and public IP, every backup vault with its size, and every order
    pending payment: the answer to "what am I still paying for?", beyond any one scope. Prices
    the cloud does not return come from [billing.prices] and are estimates.

    \b
    Exit codes: 0 done, 1 failed, 2 usage or bad input.

    \b
    Examples:
      teardown bills --profile /tmp/sb/profile.toml
      teardown bills --json
    """
    config = load_config(config_path)
    account = app.resolve_profile(profile_path, os.environ)
    items = account.inventory(time.sleep).bills()
    ip_hour = config.billing.prices.public_ip_hour
    gb_month = config.billing.prices.backup_gb_month
    if as_json:
        views = [bill_view(b, ip_hour, gb_month) for b in items]
        click.echo(json.dumps({"where": account.where, "bills": views}, indent=2))
        return
    if not items:
        echo(f"Nothing bills in {account.where}.")
        return
    echo(f"{len(items)} thing(s) cost money in {account.where}:")
    rows = [
        (
            b.kind,
            b.name,
            b.resource_id,
            b.charging,
            _cost(b, ip_hour, gb_month),
            _when(b.expires_at),
            ("on" if b.auto_renew else "off") if b.charging == "prepaid" else "-",
            _when(b.next_charge),
        )
        for b in items
    ]
    echo_table(table(HEADERS, rows))
