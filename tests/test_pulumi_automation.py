"""The Pulumi Automation adapter: one choke point over ``pulumi.automation``, one error translator.

A hand-written fake stands in for ``pulumi.automation.Stack`` (the CLI cannot be installed here);
its failures are real ``CommandError`` subclasses, built by the automation module's own
``create_command_error`` from a real ``CommandResult``. The last test drives a real local-backend
stack and runs only where the ``pulumi`` CLI is on PATH.
"""

from __future__ import annotations

import copy
import json
import shlex
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pulumi
import pytest
from pulumi import automation
from pulumi.automation.errors import InvalidVersionError, create_command_error
from pulumi.automation.events import EngineEvent

from teardown.adapters.pulumi.automation import (
    PulumiDestroyer,
    PulumiStack,
    PulumiUnavailable,
    StackRef,
    reconcile_commands,
    translate,
)
from teardown.adapters.pulumi.state import StackState, read_state
from teardown.core.errors import (
    InputError,
    PermanentError,
    StateError,
    TeardownError,
    TransientError,
)
from teardown.core.model import DestroyAction, Resource
from teardown.ports import Destroyer, DestroyResult, Presence

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "huawei-test-env.json"

P = "urn:pulumi:dev::shop-test::"
WEB = P + "huaweicloud:Ecs/instance:Instance::web-1"
DB = P + "huaweicloud:Ecs/instance:Instance::db-1"
DB_DATA_ATTACH = P + "huaweicloud:Ecs/volumeAttach:VolumeAttach::db-data-attach"
VPC = P + "huaweicloud:Vpc/vpc:Vpc::shop-vpc"

CONFLICT = "error: [409] Conflict: Another update is currently in progress."
DIY_LOCK = (
    "error: the stack is currently locked by 1 lock(s). Either wait for the other process(es) "
    "to end or delete the lock file with `pulumi cancel`."
)


def _example_deployment() -> dict[str, Any]:
    doc = json.loads(EXAMPLE.read_text())
    deployment = doc["deployment"]
    assert isinstance(deployment, dict)
    return deployment


def command_error(stderr: str, stdout: str = "", code: int = 255) -> Exception:
    """The error the automation module raises for a failed CLI run with this output."""
    return create_command_error(automation.CommandResult(stdout=stdout, stderr=stderr, code=code))


class FakeStack:
    """``pulumi.automation.Stack`` as far as the adapter uses it, with failure switches.

    ``destroy`` removes the targets (and, with ``target_dependents``, everything depending on
    them) from the deployment and emits engine events, unless ``fail_destroy`` is set or
    ``keep_in_state`` says the engine silently left the resources in place.
    """

    def __init__(self, deployment: dict[str, Any] | None = None) -> None:
        self.deployment: dict[str, Any] = (
            _example_deployment() if deployment is None else deployment
        )
        self.exports = 0
        self.destroys: list[dict[str, Any]] = []
        self.refreshes: list[dict[str, Any]] = []
        self.fail_export: Exception | None = None
        self.fail_destroy: Exception | None = None
        self.fail_refresh: Exception | None = None
        self.keep_in_state = False
        self.fail_after_delete: Exception | None = None
        """Raised after the delete is committed (an after-delete hook failed, CLI 3.238+)."""
        self.version = 3

    def export_stack(self) -> automation.Deployment:
        self.exports += 1
        if self.fail_export is not None:
            raise self.fail_export
        return automation.Deployment(
            version=self.version, deployment=copy.deepcopy(self.deployment)
        )

    def refresh(self, **kwargs: Any) -> None:
        self.refreshes.append(kwargs)
        if self.fail_refresh is not None:
            raise self.fail_refresh

    def destroy(self, **kwargs: Any) -> None:
        self.destroys.append(kwargs)
        if self.fail_destroy is not None:
            raise self.fail_destroy
        resources: list[dict[str, Any]] = self.deployment["resources"]
        gone: set[str] = set(kwargs.get("target") or [r["urn"] for r in resources])
        if kwargs.get("target_dependents"):
            grew = True
            while grew:
                grew = False
                for r in resources:
                    if r["urn"] not in gone and gone.intersection(r.get("dependencies", [])):
                        gone.add(r["urn"])
                        grew = True
        on_event: Callable[[EngineEvent], None] | None = kwargs.get("on_event")
        if on_event is not None:
            for r in resources:
                if r["urn"] in gone:
                    meta = {"op": "delete", "urn": r["urn"], "type": r["type"], "provider": ""}
                    on_event(EngineEvent.from_json({"resourcePreEvent": {"metadata": meta}}))
                    on_event(EngineEvent.from_json({"resOutputsEvent": {"metadata": meta}}))
            info = {"message": "noise\n", "severity": "info"}
            on_event(EngineEvent.from_json({"diagnosticEvent": info}))
            summary = {"resourceChanges": {"delete": len(gone), "same": 0}}
            on_event(EngineEvent.from_json({"summaryEvent": summary}))
        if not self.keep_in_state:
            self.deployment["resources"] = [r for r in resources if r["urn"] not in gone]
        if self.fail_after_delete is not None:
            raise self.fail_after_delete


