"""The Pulumi engine, driven through the Automation API: one choke point, one error translator.

Everything this tool asks of a live Pulumi stack goes through :class:`PulumiStack` (export, its
config, refresh, targeted destroy), and every failure that comes out of ``pulumi.automation``
passes through :func:`translate` on its way out, so the engine only ever sees ``teardown`` errors.

Example::

    stack = PulumiStack(StackRef("dev", Path("infra")))
    state = stack.export()                      # StackState, secrets unread
    settings = stack.config()                   # {"teardown:backup.retention_days": ...}
    destroyer = PulumiDestroyer(stack)
    destroyer.destroy(server, DestroyAction.PULUMI, key="a1b2c3")

The Automation API shells out to the ``pulumi`` CLI. When it is missing, :class:`PulumiUnavailable`
says so and names the offline route (``--state`` to plan, ``--destroy-with cloud`` to destroy).
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, TypeVar, cast

from pulumi import automation
from pulumi.automation import errors as automation_errors
from pulumi.automation.events import EngineEvent

from teardown.adapters.pulumi.state import StackState, engine_urn, parse_state
from teardown.core.errors import (
    InputError,
    PermanentError,
    TeardownError,
    TransientError,
)
from teardown.core.model import DestroyAction, Resource
from teardown.ports import DestroyResult, Presence
from teardown.ports.provider import Catalog

__all__ = [
    "DELETE_HOOK_TYPES",
    "HOOK_KEYS",
    "PulumiDestroyer",
    "PulumiProject",
    "PulumiStack",
    "PulumiUnavailable",
    "StackConfigValue",
    "StackInfo",
    "StackRef",
    "describe_event",
    "reconcile_commands",
    "translate",
]

_T = TypeVar("_T")

_OFFLINE_GUIDANCE = (
    "install it, or plan offline with --state FILE (from `pulumi stack export`) "
    "and destroy with --destroy-with cloud"
)

HOOK_KEYS: tuple[str, ...] = ("resourceHooks", "hooks")
"""Keys under which a resource in a deployment may record its hook bindings.

The engine (3.182+) stores them per resource as a map from hook type to hook names
(``"resourceHooks": {"BeforeDelete": ["guard"], "AfterDelete": [...]}``: the ``HookType``
constants of ``sdk/go/common/resource/resource_state.go``). ``hooks`` is accepted too, so that
a state written by another tool in the SDK's own spelling is not read as hook-free.
"""

HOOK_FAILED = re.compile(r'(?:before|after) hook "(?P<name>[^"]+)" failed: (?P<why>.*)')
"""How the engine reports a failing resource hook (``Deployment.RunHooks`` in
``pkg/resource/deploy/deployment.go``: ``before hook %q failed: %w``)."""

HOOK_UNREGISTERED = re.compile(r'hook "(?P<name>[^"]+)" was not registered')
"""The engine's error for a bound hook the program did not register (same function)."""

DELETE_HOOK_TYPES: frozenset[str] = frozenset({"beforedelete", "afterdelete"})
"""Hook types that make ``pulumi destroy`` refuse to run without ``--run-program``, normalised
(lower case, ``-`` and ``_`` removed) so ``before-delete``, ``before_delete`` and
``beforeDelete`` all match."""

_SUMMARY_LIMIT = 240
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_CODE = re.compile(r"\n code: (-?\d+)")


class PulumiUnavailable(InputError):
    """The ``pulumi`` CLI cannot be run (missing from PATH, or a version the SDK refuses)."""

    def __init__(self, problem: str | None = None) -> None:
        missing = "the pulumi CLI is not installed or not on PATH"
        super().__init__("pulumi", problem or f"{missing}: {_OFFLINE_GUIDANCE}")


# -- the one error translator ------------------------------------------------------------------


