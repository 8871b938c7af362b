"""The ``teardown-guard`` policy pack (stacks/policy): pulumi-policy, Python.

Three levels, from the plain function to the pack as the engine runs it:

- ``check_resource`` / ``validate`` called directly with ``ResourceValidationArgs`` built as the
  SDK builds them (pulumi-policy ships no test helpers for Python; its own tests do the same);
- the SDK's analyzer servicer (``_PolicyAnalyzerServicer``, as pulumi-policy's own tests use it)
  fed protobuf ``AnalyzeRequest``/``ConfigureAnalyzerRequest`` messages: the enforcement level
  and the config reach the policy the way the engine sends them, and ``protect`` comes from
  ``AnalyzerResourceOptions``;
- ``stacks/policy/__main__.py`` started as the Python language host starts a policy pack
  (``python -u -m pulumi.policy <engine> <pack dir>``, working directory the pack), then called
  over gRPC;
- with the pulumi CLI on PATH only: ``pulumi preview --policy-pack stacks/policy``.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import weakref
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

import grpc  # type: ignore[import-untyped]
import pulumi
import pulumi.resource_hooks
import pytest
from google.protobuf import empty_pb2, json_format, struct_pb2  # type: ignore[import-untyped]
from pulumi.runtime.proto import analyzer_pb2, analyzer_pb2_grpc
from pulumi_policy import (
    EnforcementLevel,
    PolicyCustomTimeouts,
    PolicyResourceOptions,
    ResourceValidationArgs,
)
from pulumi_policy.policy import _PolicyAnalyzerServicer
from pulumi_policy.proxy import UNKNOWN_OBJECT_VALUE, UnknownValueError, unknown_checking_proxy

import teardown.pulumi as teardown_pulumi
from teardown.adapters.huawei.catalog import SERVER_TYPE, TYPE_KINDS, VOLUME_TYPE
from teardown.core.model import DATA_KINDS

PACK_DIR = Path(__file__).resolve().parents[1] / "stacks" / "policy"
RDS = "huaweicloud:Rds/instance:Instance"
VPC = "huaweicloud:Vpc/vpc:Vpc"
HOOK_NAME = "teardown-before-delete-0123456789"


def _load_guard() -> ModuleType:
    spec = importlib.util.spec_from_file_location("teardown_guard", PACK_DIR / "teardown_guard.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve their annotations through sys.modules
    spec.loader.exec_module(module)
    return module


guard = _load_guard()


# --- the plain function ---------------------------------------------------------------------


def args_for(
    type_: str,
    name: str = "web-1",
    *,
    tags: Mapping[str, Any] | None = None,
    protect: bool = False,
    config: Mapping[str, Any] | None = None,
) -> ResourceValidationArgs:
    """``ResourceValidationArgs`` as the SDK's ``Analyze`` builds them (inputs behind its
    unknown-checking proxy, options from ``_get_resource_options``)."""
    props: dict[str, Any] = {"name": name}
    if tags is not None:
        props["tags"] = dict(tags)
    opts = PolicyResourceOptions(protect, [], None, [], PolicyCustomTimeouts(0, 0, 0), [], None)
    urn = f"urn:pulumi:dev::teardown-examples::{type_}::{name}"
    return ResourceValidationArgs(
        type_, unknown_checking_proxy(props), urn, name, opts, None, config
    )


def violations(args: ResourceValidationArgs) -> list[str]:
    found: list[str] = []

    def report_violation(message: str, urn: str | None = None) -> None:
        found.append(message)

    guard.validate(args, report_violation)
    return found


def test_the_hooked_types_are_the_data_kinds_of_teardowns_catalog() -> None:
    expected = {type_ for type_, kind in TYPE_KINDS.items() if kind in DATA_KINDS}
    assert expected == guard.HOOKED_DATA_TYPES
    assert {SERVER_TYPE, VOLUME_TYPE} <= guard.HOOKED_DATA_TYPES


@pytest.mark.parametrize("type_", [SERVER_TYPE, VOLUME_TYPE])
def test_a_data_resource_without_a_guard_is_flagged_with_what_to_add(type_: str) -> None:
    (message,) = violations(args_for(type_, "db-1", tags={"env": "test"}))
    assert f"{type_} 'db-1' holds data and is not guarded" in message
    assert "opts=pulumi.ResourceOptions(hooks=teardown_hooks(...))" in message
    assert "'teardown:before-delete'" in message
    assert "a policy cannot see resource hooks" in message
    assert "protect=True" in message
    assert "'teardown:opt-out'" in message


def test_an_ecs_instance_without_tags_at_all_is_flagged() -> None:
    assert len(violations(args_for(SERVER_TYPE))) == 1


@pytest.fixture
def offline_hooks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Real ``pulumi.ResourceHook`` objects from the real ``teardown_hooks``, without an engine to
    register them with, and without leaking into teardown.pulumi's per-run hook table."""
    monkeypatch.setattr(pulumi.resource_hooks, "register_resource_hook", lambda hook: None)
    monkeypatch.setattr(teardown_pulumi, "_HOOKS", weakref.WeakKeyDictionary())