class FakeSelect:
    """A ``select_stack`` stand-in: records how it was called, returns the fake stack."""

    def __init__(self, stack: FakeStack) -> None:
        self.stack = stack
        self.calls: list[tuple[tuple[Any, ...], dict[str, Any]]] = []

    def __call__(self, *args: Any, **kwargs: Any) -> FakeStack:
        self.calls.append((args, kwargs))
        return self.stack


def make(deployment: dict[str, Any] | None = None) -> tuple[PulumiStack, FakeStack, FakeSelect]:
    fake = FakeStack(deployment)
    select = FakeSelect(fake)
    return PulumiStack(StackRef("dev", Path("/work/infra")), select=select), fake, select


def with_hooks(key: str, hooks: dict[str, list[str]], urn: str = DB) -> dict[str, Any]:
    """The example deployment with ``hooks`` recorded under ``key`` on one resource."""
    deployment = _example_deployment()
    for r in deployment["resources"]:
        if r["urn"] == urn:
            r[key] = hooks
    return deployment


def resource(state: StackState, urn: str) -> Resource:
    return next(r for r in state.resources if r.urn == urn)


# -- destroy argument building -----------------------------------------------------------------


def test_destroy_targets_the_urns_with_their_dependents() -> None:
    stack, fake, _ = make()
    stack.destroy([WEB, DB], run_program=False)
    assert len(fake.destroys) == 1
    call = fake.destroys[0]
    assert call["target"] == [WEB, DB]
    assert call["target_dependents"] is True
    assert call["run_program"] is False
    assert call["on_event"] is None


def test_destroy_of_no_urns_never_calls_the_engine() -> None:
    # To the CLI, no --target means the whole stack.
    stack, fake, _ = make()
    stack.destroy([], run_program=False)
    assert fake.destroys == []
    assert stack.export() == read_state(EXAMPLE)  # the whole stack is still there


@pytest.mark.parametrize(
    ("key", "hooks", "expected"),
    [
        # the engine's spelling (sdk/go/common/resource/resource_state.go, HookType)
        ("resourceHooks", {"BeforeDelete": ["backup-guard"]}, True),
        ("resourceHooks", {"AfterDelete": ["notify"]}, True),
        ("resourceHooks", {"BeforeCreate": ["x"], "AfterUpdate": ["y"]}, False),
        ("resourceHooks", {"BeforeDelete": []}, False),
        # other tools' spellings are not read as hook-free
        ("hooks", {"before_delete": ["backup-guard"]}, True),
        ("hooks", {"afterDelete": ["notify"]}, True),
    ],
)
def test_run_program_is_set_only_when_state_has_delete_hooks(
    key: str, hooks: dict[str, list[str]], expected: bool
) -> None:
    stack, fake, _ = make(with_hooks(key, hooks))
    assert stack.has_delete_hooks() is expected
    state = stack.export()
    PulumiDestroyer(stack).destroy(resource(state, WEB), DestroyAction.PULUMI, key="k1")
    assert fake.destroys[0]["run_program"] is expected


def test_example_state_has_no_delete_hooks() -> None:
    stack, _, _ = make()
    assert stack.has_delete_hooks() is False


def test_destroy_reports_engine_events_as_short_lines() -> None:
    stack, _, _ = make()
    lines: list[str] = []
    stack.destroy([DB], run_program=False, on_event=lines.append)
    assert lines == [
        "delete db-1 (huaweicloud:Ecs/instance:Instance)",
        "delete done db-1 (huaweicloud:Ecs/instance:Instance)",
        "delete db-data-attach (huaweicloud:Ecs/volumeAttach:VolumeAttach)",
        "delete done db-data-attach (huaweicloud:Ecs/volumeAttach:VolumeAttach)",
        "summary: delete 2",
    ]


def test_refresh_is_passed_to_the_stack() -> None:
    stack, fake, _ = make()
    stack.refresh()
    assert fake.refreshes == [{}]


