"""The example stack ``stacks/test_env`` run under Pulumi's mocks (no CLI, no engine, no cloud).

How the hooks are observed: ``Mocks.new_resource`` receives a ``MockResourceArgs`` (type, name,
inputs, provider...), which carries no hooks. The SDK does send them, though: it resolves the
``ResourceOptions.hooks`` binding into the ``hooks`` field (hook *names* per hook type) of the
``RegisterResourceRequest`` it sends to the resource monitor, after registering each named hook.
So the test gives ``set_mocks`` a ``MockMonitor`` subclass that records ``request.hooks`` for every
``RegisterResource`` call: the test sees exactly what the engine would store in the state. The
hook factory's arguments are recorded by wrapping ``teardown.pulumi.teardown_hooks`` (monkeypatched
before the program runs; the wrapper calls the real factory, so the binding is the real one).

The program is executed with ``runpy.run_path`` inside ``run_pulumi_func``, which, like the
language host, waits for every outstanding registration before returning.
"""

from __future__ import annotations

import json
import runpy
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
import pytest
import yaml  # type: ignore[import-untyped]
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import settings as pulumi_settings
from pulumi.runtime.config import CONFIG, set_all_config
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

import teardown.pulumi as teardown_pulumi

PROGRAM = Path(__file__).resolve().parents[1] / "stacks" / "test_env" / "__main__.py"
EXAMPLE_CONFIG = PROGRAM.parent / "Pulumi.dev.yaml.example"

INSTANCE = "huaweicloud:Ecs/instance:Instance"
VOLUME = "huaweicloud:Evs/volume:Volume"
GUARDED_TYPES = {INSTANCE, VOLUME}

WEB_PATHS = ["/srv/www", "/etc/nginx/sites-enabled"]
DB_PATHS = ["/var/backups/mysql", "/etc/mysql"]
DB_DUMP = "mysqldump --all-databases --single-transaction > /var/backups/mysql/dump.sql"

STACK_CONFIG = {
    "huaweicloud:region": "cn-north-4",
    "teardown:profile": "/home/ops/.config/teardown/profile.toml",
    "teardown:config": "teardown.toml",
    "teardown:journal": ".teardown/journal.jsonl",
    "test-env:webPaths": json.dumps(WEB_PATHS),
    "test-env:dbPaths": json.dumps(DB_PATHS),
    "test-env:dbDump": DB_DUMP,
    "test-env:availabilityZone": "cn-north-4b",
    "test-env:imageId": "img-0123456789abcdef",
}


@dataclass(frozen=True)
class Registration:
    type: str
    name: str
    inputs: dict[str, Any]
    before_delete: tuple[str, ...]
    after_delete: tuple[str, ...]


class FakeCloud(pulumi_mocks.Mocks):
    """Plausible provider answers: an id per resource, and the computed outputs the program uses."""

    def __init__(self) -> None:
        self.count = 0

    def new_resource(
        self, args: pulumi_mocks.MockResourceArgs
    ) -> tuple[str | None, dict[Any, Any]]:
        self.count += 1
        outputs = dict(args.inputs)
        resource_id = f"{args.name}-id-{self.count:04d}"
        if args.typ == INSTANCE:
            resource_id = f"4f1c6a2e-0000-4000-8000-{self.count:012d}"
            outputs.update(
                accessIpV4=f"192.168.10.{10 + self.count}",
                status="ACTIVE",
                systemDiskId=f"vol-sys-{self.count:04d}",
            )
        elif args.typ == VOLUME:
            outputs.update(status="in-use")
        return resource_id, outputs

    def call(self, args: pulumi_mocks.MockCallArgs) -> tuple[dict[Any, Any], list[tuple[str, str]]]:
        return {}, []