@pytest.mark.usefixtures("offline_hooks")
@pytest.mark.parametrize("name", ["teardown", "teardown-web-1"])
def test_an_ecs_instance_declaring_the_hook_teardown_hooks_bound_passes(name: str) -> None:
    binding = teardown_pulumi.teardown_hooks(pull_paths=["/var/www"], name=name)
    assert binding.before_delete is not None
    hook_name = binding.before_delete[0].name
    assert hook_name.startswith(f"{name}-before-delete-")
    tags = {"env": "test", **teardown_pulumi.hook_tag(binding)}
    assert tags["teardown:before-delete"] == hook_name
    assert violations(args_for(SERVER_TYPE, tags=tags)) == []
    assert violations(args_for(VOLUME_TYPE, tags=tags)) == []


@pytest.mark.parametrize(
    "declared",
    [
        "",
        "yes",
        "teardown-after-delete-0123456789",
        "teardown-before-delete-01234",
        "before-delete",
    ],
)
def test_a_declaration_that_names_no_before_delete_hook_is_flagged(declared: str) -> None:
    (message,) = violations(args_for(SERVER_TYPE, tags={"teardown:before-delete": declared}))
    assert f"'teardown:before-delete' = {declared!r} does not name a teardown before-delete" in (
        message
    )


def test_a_protected_resource_passes() -> None:
    assert violations(args_for(SERVER_TYPE, protect=True)) == []
    assert violations(args_for(VOLUME_TYPE, protect=True)) == []


def test_an_opt_out_tag_with_a_reason_passes() -> None:
    tags = {"teardown:opt-out": "ci-scratch-disk"}
    assert violations(args_for(VOLUME_TYPE, tags=tags)) == []


@pytest.mark.parametrize("reason", ["", "   "])
def test_an_opt_out_tag_without_a_reason_is_flagged(reason: str) -> None:
    (message,) = violations(args_for(SERVER_TYPE, tags={"teardown:opt-out": reason}))
    assert "its tag 'teardown:opt-out' gives no reason" in message


def test_a_type_that_holds_no_data_passes_unguarded() -> None:
    assert violations(args_for(VPC, "vpc")) == []
    assert violations(args_for("huaweicloud:Vpc/eip:Eip", "eip")) == []
    assert violations(args_for(RDS, "db")) == []  # not a data type until the config says so


def test_extra_data_types_from_the_config_need_protect_or_an_opt_out() -> None:
    config = {"extraDataTypes": [RDS]}
    (message,) = violations(args_for(RDS, "orders", config=config))
    assert f"{RDS} 'orders' holds data and is not guarded" in message
    assert "teardown's before-delete hook does not back up this type" in message
    assert "protect=True" in message
    # teardown's hook returns at once for types outside its catalog, so a declaration is no guard
    declared = violations(
        args_for(RDS, "orders", tags={"teardown:before-delete": HOOK_NAME}, config=config)
    )
    assert len(declared) == 1
    assert violations(args_for(RDS, "orders", protect=True, config=config)) == []
    opt_out = {"teardown:opt-out": "restored-nightly"}
    assert violations(args_for(RDS, "orders", tags=opt_out, config=config)) == []
    assert violations(args_for(SERVER_TYPE, tags=opt_out, config=config)) == []


def test_types_mapped_in_teardown_toml_are_guarded_by_a_hook_declaration() -> None:
    """``hookedTypes``: types teardown.toml maps to a data kind ([types] kinds), which the hook
    backs up: a declaration guards them; without a guard they are flagged with the hook fix."""
    dynamic = "pulumi-python:dynamic/sandbox:Server"
    config = {"hookedTypes": [dynamic]}
    declared = {"teardown:before-delete": HOOK_NAME}
    assert violations(args_for(dynamic, tags=declared, config=config)) == []
    (message,) = violations(args_for(dynamic, tags={}, config=config))
    assert "teardown_hooks(" in message
    assert violations(args_for(dynamic, tags={})) == []  # not a data type unless configured


def test_tag_keys_come_from_the_config() -> None:
    config = {"optOutTag": "teardown_opt-out", "hookTag": "teardown_before-delete"}
    assert violations(args_for(SERVER_TYPE, tags={"teardown_opt-out": "x"}, config=config)) == []
    assert len(violations(args_for(SERVER_TYPE, tags={"teardown:opt-out": "x"}, config=config)))
    renamed = {"teardown_before-delete": HOOK_NAME}
    assert violations(args_for(SERVER_TYPE, tags=renamed, config=config)) == []