def _is_missing_binary(e: BaseException) -> bool:
    """Whether ``e`` is the OSError ``subprocess`` raises when the ``pulumi`` binary is absent."""
    if not isinstance(e, FileNotFoundError | PermissionError | NotADirectoryError):
        return False
    name = e.filename
    if isinstance(name, bytes):
        name = name.decode(errors="replace")
    return isinstance(name, str) and Path(name).name == "pulumi"


def _parts(e: automation_errors.CommandError) -> tuple[int | None, str, str]:
    """(exit code, stdout, stderr) of a CommandError.

    The error keeps only ``str(CommandResult)`` (``"\\n code: N\\n stdout: ...\\n stderr: ..."``),
    not the result itself, so the text is split back along those markers.
    """
    text = str(e)
    match = _CODE.search(text)
    code = int(match.group(1)) if match else None
    stdout, stderr = "", text
    out_at = text.find("\n stdout: ")
    err_at = text.rfind("\n stderr: ")
    if err_at >= 0:
        stderr = text[err_at + len("\n stderr: ") :]
        if 0 <= out_at < err_at:
            stdout = text[out_at + len("\n stdout: ") : err_at]
    return code, stdout, stderr


def _meaningful(line: str) -> bool:
    return any(c.isalnum() for c in line)


def _clean(line: str) -> str:
    """One line, no colour codes, nothing after ``--secret``, bounded in length."""
    line = _ANSI.sub("", line).strip()
    cut = line.find("--secret")
    if cut >= 0:
        line = line[:cut].rstrip() + " [rest hidden]"
    if len(line) > _SUMMARY_LIMIT:
        line = line[: _SUMMARY_LIMIT - 3] + "..."
    return line


def _summary(e: automation_errors.CommandError, *, stdout_ok: bool = True) -> str:
    """The last meaningful stderr line (else the last ``error:`` line of stdout, unless
    ``stdout_ok`` is false: stdout that holds values, such as the stack's config), one line."""
    code, stdout, stderr = _parts(e)
    lines = [_clean(x) for x in stderr.splitlines()]
    lines = [x for x in lines if _meaningful(x)]
    if not lines and stdout_ok:
        out = [_clean(x) for x in stdout.splitlines()]
        out = [x for x in out if _meaningful(x)]
        lines = [x for x in out if x.lower().startswith("error:")] or out
    if lines:
        return lines[-1]
    return f"exit code {code}" if code is not None else "no output"


def _hook_error(stderr: str) -> PermanentError | None:
    """A resource hook's failure, in the engine's words, as one teardown error (None when the
    CLI's stderr reports none). Only the engine's line is kept: the hook's own message."""
    for line in (_clean(x) for x in stderr.splitlines()):
        found = HOOK_UNREGISTERED.search(line)
        if found and "failed" not in line:
            return PermanentError(
                f'pulumi refused: hook "{found["name"]}" was not registered',
                code="hook-not-registered",
                hint="run the destroy with --run-program, from a program that binds the same "
                "teardown_hooks() to every guarded resource on every run",
            )
        found = HOOK_FAILED.search(line)
        if found:
            return PermanentError(
                f'pulumi stopped: hook "{found["name"]}" failed: {found["why"]}'[:_SUMMARY_LIMIT],
                code="hook-failed",
                hint="a teardown hook says what is missing; its journal run is named in the "
                "message (teardown runs)",
            )
    return None


