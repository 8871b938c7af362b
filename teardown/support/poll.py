"""Polling until a condition holds (tenacity), with injected sleep and clock: tests never wait."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import tenacity

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

    def out_of_time(state: tenacity.RetryCallState) -> bool:
        slept = (state.attempt_number - 1) * interval
        return slept >= timeout or clock() - start >= timeout

    retrying = tenacity.Retrying(
        retry=tenacity.retry_if_result(lambda result: result is None),
        stop=out_of_time,
        wait=tenacity.wait_fixed(interval),
        sleep=sleep,
    )
    try:
        result = retrying(probe)
    except tenacity.RetryError:
        raise TransientError(f"{what}: not done after {timeout:g} s") from None
    assert result is not None
    return result
