"""What ``teardown sweep`` would clean up: expired test environments ("scopes"), chosen from
plain data by pure rules. No I/O, no clock: ``now`` is always a parameter, and every datetime
must be timezone-aware.

A scope is either a group of hand-made servers (selected by tags and age) or a Pulumi stack
(selected by name glob and last-update age). :func:`select` returns the scopes to back up and
destroy and, for every candidate it leaves alone, the reason. The rules, in the order they are
checked (each is a test of ``tests/test_sweep_select.py`` of the same name):

Candidates
    ``tags_select_servers``: a server is a candidate when it carries every ``tags`` pair (key and
    value compared exactly). ``no_tags_no_servers``: with no ``tags`` at all, no server is a
    candidate (as no ``stack_globs`` means no stacks), so a sweep of stacks never reaches the
    account's other servers. ``stack_globs_select_stacks``: a stack is a candidate when its name
    matches one of ``stack_globs`` (``fnmatchcase``) and carries every ``stack_tags`` pair;
    ``tags`` do not apply to stacks.
    Non-candidates are not reported.

Vetoes (a vetoed candidate is left, whatever else it carries)
    ``keep_tag_wins``: a resource carrying the ``keep_tag`` key (any value; the key compared after
    case folding) is never swept: "kept by tag keep". It wins over every other rule.
    ``exclude_globs``: a server whose name, or whose scope's name, matches an ``exclude`` glob is
    left, as is a stack whose name does (compared after :func:`teardown.core.text.fold`, so an
    exclusion is never escaped by case or width).
    ``unreadable_tag_value``: a :data:`MARK_TAG`, :data:`EXPIRES_AT_TAG` or :data:`TTL_TAG` whose
    value does not parse leaves the resource, the reason naming the tag and the value; no value
    is guessed.
    ``future_mark_protects``: a :data:`MARK_TAG` time still to come leaves the resource
    ("marked: swept after T"). ``require_mark``: with ``require_mark``, a resource without a
    mark is left too; a passed mark is a condition added to the age rules below, not a
    substitute for them.

Age (``created`` for a server, ``last updated`` for a stack)
    ``future_expiry_protects``: an :data:`EXPIRES_AT_TAG` time, or the end of a
    :data:`TTL_TAG` (counted from ``created_at``; for a stack from ``last_update``, so an update
    restarts it), still to come leaves the resource, even when ``older_than`` calls it old: the
    environment's creator said when it ends. With both tags, the later end counts (an extension
    is honoured). ``expiry_tags_expire``: once every expiry tag has ended (``<= now``), the
    resource is expired by its own tags.
    ``older_than``: with ``older_than``, a resource is expired when its time is before
    ``now - older_than`` (strictly) OR its own expiry tags have ended; otherwise it is left.
    ``no_age_rule``: without ``older_than``, a resource is not held to an age: it is swept when
    it passes the rest (carries the tags, no future expiry, no veto); a resource whose expiry
    tags have ended is swept as expired.
    ``newer_than``: with ``newer_than``, the resource's time must also be after
    ``now - newer_than`` (strictly): a sweep of recent leftovers only.
    ``missing_time``: a resource without a time, when the rules need one to decide (``newer_than``;
    ``older_than`` unless its expiry tags have ended; a ttl), is left with the reason.

Scopes
    ``group_all_or_nothing``: candidate servers with the same ``group_by`` tag value form one
    scope named by that value; a server without the tag is a scope of its own, named after the
    server. A scope is selected only when every one of its candidate servers is: one kept,
    protected or unexpired server leaves the whole scope (the reason names it), because
    destroying half an environment is worse than leaving it. An empty group value or name
    leaves the scope. ``stack_scope``: each selected stack is a scope named after the stack.
    ``shared_scope_name``: scope names that collide (after folding: two groups, a group and an
    ungrouped server, a server and a stack) leave every scope of that name; none is guessed to
    be the one meant.
    ``max_scopes``: more selected scopes than ``max_scopes`` raises :class:`SweepTooBig` (a
    :class:`PlanError`, so the CLI's "refused" exit code 3), naming both numbers and carrying
    the selection for display; nothing is swept.
    ``deterministic_order``: scopes are sorted by name, what is left by its description, server
    ids in a scope by (server name, id).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from fnmatch import fnmatchcase

from teardown.core.errors import PlanError
from teardown.core.text import fold

EXPIRES_AT_TAG = "teardown:expires-at"
"""ISO 8601 time with a zone (UTC by convention), e.g. ``2026-11-30T18:00Z``: swept from then."""
TTL_TAG = "teardown:ttl"
"""A duration (``6h``, ``30m``, ``2d``, ``1w``, ``90s``) counted from the resource's time."""
MARK_TAG = "teardown:sweep-after"
"""Written by ``sweep --mark`` (:func:`mark_value`): the time after which it may be swept."""

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DURATION = re.compile(r"([0-9]+)([smhdw])")
_TIME = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]{1,6})?)?"
    r"(?:Z|[+-][0-9]{2}:[0-9]{2})"
)
_NEVER = datetime.max.replace(tzinfo=UTC)


