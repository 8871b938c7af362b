"""teardown's command line with a crash switch, for the crash tests only: the process SIGKILLs
itself right after its N-th journal commit (N from ``TEARDOWN_CRASH_AFTER_COMMITS``). The product
has no such switch; this entry point wraps it from outside.

Usage: ``TEARDOWN_CRASH_AFTER_COMMITS=12 python -m tests.crash_cli run --tag app=shop --yes``;
``TEARDOWN_CRASH_AT=phase.verified`` dies right after the first commit with that label instead.
"""

from __future__ import annotations

import os
import signal
from dataclasses import replace

from teardown import app
from teardown.cli import execute
from teardown.cli import main as cli_main
from teardown.core.config import Config

ENV = "TEARDOWN_CRASH_AFTER_COMMITS"
AT_ENV = "TEARDOWN_CRASH_AT"


def _dying_tuning(after: int, at: str = "") -> object:
    original = execute.tuning
    commits = 0

    def maybe_die(label: str) -> None:
        nonlocal commits
        commits += 1
        if commits == after or label == at:
            os.kill(os.getpid(), signal.SIGKILL)

    def tuning(config: Config) -> app.Tuning:
        return replace(original(config), on_commit=maybe_die)

    return tuning


def main() -> None:
    after = os.environ.get(ENV)
    at = os.environ.get(AT_ENV, "")
    if after or at:
        execute.tuning = _dying_tuning(int(after or 0), at)  # type: ignore[assignment]
    cli_main.main()


if __name__ == "__main__":
    main()
