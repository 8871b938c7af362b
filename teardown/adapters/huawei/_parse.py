"""Small parsers for values the SDK hands back (times as strings, money as float or Decimal)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

CENT = Decimal("0.01")


def parse_time(value: object) -> datetime | None:
    """A time as an aware UTC datetime; None if empty or unreadable. Huawei's services write
    times differently: ECS ``2018-08-13T13:38:02Z``; EVS ``2016-05-25T02:42:10.856332`` (UTC, no
    zone; a snapshot example even has ``2013-02-25t04:13:17.000000``); CBR
    ``2019-05-10T07:59:12.084695``; others ``+00:00`` or ``+08:00``. A time with no zone is UTC."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    text = str(value).strip()
    if text[-1:] in ("Z", "z"):
        text = text[:-1] + "+00:00"
    try:
        t = datetime.fromisoformat(text)
    except ValueError:
        return None
    return (t if t.tzinfo else t.replace(tzinfo=UTC)).astimezone(UTC)


def parse_flag(value: object) -> bool | None:
    """A flag Huawei sends as a string (EVS ``bootable``, ECS ``delete_on_termination``):
    ``"true"``/``"false"`` in any case (real answers have ``"False"``), or a JSON boolean; None
    when absent or anything else."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower() if value is not None else ""
    return {"true": True, "false": False}.get(text)


def money(value: object) -> Decimal:
    """An amount in cents (the SDK types money as float; ``str`` keeps its decimal digits)."""
    if value is None or value == "":
        return Decimal(0)
    try:
        return Decimal(str(value)).quantize(CENT, rounding=ROUND_HALF_UP)
    except InvalidOperation:
        return Decimal(0)
