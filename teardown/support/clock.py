"""The system clock (the Clock port's production adapter)."""

from __future__ import annotations

from datetime import UTC, datetime


class SystemClock:
    """Timezone-aware UTC now."""

    def now(self) -> datetime:
        return datetime.now(UTC)