class SweepTooBig(PlanError):
    """More scopes selected than ``max_scopes`` allows: the whole sweep is refused. Carries the
    numbers and the selection (to show what would have been swept)."""

    def __init__(self, limit: int, selection: Selection) -> None:
        self.limit = limit
        self.selected = len(selection.scopes)
        self.selection = selection
        super().__init__(
            f"sweep refused: {self.selected} scopes selected, limit is max_scopes = {limit}; "
            "narrow the rules or raise the limit"
        )


@dataclass(frozen=True)
class ServerCandidate:
    """What the inventory says of a server."""

    id: str
    name: str
    tags: Mapping[str, str] = field(hash=False)
    created_at: datetime | None


@dataclass(frozen=True)
class StackCandidate:
    """A Pulumi stack of the project (the Automation API's ``list_stacks``)."""

    name: str
    last_update: datetime | None
    tags: Mapping[str, str] = field(default_factory=dict, hash=False)


@dataclass(frozen=True)
class SweepRules:
    """What to sweep. Durations must be positive and ``max_scopes`` at least 0 (ValueError)."""

    tags: tuple[tuple[str, str], ...] = ()
    """A server must carry every pair (exact). None: no server is a candidate."""
    older_than: timedelta | None = None
    """Expired when created (servers) / last updated (stacks) before ``now - older_than``."""
    newer_than: timedelta | None = None
    """Also required: created / last updated after ``now - newer_than``."""
    stack_globs: tuple[str, ...] = ()
    """Which stacks are candidates at all (``fnmatchcase``). None: no stacks."""
    stack_tags: tuple[tuple[str, str], ...] = ()
    """A stack must also carry every pair among its stack tags (exact)."""
    exclude: tuple[str, ...] = ()
    """Globs over scope names and server names (folded): left alone."""
    keep_tag: str = "keep"
    """A resource carrying this tag key is never swept (wins over all)."""
    group_by: str = "teardown:scope"
    """Servers with the same value of this tag form one scope."""
    require_mark: bool = False
    """Act only on resources whose :data:`MARK_TAG` time has passed."""
    max_scopes: int = 50
    """More selected scopes than this: :class:`SweepTooBig`."""

    def __post_init__(self) -> None:
        for name, span in (("older_than", self.older_than), ("newer_than", self.newer_than)):
            if span is not None and span <= timedelta(0):
                raise ValueError(f"{name} must be a positive duration, got {span}")
        if self.max_scopes < 0:
            raise ValueError(f"max_scopes must be at least 0, got {self.max_scopes}")


class ScopeKind(StrEnum):
    """What a selected scope is made of."""

    SERVERS = "servers"
    STACK = "stack"


@dataclass(frozen=True)
class Scope:
    """One environment to back up and destroy."""

    name: str
    kind: ScopeKind
    server_ids: tuple[str, ...]
    """The servers of a ``servers`` scope, by (name, id); empty for a stack."""
    stack: str | None
    """The stack of a ``stack`` scope; None for servers."""
    why: str
    """Why it was selected, e.g. ``expired: created 2026-11-29T10:00Z, older than 6h``."""