def test_stack_is_selected_once_by_name_and_work_dir() -> None:
    stack, _, select = make()
    stack.export()
    stack.refresh()
    stack.destroy([WEB], run_program=False)
    assert select.calls == [(("dev",), {"work_dir": "/work/infra"})]


# -- export ------------------------------------------------------------------------------------


def test_export_maps_the_deployment_like_the_state_reader() -> None:
    stack, _, _ = make()
    state = stack.export()
    expected = read_state(EXAMPLE)
    assert state == expected
    assert state.stack == "dev"
    assert state.project == "shop-test"
    assert WEB in {r.urn for r in state.resources}


def test_export_of_a_never_deployed_stack_has_no_resources() -> None:
    fake = FakeStack()
    fake.deployment = {}
    stack = PulumiStack(StackRef("dev", Path(".")), select=FakeSelect(fake))
    assert stack.export().resources == ()


def test_export_of_a_malformed_deployment_names_the_stack() -> None:
    stack, _, _ = make({"resources": [{"urn": "not-a-urn", "type": "x"}]})
    with pytest.raises(StateError) as info:
        stack.export()
    assert info.value.source == "stack dev"
    assert "not a Pulumi URN" in str(info.value)


# -- presence and the Destroyer port -----------------------------------------------------------


def test_destroyer_destroys_through_pulumi_and_reports_the_resource_gone() -> None:
    stack, fake, _ = make()
    destroyer: Destroyer = PulumiDestroyer(stack)
    db = resource(stack.export(), DB)
    assert destroyer.presence(db) is Presence.EXISTS

    result = destroyer.destroy(db, DestroyAction.PULUMI, key="k1")

    assert result == DestroyResult(Presence.GONE)
    assert destroyer.presence(db) is Presence.GONE
    remaining = {r["urn"] for r in fake.deployment["resources"]}
    assert DB not in remaining
    assert DB_DATA_ATTACH not in remaining  # its dependent went with it
    assert WEB in remaining and VPC in remaining


def test_destroyer_does_not_call_the_engine_for_a_resource_already_gone() -> None:
    stack, fake, _ = make()
    web = resource(stack.export(), WEB)
    stack.destroy([WEB], run_program=False)
    fake.destroys.clear()

    result = PulumiDestroyer(stack).destroy(web, DestroyAction.PULUMI, key="k1")

    assert result.presence is Presence.GONE
    assert fake.destroys == []


def test_destroyer_fails_when_the_urn_is_still_in_state_afterwards() -> None:
    stack, fake, _ = make()
    fake.keep_in_state = True
    web = resource(stack.export(), WEB)
    with pytest.raises(PermanentError) as info:
        PulumiDestroyer(stack).destroy(web, DestroyAction.PULUMI, key="k1")
    assert f"{WEB} is still in stack dev" in str(info.value)


@pytest.mark.parametrize(
    "action", [a for a in DestroyAction if a is not DestroyAction.PULUMI], ids=str
)
def test_destroyer_refuses_every_action_but_pulumi(action: DestroyAction) -> None:
    stack, fake, _ = make()
    web = resource(stack.export(), WEB)
    with pytest.raises(PermanentError) as info:
        PulumiDestroyer(stack).destroy(web, action, key="k1")
    assert info.value.code == "unsupported-action"
    assert fake.destroys == []


def test_presence_counts_a_pending_delete_as_still_there() -> None:
    deployment = _example_deployment()
    for r in deployment["resources"]:
        if r["urn"] == WEB:
            r["delete"] = True
    stack, _, _ = make(deployment)
    web = resource(read_state(EXAMPLE), WEB)
    assert PulumiDestroyer(stack).presence(web) is Presence.EXISTS