def translate(e: BaseException, stack: str, *, stdout_ok: bool = True) -> TeardownError:
    """Map an exception out of ``pulumi.automation`` (or the CLI launch) to a teardown error.

    * already a :class:`TeardownError`: returned as is;
    * the ``pulumi`` binary missing: :class:`PulumiUnavailable` (an :class:`InputError`);
    * ``InvalidVersionError``: :class:`PulumiUnavailable` naming the version problem;
    * ``ConcurrentUpdateError``: :class:`TransientError` ("another update is running on stack S");
    * ``StackNotFoundError``: ``InputError("--stack", ...)``;
    * a ``CommandError`` whose stderr reports a failing or unregistered resource hook (the
      engine's ``before hook "<name>" failed: ...`` / ``hook "<name>" was not registered``):
      :class:`PermanentError` with that line (codes ``hook-failed``, ``hook-not-registered``);
    * any other ``CommandError``: :class:`PermanentError` with one line of the CLI's stderr;
    * anything else: :class:`PermanentError` naming the exception type.

    Every message is one line, and never carries more of the CLI output than one line: exports
    run with ``--show-secrets``, so whole outputs may hold secret values. With ``stdout_ok``
    false not even that line comes from stdout (``pulumi config --show-secrets --json``).
    """
    if isinstance(e, TeardownError):
        return e
    if _is_missing_binary(e):
        return PulumiUnavailable()
    if isinstance(e, automation_errors.InvalidVersionError):
        first = _clean(str(e).splitlines()[0] if str(e) else "")
        return PulumiUnavailable(
            f"the installed pulumi CLI cannot be used ({first}): upgrade it, or "
            + _OFFLINE_GUIDANCE.removeprefix("install it, or ")
        )
    if isinstance(e, automation_errors.ConcurrentUpdateError):
        return TransientError(
            f"another update is running on stack {stack}",
            code="concurrent-update",
            hint="wait for it to finish; if it died, `pulumi cancel` clears it",
        )
    if isinstance(e, automation_errors.StackNotFoundError):
        return InputError(
            "--stack",
            f"no stack named {stack!r} in this project and backend (check `pulumi stack ls`)",
        )
    if isinstance(e, automation_errors.CommandError):
        code, _, stderr = _parts(e)
        hook = _hook_error(stderr)
        if hook is not None:
            return hook
        return PermanentError(
            f"pulumi failed on stack {stack}: {_summary(e, stdout_ok=stdout_ok)}",
            code=f"exit-{code}" if code is not None else None,
        )
    text = str(e).splitlines()[0] if str(e) else ""
    detail = f": {_clean(text)}" if text else ""
    return PermanentError(f"pulumi automation failed on stack {stack}: {type(e).__name__}{detail}")


# -- engine events ---------------------------------------------------------------------------


def _short_urn(urn: str) -> str:
    """``name (type)`` of a URN, for progress lines."""
    parts = urn.split("::")
    if len(parts) >= 4:
        return f"{parts[-1]} ({parts[-2].rsplit('$', 1)[-1]})"
    return urn


def describe_event(event: EngineEvent) -> str | None:
    """A short line for an engine event worth showing, or None for the rest.

    Resource steps (``delete web-1 (huaweicloud:Ecs/instance:Instance)``), their completion or
    failure, warnings and errors (first line only), and the final summary.
    """
    if event.resource_pre_event is not None:
        meta = event.resource_pre_event.metadata
        return f"{meta.op.value} {_short_urn(meta.urn)}"
    if event.res_outputs_event is not None:
        meta = event.res_outputs_event.metadata
        return f"{meta.op.value} done {_short_urn(meta.urn)}"
    if event.res_op_failed_event is not None:
        meta = event.res_op_failed_event.metadata
        return f"{meta.op.value} failed {_short_urn(meta.urn)}"
    if event.diagnostic_event is not None:
        diag = event.diagnostic_event
        if diag.severity not in ("warning", "error"):
            return None
        lines = [_clean(x) for x in diag.message.splitlines() if _meaningful(x)]
        text = diag.severity
        if diag.urn:
            text += f" {_short_urn(diag.urn)}"
        return f"{text}: {lines[0]}" if lines else text
    if event.summary_event is not None:
        changes = event.summary_event.resource_changes or {}
        # Keys are OpType members when built in code, plain strings when read from the CLI.
        counts = sorted((str(getattr(op, "value", op)), n) for op, n in changes.items() if n)
        shown = ", ".join(f"{op} {n}" for op, n in counts)
        return f"summary: {shown or 'no changes'}"
    return None