def test_an_empty_hook_tag_accepts_no_declaration() -> None:
    config = {"hookTag": ""}
    tags = {"teardown:before-delete": HOOK_NAME}
    (message,) = violations(args_for(SERVER_TYPE, tags=tags, config=config))
    assert "accepts no declaration" in message
    assert "opts=pulumi.ResourceOptions(hooks=teardown_hooks(...))" in message
    assert violations(args_for(SERVER_TYPE, protect=True, config=config)) == []


@pytest.mark.parametrize(
    "config",
    [{"extraDataTypes": "huaweicloud:Rds/instance:Instance"}, {"extraDataTypes": ["rds"]},
     {"optOutTag": ""}, {"hookTag": 3}],
)  # fmt: skip
def test_a_malformed_config_is_an_error(config: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="teardown-data-resources-guarded"):
        violations(args_for(SERVER_TYPE, config=config))


def test_unknown_tags_during_preview_are_left_to_the_sdk() -> None:
    """The SDK turns UnknownValueError into an advisory "can't run policy during preview"."""
    args = args_for(SERVER_TYPE)
    args.props = unknown_checking_proxy({"tags": UNKNOWN_OBJECT_VALUE})
    with pytest.raises(UnknownValueError):
        violations(args)


# --- the SDK's analyzer, fed what the engine sends ------------------------------------------


def _struct(values: Mapping[str, Any]) -> struct_pb2.Struct:
    struct = struct_pb2.Struct()
    struct.update(dict(values))
    return struct


def analyze_request(
    type_: str, name: str, tags: Mapping[str, str] | None = None, *, protect: bool = False
) -> analyzer_pb2.AnalyzeRequest:
    props: dict[str, Any] = {"name": name}
    if tags is not None:
        props["tags"] = dict(tags)
    return analyzer_pb2.AnalyzeRequest(
        type=type_,
        properties=_struct(props),
        urn=f"urn:pulumi:dev::teardown-examples::{type_}::{name}",
        name=name,
        options=analyzer_pb2.AnalyzerResourceOptions(protect=protect),
    )


def configure_request(
    level: analyzer_pb2.EnforcementLevel.ValueType, properties: Mapping[str, Any] | None = None
) -> analyzer_pb2.ConfigureAnalyzerRequest:
    config = analyzer_pb2.PolicyConfig(enforcementLevel=level, properties=_struct(properties or {}))
    return analyzer_pb2.ConfigureAnalyzerRequest(policyConfig={guard.POLICY_NAME: config})


Analyze = Callable[[analyzer_pb2.AnalyzeRequest], analyzer_pb2.AnalyzeResponse]
Configure = Callable[[analyzer_pb2.ConfigureAnalyzerRequest], object]


@pytest.fixture
def servicer() -> tuple[Analyze, Configure]:
    pack = _PolicyAnalyzerServicer(
        guard.PACK_NAME, "0.1.0", [guard.make_policy()], guard.DEFAULT_ENFORCEMENT
    )
    analyze: Callable[[Any, Any], analyzer_pb2.AnalyzeResponse] = pack.Analyze
    configure: Callable[[Any, Any], object] = pack.Configure
    return (lambda request: analyze(request, None)), (lambda request: configure(request, None))


def test_the_pack_is_advisory_unless_configured(servicer: tuple[Analyze, Configure]) -> None:
    analyze, _ = servicer
    assert guard.DEFAULT_ENFORCEMENT is EnforcementLevel.ADVISORY
    (diagnostic,) = analyze(analyze_request(SERVER_TYPE, "web-1")).diagnostics
    assert diagnostic.enforcementLevel == analyzer_pb2.ADVISORY
    assert diagnostic.policyName == guard.POLICY_NAME
    assert diagnostic.policyPackName == "teardown-guard"
    assert "opts=pulumi.ResourceOptions(hooks=teardown_hooks(...))" in diagnostic.message


@pytest.mark.parametrize(
    ("level", "expected"),
    [(analyzer_pb2.MANDATORY, [analyzer_pb2.MANDATORY]),
     (analyzer_pb2.ADVISORY, [analyzer_pb2.ADVISORY]),
     (analyzer_pb2.DISABLED, [])],
)  # fmt: skip
def test_the_configured_enforcement_level_is_the_violations_level(
    servicer: tuple[Analyze, Configure],
    level: analyzer_pb2.EnforcementLevel.ValueType,
    expected: list[int],
) -> None:
    analyze, configure = servicer
    configure(configure_request(level))
    response = analyze(analyze_request(VOLUME_TYPE, "db-1-data", {"env": "test"}))
    assert [d.enforcementLevel for d in response.diagnostics] == expected


