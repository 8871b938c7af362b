"""The pure selection of ``teardown sweep`` (teardown/core/sweep.py): one test per rule of the
module docstring (named after it), the parsers' bad inputs, and a property: a server carrying
the keep tag is never selected, whatever else it carries."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from teardown.core.errors import PlanError
from teardown.core.sweep import (
    EXPIRES_AT_TAG,
    MARK_TAG,
    TTL_TAG,
    Left,
    Scope,
    ScopeKind,
    Selection,
    ServerCandidate,
    StackCandidate,
    SweepRules,
    SweepTooBig,
    mark_value,
    parse_duration,
    parse_time,
    select,
)

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
CI = (("env", "ci"),)
GROUP = "teardown:scope"
WIDE = "\uff2c"  # FULLWIDTH LATIN CAPITAL LETTER L


def server(
    name: str,
    age: timedelta | None = timedelta(days=3),
    *,
    id_: str | None = None,
    group: str | None = None,
    env: str | None = "ci",
    **tags: str,
) -> ServerCandidate:
    """A server created ``age`` before NOW (None: no creation time), tagged env=ci by default,
    in scope ``group`` if given, with extra ``tags`` (``tagged`` takes keys with colons)."""
    all_tags: dict[str, str] = dict(tags)
    if env is not None:
        all_tags["env"] = env
    if group is not None:
        all_tags[GROUP] = group
    return ServerCandidate(
        id=id_ or f"i-{name}",
        name=name,
        tags=all_tags,
        created_at=None if age is None else NOW - age,
    )


def tagged(
    name: str, tags: Mapping[str, str], age: timedelta | None = timedelta(days=3)
) -> ServerCandidate:
    """A server tagged env=ci and ``tags``, created ``age`` before NOW."""
    created = None if age is None else NOW - age
    return ServerCandidate(
        id=f"i-{name}", name=name, tags={"env": "ci", **tags}, created_at=created
    )


def stack(
    name: str, age: timedelta | None = timedelta(days=3), tags: Mapping[str, str] | None = None
) -> StackCandidate:
    return StackCandidate(
        name=name, last_update=None if age is None else NOW - age, tags=dict(tags or {})
    )


def rules(**kw: object) -> SweepRules:
    kw.setdefault("tags", CI)
    return SweepRules(**kw)  # type: ignore[arg-type]


def names(sel: Selection) -> list[str]:
    return [s.name for s in sel.scopes]


def reason(sel: Selection, what: str) -> str:
    found = [x.reason for x in sel.left if x.what == what]
    assert len(found) == 1, (what, sel.left)
    return found[0]


# Candidates


def test_tags_select_servers() -> None:
    servers = [
        server("a"),
        server("b", env="prod"),
        server("c", env=None),
        tagged("d", {"team": "x"}),
    ]
    sel = select(servers, [], rules(tags=(("env", "ci"), ("team", "x"))), NOW)
    assert names(sel) == ["d"]
    # Non-candidates are not reported; values are compared exactly (no globs, no folding).
    assert sel.left == ()
    assert names(select([server("e", env="CI"), server("f", env="c*")], [], rules(), NOW)) == []


def test_no_tags_no_servers() -> None:
    sel = select(
        [server("a"), server("b")], [stack("ci-1")], rules(tags=(), stack_globs=("ci-*",)), NOW
    )
    assert names(sel) == ["ci-1"]
    assert sel.left == ()


def test_stack_globs_select_stacks() -> None:
    stacks = [stack("ci-1"), stack("pr-42"), stack("prod"), stack("CI-2")]
    sel = select([], stacks, rules(stack_globs=("ci-*", "pr-*")), NOW)
    assert names(sel) == ["ci-1", "pr-42"]
    assert sel.scopes[0].why == "matches stack glob 'ci-*' (no age rule)"
    # No globs: no stacks at all.
    assert select([], stacks, rules(), NOW).scopes == ()
    # The server tag filter does not apply to stacks.
    assert names(
        select([], [stack("ci-3", tags={"env": "prod"})], rules(stack_globs=("*",)), NOW)
    ) == ["ci-3"]


# Vetoes


def test_keep_tag_wins() -> None:
    servers = [
        tagged("a", {"keep": "yes", TTL_TAG: "1h", MARK_TAG: "2020-01-01T00:00Z"}),
        tagged("b", {"Keep": "", EXPIRES_AT_TAG: "2026-01-01T00:00Z"}),
        server("c"),
    ]
    sel = select(
        servers,
        [stack("ci-1", tags={"keep": "1"})],
        rules(older_than=timedelta(hours=1), stack_globs=("ci-*",)),
        NOW,
    )
    assert names(sel) == ["c"]
    assert reason(sel, "server a (i-a)") == "kept by tag keep"
    assert reason(sel, "server b (i-b)") == "kept by tag keep"  # key compared after folding
    assert reason(sel, "stack ci-1") == "kept by tag keep"
    # Another keep tag key.
    sel = select([server("d", hold="1")], [], rules(keep_tag="hold"), NOW)
    assert reason(sel, "server d (i-d)") == "kept by tag hold"


def test_exclude_globs() -> None:
    servers = [
        server("web-1", group="ci-1"),
        server("db-1", group="ci-1"),
        server("web-2", group="demo-2"),
        server("bastion", group="ci-3"),
        server("lone"),
        server(WIDE + "one-2"),  # full-width L: folded before matching
    ]
    sel = select(
        servers,
        [stack("ci-9"), stack("demo-8")],
        rules(exclude=("demo-*", "bastion", "lone*"), stack_globs=("*",)),
        NOW,
    )
    assert names(sel) == ["ci-1", "ci-9"]
    assert reason(sel, "scope demo-2") == "excluded by 'demo-*'"
    assert reason(sel, "stack demo-8") == "excluded by 'demo-*'"
    assert reason(sel, "server lone (i-lone)") == "excluded by 'lone*'"
    assert reason(sel, f"server {WIDE}one-2 (i-{WIDE}one-2)") == "excluded by 'lone*'"
    # A server excluded by its own name leaves its whole scope.
    assert "server bastion (i-bastion): excluded by 'bastion'" in reason(sel, "scope ci-3")


def test_unreadable_tag_value() -> None:
    servers = [
        tagged("a", {TTL_TAG: "6 hours"}),
        tagged("b", {EXPIRES_AT_TAG: "2026-11-30 18:00"}),
        tagged("c", {MARK_TAG: "tomorrow"}),
        tagged("d", {EXPIRES_AT_TAG: "2026-11-30T18:00"}),  # no zone: never guessed
    ]
    sel = select(servers, [], rules(), NOW)
    assert sel.scopes == ()
    assert reason(sel, "server a (i-a)").startswith("unreadable teardown:ttl='6 hours': ")
    assert reason(sel, "server b (i-b)").startswith(
        "unreadable teardown:expires-at='2026-11-30 18:00': "
    )
    assert reason(sel, "server c (i-c)").startswith("unreadable teardown:sweep-after='tomorrow'")
    assert "no time zone" in reason(sel, "server d (i-d)")


def test_future_mark_protects() -> None:
    servers = [
        tagged("a", {MARK_TAG: "2026-11-30T12:01Z"}),
        tagged("b", {MARK_TAG: "2026-11-30T12:00Z"}),  # passed at NOW exactly
        tagged("c", {MARK_TAG: "2026-11-29T12:00Z"}),
    ]
    sel = select(servers, [], rules(older_than=timedelta(hours=1)), NOW)
    assert names(sel) == ["b", "c"]
    assert reason(sel, "server a (i-a)") == "marked: swept after 2026-11-30T12:01Z"
    assert sel.scopes[1].why == (
        "expired: created 2026-11-27T12:00Z, older than 1h; "
        "mark teardown:sweep-after=2026-11-29T12:00Z has passed"
    )


def test_require_mark() -> None:
    servers = [
        tagged("marked", {MARK_TAG: "2026-11-29T12:00Z"}),
        tagged("unmarked", {}),
        tagged("young", {MARK_TAG: "2026-11-29T12:00Z"}, age=timedelta(minutes=5)),
    ]
    sel = select(servers, [], rules(require_mark=True, older_than=timedelta(hours=1)), NOW)
    assert names(sel) == ["marked"]
    assert reason(sel, "server unmarked (i-unmarked)") == (
        "not marked: require_mark asks for a passed teardown:sweep-after"
    )
    # A passed mark adds to the age rules; it does not replace them.
    assert reason(sel, "server young (i-young)").startswith("not old enough")
    # Without require_mark, no mark is needed.
    assert names(select(servers, [], rules(older_than=timedelta(hours=1)), NOW)) == [
        "marked",
        "unmarked",
    ]


# Age


def test_future_expiry_protects() -> None:
    old = timedelta(days=30)
    servers = [
        tagged("a", {EXPIRES_AT_TAG: "2026-11-30T18:00Z"}, old),
        tagged("b", {TTL_TAG: "31d"}, old),
        # Both tags: the later end counts (an extension is honoured).
        tagged("c", {TTL_TAG: "1d", EXPIRES_AT_TAG: "2026-12-01T00:00:00+00:00"}, old),
    ]
    sel = select(servers, [], rules(older_than=timedelta(hours=6)), NOW)
    assert sel.scopes == ()
    assert reason(sel, "server a (i-a)") == (
        "not expired: ends 2026-11-30T18:00Z (teardown:expires-at=2026-11-30T18:00Z)"
    )
    assert reason(sel, "server b (i-b)") == (
        "not expired: ends 2026-12-01T12:00Z (teardown:ttl=31d from created 2026-10-31T12:00Z)"
    )
    assert reason(sel, "server c (i-c)").startswith("not expired: ends 2026-12-01T00:00Z")


def test_expiry_tags_expire() -> None:
    servers = [
        tagged("a", {EXPIRES_AT_TAG: "2026-11-30T12:00Z"}, timedelta(minutes=1)),  # <= now
        tagged("b", {TTL_TAG: "90s"}, timedelta(seconds=90)),  # created + ttl == now
        tagged("c", {TTL_TAG: "91s"}, timedelta(seconds=90)),
    ]
    sel = select(servers, [], rules(older_than=timedelta(days=1)), NOW)
    assert names(sel) == ["a", "b"]
    assert sel.scopes[0].why == (
        "expired by teardown:expires-at=2026-11-30T12:00Z (ended 2026-11-30T12:00Z)"
    )
    assert sel.scopes[1].why == (
        "expired by teardown:ttl=90s from created 2026-11-30T11:58:30Z (ended 2026-11-30T12:00Z)"
    )
    assert reason(sel, "server c (i-c)").startswith("not expired: ends 2026-11-30T12:00:01Z")


def test_older_than() -> None:
    six = timedelta(hours=6)
    servers = [
        server("old", six + timedelta(seconds=1)),
        server("edge", six),  # created exactly now - older_than: not older
        server("young", timedelta(hours=1)),
    ]
    sel = select(
        servers,
        [stack("ci-old", six * 2), stack("ci-new", six / 2)],
        rules(older_than=six, stack_globs=("ci-*",)),
        NOW,
    )
    assert names(sel) == ["ci-old", "old"]
    assert sel.scopes[0].why == "expired: last updated 2026-11-30T00:00Z, older than 6h"
    assert sel.scopes[1].why == "expired: created 2026-11-30T05:59:59Z, older than 6h"
    assert reason(sel, "server edge (i-edge)") == (
        "not old enough: created 2026-11-30T06:00Z, not older than 6h"
    )
    assert reason(sel, "stack ci-new").startswith("not old enough: last updated")


def test_no_age_rule() -> None:
    servers = [
        server("fresh", timedelta(seconds=1)),
        server("timeless", None),
        tagged("ended", {TTL_TAG: "1h"}),
    ]
    sel = select(servers, [], rules(), NOW)
    assert names(sel) == ["ended", "fresh", "timeless"]
    assert sel.scopes[1].why == "selected by tags env=ci (no age rule)"
    assert sel.scopes[0].why.startswith("expired by teardown:ttl=1h")


def test_newer_than() -> None:
    two_days = timedelta(days=2)
    servers = [
        server("recent", timedelta(days=1)),
        server("edge", two_days),  # exactly now - newer_than: not newer
        server("ancient", timedelta(days=10)),
    ]
    sel = select(servers, [], rules(newer_than=two_days), NOW)
    assert names(sel) == ["recent"]
    assert sel.scopes[0].why == "created 2026-11-29T12:00Z, newer than 2d"
    assert reason(sel, "server ancient (i-ancient)") == (
        "too old: created 2026-11-20T12:00Z, not newer than 2d"
    )
    # Both: a window.
    window = rules(older_than=timedelta(hours=12), newer_than=two_days)
    sel = select([*servers, server("young", timedelta(hours=1))], [], window, NOW)
    assert names(sel) == ["recent"]
    assert sel.scopes[0].why == (
        "expired: created 2026-11-29T12:00Z, older than 12h; created 2026-11-29T12:00Z, "
        "newer than 2d"
    )


def test_missing_time() -> None:
    servers = [
        server("a", None),
        tagged("b", {TTL_TAG: "1h"}, age=None),
        tagged("c", {EXPIRES_AT_TAG: "2026-11-01T00:00Z"}, age=None),
    ]
    sel = select(
        servers,
        [stack("ci-1", None)],
        rules(older_than=timedelta(hours=1), stack_globs=("ci-*",)),
        NOW,
    )
    # An ended expiry tag decides without the time: older_than OR expired.
    assert names(sel) == ["c"]
    assert reason(sel, "server a (i-a)") == ("no created time, and the rules ask for older than 1h")
    assert reason(sel, "server b (i-b)") == "teardown:ttl=1h but no created time to count it from"
    assert reason(sel, "stack ci-1") == "no last updated time, and the rules ask for older than 1h"
    sel = select(servers, [], rules(newer_than=timedelta(days=1)), NOW)
    assert reason(sel, "server c (i-c)") == "no created time, and the rules ask for newer than 1d"


# Scopes


def test_group_all_or_nothing() -> None:
    servers = [
        server("web-1", group="ci-1"),
        server("db-1", group="ci-1"),
        server("web-2", group="ci-2"),
        server("db-2", group="ci-2", keep="1"),
        server("web-3", group="ci-3"),
        server("db-3", timedelta(hours=1), group="ci-3"),
        server("other-3", group="ci-3", env="prod"),  # not a candidate: does not count
        server("lone"),
    ]
    sel = select(servers, [], rules(older_than=timedelta(hours=6)), NOW)
    assert names(sel) == ["ci-1", "lone"]
    ci1 = sel.scopes[0]
    assert (ci1.kind, ci1.server_ids, ci1.stack) == (ScopeKind.SERVERS, ("i-db-1", "i-web-1"), None)
    assert ci1.why.startswith("db-1: expired: created")
    assert "; web-1: expired: created" in ci1.why
    assert sel.scopes[1].server_ids == ("i-lone",)
    assert reason(sel, "scope ci-2") == (
        "server db-2 (i-db-2): kept by tag keep (the whole scope is left: 1 of its 2 servers "
        "may not be swept)"
    )
    assert reason(sel, "scope ci-3").startswith("server db-3 (i-db-3): not old enough")
    assert len(sel.left) == 2  # one entry per scope, not per server
    # An empty group value is no scope name.
    sel = select([server("x", group=" ")], [], rules(), NOW)
    assert reason(sel, "scope  ") == "empty teardown:scope tag value"
    # Another group key.
    sel = select([server("p", team="t1"), server("q", team="t1")], [], rules(group_by="team"), NOW)
    assert [(s.name, s.server_ids) for s in sel.scopes] == [("t1", ("i-p", "i-q"))]


def test_stack_scope() -> None:
    sel = select(
        [], [stack("ci-1"), stack("ci-2", tags={TTL_TAG: "1d"})], rules(stack_globs=("ci-*",)), NOW
    )
    assert sel.scopes == (
        Scope("ci-1", ScopeKind.STACK, (), "ci-1", "matches stack glob 'ci-*' (no age rule)"),
        Scope(
            "ci-2",
            ScopeKind.STACK,
            (),
            "ci-2",
            "expired by teardown:ttl=1d from last updated 2026-11-27T12:00Z "
            "(ended 2026-11-28T12:00Z)",
        ),
    )


def test_shared_scope_name() -> None:
    servers = [
        server("web", group="ci-1"),
        server("ci-1"),  # an ungrouped server named like the group
        server("twin", id_="i-1"),
        server("twin", id_="i-2"),
        server("solo"),
    ]
    sel = select(servers, [stack("CI-1"), stack("ci-2")], rules(stack_globs=("*",)), NOW)
    assert names(sel) == ["ci-2", "solo"]
    assert reason(sel, "scope ci-1") == "scope name 'ci-1' is shared by 3 scopes: none is swept"
    assert reason(sel, "server ci-1 (i-ci-1)").startswith("scope name 'ci-1' is shared by 3")
    assert reason(sel, "stack CI-1") == "scope name 'CI-1' is shared by 3 scopes: none is swept"
    assert (
        reason(sel, "server twin (i-1)") == "scope name 'twin' is shared by 2 scopes: none is swept"
    )
    assert reason(sel, "server twin (i-2)").startswith("scope name 'twin' is shared by 2")


def test_max_scopes() -> None:
    servers = [server(f"s{i}") for i in range(3)]
    assert len(select(servers, [], rules(max_scopes=3), NOW).scopes) == 3
    with pytest.raises(SweepTooBig) as caught:
        select(servers, [stack("ci-1")], rules(max_scopes=3, stack_globs=("ci-*",)), NOW)
    err = caught.value
    assert isinstance(err, PlanError)  # the CLI's "refused" exit code
    assert (err.limit, err.selected) == (3, 4)
    assert "4 scopes selected" in str(err) and "max_scopes = 3" in str(err)
    assert names(err.selection) == ["ci-1", "s0", "s1", "s2"]
    # Left scopes do not count.
    sel = select([*servers, server("k", keep="1")], [], rules(max_scopes=3), NOW)
    assert len(sel.scopes) == 3


def test_deterministic_order() -> None:
    servers = [
        server("zeta"),
        server("b-web", group="mid"),
        server("a-db", id_="i-9", group="mid"),
        server("a-db", id_="i-1", group="mid"),
        server("alpha"),
        server("kept-z", keep="1"),
        server("kept-a", keep="1"),
    ]
    stacks = [stack("m-stack"), stack("b-stack")]
    r = rules(stack_globs=("*",))
    sel = select(servers, stacks, r, NOW)
    assert names(sel) == ["alpha", "b-stack", "m-stack", "mid", "zeta"]
    assert sel.scopes[3].server_ids == ("i-1", "i-9", "i-b-web")
    assert [x.what for x in sel.left] == ["server kept-a (i-kept-a)", "server kept-z (i-kept-z)"]
    assert select(list(reversed(servers)), list(reversed(stacks)), r, NOW) == sel


# Parsers, marks, argument checks


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90s", timedelta(seconds=90)),
        ("30m", timedelta(minutes=30)),
        ("6h", timedelta(hours=6)),
        ("2d", timedelta(days=2)),
        ("1w", timedelta(weeks=1)),
        (" 6h ", timedelta(hours=6)),
    ],
)
def test_parse_duration(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-30T18:00Z", datetime(2026, 11, 30, 18, 0, tzinfo=UTC)),
        ("2026-11-30T18:00:00Z", datetime(2026, 11, 30, 18, 0, tzinfo=UTC)),
        ("2026-11-30T18:00:00+00:00", datetime(2026, 11, 30, 18, 0, tzinfo=UTC)),
        ("2026-11-30T18:00:05.5Z", datetime(2026, 11, 30, 18, 0, 5, 500000, tzinfo=UTC)),
        ("2026-12-01T02:00+08:00", datetime(2026, 11, 30, 18, 0, tzinfo=UTC)),
    ],
)
def test_parse_time(text: str, expected: datetime) -> None:
    value = parse_time(text)
    assert value == expected
    assert value.tzinfo is UTC


@pytest.mark.parametrize(
    ("parse", "text", "problem"),
    [
        (parse_duration, "", "invalid duration ''"),
        (parse_duration, "6", "invalid duration '6'"),
        (parse_duration, "h", "invalid duration 'h'"),
        (parse_duration, "0h", "invalid duration '0h'"),
        (parse_duration, "-6h", "invalid duration '-6h'"),
        (parse_duration, "1.5h", "invalid duration '1.5h'"),
        (parse_duration, "6H", "invalid duration '6H'"),
        (parse_duration, "1h30m", "invalid duration '1h30m'"),
        (parse_duration, "6 h", "invalid duration '6 h'"),
        (parse_duration, "6y", "invalid duration '6y'"),
        (parse_duration, "٦h", "invalid duration '٦h'"),  # Arabic-Indic digit
        (parse_duration, "9" * 20 + "w", "too long"),
        (parse_time, "", "invalid time ''"),
        (parse_time, "2026-11-30T18:00", "no time zone"),
        (parse_time, "2026-11-30T18:00:00", "no time zone"),
        (parse_time, "2026-11-30", "invalid time '2026-11-30'"),
        (parse_time, "2026-11-30 18:00Z", "invalid time '2026-11-30 18:00Z'"),
        (parse_time, "2026-11-30T18:00z", "invalid time"),
        (parse_time, "2026-11-30T18Z", "invalid time"),
        (parse_time, "2026-02-30T18:00Z", "no such date or time"),
        (parse_time, "2026-11-30T25:00Z", "no such date or time"),
        (parse_time, "20261130T1800Z", "invalid time"),
        (parse_time, "tomorrow", "invalid time 'tomorrow'"),
    ],
)
def test_parser_bad_inputs(parse: Callable[[str], object], text: str, problem: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse(text)
    message = str(caught.value)
    assert problem in message
    assert repr(text) in message  # the message names the text


def test_mark_value() -> None:
    assert mark_value(NOW, timedelta(hours=1)) == "2026-11-30T13:00Z"
    # Rounded up to the minute, never earlier than asked.
    assert mark_value(NOW + timedelta(microseconds=1), timedelta(0)) == "2026-11-30T12:01Z"
    assert mark_value(NOW, timedelta(seconds=61)) == "2026-11-30T12:02Z"
    # UTC whatever the zone of now.
    plus8 = timezone(timedelta(hours=8))
    assert mark_value(datetime(2026, 12, 1, 4, 0, 30, tzinfo=plus8), timedelta(0)) == (
        "2026-11-30T20:01Z"
    )
    for notice in (timedelta(0), timedelta(seconds=1), timedelta(days=2, seconds=7)):
        at = parse_time(mark_value(NOW + timedelta(seconds=13), notice))
        assert at >= NOW + timedelta(seconds=13) + notice
        assert at - (NOW + timedelta(seconds=13) + notice) < timedelta(minutes=1)
    with pytest.raises(ValueError, match="timezone-aware"):
        mark_value(datetime(2026, 11, 30), timedelta(hours=1))
    with pytest.raises(ValueError, match="negative"):
        mark_value(NOW, timedelta(hours=-1))


def test_rules_and_times_checked() -> None:
    with pytest.raises(ValueError, match="older_than must be a positive duration"):
        SweepRules(older_than=timedelta(0))
    with pytest.raises(ValueError, match="newer_than must be a positive duration"):
        SweepRules(newer_than=timedelta(hours=-1))
    with pytest.raises(ValueError, match="max_scopes"):
        SweepRules(max_scopes=-1)
    with pytest.raises(ValueError, match="now must be timezone-aware"):
        select([], [], rules(), datetime(2026, 11, 30))
    naive = ServerCandidate("i-1", "a", {"env": "ci"}, datetime(2026, 11, 1))
    with pytest.raises(ValueError, match="created time must be timezone-aware"):
        select([naive], [], rules(), NOW)
    # Candidates are hashable although their tags are a mapping.
    assert len({server("a"), server("a"), stack("s"), stack("s")}) == 2


def test_left_and_scope_shapes() -> None:
    sel = select([server("k", keep="1")], [], rules(), NOW)
    assert sel == Selection(scopes=(), left=(Left("server k (i-k)", "kept by tag keep"),))


# The keep tag, as a property


_TAG_VALUES: dict[str, list[str]] = {
    "env": ["ci", "prod"],
    GROUP: ["g1", "g2"],
    TTL_TAG: ["1s", "1w", "bad"],
    EXPIRES_AT_TAG: ["2020-01-01T00:00Z", "2030-01-01T00:00Z"],
    MARK_TAG: ["2020-01-01T00:00Z", "2030-01-01T00:00Z"],
}
_KEEP_KEYS = ["keep", "KEEP", "Keep"]


@st.composite
def _server(draw: st.DrawFn, index: int) -> ServerCandidate:
    tags = {k: draw(st.sampled_from(v)) for k, v in _TAG_VALUES.items() if draw(st.booleans())}
    if draw(st.booleans()):
        tags[draw(st.sampled_from(_KEEP_KEYS))] = draw(st.sampled_from(["", "1", "no"]))
    hours = draw(st.none() | st.integers(min_value=0, max_value=24 * 30))
    created = None if hours is None else NOW - timedelta(hours=hours)
    name = draw(st.sampled_from(["a", "b", "g1", f"s{index}"]))
    return ServerCandidate(f"i-{index}", name, tags, created)


@st.composite
def _servers(draw: st.DrawFn) -> list[ServerCandidate]:
    count = draw(st.integers(min_value=0, max_value=8))
    return [draw(_server(i)) for i in range(count)]


_RULES = st.builds(
    SweepRules,
    tags=st.sampled_from([CI, (("env", "prod"),), (("env", "ci"), (GROUP, "g1"))]),
    older_than=st.sampled_from([None, timedelta(hours=1), timedelta(days=7)]),
    newer_than=st.sampled_from([None, timedelta(days=2), timedelta(days=60)]),
    exclude=st.sampled_from([(), ("b",), ("g*",)]),
    require_mark=st.booleans(),
    max_scopes=st.just(1000),
)


@settings(max_examples=300, derandomize=True, deadline=None)
@given(servers=_servers(), sweep_rules=_RULES)
def test_keep_tag_never_selected(servers: list[ServerCandidate], sweep_rules: SweepRules) -> None:
    sel = select(servers, [], sweep_rules, NOW)
    chosen = {i for scope in sel.scopes for i in scope.server_ids}
    for s in servers:
        if any(k.casefold() == "keep" for k in s.tags):
            assert s.id not in chosen
    # Every candidate scope is accounted for: selected, or left with a reason.
    candidates = [s for s in servers if all(s.tags.get(k) == v for k, v in sweep_rules.tags)]
    assert chosen <= {s.id for s in candidates}
    groups = {("g", s.tags[GROUP]) if GROUP in s.tags else ("s", s.id) for s in candidates}
    assert len(sel.scopes) + len(sel.left) == len(groups)
    assert all(x.reason for x in sel.left)


def test_keep_tag_never_selected_exhaustive() -> None:
    """The same property over every combination of the expiry and mark tags (no sampling)."""
    options: list[list[tuple[str, str] | None]] = [
        [None, *((k, v) for v in vs)] for k, vs in _TAG_VALUES.items() if k != "env"
    ]
    combos: list[dict[str, str]] = [{}]
    for choices in options:
        combos = [{**c, **dict([o])} if o else dict(c) for c in combos for o in choices]
    servers = [tagged(f"s{i}", {**c, "keep": ""}) for i, c in enumerate(combos)]
    for r in (rules(), rules(older_than=timedelta(hours=1)), rules(newer_than=timedelta(days=9))):
        sel = select(servers, [], r, NOW)
        assert sel.scopes == ()
        assert all("kept by tag keep" in x.reason for x in sel.left)


def test_stack_tags_narrow_the_stacks() -> None:
    stacks = [
        StackCandidate("ci-a", NOW - timedelta(days=2), {"team": "web"}),
        StackCandidate("ci-b", NOW - timedelta(days=2), {"team": "db"}),
        StackCandidate("ci-c", NOW - timedelta(days=2)),
    ]
    rules = SweepRules(stack_globs=("ci-*",), stack_tags=(("team", "web"),))
    assert [s.name for s in select([], stacks, rules, NOW).scopes] == ["ci-a"]