# -- the one choke point ---------------------------------------------------------------------


@dataclass(frozen=True)
class StackConfigValue:
    """One value of a stack's config: the text Pulumi stores (a secret decrypted; objects and
    lists set with ``--path`` as JSON), and whether it is a secret. The value never shows in a
    repr."""

    value: str = field(repr=False)
    secret: bool = False


@dataclass(frozen=True)
class StackRef:
    """Which stack to drive: its name and the directory holding its ``Pulumi.yaml``."""

    name: str
    work_dir: Path


class _AutomationStack(Protocol):
    """The part of ``pulumi.automation.Stack`` this adapter uses (fakes implement just this)."""

    def export_stack(self) -> Any: ...

    def get_all_config(self) -> Mapping[str, Any]: ...

    def destroy(self, **kwargs: Any) -> Any: ...

    def refresh(self, **kwargs: Any) -> Any: ...


class PulumiStack:
    """The one place that calls ``pulumi.automation`` for a stack.

    ``select`` is called once, lazily, as ``select(name, work_dir=str(work_dir))``; tests pass a
    factory returning a hand-written fake. With the real ``select_stack``, a missing ``pulumi``
    binary is reported before anything runs. Every method raises only teardown errors
    (see :func:`translate`).
    """

    def __init__(
        self, ref: StackRef, *, select: Callable[..., Any] = automation.select_stack
    ) -> None:
        self.ref = ref
        self._select = select
        self._stack: _AutomationStack | None = None

    def _selected(self) -> _AutomationStack:
        if self._stack is None:
            if self._select is automation.select_stack and shutil.which("pulumi") is None:
                raise PulumiUnavailable()
            self._stack = cast(
                _AutomationStack, self._select(self.ref.name, work_dir=str(self.ref.work_dir))
            )
        return self._stack

    def _call(self, fn: Callable[[_AutomationStack], _T], *, stdout_ok: bool = True) -> _T:
        try:
            return fn(self._selected())
        except TeardownError:
            raise
        except Exception as e:
            # ``from None``: the original may carry whole CLI outputs, secrets included.
            raise translate(e, self.ref.name, stdout_ok=stdout_ok) from None

    def _deployment(self) -> dict[str, Any]:
        """The raw ``deployment`` object of ``pulumi stack export`` (never stored, never logged)."""
        return self._exported()[1]

    def _exported(self) -> tuple[int, dict[str, Any]]:
        """(version, deployment) of ``pulumi stack export``. The Automation API's ``Deployment``
        keeps ``version`` and ``deployment`` only (``sdk/python/lib/pulumi/automation/
        _workspace.py``): the export's ``features`` (version 4) do not reach teardown this way."""
        exported = self._call(lambda s: s.export_stack())
        version = getattr(exported, "version", None)
        version = version if isinstance(version, int) and not isinstance(version, bool) else 3
        deployment = getattr(exported, "deployment", None)
        if deployment is None:
            return version, {}
        if not isinstance(deployment, Mapping):
            raise PermanentError(
                f"pulumi stack export of {self.ref.name} returned "
                f"{type(deployment).__name__}, expected an object"
            )
        return version, dict(deployment)

    def export(self, catalog: Catalog | None = None) -> StackState:
        """The stack's current state, read as :func:`parse_state` reads an export file (types
        mapped by ``catalog``, Huawei Cloud's by default)."""
        version, deployment = self._exported()
        doc = {"version": version, "deployment": deployment}
        source = f"stack {self.ref.name}"
        if catalog is None:
            return parse_state(json.dumps(doc), source)
        return parse_state(json.dumps(doc), source, catalog)

    def config(self) -> dict[str, StackConfigValue]:
        """The stack's config (``Pulumi.<stack>.yaml``, and an ESC environment's
        ``pulumiConfig``) by full key, ``namespace:key`` (``teardown:backup.retention_days``,
        ``huaweicloud:region``), as ``get_all_config`` reads it (``pulumi config --show-secrets
        --json``): secret values arrive decrypted, so they are never logged or stored here."""
        values = self._call(lambda s: s.get_all_config(), stdout_ok=False)
        if not isinstance(values, Mapping):
            raise PermanentError(
                f"pulumi config of {self.ref.name} returned {type(values).__name__}, "
                "expected an object"
            )
        out: dict[str, StackConfigValue] = {}
        for key, item in values.items():
            value = getattr(item, "value", item)
            out[str(key)] = StackConfigValue(
                value if isinstance(value, str) else json.dumps(value),
                bool(getattr(item, "secret", False)),
            )
        return out

    def refresh(self) -> None:
        """``pulumi refresh``: adopt what the cloud says, clear pending operations."""
        self._call(lambda s: s.refresh())

    def destroy(
        self,
        urns: Sequence[str],
        *,
        run_program: bool,
        on_event: Callable[[str], None] | None = None,
    ) -> None:
        """Targeted ``pulumi destroy`` of ``urns`` and everything that depends on them.

        An empty ``urns`` does nothing: to the CLI, no ``--target`` means the whole stack.
        ``run_program`` must be true when any resource in state has delete hooks (the engine
        refuses otherwise); ``on_event`` receives one short line per interesting engine event.
        """
        targets = list(urns)
        if not targets:
            return
        listener: Callable[[EngineEvent], None] | None = None
        if on_event is not None:
            callback = on_event

            def listener(event: EngineEvent) -> None:
                text = describe_event(event)
                if text is not None:
                    callback(text)

        self._call(
            lambda s: s.destroy(
                target=targets,
                target_dependents=True,
                run_program=run_program,
                on_event=listener,
            )
        )

    def has_delete_hooks(self) -> bool:
        """Whether any resource in the exported deployment has a delete hook bound.

        Checked: each entry of ``deployment.resources`` (pending deletes included, as the engine
        checks the whole snapshot), under each of :data:`HOOK_KEYS`, for a hook type in
        :data:`DELETE_HOOK_TYPES` with a non-empty list of hook names.
        """
        resources = self._deployment().get("resources")
        if not isinstance(resources, list):
            return False
        for item in resources:
            if not isinstance(item, Mapping):
                continue
            for key in HOOK_KEYS:
                hooks = item.get(key)
                if not isinstance(hooks, Mapping):
                    continue
                for kind, names in hooks.items():
                    norm = str(kind).lower().replace("-", "").replace("_", "")
                    if norm in DELETE_HOOK_TYPES and names:
                        return True
        return False


