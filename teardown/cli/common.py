"""What every command shares: exit codes, the error-to-exit-code mapping, common options."""

from __future__ import annotations

import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import NoReturn, ParamSpec, TypeVar

import click

from teardown.core.errors import InputError, JournalError, LockHeld, PlanError, TeardownError
from teardown.core.phases import RunPhase
from teardown.core.text import printable

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_BLOCKED = 3
EXIT_PARTIAL = 4
EXIT_RENEWING = 5

RUN_PHASE_EXIT = {
    RunPhase.COMPLETED: EXIT_OK,
    RunPhase.RUNNING: EXIT_PARTIAL,
    RunPhase.PARTIALLY_FAILED: EXIT_PARTIAL,
    RunPhase.FAILED: EXIT_FAILED,
    RunPhase.BLOCKED: EXIT_BLOCKED,
}

P = ParamSpec("P")
R = TypeVar("R")


def echo(message: object = "", *, err: bool = False) -> None:
    """One line of text for a person: whatever a cloud or a host put in it (a name, a path, a
    message) is shown with control and formatting characters escaped, never interpreted."""
    click.echo(printable(message), err=err)


def _fail(message: str, code: int) -> NoReturn:
    echo(f"teardown: {message}", err=True)
    sys.exit(code)


def errors_to_exit_codes(fn: Callable[P, R]) -> Callable[P, R]:
    """Map the library's typed errors to one stderr line and an exit code."""

    @wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except InputError as e:
            _fail(f"error: {e}", EXIT_USAGE)
        except JournalError as e:
            _fail(f"error: {e}", EXIT_USAGE)
        except (PlanError, LockHeld) as e:
            _fail(f"refused: {e}", EXIT_BLOCKED)
        except TeardownError as e:
            _fail(f"failed: {e}", EXIT_FAILED)

    return wrapper


config_option = click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Configuration file (default: ./teardown.toml if present, else built-in defaults).",
)
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")


def parse_tags(tags: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    """``--tag KEY=VALUE`` values as pairs; a usage error naming the bad one otherwise."""
    out = []
    for t in tags:
        key, sep, value = t.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{t!r} is not KEY=VALUE", param_hint="--tag")
        out.append((key, value))
    return tuple(out)


profile_option = click.option(
    "--profile",
    "profile_path",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Cloud profile (e.g. DIR/profile.toml from `teardown sandbox up`); default: credentials "
    "from HUAWEICLOUD_SDK_* or HW_* environment variables.",
)
server_option = click.option(
    "--server", "servers", multiple=True, help="Target server id (repeatable)."
)
tag_option = click.option(
    "--tag", "tags", multiple=True, help="Target servers with tag KEY=VALUE (repeatable)."
)
journal_option = click.option(
    "--journal",
    "journal_path",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Journal file (default: journal.path from the config, .teardown/journal.db).",
)