# -- error mapping -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "kind", "message"),
    [
        (command_error(CONFLICT), TransientError, "another update is running on stack dev"),
        (command_error(DIY_LOCK), TransientError, "another update is running on stack dev"),
        (
            command_error("error: no stack named 'dev' found"),
            InputError,
            "--stack: no stack named 'dev'",
        ),
        (
            command_error("error: resource 'db-1' cannot be deleted\nbecause it is protected"),
            PermanentError,
            "pulumi failed on stack dev: because it is protected",
        ),
        (
            command_error("", stdout="python inline source runtime error\nerror: boom"),
            PermanentError,
            "pulumi failed on stack dev: error: boom",
        ),
        (
            command_error("", stdout="", code=3),
            PermanentError,
            "pulumi failed on stack dev: exit code 3",
        ),
        (
            FileNotFoundError(2, "No such file or directory", "pulumi"),
            PulumiUnavailable,
            "pulumi: the pulumi CLI is not installed or not on PATH",
        ),
        (
            InvalidVersionError("minimum version 3.2 required, got 3.1"),
            PulumiUnavailable,
            "pulumi: the installed pulumi CLI cannot be used",
        ),
        (
            ValueError("Expecting value: line 1 column 1\nmore"),
            PermanentError,
            "pulumi automation failed on stack dev: ValueError: Expecting value",
        ),
    ],
    ids=[
        "conflict",
        "diy-lock",
        "not-found",
        "command",
        "inline-runtime",
        "silent",
        "missing-binary",
        "old-cli",
        "unknown",
    ],
)
def test_each_automation_error_becomes_one_teardown_error_on_one_line(
    error: Exception, kind: type[TeardownError], message: str
) -> None:
    translated = translate(error, "dev")
    assert type(translated) is kind
    assert message in str(translated)
    assert "\n" not in str(translated)


def test_concurrent_update_error_is_transient_through_the_stack() -> None:
    stack, fake, _ = make()
    fake.fail_destroy = command_error(CONFLICT)
    with pytest.raises(TransientError) as info:
        stack.destroy([WEB], run_program=False)
    assert info.value.code == "concurrent-update"
    assert info.value.__cause__ is None


@pytest.mark.parametrize("method", ["export", "refresh", "has_delete_hooks"])
def test_every_stack_call_is_translated(method: str) -> None:
    stack, fake, _ = make()
    fake.fail_export = fake.fail_refresh = command_error("error: no stack named 'dev' found")
    with pytest.raises(InputError) as info:
        getattr(stack, method)()
    assert info.value.source == "--stack"


def test_command_error_keeps_one_stderr_line_and_no_secret() -> None:
    stderr = (
        "\x1b[31merror:\x1b[0m running `pulumi config set db-pass --secret hunter2`\n   \n----\n"
    )
    translated = translate(command_error(stderr), "dev")
    assert isinstance(translated, PermanentError)
    assert "hunter2" not in str(translated)
    assert "\x1b" not in str(translated)
    assert str(translated) == (
        "pulumi failed on stack dev: error: running `pulumi config set db-pass [rest hidden]"
    )
    assert translated.code == "exit-255"


def test_teardown_errors_pass_through_untouched() -> None:
    original = TransientError("throttled")
    assert translate(original, "dev") is original


# -- missing binary ----------------------------------------------------------------------------