# -- the project's stacks (for sweep) ------------------------------------------------------


@dataclass(frozen=True)
class StackInfo:
    """A stack of a project, as ``pulumi stack ls`` shows it."""

    name: str
    last_update: datetime | None


class PulumiProject:
    """The stacks of the Pulumi project in ``work_dir`` (its ``Pulumi.yaml`` and backend), for
    ``teardown sweep``: list them, read and write their tags."""

    def __init__(
        self,
        work_dir: Path,
        *,
        workspace: Callable[..., Any] = automation.LocalWorkspace,
    ) -> None:
        self.work_dir = work_dir
        self._make = workspace
        self._workspace: Any = None

    def _call(self, fn: Callable[[Any], _T], what: str) -> _T:
        try:
            if self._workspace is None:
                if self._make is automation.LocalWorkspace and shutil.which("pulumi") is None:
                    raise PulumiUnavailable()
                self._workspace = self._make(work_dir=str(self.work_dir))
            return fn(self._workspace)
        except TeardownError:
            raise
        except Exception as e:
            raise translate(e, what) from None

    def stacks(self) -> list[StackInfo]:
        """Every stack of the project, with its last update (None: never updated)."""
        found = self._call(lambda w: w.list_stacks(), f"project {self.work_dir}")
        out = []
        for s in found:
            when = getattr(s, "last_update", None)
            if isinstance(when, datetime) and when.tzinfo is None:
                when = when.replace(tzinfo=UTC)
            out.append(StackInfo(str(s.name), when if isinstance(when, datetime) else None))
        return out

    def tags(self, stack: str) -> dict[str, str]:
        """The stack's tags (``pulumi stack tag ls``)."""
        found = self._call(lambda w: w.list_tags(stack), stack)
        return {str(k): str(v) for k, v in (found or {}).items()}

    def tag(self, stack: str, key: str, value: str) -> None:
        """Set one tag on the stack (``pulumi stack tag set``)."""
        self._call(lambda w: w.set_tag(stack, key, value), stack)


