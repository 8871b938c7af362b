"""Polling until a condition holds, with injected sleep and clock (tests never wait)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from teardown.core.errors import TransientError

T = TypeVar("T")


def poll(
    what: str,
    probe: Callable[[], T | None],
    *,
    sleep: Callable[[float], None],
    clock: Callable[[], float],
    interval: float,
    timeout: float,
) -> T:
    """Call ``probe`` until it returns something other than None; sleep ``interval`` between.

    Gives up with :class:`TransientError` once ``timeout`` seconds have passed, by ``clock`` or by
    the sum of the sleeps (whichever says so first: a fake sleep does not move a real clock).
    """
    start = clock()
    waited = 0.0
    while True:
        result = probe()
        if result is not None:
            return result
        if waited >= timeout or clock() - start >= timeout:
            raise TransientError(f"{what}: not done after {timeout:g} s")
        sleep(interval)
        waited += interval
