"""What every command shares: exit codes, the error-to-exit-code mapping, common options."""

from __future__ import annotations

import re
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
EXIT_INTERRUPTED = 130
"""Ctrl-C (128 + SIGINT, as shells report it): the run can be resumed."""

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


MAX_TAGS = 10
MAX_TAG_KEY = 36
MAX_TAG_VALUE = 43
"""An ECS server holds at most 10 tags, keys of at most 36 characters and values of at most 43
(ECS API reference, server tags): a selector beyond that can match nothing."""
MAX_SERVERS = 1000
_SERVER_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")


def parse_tags(tags: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    """``--tag KEY=VALUE`` values as pairs; a usage error naming the bad one otherwise, before
    any request is made (a cloud's filter has limits of its own: an oversized one is refused
    here, not answered with an error page)."""
    if len(tags) > MAX_TAGS:
        raise click.BadParameter(f"{len(tags)} tags: at most {MAX_TAGS}", param_hint="--tag")
    out = []
    for t in tags:
        key, sep, value = t.partition("=")
        shown = printable(t[:60]) + ("..." if len(t) > 60 else "")
        if not sep or not key:
            raise click.BadParameter(f"{shown!r} is not KEY=VALUE", param_hint="--tag")
        if len(key) > MAX_TAG_KEY or len(value) > MAX_TAG_VALUE:
            raise click.BadParameter(
                f"{shown!r} is too long (key at most {MAX_TAG_KEY} characters, value at most "
                f"{MAX_TAG_VALUE})",
                param_hint="--tag",
            )
        out.append((key, value))
    return tuple(out)


def check_servers(servers: tuple[str, ...]) -> tuple[str, ...]:
    """``--server`` ids as given; a usage error naming a malformed one (cloud ids are short
    letters, digits and dashes) before any request."""
    if len(servers) > MAX_SERVERS:
        raise click.BadParameter(
            f"{len(servers)} servers: at most {MAX_SERVERS}", param_hint="--server"
        )
    for s in servers:
        if not _SERVER_ID.fullmatch(s):
            shown = printable(s[:60]) + ("..." if len(s) > 60 else "")
            raise click.BadParameter(f"{shown!r} is not a server id", param_hint="--server")
    return servers


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