# -- the Destroyer port ----------------------------------------------------------------------


class PulumiDestroyer:
    """The Destroyer port for :attr:`DestroyAction.PULUMI`: a targeted ``pulumi destroy``.

    Pulumi has no idempotency key; ``key`` is accepted for the port and a resource already
    absent from state is reported gone without calling the engine again.
    """

    def __init__(self, stack: PulumiStack) -> None:
        self.stack = stack

    def destroy(
        self, resource: Resource, action: DestroyAction, key: str, *, delete_volumes: bool = False
    ) -> DestroyResult:
        """Destroy ``resource`` (and its dependents) through the engine and verify it left state.

        Raises PermanentError for any action other than PULUMI, when the engine refuses (e.g.
        protected), or when the URN is still in state afterwards.
        """
        if action is not DestroyAction.PULUMI:
            raise PermanentError(
                f"the pulumi destroyer only destroys through pulumi, not {action.value!r} "
                f"({resource.urn})",
                code="unsupported-action",
            )
        if self.presence(resource) is Presence.GONE:
            return DestroyResult(Presence.GONE)
        try:
            self.stack.destroy([engine_urn(resource)], run_program=self.stack.has_delete_hooks())
        except PermanentError:
            # From CLI 3.238 a failing after-delete hook fails the deployment although the
            # delete is committed: what the state says decides, not the exit code.
            if self.presence(resource) is Presence.GONE:
                return DestroyResult(Presence.GONE)
            raise
        if self.presence(resource) is not Presence.GONE:
            raise PermanentError(
                f"pulumi destroy finished but {resource.urn} is still in stack "
                f"{self.stack.ref.name}",
                code="still-in-state",
            )
        return DestroyResult(Presence.GONE)

    def presence(self, resource: Resource) -> Presence:
        """GONE when the resource is no longer in the exported state, else EXISTS. A resource
        is matched by the engine's URN and, when it has one, its cloud id: an old copy of a
        replaced resource (``delete: true``) is keyed differently while its replacement is in
        state, and it is the same copy either way."""
        state = self.stack.export()
        urn = engine_urn(resource)
        if urn in state.skipped:
            return Presence.EXISTS
        for r in state.resources:
            if engine_urn(r) == urn and (
                resource.cloud_id is None or r.cloud_id in (None, resource.cloud_id)
            ):
                return Presence.EXISTS
        return Presence.GONE


# -- reconciliation --------------------------------------------------------------------------


def _quote(word: str) -> str:
    """``shlex.quote``, always in single quotes so URNs read the same whatever they hold."""
    quoted = shlex.quote(word)
    return quoted if quoted.startswith("'") else f"'{quoted}'"


def reconcile_commands(stack: str, urns: Sequence[str]) -> list[str]:
    """Shell commands that bring ``stack`` in line after ``urns`` were destroyed outside Pulumi.

    The first, ``pulumi refresh``, is the usual fix; the ``pulumi state delete`` lines are the
    alternative when a refresh cannot run (give ``urns`` dependents first: the CLI refuses to
    delete a resource others still depend on).
    """
    s = shlex.quote(stack)
    commands = [f"pulumi refresh --stack {s} --yes"]
    commands.extend(f"pulumi state delete --stack {s} --yes {_quote(urn)}" for urn in urns)
    return commands