def test_guarded_resources_pass_through_the_analyzer(servicer: tuple[Analyze, Configure]) -> None:
    analyze, configure = servicer
    configure(configure_request(analyzer_pb2.MANDATORY))
    passing = [
        analyze_request(SERVER_TYPE, "web-1", protect=True),  # AnalyzerResourceOptions.protect
        analyze_request(SERVER_TYPE, "web-2", {"teardown:before-delete": HOOK_NAME}),
        analyze_request(VOLUME_TYPE, "scratch", {"teardown:opt-out": "ci-scratch"}),
        analyze_request(VPC, "vpc"),
    ]
    for request in passing:
        assert list(analyze(request).diagnostics) == [], request.name


def test_the_example_config_makes_the_policy_mandatory_and_adds_rds(
    servicer: tuple[Analyze, Configure],
) -> None:
    example = json.loads((PACK_DIR / "policy-config.example.json").read_text())
    assert set(example) == {guard.POLICY_NAME}
    settings = dict(example[guard.POLICY_NAME])
    assert settings.pop("enforcementLevel") == "mandatory"
    assert set(settings) == set(guard.CONFIG_SCHEMA.properties)
    assert guard.GuardConfig.from_policy_config(settings).extra_data_types == {RDS}
    analyze, configure = servicer
    configure(configure_request(analyzer_pb2.MANDATORY, settings))
    (diagnostic,) = analyze(analyze_request(RDS, "orders")).diagnostics
    assert diagnostic.enforcementLevel == analyzer_pb2.MANDATORY


def test_config_properties_reach_the_policy(servicer: tuple[Analyze, Configure]) -> None:
    analyze, configure = servicer
    rds = analyze_request(RDS, "orders")
    assert list(analyze(rds).diagnostics) == []
    configure(configure_request(analyzer_pb2.MANDATORY, {"extraDataTypes": [RDS]}))
    (diagnostic,) = analyze(rds).diagnostics
    assert diagnostic.enforcementLevel == analyzer_pb2.MANDATORY
    assert "does not back up this type" in diagnostic.message


# --- the pack's own process, as the language host starts it ---------------------------------


@pytest.fixture
def pack_process() -> Iterator[analyzer_pb2_grpc.AnalyzerStub]:
    """``python -u -m pulumi.policy <engine> <pack dir>`` in the pack's directory, like
    pulumi-language-python's RunPlugin for an analyzer; the pack prints its gRPC port."""
    process = subprocess.Popen(
        [sys.executable, "-u", "-m", "pulumi.policy", "127.0.0.1:1", str(PACK_DIR)],
        cwd=PACK_DIR,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None and process.stderr is not None
        port = process.stdout.readline().strip()
        if not port.isdigit():
            process.kill()
            pytest.fail(f"the pack did not start: {port!r} {process.stderr.read()}")
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        try:
            grpc.channel_ready_future(channel).result(timeout=30)
            yield analyzer_pb2_grpc.AnalyzerStub(channel)
        finally:
            channel.close()
    finally:
        process.kill()
        process.wait(timeout=30)
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()


def test_the_pack_serves_its_policy_over_grpc(
    pack_process: analyzer_pb2_grpc.AnalyzerStub,
) -> None:
    stub = pack_process
    info = stub.GetAnalyzerInfo(empty_pb2.Empty(), timeout=30)
    assert info.name == "teardown-guard"
    (policy,) = info.policies
    assert policy.name == guard.POLICY_NAME
    assert policy.enforcementLevel == analyzer_pb2.ADVISORY
    schema = json_format.MessageToDict(policy.configSchema.properties)
    assert set(schema) == {"extraDataTypes", "hookedTypes", "optOutTag", "hookTag"}
    assert schema["optOutTag"]["default"] == "teardown:opt-out"
    assert schema["hookTag"]["default"] == "teardown:before-delete"

    stub.Configure(configure_request(analyzer_pb2.MANDATORY), timeout=30)
    (diagnostic,) = stub.Analyze(analyze_request(SERVER_TYPE, "web-1"), timeout=30).diagnostics
    assert diagnostic.enforcementLevel == analyzer_pb2.MANDATORY
    assert "opts=pulumi.ResourceOptions(hooks=teardown_hooks(...))" in diagnostic.message
    guarded = analyze_request(SERVER_TYPE, "web-1", protect=True)
    assert list(stub.Analyze(guarded, timeout=30).diagnostics) == []


# --- the real engine ------------------------------------------------------------------------


# The engine running the pack on a real preview: tests/test_pulumi_engine.py
# (test_the_policy_pack_run_by_the_engine_rejects_an_unguarded_server).