@dataclass(frozen=True)
class Left:
    """A candidate left alone, and why."""

    what: str
    """``server NAME (ID)``, ``scope NAME`` (a group of servers) or ``stack NAME``."""
    reason: str


@dataclass(frozen=True)
class Selection:
    """What a sweep would do: the scopes (by name) and the candidates left (by ``what``)."""

    scopes: tuple[Scope, ...]
    left: tuple[Left, ...]


def parse_duration(text: str) -> timedelta:
    """A tag or flag duration: a positive whole number and one unit, ``s``, ``m``, ``h``, ``d``
    or ``w`` (``90s``, ``30m``, ``6h``, ``2d``, ``1w``). ValueError naming the text otherwise."""
    m = _DURATION.fullmatch(text.strip())
    problem = "use a positive whole number and one unit: s, m, h, d or w (e.g. 6h, 30m, 2d)"
    if m is None or int(m.group(1)) == 0:
        raise ValueError(f"invalid duration {text!r}: {problem}")
    try:
        return timedelta(seconds=int(m.group(1)) * _UNITS[m.group(2)])
    except OverflowError:
        raise ValueError(f"invalid duration {text!r}: too long") from None


def parse_time(text: str) -> datetime:
    """A tag time in UTC: ISO 8601 with a zone, ``Z`` or an offset (``+00:00``; another offset is
    converted), seconds optional (``2026-11-30T18:00Z``). ValueError naming the text otherwise,
    and for a time without a zone (it would be a guess)."""
    stripped = text.strip()
    example = "e.g. 2026-11-30T18:00Z or 2026-11-30T18:00:00+00:00"
    if _TIME.fullmatch(stripped) is None:
        if _TIME.fullmatch(stripped + "Z") is not None:
            raise ValueError(f"invalid time {text!r}: it has no time zone ({example})")
        raise ValueError(f"invalid time {text!r}: use ISO 8601 with a time zone ({example})")
    try:
        iso = stripped[:-1] + "+00:00" if stripped.endswith("Z") else stripped
        value = datetime.fromisoformat(iso)
    except ValueError:
        raise ValueError(f"invalid time {text!r}: no such date or time ({example})") from None
    return value.astimezone(UTC)


def mark_value(now: datetime, notice: timedelta) -> str:
    """The :data:`MARK_TAG` value for a resource marked at ``now`` with ``notice``: ``now +
    notice`` in UTC with ``Z``, rounded UP to the minute (a mark is never earlier than asked)."""
    _aware("now", now)
    if notice < timedelta(0):
        raise ValueError(f"notice must not be negative, got {notice}")
    at = (now + notice).astimezone(UTC)
    if at.second or at.microsecond:
        at = at.replace(second=0, microsecond=0) + timedelta(minutes=1)
    return at.strftime("%Y-%m-%dT%H:%MZ")


