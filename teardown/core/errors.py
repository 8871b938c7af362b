"""The one error tree. Library code raises these; only the CLI turns them into exit codes."""

from __future__ import annotations

from teardown.core.text import printable


class TeardownError(Exception):
    """Base of every error teardown raises on purpose."""


class InputError(TeardownError):
    """A bad input (state file, config, plan file, flag): names the input and what is wrong.

    Raised before anything is written or changed.
    """

    def __init__(self, source: str, problem: str) -> None:
        self.source = source
        self.problem = problem
        # One line, whatever the input held (a fuzzed key with a newline in it, say).
        super().__init__(printable(f"{source}: {problem}"))


class ConfigError(InputError):
    """The configuration file is invalid."""


class StateError(InputError):
    """A Pulumi state file (export or checkpoint) is invalid."""


class PlanError(TeardownError):
    """The plan cannot be made or run as asked."""


class BlastRadiusExceeded(PlanError):
    """More resources selected than ``max_resources`` allows (carries the numbers)."""

    def __init__(self, limit: int, selected: int, population: int) -> None:
        self.limit = limit
        self.selected = selected
        self.population = population
        super().__init__(
            f"blast radius exceeded: {selected} resources selected (of {population} read), "
            f"limit is max_resources = {limit}"
        )


class ScopeRefused(PlanError):
    """The scope's name matches a refused pattern (e.g. ``*prod*``)."""

    def __init__(self, scope: str, pattern: str) -> None:
        self.scope = scope
        self.pattern = pattern
        super().__init__(
            f"scope {scope!r} matches refused pattern {pattern!r} (scope.refuse_patterns)"
        )


class ResourceRefused(PlanError):
    """A resource in the plan carries a refused tag (e.g. ``env=production``): whatever the
    scope is called, production is not torn down."""

    def __init__(self, name: str, tag: str, pattern: str) -> None:
        self.name = name
        self.tag = tag
        self.pattern = pattern
        super().__init__(
            f"{name} is tagged {tag!r}, which matches refused tag {pattern!r} "
            "(scope.refuse_tags): leave it out of the targets"
        )


class UnfinishedRun(PlanError):
    """The scope has a run that acted and did not finish: it is resumed, never silently
    replaced by a new one (I6)."""

    def __init__(self, scope: str, run_id: str, phase: str) -> None:
        self.scope = scope
        self.run_id = run_id
        self.phase = phase
        super().__init__(
            f"scope {scope!r} has an unfinished run {run_id} ({phase}): finish it with "
            f"`teardown resume {run_id}` (or run again with --resume-unfinished)"
        )


class ClaimHeld(PlanError):
    """A resource is claimed by another live run (its tags say so, wherever that run's journal
    is): two runs never act on one resource."""

    def __init__(self, name: str, run_id: str, host: str, beat: str) -> None:
        self.name = name
        self.run_id = run_id
        self.host = host
        super().__init__(
            f"{name} is claimed by run {run_id} on {host or 'an unknown host'} (last heartbeat "
            f"{beat}): another teardown is working on it; wait for it to finish (a claim whose "
            "run stopped expires 10 minutes after its last heartbeat)"
        )


class PlanBlocked(PlanError):
    """The plan has blockers; nothing was changed."""

    def __init__(self, messages: list[str]) -> None:
        self.messages = messages
        super().__init__("plan is blocked: " + "; ".join(messages))


class PlanChanged(PlanError):
    """A reviewed plan no longer holds: the live inventory moved, or the file's plan is not
    what its settings give today. Nothing was changed."""

    def __init__(self, why: str, differences: list[str]) -> None:
        self.differences = differences
        lines = "".join(f"\n  {d}" for d in differences)
        super().__init__(f"{why}:{lines}\nteardown: nothing was changed; plan again and review.")


class VerificationFailed(TeardownError):
    """A backup could not be verified; nothing depending on it is destroyed."""


class LockHeld(TeardownError):
    """Another live run holds the scope's lock (I6)."""

    def __init__(self, scope: str, run_id: str, pid: int, host: str) -> None:
        self.scope = scope
        self.run_id = run_id
        self.pid = pid
        self.host = host
        super().__init__(
            f"scope {scope!r} is locked by run {run_id} (pid {pid} on {host}); "
            "wait for it to finish or stop it"
        )


class JournalError(TeardownError):
    """The journal cannot be used (wrong schema version, corrupt, unknown run)."""


class AdapterError(TeardownError):
    """A port call failed. Adapters translate foreign errors into the two subclasses."""

    def __init__(self, message: str, *, code: str | None = None, hint: str | None = None) -> None:
        self.code = code
        self.hint = hint
        super().__init__(message if hint is None else f"{message} ({hint})")


class TransientError(AdapterError):
    """Worth retrying: throttling, timeouts, connection resets, 5xx."""


class PermanentError(AdapterError):
    """Retrying will not help: the request is wrong or refused."""