def test_missing_binary_is_reported_with_the_offline_route(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    stack = PulumiStack(StackRef("dev", tmp_path))
    with pytest.raises(PulumiUnavailable) as info:
        stack.export()
    text = str(info.value)
    assert info.value.source == "pulumi"
    assert "\n" not in text
    assert "not installed or not on PATH" in text
    assert "--state FILE (from `pulumi stack export`)" in text
    assert "--destroy-with cloud" in text


def test_missing_binary_found_by_the_automation_api_is_translated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Not the default ``select``, so no PATH pre-check: the real automation API tries to run
    # ``pulumi`` and fails; the adapter must still say what to do.
    monkeypatch.setenv("PATH", str(tmp_path))

    def select(name: str, work_dir: str) -> automation.Stack:
        return automation.select_stack(name, work_dir=work_dir)

    stack = PulumiStack(StackRef("dev", tmp_path), select=select)
    with pytest.raises(PulumiUnavailable):
        stack.destroy([WEB], run_program=False)


# -- reconciliation ----------------------------------------------------------------------------


def test_reconcile_commands_refresh_first_then_delete_each_urn_from_state() -> None:
    assert reconcile_commands("dev", [WEB, DB]) == [
        "pulumi refresh --stack dev --yes",
        f"pulumi state delete --stack dev --yes '{WEB}'",
        f"pulumi state delete --stack dev --yes '{DB}'",
    ]


def test_reconcile_commands_quote_a_urn_with_a_quote_in_it_safely() -> None:
    urn = P + "huaweicloud:Ecs/instance:Instance::bob's server; rm -rf ~"
    commands = reconcile_commands("org/shop-test/dev", [urn])
    assert commands[1] == (
        "pulumi state delete --stack org/shop-test/dev --yes "
        "'urn:pulumi:dev::shop-test::huaweicloud:Ecs/instance:Instance::bob'\"'\"'s "
        "server; rm -rf ~'"
    )
    assert shlex.split(commands[1]) == [
        "pulumi",
        "state",
        "delete",
        "--stack",
        "org/shop-test/dev",
        "--yes",
        urn,
    ]


def test_reconcile_commands_for_no_urns_is_just_the_refresh() -> None:
    assert reconcile_commands("dev", []) == ["pulumi refresh --stack dev --yes"]


# -- the real CLI ------------------------------------------------------------------------------


@pytest.mark.pulumi
@pytest.mark.skipif(
    shutil.which("pulumi") is None,
    reason="the pulumi CLI is not on PATH (install it to run against a real local-backend stack)",
)
def test_export_reads_a_real_local_backend_stack(tmp_path: Path) -> None:
    project = "teardown-it"
    backend = tmp_path / "backend"
    backend.mkdir()
    work = tmp_path / "work"
    work.mkdir()

    def program() -> None:
        pulumi.export("greeting", "hello")  # no CustomResource: no provider plugin needed

    opts = automation.LocalWorkspaceOptions(
        work_dir=str(work),
        pulumi_home=str(tmp_path / "home"),
        env_vars={
            "PULUMI_BACKEND_URL": f"file://{backend}",
            "PULUMI_CONFIG_PASSPHRASE": "teardown-test",
            "PULUMI_SKIP_UPDATE_CHECK": "true",
        },
        project_settings=automation.ProjectSettings(name=project, runtime="python"),
    )
    created = automation.create_or_select_stack(
        "it", project_name=project, program=program, opts=opts
    )
    created.up()

    def select(name: str, work_dir: str) -> automation.Stack:
        return automation.select_stack(name, project_name=project, program=program, opts=opts)

    stack = PulumiStack(StackRef("it", work), select=select)
    state = stack.export()

    assert state.stack == "it"
    assert state.project == project
    assert state.resources == ()
    assert any(urn.endswith("::pulumi:pulumi:Stack::teardown-it-it") for urn in state.skipped)
    assert stack.has_delete_hooks() is False
    stack.refresh()


# -- the engine's hook errors and version-4 exports ------------------------------------------

BEFORE_FAILED = (
    "error: update failed\n"
    'error: before hook "teardown-before-delete-0a1b2c3d4e" failed: teardown: db-1 is not '
    "backed up, so its delete was stopped: no verified backup (journal run hook-1234)\n"
)


def test_a_refusing_before_delete_hook_is_reported_in_the_engines_words() -> None:
    stack, fake, _ = make()
    fake.fail_destroy = command_error(BEFORE_FAILED)
    db = resource(stack.export(), DB)
    with pytest.raises(PermanentError) as info:
        PulumiDestroyer(stack).destroy(db, DestroyAction.PULUMI, key="k1")
    assert info.value.code == "hook-failed"
    assert str(info.value).startswith(
        'pulumi stopped: hook "teardown-before-delete-0a1b2c3d4e" failed: teardown: db-1 is '
        "not backed up"
    )
    assert DB in {r.urn for r in stack.export().resources}


def test_an_unregistered_hook_says_to_run_the_program() -> None:
    stack, fake, _ = make()
    fake.fail_destroy = command_error(
        'error: hook "teardown-before-delete-0a1b2c3d4e" was not registered\n'
    )
    with pytest.raises(PermanentError) as info:
        stack.destroy([DB], run_program=True)
    assert info.value.code == "hook-not-registered"
    assert info.value.hint is not None and "--run-program" in info.value.hint


def test_a_failing_after_delete_hook_with_the_delete_committed_is_a_destroy() -> None:
    """CLI 3.238+: an after-delete hook's error fails the deployment though the delete is in
    state: the destroyer asks the state, not the exit code."""
    stack, fake, _ = make()
    fake.fail_after_delete = command_error(
        'error: after hook "teardown-after-delete-0a1b2c3d4e" failed: boom\n'
    )
    web = resource(stack.export(), WEB)
    result = PulumiDestroyer(stack).destroy(web, DestroyAction.PULUMI, key="k1")
    assert result.presence is Presence.GONE


def test_the_export_keeps_the_engines_version() -> None:
    stack, fake, _ = make(with_hooks("resourceHooks", {"BeforeDelete": ["teardown-x"]}))
    fake.version = 4  # a deployment with hooks (the features list does not reach the SDK)
    assert {r.urn for r in stack.export().resources} == {
        r.urn for r in read_state(EXAMPLE).resources
    }
    fake.version = 5
    with pytest.raises(StateError, match="unsupported version 5"):
        stack.export()
