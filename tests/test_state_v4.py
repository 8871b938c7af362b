"""Pulumi state as the engine writes it: version 4 with ``features``, ``resourceHooks``, old
copies pending deletion (``delete: true``), ``pendingReplacement`` entries, and ``[types] kinds``
(docs/pulumi-state.md).

``fixtures/export-v4-hooks.json`` and ``fixtures/checkpoint-v4-hooks.json`` were written by the
pulumi CLI v3.274.1 (see docs/pulumi-state.md for how): a component and two dynamic-provider
resources bound to delete hooks named like teardown's, after a replace whose delete failed (a
``delete: true`` copy of ``web-1``) and a delete-before-replace whose create failed (``cache``,
``pendingReplacement``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from teardown.adapters.huawei.catalog import CATALOG as HUAWEI
from teardown.adapters.huawei.catalog import SERVER_TYPE
from teardown.adapters.pulumi.state import (
    KNOWN_FEATURES,
    KindsOverlay,
    StackState,
    engine_urn,
    has_teardown_hooks,
    hook_names,
    parse_state,
    pending_delete_key,
    read_state,
    resource_from_outputs,
    with_kinds,
)
from teardown.app import targets
from teardown.app.config import parse_config
from teardown.cli.main import cli
from teardown.core.config import Config, TypesConfig
from teardown.core.errors import ConfigError, StateError
from teardown.core.model import BillingMode, DestroyAction, Kind, StepKind
from teardown.core.planner import make_plan

FIXTURES = Path(__file__).resolve().parent / "fixtures"
EXPORT = FIXTURES / "export-v4-hooks.json"
CHECKPOINT = FIXTURES / "checkpoint-v4-hooks.json"

P = "urn:pulumi:dev::hooks-demo::"
DYNAMIC = "pulumi-python:dynamic:Resource"
WEB = P + DYNAMIC + "::web-1"
WEB_OLD = pending_delete_key(WEB, "vm-web-1-0.0")
CACHE = P + DYNAMIC + "::cache"
ORDERS_DB = P + "mycorp:index:Database::orders-db"
STACK_URN = P + "pulumi:pulumi:Stack::hooks-demo-dev"
PROVIDER_URN = P + "pulumi:providers:pulumi-python::default"
TEARDOWN_HOOKS = (
    ("AfterDelete", ("teardown-after-delete-0123456789",)),
    ("BeforeDelete", ("teardown-before-delete-0123456789",)),
)
TEARDOWN_HOOKS_JSON = {t: list(names) for t, names in TEARDOWN_HOOKS}
AS_SERVER = {DYNAMIC: Kind.SERVER}

S = "urn:pulumi:dev::shop::"
HW_SERVER = S + SERVER_TYPE + "::web"


def server(name: str = "web", cloud_id: str = "id-web", **extra: Any) -> dict[str, Any]:
    res: dict[str, Any] = {
        "urn": f"{S}{SERVER_TYPE}::{name}",
        "custom": True,
        "type": SERVER_TYPE,
        "id": cloud_id,
        "outputs": {"id": cloud_id, "name": name},
    }
    res.update(extra)
    return res


def v4(*resources: dict[str, Any], features: object = ("hooks",)) -> dict[str, Any]:
    doc: dict[str, Any] = {"version": 4, "deployment": {"resources": list(resources)}}
    if features is not None:
        doc["features"] = list(features) if isinstance(features, tuple) else features
    return doc


def parse(doc: object, catalog: Any = HUAWEI) -> StackState:
    return parse_state(json.dumps(doc), "state.json", catalog)


def problem(doc: object) -> str:
    with pytest.raises(StateError) as caught:
        parse(doc)
    assert caught.value.source == "state.json"
    assert "\n" not in str(caught.value)
    return caught.value.problem


# -- the engine's own output ----------------------------------------------------------------


@pytest.mark.parametrize("path", [EXPORT, CHECKPOINT], ids=["export", "checkpoint"])
def test_the_fixtures_are_version_4_as_the_engine_wrote_them(path: Path) -> None:
    doc = json.loads(path.read_text())
    body = "deployment" if path == EXPORT else "checkpoint"
    assert list(doc) == ["version", "features", body]  # features sits next to version
    assert (doc["version"], doc["features"]) == (4, ["hooks"])
    snapshot = doc["deployment"] if path == EXPORT else doc["checkpoint"]["latest"]
    assert snapshot["manifest"]["version"] == "v3.274.1"


@pytest.mark.parametrize("path", [EXPORT, CHECKPOINT], ids=["export", "checkpoint"])
def test_a_real_version_4_state_is_read(path: Path) -> None:
    state = read_state(path, with_kinds(None, AS_SERVER))
    assert (state.stack, state.project, state.features) == ("dev", "hooks-demo", ("hooks",))
    assert [(r.urn, r.cloud_id, r.pending_delete) for r in state.resources] == [
        (WEB, "vm-web-1-1.0", False),
        (WEB_OLD, "vm-web-1-0.0", True),
    ]
    assert all(r.kind is Kind.SERVER and r.hooks == TEARDOWN_HOOKS for r in state.resources)
    assert state.skipped == (STACK_URN, ORDERS_DB, PROVIDER_URN, CACHE)
    reasons = dict(state.skip_reasons)
    assert "component" in reasons[ORDERS_DB]
    assert "pendingReplacement" in reasons[CACHE] and "already deleted" in reasons[CACHE]


def test_the_encrypted_values_of_the_real_state_stay_unread() -> None:
    doc = json.loads(EXPORT.read_text())
    ciphertexts = [
        value["ciphertext"]
        for r in doc["deployment"]["resources"]
        for props in (r.get("inputs") or {}, r.get("outputs") or {})
        for value in props.values()
        if isinstance(value, dict) and "ciphertext" in value
    ]
    assert len(ciphertexts) == 6
    shown = repr(read_state(EXPORT, with_kinds(None, AS_SERVER)))
    assert not any(c in shown or c[3:40] in shown for c in ciphertexts)


def test_the_hooks_of_a_resource_are_kept_as_the_engine_spells_them() -> None:
    web = read_state(EXPORT).resources[0]
    assert hook_names(web, "BeforeDelete") == ("teardown-before-delete-0123456789",)
    assert hook_names(web, "AfterDelete") == ("teardown-after-delete-0123456789",)
    assert hook_names(web, "before-delete") == ()
    assert has_teardown_hooks(web)
    assert not has_teardown_hooks(web, prefixes=("ours-",))


def test_plan_of_the_real_state_backs_up_the_live_resource_and_its_old_copy() -> None:
    state = read_state(EXPORT, with_kinds(None, AS_SERVER))
    plan = make_plan(state.resources, Config(), "dev", skipped=state.skipped)
    assert [rp.resource.urn for rp in plan.resources] == [WEB, WEB_OLD]
    for rp in plan.resources:
        assert [s.kind for s in rp.backups] == [StepKind.SNAPSHOT] and not rp.blockers
        assert rp.destroy is not None and rp.destroy.action is DestroyAction.DELETE
    assert CACHE in plan.skipped  # already gone: neither backed up nor destroyed


# -- version and features -------------------------------------------------------------------


@pytest.mark.parametrize("feature", sorted(KNOWN_FEATURES))
def test_every_feature_the_engine_knows_is_accepted(feature: str) -> None:
    state = parse(v4(server(), features=("hooks", feature)))
    assert [r.urn for r in state.resources] == [HW_SERVER]
    checkpoint = {"version": 4, "features": [feature], "checkpoint": {"stack": "o/shop/dev"}}
    assert parse(checkpoint).features == (feature,)


def test_the_known_features_are_the_engines() -> None:
    # supportedFeatures in pkg/resource/stack/deployment.go (pulumi v3.274.1 accepts each).
    assert {
        "hooks",
        "taint",
        "views",
        "refreshBeforeUpdate",
        "replaceWith",
        "snippets-prototype",
        "extensionParameterization",
        "byteString",
    } == KNOWN_FEATURES


def test_version_4_without_features_is_read() -> None:
    assert parse(v4(server(), features=None)).features == ()


def test_an_unknown_feature_is_refused_naming_it() -> None:
    text = problem(v4(server(), features=("hooks", "teleport", "Hooks")))
    assert 'teardown does not know: "teleport", "Hooks"' in text
    assert "known: byteString, extensionParameterization, hooks" in text


def test_many_unknown_features_are_counted_not_all_listed() -> None:
    text = problem(v4(features=tuple(f"f{i}" for i in range(8))))
    assert '"f4" and 3 more' in text and '"f5"' not in text


def test_features_on_version_3_are_refused() -> None:
    doc = {"version": 3, "features": ["hooks"], "deployment": {"resources": [server()]}}
    assert "'features' on a version 3 document" in problem(doc)


@pytest.mark.parametrize("features", ["hooks", ["hooks", 4], {"hooks": True}])
def test_features_of_the_wrong_shape_are_refused(features: object) -> None:
    assert "expected a list of feature names" in problem(v4(features=features))


@pytest.mark.parametrize("version", [5, 2])
def test_other_versions_are_still_refused(version: int) -> None:
    doc = {"version": version, "deployment": {}}
    assert f"unsupported version {version} (supported versions: 3, 4)" in problem(doc)


def test_cli_exits_2_naming_the_file_and_the_unknown_feature(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    state = tmp_path / "stack.json"
    state.write_text(json.dumps(v4(server(), features=("hooks", "teleport"))))
    result = CliRunner().invoke(cli, ["plan", "--state", str(state)])
    assert result.exit_code == 2
    assert result.stdout == ""
    (line,) = result.stderr.strip().splitlines()
    assert str(state) in line and '"teleport"' in line
    assert not (tmp_path / ".teardown").exists()


# -- resourceHooks ----------------------------------------------------------------------------


def test_unknown_hook_types_are_tolerated_and_empty_lists_dropped() -> None:
    hooks = {"BeforeDelete": ["a"], "OnError": ["b"], "BeforeTeleport": ["c"], "AfterDelete": []}
    (r,) = parse(v4(server(resourceHooks=hooks))).resources
    assert r.hooks == (("BeforeDelete", ("a",)), ("BeforeTeleport", ("c",)), ("OnError", ("b",)))
    assert not has_teardown_hooks(r)


@pytest.mark.parametrize(
    ("hooks", "fragment"),
    [
        (["teardown-before-delete-x"], "'resourceHooks' is a list, expected an object"),
        ({"BeforeDelete": "x"}, "'resourceHooks.BeforeDelete' is a string, expected a list"),
        ({"AfterDelete": ["x", 7]}, "'resourceHooks.AfterDelete[1]' is a number"),
    ],
)
def test_hooks_of_the_wrong_shape_are_refused_naming_the_resource(
    hooks: object, fragment: str
) -> None:
    text = problem(v4(server(resourceHooks=hooks)))
    assert f"deployment.resources[0] ({HW_SERVER}): {fragment}" in text


def test_hooks_of_a_skipped_resource_are_checked_too() -> None:
    component = {"urn": S + "shop:app:Tier::t", "type": "shop:app:Tier", "custom": False}
    assert "'resourceHooks' is a string" in problem(v4({**component, "resourceHooks": "x"}))


# -- pendingReplacement and delete: true ---------------------------------------------------------


def test_pending_replacement_is_skipped_with_its_reason() -> None:
    state = parse(v4(server(pendingReplacement=True), features=None))
    assert state.resources == () and state.skipped == (HW_SERVER,)
    ((urn, why),) = state.skip_reasons
    assert urn == HW_SERVER and "already deleted it in the cloud" in why


def test_live_resource_and_its_old_copy_are_two_plan_entries_each_backed_up() -> None:
    old = server(cloud_id="id-old", delete=True, resourceHooks=TEARDOWN_HOOKS_JSON)
    state = parse(v4(server(), old))
    live, copy = state.resources
    assert (live.urn, live.cloud_id, live.pending_delete) == (HW_SERVER, "id-web", False)
    assert (copy.urn, copy.cloud_id, copy.pending_delete) == (
        f"{HW_SERVER}#pending-delete:id-old",
        "id-old",
        True,
    )
    assert engine_urn(live) == engine_urn(copy) == HW_SERVER
    plan = make_plan(state.resources, Config(), "dev")
    assert [rp.resource.urn for rp in plan.resources] == [live.urn, copy.urn]
    backups = [rp.backups for rp in plan.resources]
    assert all(b and b[0].kind is StepKind.SNAPSHOT for b in backups)
    assert backups[0][0].id != backups[1][0].id
    assert len({s.id for rp in plan.resources for s in rp.steps}) == sum(
        len(rp.steps) for rp in plan.resources
    )


def test_under_a_pulumi_destroy_the_live_resource_carries_its_old_copy() -> None:
    """``pulumi destroy --target URN`` deletes the URN's old copies too: the live resource's
    destroy waits for the copy's backups, and the copy's destroy is the live one's. Through the
    cloud API each is destroyed by its own id."""
    from teardown.core.config import DestroyConfig, DestroyMethod

    old = server(cloud_id="id-old", delete=True, resourceHooks=TEARDOWN_HOOKS_JSON)
    state = parse(v4(server(), old))
    live, copy = state.resources
    pulumi = Config(destroy=DestroyConfig(method=DestroyMethod.PULUMI))
    by_urn = {rp.resource.urn: rp for rp in make_plan(state.resources, pulumi, "dev").resources}
    live_rp, copy_rp = by_urn[live.urn], by_urn[copy.urn]
    assert live_rp.carries == (copy.urn,)
    assert live_rp.destroy is not None and copy_rp.destroy is not None
    assert {s.id for s in copy_rp.backups} <= set(live_rp.destroy.after)
    assert live_rp.destroy.id in copy_rp.destroy.after

    cloud = {rp.resource.urn: rp for rp in make_plan(state.resources, Config(), "dev").resources}
    assert cloud[live.urn].carries == ()


def test_the_only_entry_of_its_urn_is_keyed_by_the_urn_even_pending_delete() -> None:
    (r,) = parse(v4(server(delete=True))).resources
    assert (r.urn, r.pending_delete, engine_urn(r)) == (HW_SERVER, True, HW_SERVER)


def test_several_old_copies_get_distinct_keys_and_a_repeat_is_skipped() -> None:
    doc = v4(
        server(cloud_id="a", delete=True),
        server(cloud_id="b", delete=True),
        server(cloud_id="a", delete=True),  # the same cloud resource again
        server(cloud_id="web"),
    )
    state = parse(doc)
    assert [r.urn for r in state.resources] == [
        pending_delete_key(HW_SERVER, "a"),
        pending_delete_key(HW_SERVER, "b"),
        HW_SERVER,
    ]
    assert state.skip_reasons == (
        (HW_SERVER, f"the same cloud resource as {pending_delete_key(HW_SERVER, 'a')}"),
    )


def test_an_old_copy_without_a_cloud_id_is_skipped() -> None:
    old = {"urn": HW_SERVER, "type": SERVER_TYPE, "custom": True, "delete": True}
    state = parse(v4(old, server()))
    assert [r.urn for r in state.resources] == [HW_SERVER]
    assert "without a cloud id" in dict(state.skip_reasons)[HW_SERVER]


def test_two_live_entries_of_one_urn_are_still_refused() -> None:
    assert "the same URN appears twice" in problem(v4(server(), server(cloud_id="other")))


def test_a_volume_attached_to_the_old_server_hangs_under_the_old_copy() -> None:
    volume_type = "huaweicloud:Evs/volume:Volume"
    volume = {
        "urn": f"{S}{volume_type}::data",
        "custom": True,
        "type": volume_type,
        "id": "vol-1",
        "outputs": {"id": "vol-1", "attachments": [{"instanceId": "id-old"}]},
    }
    state = parse(v4(server(), server(cloud_id="id-old", delete=True), volume))
    assert state.resources[2].parent == pending_delete_key(HW_SERVER, "id-old")


# -- [types] kinds --------------------------------------------------------------------------------


def test_with_kinds_lays_the_config_over_the_catalog() -> None:
    overlay = with_kinds(HUAWEI, {DYNAMIC: "server", "huaweicloud:Vpc/eip:Eip": Kind.NETWORK})
    assert isinstance(overlay, KindsOverlay)
    assert overlay.kind_of(DYNAMIC) is Kind.SERVER
    assert overlay.kind_of("huaweicloud:Vpc/eip:Eip") is Kind.NETWORK  # the config wins
    assert overlay.kind_of(SERVER_TYPE) is Kind.SERVER
    assert overlay.kind_of("x:y:Z") is Kind.UNKNOWN
    assert (overlay.server_type, overlay.volume_type) == (HUAWEI.server_type, HUAWEI.volume_type)
    assert HUAWEI.kind_of(DYNAMIC) is Kind.UNKNOWN  # the provider's own table is untouched
    assert with_kinds(HUAWEI, {}) is HUAWEI and with_kinds(None, {}) is HUAWEI
    again = with_kinds(overlay, {"a:b:C": "volume"})
    assert isinstance(again, KindsOverlay) and again.kind_of(DYNAMIC) is Kind.SERVER
    assert again.declared == {DYNAMIC, "huaweicloud:Vpc/eip:Eip", "a:b:C"}


def test_with_kinds_refuses_an_unknown_kind_naming_the_key() -> None:
    with pytest.raises(ConfigError) as caught:
        with_kinds(None, {"mycorp:index:Database": "disk"})
    assert "'mycorp:index:Database' = 'disk' is not a kind" in str(caught.value)


def test_a_dynamic_resource_mapped_to_server_is_planned_as_a_server() -> None:
    doc = json.loads(EXPORT.read_text())
    blocked = make_plan(parse(doc).resources, Config(), "dev")
    assert [b.code for b in blocked.blockers] == ["unknown_type", "unknown_type"]
    state = parse(doc, with_kinds(None, AS_SERVER))
    plan = make_plan(state.resources, Config(), "dev")
    assert not plan.blockers
    web = plan.resources[0]
    assert web.resource.kind is Kind.SERVER
    assert web.resource.billing.mode is BillingMode.UNKNOWN  # not the provider's default
    assert [s.snapshot for s in web.backups] == [Config().backup.snapshot]


def test_a_component_from_a_hook_mapped_to_server_is_planned_as_a_server() -> None:
    urn, type_ = ORDERS_DB, "mycorp:index:Database"
    assert resource_from_outputs(urn, type_, {"engine": "postgres"}).kind is Kind.UNKNOWN
    catalog = with_kinds(HUAWEI, {type_: "server"})
    r = resource_from_outputs(urn, type_, {"id": "db-1", "engine": "postgres"}, None, catalog)
    assert (r.kind, r.cloud_id) == (Kind.SERVER, "db-1")
    plan = make_plan([r], Config(), "dev")
    assert not plan.blockers and [s.kind for s in plan.resources[0].backups] == [StepKind.SNAPSHOT]


def test_a_declared_type_is_read_leniently_a_provider_type_is_not() -> None:
    odd = {
        "id": "x-1",
        "name": 7,
        "tags": ["a"],
        "chargingMode": "monthly",
        "volumeAttacheds": "none",
        "networks": {"eth0": "10.0.0.1"},
    }
    foreign = {"urn": S + "my:x:Vm::vm", "type": "my:x:Vm", "custom": True, "outputs": odd}
    (r,) = parse(v4(foreign, features=None), with_kinds(None, {"my:x:Vm": "server"})).resources
    assert (r.kind, r.name, r.tags, r.disks, r.addresses) == (Kind.SERVER, "vm", (), (), ())
    assert r.billing.mode is BillingMode.UNKNOWN
    hw = server(outputs=odd)
    assert "'volumeAttacheds' is a string, expected a list" in problem(v4(hw, features=None))


def test_a_type_mapped_to_stateless_is_read_and_planned_without_backup() -> None:
    foreign = {"urn": S + "my:x:Dns::d", "type": "my:x:Dns", "custom": True, "id": "d"}
    (r,) = parse(v4(foreign, features=None), with_kinds(None, {"my:x:Dns": "stateless"})).resources
    assert r.kind is Kind.STATELESS
    plan = make_plan([r], Config(), "dev")
    assert not plan.blockers and plan.resources[0].backups == ()


def test_kinds_are_read_from_teardown_toml() -> None:
    text = (
        '[types]\nkinds = { "mycorp:index:Database" = "volume", '
        '"pulumi-python:dynamic:Resource" = "server" }\n'
    )
    kinds = parse_config(text, "teardown.toml").types.kinds
    assert kinds == {"mycorp:index:Database": Kind.VOLUME, DYNAMIC: Kind.SERVER}


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ('kinds = { "mycorp:index:Database" = "disk" }', "types.kinds.mycorp:index:Database"),
        ('kinds = { "" = "server" }', "a type token must not be empty"),
        (
            'stateless = ["my:x:Y"]\nkinds = { "my:x:Y" = "server" }',
            "'my:x:Y' = 'server', but stateless lists it too",
        ),
    ],
)
def test_bad_kinds_are_a_config_error_naming_the_key(text: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(f"[types]\n{text}\n", "teardown.toml")
    assert caught.value.source == "teardown.toml" and fragment in caught.value.problem


def test_types_config_refuses_an_unknown_kind_built_in_python() -> None:
    with pytest.raises(ValueError, match="'disk' is not a kind"):
        TypesConfig(kinds={"a:b:C": "disk"})  # type: ignore[dict-item]


def test_cli_plan_of_a_state_file_applies_kinds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    config = tmp_path / "td.toml"
    config.write_text(f'[types]\nkinds = {{ "{DYNAMIC}" = "server" }}\n')
    result = CliRunner().invoke(
        cli, ["plan", "--state", str(EXPORT), "--config", str(config), "--json"]
    )
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["blocked"] is False
    assert [(r["urn"], r["kind"]) for r in doc["resources"]] == [
        (WEB, "server"),
        (WEB_OLD, "server"),
    ]
    assert all([b["kind"] for b in r["backups"]] == ["snapshot"] for r in doc["resources"])
    unmapped = CliRunner().invoke(cli, ["plan", "--state", str(EXPORT)])
    assert unmapped.exit_code == 3  # unknown types block without the mapping


class _FakeStack:
    """What ``plan --stack`` asks of a stack: its config and its export."""

    def __init__(self, ref: object) -> None:
        self.ref = ref

    def config(self) -> dict[str, Any]:
        return {}

    def export(self, catalog: Any = None) -> StackState:
        doc = json.loads(EXPORT.read_text())
        return parse_state(json.dumps(doc), "stack dev", catalog or HUAWEI)


def test_plan_of_a_stack_applies_kinds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(targets, "PulumiStack", _FakeStack)
    config = Config(types=TypesConfig(kinds=AS_SERVER))
    source = targets.TargetSource(stack="dev", destroy_with="cloud")
    planned = targets.plan_targets(source, config, profile_path=None, env={})
    kinds = [(rp.resource.urn, rp.resource.kind) for rp in planned.plan.resources]
    assert kinds == [(WEB, Kind.SERVER), (WEB_OLD, Kind.SERVER)]
    assert not planned.plan.blockers


def test_the_plan_says_which_entries_it_leaves_out_and_why(tmp_path: Path) -> None:
    """Routine entries (the stack, providers, components) are only counted; an entry left out
    for a reason that matters (already deleted by the engine) gets a line."""
    state = tmp_path / "dev.json"
    state.write_text(json.dumps(v4(server(), server("cache", "id-cache", pendingReplacement=True))))
    result = CliRunner().invoke(cli, ["plan", "--state", str(state), "--json"])
    assert result.exit_code == 0, result.output
    (line,) = [x for x in result.stderr.splitlines() if x.startswith("teardown: not planned:")]
    assert "::cache:" in line and "already deleted" in line