class RecordingMonitor(pulumi_mocks.MockMonitor):
    """The mock monitor, plus a record of each registration's hook names (see module docstring)
    and of the hooks registered, refusing a name twice as the engine does."""

    def __init__(self, mocks: pulumi_mocks.Mocks) -> None:
        super().__init__(mocks)
        self.registrations: list[Registration] = []
        self.hooks: list[str] = []

    def RegisterResourceHook(self, request: Any) -> Any:
        if request.name in self.hooks:
            raise ValueError(f"resource hook already registered for name {request.name!r}")
        self.hooks.append(request.name)
        return super().RegisterResourceHook(request)  # type: ignore[no-untyped-call]

    def RegisterResource(self, request: Any) -> Any:
        response = super().RegisterResource(request)  # type: ignore[no-untyped-call]
        if request.type != "pulumi:pulumi:Stack":
            self.registrations.append(
                Registration(
                    type=request.type,
                    name=request.name,
                    inputs=pulumi.runtime.rpc.deserialize_properties(request.object),
                    before_delete=tuple(request.hooks.before_delete),
                    after_delete=tuple(request.hooks.after_delete),
                )
            )
        return response


@dataclass
class FactoryCall:
    kwargs: dict[str, Any]
    binding: pulumi.ResourceHookBinding | None = None


@dataclass(frozen=True)
class StackRun:
    registrations: list[Registration]
    hooks: list[str]
    factory_calls: list[FactoryCall]
    outputs: dict[str, Any]

    def one(self, type_: str, name: str) -> Registration:
        found = [r for r in self.registrations if r.type == type_ and r.name == name]
        assert len(found) == 1, f"{type_} {name}: {len(found)} registrations"
        return found[0]


def run_stack(monkeypatch: pytest.MonkeyPatch, config: dict[str, str]) -> StackRun:
    """Run the program once under the mocks with ``config`` as the stack config."""
    factory_calls: list[FactoryCall] = []
    real_factory = teardown_pulumi.teardown_hooks

    def recording_factory(**kwargs: Any) -> pulumi.ResourceHookBinding:
        call = FactoryCall(kwargs=kwargs)  # recorded before the factory can refuse the arguments
        factory_calls.append(call)
        call.binding = real_factory(**kwargs)
        return call.binding

    # The program imports the factory when it runs, so it picks up the wrapper.
    monkeypatch.setattr(teardown_pulumi, "teardown_hooks", recording_factory)
    # The factory caches hooks by name for the program run; a fresh cache keeps hooks made by an
    # earlier test (bound to its event loop) out of this run.
    monkeypatch.setattr(teardown_pulumi, "_HOOKS", weakref.WeakKeyDictionary())

    saved_config = dict(CONFIG.get())
    set_all_config(config)
    monitor = RecordingMonitor(FakeCloud())
    pulumi_settings.reset_options(project="teardown-examples", stack="dev")
    pulumi.runtime.set_mocks(
        monitor.mocks, project="teardown-examples", stack="dev", monitor=monitor
    )
    try:
        namespace: dict[str, Any] = {}

        def program() -> None:
            namespace.update(runpy.run_path(str(PROGRAM), run_name="__main__"))

        _sync_await(run_pulumi_func(program))
        outputs = _resolve_exports(namespace)
    finally:
        set_all_config(saved_config)
        pulumi_settings.reset_options()
    return StackRun(monitor.registrations, monitor.hooks, factory_calls, outputs)


@pytest.fixture
def stack_run(monkeypatch: pytest.MonkeyPatch) -> StackRun:
    return run_stack(monkeypatch, STACK_CONFIG)


def _resolve_exports(namespace: dict[str, Any]) -> dict[str, Any]:
    """The values the program exports, resolved from its resources (ids and IPs)."""
    outputs = {
        "web1Id": namespace["web"].id,
        "web1Ip": namespace["web"].access_ip_v4,
        "db1Id": namespace["db"].id,
        "db1Ip": namespace["db"].access_ip_v4,
        "dataDiskId": namespace["data_disk"].id,
    }
    return {key: _sync_await(value.future()) for key, value in outputs.items()}


def _is_plain(value: Any) -> bool:
    if isinstance(value, str):
        return True
    if isinstance(value, list | tuple):
        return all(isinstance(item, str) for item in value)
    return False


