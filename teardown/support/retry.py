"""Retry policies as values (tenacity), with the sleep injected so tests never wait."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import tenacity

from teardown.core.errors import TransientError


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded, jittered exponential back-off for TransientError; anything else is raised at once.

    Example::

        RetryPolicy(attempts=5).retrying(sleep=slept.append)(call)
    """

    attempts: int = 5
    initial: float = 1.0
    maximum: float = 30.0
    jitter: float = 1.0

    def retrying(self, sleep: Callable[[float], None] = time.sleep) -> tenacity.Retrying:
        return tenacity.Retrying(
            retry=tenacity.retry_if_exception_type(TransientError),
            stop=tenacity.stop_after_attempt(self.attempts),
            wait=tenacity.wait_exponential(multiplier=self.initial, max=self.maximum)
            + tenacity.wait_random(0, self.jitter),
            sleep=sleep,
            reraise=True,
        )


NO_RETRY = RetryPolicy(attempts=1)