def select(
    servers: Sequence[ServerCandidate],
    stacks: Sequence[StackCandidate],
    rules: SweepRules,
    now: datetime,
) -> Selection:
    """The scopes to sweep under ``rules`` at ``now``, and every candidate left with its reason
    (the rules are in this module's docstring). Raises :class:`SweepTooBig` when more than
    ``rules.max_scopes`` scopes are selected; ValueError for a naive ``now`` or resource time."""
    _aware("now", now)
    scopes: list[tuple[str, str, Scope | Left]] = []  # (scope name, what, selected or left)
    left: list[Left] = []

    groups: dict[tuple[bool, str], list[ServerCandidate]] = {}
    for s in servers:
        if rules.tags and all(s.tags.get(k) == v for k, v in rules.tags):
            value = s.tags.get(rules.group_by)
            # An ungrouped server is a scope of its own even when another has its name.
            key = (False, s.id) if value is None else (True, value)
            groups.setdefault(key, []).append(s)
    for (grouped, _), members in groups.items():
        members.sort(key=lambda s: (s.name, s.id))
        name = members[0].tags[rules.group_by] if grouped else members[0].name
        what = f"scope {name}" if grouped else f"server {name} ({members[0].id})"
        scopes.append((name, what, _server_scope(name, what, grouped, members, rules, now)))

    for st in stacks:
        glob = next((g for g in rules.stack_globs if fnmatchcase(st.name, g)), None)
        if glob is None or any(st.tags.get(k) != v for k, v in rules.stack_tags):
            continue
        what = f"stack {st.name}"
        plain = f"matches stack glob {glob!r} (no age rule)"
        ok, text = _judge(st.name, st.tags, st.last_update, "last updated", plain, rules, now)
        if ok:
            scopes.append((st.name, what, Scope(st.name, ScopeKind.STACK, (), st.name, text)))
        else:
            scopes.append((st.name, what, Left(what, text)))

    counts: dict[str, int] = {}
    for name, _, _ in scopes:
        counts[fold(name)] = counts.get(fold(name), 0) + 1
    chosen: list[Scope] = []
    for name, what, outcome in scopes:
        shared = counts[fold(name)]
        if shared > 1:
            left.append(
                Left(what, f"scope name {name!r} is shared by {shared} scopes: none is swept")
            )
        elif isinstance(outcome, Left):
            left.append(outcome)
        else:
            chosen.append(outcome)

    selection = Selection(
        scopes=tuple(sorted(chosen, key=lambda c: (c.name, c.kind))),
        left=tuple(sorted(left, key=lambda x: (x.what, x.reason))),
    )
    if len(selection.scopes) > rules.max_scopes:
        raise SweepTooBig(rules.max_scopes, selection)
    return selection


def _server_scope(
    name: str,
    what: str,
    grouped: bool,
    members: Sequence[ServerCandidate],
    rules: SweepRules,
    now: datetime,
) -> Scope | Left:
    """One scope of candidate servers (sorted): selected when every member is, else left
    whole."""
    if not name.strip():
        return Left(what, f"empty {rules.group_by} tag value" if grouped else "server has no name")
    excluded = _excluded(name, rules) if grouped else None  # a server's own name: in _judge
    if excluded is not None:
        return Left(what, excluded)
    whys: list[tuple[ServerCandidate, str]] = []
    blocked: list[str] = []
    plain = f"selected by tags {_pairs(rules.tags)} (no age rule)"
    for s in members:
        ok, text = _judge(s.name, s.tags, s.created_at, "created", plain, rules, now)
        if ok:
            whys.append((s, text))
        else:
            blocked.append(f"server {s.name} ({s.id}): {text}" if grouped else text)
    if blocked:
        reason = "; ".join(blocked)
        if grouped:
            reason += (
                f" (the whole scope is left: {len(blocked)} of its {len(members)} servers "
                "may not be swept)"
            )
        return Left(what, reason)
    why = whys[0][1] if len(whys) == 1 else "; ".join(f"{s.name}: {w}" for s, w in whys)
    return Scope(name, ScopeKind.SERVERS, tuple(s.id for s in members), None, why)