def test_every_server_and_the_data_disk_carry_teardown_delete_hooks(stack_run: StackRun) -> None:
    guarded = [r for r in stack_run.registrations if r.type in GUARDED_TYPES]
    assert sorted((r.type, r.name) for r in guarded) == [
        (INSTANCE, "db-1"),
        (INSTANCE, "web-1"),
        (VOLUME, "db-1-data"),
    ]
    for registration in guarded:
        assert len(registration.before_delete) == 1, registration
        assert len(registration.after_delete) == 1, registration
        for hook_name in (*registration.before_delete, *registration.after_delete):
            assert hook_name.startswith("teardown"), (registration.name, hook_name)
    # Each guarded resource has hooks of its own (the program gives each a name prefix).
    names = {r.name: (r.before_delete[0], r.after_delete[0]) for r in guarded}
    assert len({n for pair in names.values() for n in pair}) == 2 * len(names)


def test_every_bound_hook_is_registered_once(stack_run: StackRun) -> None:
    """The engine's checks: a bound hook name must have been registered by the program (else
    "resource hook not registered"), and a name is registered only once per run."""
    bound = {n for r in stack_run.registrations for n in (*r.before_delete, *r.after_delete)}
    assert bound
    assert bound <= set(stack_run.hooks)
    assert len(stack_run.hooks) == len(set(stack_run.hooks))


def test_network_resources_carry_no_hooks(stack_run: StackRun) -> None:
    others = [r for r in stack_run.registrations if r.type not in GUARDED_TYPES]
    assert {r.type for r in others} >= {
        "huaweicloud:Vpc/vpc:Vpc",
        "huaweicloud:Vpc/subnet:Subnet",
        "huaweicloud:Vpc/secgroup:Secgroup",
        "huaweicloud:Vpc/secgroupRule:SecgroupRule",
        "huaweicloud:Ecs/volumeAttach:VolumeAttach",
    }
    assert all(not r.before_delete and not r.after_delete for r in others)


def test_hook_names_in_requests_are_the_factory_bindings(stack_run: StackRun) -> None:
    bound: dict[str, str] = {}
    for call in stack_run.factory_calls:
        assert call.binding is not None
        (before,) = call.binding.before_delete or []
        (after,) = call.binding.after_delete or []
        assert isinstance(before, pulumi.ResourceHook)
        assert isinstance(after, pulumi.ResourceHook)
        bound[before.name] = after.name
    for registration in stack_run.registrations:
        if registration.type in GUARDED_TYPES:
            assert bound[registration.before_delete[0]] == registration.after_delete[0]


def test_db_server_is_prepaid_monthly_with_auto_renew(stack_run: StackRun) -> None:
    db = stack_run.one(INSTANCE, "db-1")
    assert db.inputs["chargingMode"] == "prePaid"
    assert db.inputs["periodUnit"] == "month"
    assert db.inputs["period"] == 1
    assert db.inputs["autoRenew"] == "true"
    assert db.inputs["tags"]["role"] == "db"

    web = stack_run.one(INSTANCE, "web-1")
    assert web.inputs["chargingMode"] == "postPaid"
    assert web.inputs["tags"]["env"] == "test"
    assert web.inputs["tags"]["role"] == "web"
    for server in (db, web):
        assert server.inputs["imageId"] == "img-0123456789abcdef"
        assert server.inputs["availabilityZone"] == "cn-north-4b"


def test_data_disk_is_attached_to_the_db_server(stack_run: StackRun) -> None:
    attach = stack_run.one("huaweicloud:Ecs/volumeAttach:VolumeAttach", "db-1-data-attach")
    assert attach.inputs["instanceId"] == stack_run.outputs["db1Id"]
    assert attach.inputs["volumeId"] == stack_run.outputs["dataDiskId"]


