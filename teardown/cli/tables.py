"""Text tables for the CLI (``teardown runs``, ``teardown orders``, ``teardown sandbox status``):
a header row and aligned columns, laid out by rich.

Plain text when stdout is not a terminal (a pipe, a file, a test), bold headers on one (NO_COLOR
honoured). A cell too long for its column wraps at spaces, and a word too long for it is folded
onto the next line: a table never cuts a cell short. Every cell is shown through ``printable`` and
never read as rich markup, so a name from a cloud or a host cannot act on the terminal.

Example::

    echo_table(table(("NAME", "SIZE (GB)"), [("db-data", 100)], right={"SIZE (GB)"}))
"""

from __future__ import annotations

import io
import shutil
import sys
from collections.abc import Collection, Iterable, Sequence

import click
from rich.console import Console
from rich.padding import Padding
from rich.table import Column, Table
from rich.text import Text

from teardown.core.text import printable

PIPE_WIDTH = 160
"""The width of a table written to a pipe or a file: wide enough that a row rarely wraps, so a
``grep`` finds a resource's whole row on one line."""

_CELL_MIN = 2 + 2  # one wide (East Asian) character and the blanks around it


def table(
    headers: Sequence[str], rows: Iterable[Sequence[object]], *, right: Collection[str] = ()
) -> Table:
    """A table with ``headers`` and one row per item of ``rows``; the columns named in ``right``
    are right-aligned (numbers, amounts). Cells are shown with ``printable``, never as markup."""
    columns = [
        Column(h, justify="right" if h in right else "left", overflow="fold") for h in headers
    ]
    out = Table(*columns, box=None, pad_edge=False, header_style="bold")
    for row in rows:
        out.add_row(*(Text(printable(cell)) for cell in row))
    return out


def _least_width(t: Table, indent: int) -> int:
    """The narrowest width at which rich keeps room for a character in every column: below it
    rich may squeeze a column to nothing, and its cells would vanish."""
    return indent + len(t.columns) * _CELL_MIN


def render(t: Table, *, width: int = PIPE_WIDTH, colour: bool = False, indent: int = 0) -> str:
    """``t`` as text at most ``width`` columns wide (wider only when that could not hold it),
    shifted right by ``indent``; ANSI styles only with ``colour``. Lines carry no trailing
    blanks."""
    buffer = io.StringIO()
    console = Console(
        file=buffer,
        width=max(width, _least_width(t, indent)),
        force_terminal=colour,
        color_system="standard" if colour else None,
        highlight=False,
        emoji=False,
        markup=False,
        legacy_windows=False,
    )
    console.print(Padding(t, (0, 0, 0, indent)) if indent else t)
    return "".join(line.rstrip() + "\n" for line in buffer.getvalue().splitlines())


def echo_table(t: Table, *, indent: int = 0) -> None:
    """Print ``t`` to stdout: fitted to the terminal and bold headers on one, else plain text
    ``PIPE_WIDTH`` wide."""
    tty = sys.stdout.isatty()
    width = shutil.get_terminal_size().columns if tty else PIPE_WIDTH
    click.echo(render(t, width=width, colour=tty, indent=indent), nl=False)


__all__ = ["PIPE_WIDTH", "echo_table", "render", "table"]