def _judge(
    name: str,
    tags: Mapping[str, str],
    at: datetime | None,
    at_word: str,
    plain: str,
    rules: SweepRules,
    now: datetime,
) -> tuple[bool, str]:
    """(True, why) when one resource may be swept (``plain`` is the why when no age rule
    applied), else (False, reason). Checked in order: the keep tag, ``exclude``, unreadable
    tags, the mark, expiry tags, ``older_than``, ``newer_than``."""
    if at is not None:
        _aware(f"{at_word} time", at)
    keep = fold(rules.keep_tag)
    if any(fold(k) == keep for k in tags):
        return False, f"kept by tag {rules.keep_tag}"
    excluded = _excluded(name, rules)
    if excluded is not None:
        return False, excluded

    parsed: dict[str, datetime | timedelta] = {}
    for tag, parse in (
        (MARK_TAG, parse_time),
        (EXPIRES_AT_TAG, parse_time),
        (TTL_TAG, parse_duration),
    ):
        raw = tags.get(tag)
        if raw is None:
            continue
        try:
            parsed[tag] = parse(raw)
        except ValueError as e:
            return False, f"unreadable {tag}={raw!r}: {e}"

    notes: list[str] = []
    mark = parsed.get(MARK_TAG)
    if isinstance(mark, datetime):
        if mark > now:
            return False, f"marked: swept after {_when(mark)}"
        notes.append(f"mark {MARK_TAG}={tags[MARK_TAG]} has passed")
    elif rules.require_mark:
        return False, f"not marked: require_mark asks for a passed {MARK_TAG}"

    ends: list[tuple[datetime, str]] = []  # (end, which tag says so)
    expires = parsed.get(EXPIRES_AT_TAG)
    if isinstance(expires, datetime):
        ends.append((expires, f"{EXPIRES_AT_TAG}={tags[EXPIRES_AT_TAG]}"))
    ttl = parsed.get(TTL_TAG)
    if isinstance(ttl, timedelta):
        if at is None:
            return False, f"{TTL_TAG}={tags[TTL_TAG]} but no {at_word} time to count it from"
        try:
            end = at + ttl
        except OverflowError:
            end = _NEVER
        ends.append((end, f"{TTL_TAG}={tags[TTL_TAG]} from {at_word} {_when(at)}"))
    if ends:
        last, text = max(ends, key=lambda e: e[0])
        if last > now:
            return False, f"not expired: ends {_when(last)} ({text})"

    whys: list[str] = []
    if rules.older_than is not None:
        span = _span(rules.older_than)
        if at is not None and at < now - rules.older_than:
            whys.append(f"expired: {at_word} {_when(at)}, older than {span}")
        elif not ends:
            if at is None:
                return False, f"no {at_word} time, and the rules ask for older than {span}"
            return False, f"not old enough: {at_word} {_when(at)}, not older than {span}"
    whys.extend(f"expired by {text} (ended {_when(end)})" for end, text in ends)
    if rules.newer_than is not None:
        span = _span(rules.newer_than)
        if at is None:
            return False, f"no {at_word} time, and the rules ask for newer than {span}"
        if at <= now - rules.newer_than:
            return False, f"too old: {at_word} {_when(at)}, not newer than {span}"
        whys.append(f"{at_word} {_when(at)}, newer than {span}")
    return True, "; ".join((whys or [plain]) + notes)


def _excluded(name: str, rules: SweepRules) -> str | None:
    """The reason ``name`` is excluded by a glob of ``rules.exclude``, or None."""
    folded = fold(name)
    for glob in rules.exclude:
        if fnmatchcase(folded, fold(glob)):
            return f"excluded by {glob!r}"
    return None


def _aware(name: str, value: datetime) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got {value.isoformat()}")


def _when(t: datetime) -> str:
    """``t`` in UTC, minutes when they are exact: ``2026-11-29T10:00Z``."""
    if t >= _NEVER:
        return "never"
    u = t.astimezone(UTC)
    if u.second or u.microsecond:
        return u.replace(tzinfo=None).isoformat() + "Z"
    return u.strftime("%Y-%m-%dT%H:%MZ")


def _span(d: timedelta) -> str:
    """``d`` in the largest unit that divides it: ``6h``, ``90m``, ``2d``, ``1w``."""
    seconds = int(d.total_seconds())
    if seconds != d.total_seconds() or seconds <= 0:
        return str(d)
    for unit in "wdhm":
        if seconds % _UNITS[unit] == 0:
            return f"{seconds // _UNITS[unit]}{unit}"
    return f"{seconds}s"


def _pairs(tags: Sequence[tuple[str, str]]) -> str:
    return ",".join(f"{k}={v}" for k, v in tags)


__all__ = [
    "EXPIRES_AT_TAG",
    "MARK_TAG",
    "TTL_TAG",
    "Left",
    "Scope",
    "ScopeKind",
    "Selection",
    "ServerCandidate",
    "StackCandidate",
    "SweepRules",
    "SweepTooBig",
    "mark_value",
    "parse_duration",
    "parse_time",
    "select",
]