def test_pull_settings_from_config_reach_the_hook_factory(stack_run: StackRun) -> None:
    by_prefix = {call.kwargs.get("name"): call.kwargs for call in stack_run.factory_calls}
    assert set(by_prefix) == {"teardown-web-1", "teardown-db-1", "teardown-db-1-data"}
    assert list(by_prefix["teardown-web-1"]["pull_paths"]) == WEB_PATHS
    assert list(by_prefix["teardown-db-1"]["pull_paths"]) == DB_PATHS
    assert list(by_prefix["teardown-db-1"]["before"]) == [DB_DUMP]
    # The disk's backup is a CBR backup made by the engine: nothing to pull.
    assert not by_prefix["teardown-db-1-data"].get("pull_paths")
    assert not by_prefix["teardown-db-1-data"].get("before")


def test_no_hook_reads_another_resources_outputs(stack_run: StackRun) -> None:
    """pulumi/pulumi#23921: every factory argument is a plain value, never an Output."""
    assert stack_run.factory_calls
    for call in stack_run.factory_calls:
        for key, value in call.kwargs.items():
            assert not isinstance(value, pulumi.Output), key
            assert _is_plain(value), (key, value)


def test_exports_ids_and_ips(stack_run: StackRun) -> None:
    outputs = stack_run.outputs
    assert outputs["web1Ip"].startswith("192.168.10.")
    assert outputs["db1Ip"].startswith("192.168.10.")
    assert outputs["web1Id"] != outputs["db1Id"]


def test_defaults_apply_without_stack_config(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without ``test-env:*`` config the program falls back to its documented defaults."""
    run = run_stack(monkeypatch, {"huaweicloud:region": "cn-north-4"})
    by_prefix = {call.kwargs["name"]: call.kwargs for call in run.factory_calls}
    assert list(by_prefix["teardown-web-1"]["pull_paths"]) == ["/var/www", "/etc/nginx"]
    assert list(by_prefix["teardown-db-1"]["pull_paths"]) == ["/var/backups/mysql"]
    (dump,) = by_prefix["teardown-db-1"]["before"]
    assert "mysqldump" in dump
    web = run.one(INSTANCE, "web-1")
    assert web.inputs["imageName"] == "Ubuntu 22.04 server 64bit"
    assert "imageId" not in web.inputs
    rule = run.one("huaweicloud:Vpc/secgroupRule:SecgroupRule", "ssh-ingress")
    assert rule.inputs["remoteIpPrefix"] == "192.168.0.0/16"  # SSH only from inside the VPC


def test_config_of_the_wrong_shape_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    config = {**STACK_CONFIG, "test-env:webPaths": json.dumps("/var/www")}
    with pytest.raises(pulumi.ConfigTypeError, match="webPaths"):
        run_stack(monkeypatch, config)


def test_the_example_stack_config_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    """``Pulumi.dev.yaml.example`` fits the program (structured values reach it as JSON)."""
    document = yaml.safe_load(EXAMPLE_CONFIG.read_text(encoding="utf-8"))
    config = {
        key: json.dumps(value) if isinstance(value, list | dict) else str(value)
        for key, value in document["config"].items()
    }
    assert {"teardown:profile", "teardown:config", "teardown:journal"} <= set(config)
    run = run_stack(monkeypatch, config)
    by_prefix = {call.kwargs["name"]: call.kwargs for call in run.factory_calls}
    assert list(by_prefix["teardown-web-1"]["pull_paths"]) == ["/var/www", "/etc/nginx"]
    assert "mysqldump" in by_prefix["teardown-db-1"]["before"][0]
    assert run.one(VOLUME, "db-1-data").inputs["size"] == 100


def test_the_example_stack_passes_the_policy_pack_and_its_tags_name_the_bound_hooks(
    stack_run: StackRun,
) -> None:
    """The policy pack (stacks/policy) cannot see hooks, only the tag that declares them: in the
    example, each declaration names the before-delete hook really bound to that resource."""
    from teardown.pulumi import HOOK_TAG
    from tests.test_policy_pack import args_for, violations

    checked = 0
    for reg in stack_run.registrations:
        tags = reg.inputs.get("tags") or {}
        assert violations(args_for(reg.type, reg.name, tags=tags)) == [], reg.name
        if HOOK_TAG in tags:
            assert reg.before_delete == (tags[HOOK_TAG],), reg.name
            checked += 1
    assert checked == 3  # web-1, db-1 and the data disk
