"""Small parsers for values the SDK hands back (times as strings, money as float or Decimal)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

CENT = Decimal("0.01")


def parse_time(value: object) -> datetime | None:
    """``YYYY-MM-DDTHH:MM:SSZ`` (or any ISO 8601 form) as an aware UTC datetime; None if empty."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    text = str(value).strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    try:
        t = datetime.fromisoformat(text)
    except ValueError:
        return None
    return (t if t.tzinfo else t.replace(tzinfo=UTC)).astimezone(UTC)


def money(value: object) -> Decimal:
    """An amount in cents (the SDK types money as float; ``str`` keeps its decimal digits)."""
    if value is None or value == "":
        return Decimal(0)
    try:
        return Decimal(str(value)).quantize(CENT, rounding=ROUND_HALF_UP)
    except InvalidOperation:
        return Decimal(0)
