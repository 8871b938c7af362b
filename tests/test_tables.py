"""The CLI's text tables (``teardown runs``, ``orders``, ``sandbox status``): a header row, plain
text off a terminal, nothing cut short however narrow, and hostile cells shown, never obeyed."""

from __future__ import annotations

import re
from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st
from rich.cells import cell_len

from teardown.cli.tables import render, table

ANSI = re.compile(r"\x1b\[[0-9;]*m")


def cells(line: str) -> list[str]:
    return re.split(r"\s{2,}", line.strip())


def test_off_a_terminal_a_table_is_plain_text_under_its_header_row() -> None:
    text = render(table(("NAME", "SIZE (GB)"), [("db-data", 200), ("web-1-sys", 40)]))
    assert "\x1b" not in text
    assert [cells(line) for line in text.splitlines()] == [
        ["NAME", "SIZE (GB)"],
        ["db-data", "200"],
        ["web-1-sys", "40"],
    ]
    assert all(line == line.rstrip() for line in text.splitlines())


def test_right_aligned_columns_line_up_their_last_digits() -> None:
    text = render(table(("NAME", "AMOUNT"), [("a", "7.00"), ("b", "1260.00")], right={"AMOUNT"}))
    assert len({len(line) for line in text.splitlines()}) == 1


def test_on_a_terminal_the_header_is_bold_and_every_line_fits_the_width() -> None:
    long = "prepaid until 2027-09-15T23:30:50Z, auto-renew on, next charge 2027-09-08T03:00:00Z"
    text = render(table(("NAME", "HOW IT BILLS"), [("db-1", long)]), width=40, colour=True)
    assert text.startswith("\x1b[1mNAME")
    plain = ANSI.sub("", text)
    assert max(cell_len(line) for line in plain.splitlines()) <= 40
    assert "".join(plain.split()) == "NAMEHOWITBILLSdb-1" + "".join(long.split())


def test_hostile_cells_are_shown_escaped_never_obeyed() -> None:
    name = "cache-1\x1b[2J\x1b[H\nFAKE LINE: all backups verified\u202e"
    text = render(table(("NAME", "NOTE"), [(name, "[bold red]not markup[/]")]))
    assert "\x1b" not in text and "\u202e" not in text
    assert not any(line.startswith("FAKE") for line in text.splitlines())
    assert "cache-1\\x1b[2J\\x1b[H\\x0aFAKE LINE: all backups verified\\u202e" in text
    assert "[bold red]not markup[/]" in text


_TEXT = st.text(alphabet="abcXYZ019:-./ 数据", max_size=70)


@settings(max_examples=300, deadline=None)
@given(
    st.integers(min_value=1, max_value=6).flatmap(
        lambda n: st.tuples(
            st.lists(_TEXT.filter(str.strip), min_size=n, max_size=n),
            st.lists(st.lists(_TEXT, min_size=n, max_size=n), max_size=4),
        )
    ),
    st.integers(min_value=1, max_value=120),
    st.sampled_from([0, 2]),
)
def test_however_narrow_no_cell_is_cut_short(
    table_data: tuple[list[str], list[list[str]]], width: int, indent: int
) -> None:
    """Long cells wrap and fold; every character of every cell and header is still there, and
    nothing was added (no ellipsis)."""
    headers, rows = table_data
    text = render(table(headers, rows), width=width, indent=indent)
    shown = Counter("".join(text.split()))
    given_ = Counter("".join("".join(headers + [c for row in rows for c in row]).split()))
    assert shown == given_
