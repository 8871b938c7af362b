"""The Pulumi state reader: exports and checkpoints in, model resources out, bad input named."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from teardown.adapters.huawei.catalog import TYPE_KINDS
from teardown.adapters.pulumi.properties import SECRET_SIG_KEY
from teardown.adapters.pulumi.state import (
    StackState,
    parse_state,
    read_state,
)
from teardown.core.errors import StateError
from teardown.core.model import Address, BillingMode, Disk, Kind, Resource

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "huawei-test-env.json"
UNKNOWN_EXAMPLE = ROOT / "examples" / "unknown-type.json"
CHECKPOINT = Path(__file__).resolve().parent / "fixtures" / "checkpoint-dev.json"

P = "urn:pulumi:dev::shop-test::"
SERVER = "huaweicloud:Ecs/instance:Instance"
VOLUME = "huaweicloud:Evs/volume:Volume"
STACK_URN = P + "pulumi:pulumi:Stack::shop-test-dev"
PROVIDER_URN = P + "pulumi:providers:huaweicloud::default_1_67_1"
WEB = P + SERVER + "::web-1"
DB = P + SERVER + "::db-1"
DB_DATA = P + VOLUME + "::db-data"
DB_DATA_ID = "d4f6b8d0-5e7a-4c9e-b1f3-4a6c8e0a2b35"

CIPHERTEXT = "v1:SOMECIPHERTEXTzzQ9kX0vY2rT5uW8aB1cD4eF7gH0iJ3kL6mN9"
PLAINTEXT = "hunter2-PLAINTEXT-pa55"


def secret(ciphertext: str = CIPHERTEXT) -> dict[str, str]:
    return {SECRET_SIG_KEY: "1b47061264138c4ac30d75fd1eb44270", "ciphertext": ciphertext}


def plain_secret(plaintext: str = PLAINTEXT) -> dict[str, str]:
    return {SECRET_SIG_KEY: "1b47061264138c4ac30d75fd1eb44270", "plaintext": plaintext}


def export(*resources: dict[str, Any], stack: str = "dev") -> dict[str, Any]:
    """A deployment v3 export with a Stack resource and then ``resources``."""
    stack_res = {
        "urn": f"urn:pulumi:{stack}::shop-test::pulumi:pulumi:Stack::shop-test-{stack}",
        "custom": False,
        "type": "pulumi:pulumi:Stack",
    }
    return {"version": 3, "deployment": {"manifest": {}, "resources": [stack_res, *resources]}}


def resource(
    rtype: str, name: str, outputs: dict[str, Any] | None = None, **extra: Any
) -> dict[str, Any]:
    res: dict[str, Any] = {
        "urn": f"{P}{rtype}::{name}",
        "custom": True,
        "type": rtype,
        "id": f"id-{name}",
        "inputs": {},
        "outputs": {"id": f"id-{name}", **(outputs or {})},
    }
    res.update(extra)
    return res


def parse(doc: object, source: str = "state.json") -> StackState:
    return parse_state(json.dumps(doc), source)


def by_name(state: StackState, name: str) -> Resource:
    (found,) = [r for r in state.resources if r.name == name]
    return found


@pytest.fixture(scope="module")
def example() -> StackState:
    return read_state(EXAMPLE)


def example_doc() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(EXAMPLE.read_text())
    return doc


# -- the example stack --------------------------------------------------------------------------


def test_export_names_its_stack_and_project(example: StackState) -> None:
    assert example.stack == "dev"
    assert example.project == "shop-test"


def test_stack_and_provider_are_skipped_not_modelled(example: StackState) -> None:
    assert example.skipped == (STACK_URN, PROVIDER_URN)
    assert not [r for r in example.resources if r.type.startswith("pulumi:")]


def test_resources_come_in_state_order(example: StackState) -> None:
    assert [r.name for r in example.resources] == [
        "shop-test-vpc",
        "shop-test-subnet",
        "shop-test-sg",
        "allow-ssh",
        "web-eip",
        "web-1",
        "db-1",
        "db-data",
        "db-data-attach",
    ]


def test_pay_per_use_server_has_its_disks_addresses_and_tags(example: StackState) -> None:
    web = by_name(example, "web-1")
    assert web.urn == WEB
    assert web.kind is Kind.SERVER
    assert web.cloud_id == "3f8a1d6c-7e2b-4c9a-b5d3-8e1f0a6c2b97"
    assert web.billing.mode is BillingMode.POST_PAID
    assert web.billing.expires_at is None
    assert web.tags == (("env", "test"), ("role", "web"))
    assert web.addresses == (Address("192.168.10.11"), Address("121.36.104.27", public=True))
    assert web.disks == (
        Disk(id="a1c3e5f7-2b4d-4f6a-8c0e-1d3f5a7c9e02", size_gb=40, system=True, bound=True),
        Disk(id="b2d4f6a8-3c5e-4a7b-9d1f-2e4a6c8e0f13", size_gb=100, bound=True),
    )
    assert web.dependencies == (
        P + "huaweicloud:Vpc/subnet:Subnet::shop-subnet",
        P + "huaweicloud:Vpc/secgroup:Secgroup::shop-sg",
        P + "huaweicloud:Vpc/eip:Eip::web-eip",
    )


def test_prepaid_server_keeps_order_and_expiry(example: StackState) -> None:
    db = by_name(example, "db-1")
    assert db.billing.mode is BillingMode.PRE_PAID
    assert db.billing.expires_at == datetime(2027, 3, 15, 16, 0, tzinfo=UTC)
    assert db.billing.auto_renew is True

    doc = export(
        resource(
            SERVER,
            "shop-1",
            {"chargingMode": "prePaid", "orderId": "CS2606151012ABCDE", "autoRenew": "false"},
        )
    )
    doc["deployment"]["resources"][1]["outputs"]["expiredTime"] = "2027-01-31 16:00:00"
    shop = by_name(parse(doc), "shop-1")
    assert shop.billing.order_id == "CS2606151012ABCDE"
    assert shop.billing.expires_at == datetime(2027, 1, 31, 16, 0, tzinfo=UTC)
    assert shop.billing.auto_renew is False


def test_separately_bought_disk_is_not_bound(example: StackState) -> None:
    db = by_name(example, "db-1")
    system, data = db.disks
    assert system.system and system.bound
    assert data == Disk(id=DB_DATA_ID, size_gb=200, bound=False)
    web_data = by_name(example, "web-1").disks[1]
    assert web_data.bound, "a disk bought with its server (no Evs resource) stays bound"


def test_attached_volume_names_its_server_as_parent(example: StackState) -> None:
    volume = by_name(example, "db-data")
    assert volume.urn == DB_DATA
    assert volume.kind is Kind.VOLUME
    assert volume.parent == DB
    assert volume.billing.mode is BillingMode.PRE_PAID
    assert volume.billing.auto_renew is True
    assert volume.disks == (Disk(id=DB_DATA_ID, size_gb=200, bound=False, device="/dev/vdb"),)
    assert volume.tags == (("env", "test"), ("role", "db"))


def test_volume_finds_its_parent_from_the_servers_disks_when_it_lacks_attachments() -> None:
    doc = export(
        resource(VOLUME, "logs", {"size": 50}),
        resource(SERVER, "app", {"volumeAttacheds": [{"volumeId": "id-logs", "size": 50}]}),
    )
    state = parse(doc)
    assert by_name(state, "logs").parent == P + SERVER + "::app"
    assert by_name(state, "app").disks == (Disk(id="id-logs", size_gb=50, bound=False),)


def test_volume_attached_to_a_server_outside_the_state_has_no_parent() -> None:
    state = parse(export(resource(VOLUME, "v", {"attachments": [{"instanceId": "elsewhere"}]})))
    assert by_name(state, "v").parent is None


def test_network_types_are_free_network_resources(example: StackState) -> None:
    for name in ("shop-test-vpc", "shop-test-subnet", "shop-test-sg", "allow-ssh"):
        r = by_name(example, name)
        assert r.kind is Kind.NETWORK, name
        assert r.billing.mode is BillingMode.FREE, name
    assert by_name(example, "db-data-attach").kind is Kind.NETWORK


def test_eip_is_a_billed_public_address(example: StackState) -> None:
    eip = by_name(example, "web-eip")
    assert eip.kind is Kind.ADDRESS
    assert eip.billing.mode is BillingMode.POST_PAID
    assert eip.addresses == (Address("121.36.104.27", public=True),)


def test_type_table_holds_the_confirmed_huaweicloud_tokens() -> None:
    assert TYPE_KINDS["huaweicloud:Vpc/vpc:Vpc"] is Kind.NETWORK
    assert TYPE_KINDS["huaweicloud:Vpc/secgroupRule:SecgroupRule"] is Kind.NETWORK
    assert TYPE_KINDS["huaweicloud:Dew/keypair:Keypair"] is Kind.NETWORK
    assert TYPE_KINDS["huaweicloud:Vpc/bandwidth:Bandwidth"] is Kind.ADDRESS
    assert TYPE_KINDS[SERVER] is Kind.SERVER
    assert TYPE_KINDS[VOLUME] is Kind.VOLUME


def test_unknown_type_is_read_as_unknown_not_rejected() -> None:
    state = read_state(UNKNOWN_EXAMPLE)
    assert (state.stack, state.project) == ("staging", "orders")
    rds = by_name(state, "orders-db")
    assert rds.kind is Kind.UNKNOWN
    assert rds.type == "huaweicloud:Rds/instance:Instance"
    assert by_name(state, "app-1").kind is Kind.SERVER


def test_unknown_type_with_odd_shapes_is_still_read() -> None:
    odd = resource("huaweicloud:Cce/cluster:Cluster", "k8s", {"tags": ["a", "b"], "name": 5})
    odd["outputs"]["chargingMode"] = "monthly-ish"
    r = by_name(parse(export(odd)), "k8s")
    assert (r.kind, r.tags, r.billing.mode) == (Kind.UNKNOWN, (), BillingMode.UNKNOWN)


# -- checkpoints --------------------------------------------------------------------------------


def test_checkpoint_reads_like_the_export(example: StackState) -> None:
    state = read_state(CHECKPOINT)
    assert (state.stack, state.project) == ("dev", "shop-test")
    exported = {r.urn: r for r in example.resources}
    assert [r.name for r in state.resources] == [
        "shop-test-vpc",
        "shop-test-subnet",
        "shop-test-sg",
        "web-1",
        "db-1",
        "db-data",
    ]
    for r in state.resources:
        assert r == exported[r.urn]


@pytest.mark.parametrize("checkpoint", [{"stack": "dev"}, {"stack": "o/p/dev", "latest": None}])
def test_checkpoint_without_latest_is_an_empty_stack(checkpoint: dict[str, Any]) -> None:
    state = parse({"version": 3, "checkpoint": checkpoint})
    assert state.resources == () and state.skipped == ()
    assert state.stack == "dev"


def test_export_without_resources_is_an_empty_stack() -> None:
    state = parse({"version": 3, "deployment": {"manifest": {}}})
    assert state == StackState(stack=None, project=None, resources=(), skipped=())


# -- secrets ------------------------------------------------------------------------------------


def test_secret_fields_never_reach_the_model() -> None:
    doc = example_doc()
    text = json.dumps(doc)
    assert '"ciphertext"' in text, "the example carries a secret adminPass"
    ciphertexts = [
        r["outputs"]["adminPass"]["ciphertext"]
        for r in doc["deployment"]["resources"]
        if "adminPass" in r.get("outputs", {})
    ]
    web = doc["deployment"]["resources"][7]
    web["outputs"]["publicIp"] = secret()
    web["outputs"]["tags"] = {"role": "web", "owner": plain_secret()}
    web["inputs"]["userData"] = plain_secret()
    state = parse(doc)
    shown = repr(state)
    for hidden in [*ciphertexts, CIPHERTEXT, PLAINTEXT, SECRET_SIG_KEY]:
        assert hidden not in shown


def test_secret_public_ip_and_tags_are_treated_as_absent() -> None:
    server = resource(
        SERVER,
        "s",
        {"publicIp": secret(), "accessIpV4": "10.0.0.5", "tags": secret(), "name": secret()},
    )
    r = parse(export(server)).resources[0]
    assert r.addresses == (Address("10.0.0.5"),)
    assert r.tags == ()
    assert r.name == "s", "a secret name falls back to the URN's name"


def test_secret_outputs_as_a_whole_are_absent() -> None:
    server = resource(SERVER, "s")
    server["outputs"] = secret()
    server["inputs"] = {"chargingMode": "spot"}
    r = parse(export(server)).resources[0]
    assert r.cloud_id == "id-s"
    assert r.billing.mode is BillingMode.SPOT


# -- field mapping ------------------------------------------------------------------------------


def test_server_without_charging_mode_is_pay_per_use() -> None:
    r = parse(export(resource(SERVER, "s"))).resources[0]
    assert r.billing.mode is BillingMode.POST_PAID
    assert r.billing.expires_at is None and r.billing.order_id is None


def test_outputs_fall_back_to_inputs() -> None:
    server = resource(SERVER, "s", inputs={"chargingMode": "prePaid", "tags": {"b": "2", "a": "1"}})
    r = parse(export(server)).resources[0]
    assert r.billing.mode is BillingMode.PRE_PAID
    assert r.tags == (("a", "1"), ("b", "2"))


def test_cloud_id_falls_back_to_the_resource_id() -> None:
    server = resource(SERVER, "s", id="top-level-id")
    server["outputs"] = {}
    assert parse(export(server)).resources[0].cloud_id == "top-level-id"


@pytest.mark.parametrize(
    ("expired", "expected"),
    [
        ("2027-03-15T16:00:00Z", datetime(2027, 3, 15, 16, 0, tzinfo=UTC)),
        ("2027-03-16T00:00:00+08:00", datetime(2027, 3, 15, 16, 0, tzinfo=UTC)),
        ("2027-03-15 16:00:00", datetime(2027, 3, 15, 16, 0, tzinfo=UTC)),
        ("", None),
    ],
)
def test_expiry_is_read_as_aware_utc(expired: str, expected: datetime | None) -> None:
    server = resource(SERVER, "s", {"chargingMode": "prePaid", "expiredTime": expired})
    assert parse(export(server)).resources[0].billing.expires_at == expected


@pytest.mark.parametrize(("value", "expected"), [("true", True), ("false", False), (True, True)])
def test_auto_renew_accepts_strings_and_booleans(value: object, expected: bool) -> None:
    server = resource(SERVER, "s", {"autoRenew": value})
    assert parse(export(server)).resources[0].billing.auto_renew is expected


def test_access_ip_that_is_the_public_ip_is_public() -> None:
    server = resource(
        SERVER,
        "s",
        {
            "accessIpV4": "121.36.1.2",
            "publicIp": "121.36.1.2",
            "network": [{"fixedIpV4": "10.0.0.7"}, {"fixedIpV4": "10.0.1.7"}],
        },
    )
    assert parse(export(server)).resources[0].addresses == (
        Address("121.36.1.2", public=True),
        Address("10.0.0.7"),
        Address("10.0.1.7"),
    )


def test_system_disk_listed_twice_is_one_disk() -> None:
    server = resource(
        SERVER,
        "s",
        {
            "systemDiskId": "sys",
            "volumeAttacheds": [{"volumeId": "sys", "isSysVolume": True, "size": 40}],
        },
    )
    assert parse(export(server)).resources[0].disks == (
        Disk(id="sys", size_gb=40, system=True, bound=True),
    )


def test_protected_resource_is_marked() -> None:
    r = parse(export(resource(SERVER, "s", protect=True))).resources[0]
    assert r.protected


def test_old_copy_pending_delete_is_modelled_under_its_own_key() -> None:
    old = resource(SERVER, "s", {"id": "old-id"}, delete=True, id="old-id")
    live = resource(SERVER, "s")
    state = parse(export(old, live))
    assert [(r.urn, r.cloud_id, r.pending_delete) for r in state.resources] == [
        (f"{live['urn']}#pending-delete:old-id", "old-id", True),
        (live["urn"], "id-s", False),
    ]
    assert state.skipped == (STACK_URN,)


def test_old_copy_with_the_live_resources_cloud_id_is_skipped_as_the_same_resource() -> None:
    old = resource(SERVER, "s", delete=True)  # same cloud id as the live one
    live = resource(SERVER, "s")
    state = parse(export(old, live))
    assert [r.urn for r in state.resources] == [live["urn"]]
    assert (old["urn"], f"the same cloud resource as {old['urn']}") in state.skip_reasons


def test_component_and_external_resources_are_skipped() -> None:
    component = {"urn": P + "shop:app:WebTier::tier", "custom": False, "type": "shop:app:WebTier"}
    external = resource(SERVER, "looked-up", external=True)
    state = parse(export(component, external))
    assert state.resources == ()
    assert component["urn"] in state.skipped and external["urn"] in state.skipped


def test_stack_name_comes_from_the_stack_urn() -> None:
    state = parse(export(stack="ci-42"))
    assert (state.stack, state.project) == ("ci-42", "shop-test")


# -- bad input ----------------------------------------------------------------------------------


def _with_resource(change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    doc = export(resource(SERVER, "web-1", {"chargingMode": "prePaid"}))
    change(doc["deployment"]["resources"][1])
    return doc


def _set(key: str, value: object) -> Callable[[dict[str, Any]], None]:
    def change(res: dict[str, Any]) -> None:
        res[key] = value

    return change


def _set_output(key: str, value: object) -> Callable[[dict[str, Any]], None]:
    def change(res: dict[str, Any]) -> None:
        res["outputs"][key] = value

    return change


def _drop(key: str) -> Callable[[dict[str, Any]], None]:
    def change(res: dict[str, Any]) -> None:
        del res[key]

    return change


BAD_DOCUMENTS: list[tuple[str, object, str]] = [
    ("top-level-list", [1, 2], "top level is a list, expected a JSON object"),
    ("no-version", {"deployment": {}}, "no 'version' field"),
    (
        "version-2",
        {"version": 2, "deployment": {}},
        "unsupported version 2 (supported versions: 3, 4)",
    ),
    ("version-string", {"version": "3", "deployment": {}}, 'unsupported version "3"'),
    ("neither", {"version": 3, "stack": {}}, "neither 'deployment'"),
    ("deployment-list", {"version": 3, "deployment": []}, "deployment: is a list"),
    (
        "resources-object",
        {"version": 3, "deployment": {"resources": {}}},
        "deployment: 'resources' is an object, expected a list",
    ),
    (
        "checkpoint-resources-string",
        {"version": 3, "checkpoint": {"latest": {"resources": "x"}}},
        "checkpoint.latest: 'resources' is a string",
    ),
    (
        "resource-not-object",
        {"version": 3, "deployment": {"resources": [7]}},
        "deployment.resources[0]: is a number, expected an object",
    ),
    ("no-urn", _with_resource(_drop("urn")), "deployment.resources[1]: has no 'urn'"),
    ("urn-number", _with_resource(_set("urn", 12)), "'urn' is a number, expected a string"),
    ("urn-not-urn", _with_resource(_set("urn", "web-1")), "'urn' 'web-1' is not a Pulumi URN"),
    ("no-type", _with_resource(_drop("type")), f"resources[1] ({WEB}): has no 'type'"),
    ("type-list", _with_resource(_set("type", [])), "'type' is a list, expected a type token"),
    ("delete-string", _with_resource(_set("delete", "yes")), "'delete' is a string"),
    ("outputs-list", _with_resource(_set("outputs", [])), "'outputs' is a list"),
    ("deps-string", _with_resource(_set("dependencies", "x")), "'dependencies' must be a list"),
    (
        "expiry-garbage",
        _with_resource(_set_output("expiredTime", "next tuesday")),
        f"({WEB}): 'expiredTime' 'next tuesday' is not a date and time",
    ),
    (
        "charging-mode-garbage",
        _with_resource(_set_output("chargingMode", "yearly")),
        "'chargingMode' is 'yearly', expected one of prePaid, postPaid, spot",
    ),
    ("auto-renew-garbage", _with_resource(_set_output("autoRenew", "maybe")), "'autoRenew'"),
    ("tags-list", _with_resource(_set_output("tags", ["a"])), "'tags' is a list"),
    (
        "disk-without-id",
        _with_resource(_set_output("volumeAttacheds", [{"size": 10}])),
        "'volumeAttacheds[0]' has no 'volumeId'",
    ),
    (
        "disk-size-text",
        _with_resource(_set_output("volumeAttacheds", [{"volumeId": "v", "size": "big"}])),
        "'volumeAttacheds[0].size' is a string, expected a size in GB",
    ),
]


@pytest.mark.parametrize(
    ("doc", "fragment"), [(d, f) for _, d, f in BAD_DOCUMENTS], ids=[i for i, _, _ in BAD_DOCUMENTS]
)
def test_malformed_state_is_named_in_one_line(doc: object, fragment: str) -> None:
    with pytest.raises(StateError) as caught:
        parse(doc, "stack.json")
    assert caught.value.source == "stack.json"
    assert fragment in caught.value.problem
    assert "\n" not in str(caught.value)


def test_text_that_is_not_json_names_line_and_column() -> None:
    with pytest.raises(StateError) as caught:
        parse_state('{\n  "version": 3,\n  "deployment": {,}\n}', "broken.json")
    assert caught.value.source == "broken.json"
    assert "not valid JSON" in caught.value.problem
    assert "line 3 column 18" in caught.value.problem


def test_bytes_that_are_not_text_are_a_state_error() -> None:
    with pytest.raises(StateError, match="not valid JSON"):
        parse_state(b"\xff\xfe\x00garbage\x81", "bin.json")


def test_duplicate_urn_is_refused() -> None:
    server = resource(SERVER, "s")
    with pytest.raises(StateError, match="the same URN appears twice"):
        parse(export(server, copy.deepcopy(server)))


def test_missing_file_is_a_state_error_naming_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "nope.json"
    with pytest.raises(StateError) as caught:
        read_state(missing)
    assert caught.value.source == str(missing)
    assert "cannot read the file" in caught.value.problem


def test_directory_is_a_state_error(tmp_path: Path) -> None:
    with pytest.raises(StateError) as caught:
        read_state(tmp_path)
    assert caught.value.source == str(tmp_path)


def test_file_on_disk_is_read(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    path.write_text(json.dumps(export(resource(SERVER, "s"))))
    assert [r.name for r in read_state(path).resources] == ["s"]


# -- fuzzing: only StateError or success, whatever the JSON ------------------------------------

INTERESTING_KEYS = [
    "version",
    "deployment",
    "checkpoint",
    "latest",
    "stack",
    "resources",
    "urn",
    "type",
    "id",
    "delete",
    "custom",
    "external",
    "protect",
    "pendingReplacement",
    "features",
    "resourceHooks",
    "BeforeDelete",
    "AfterDelete",
    "outputs",
    "inputs",
    "dependencies",
    "name",
    "tags",
    "chargingMode",
    "orderId",
    "expiredTime",
    "autoRenew",
    "accessIpV4",
    "publicIp",
    "address",
    "network",
    "networks",
    "fixedIpV4",
    "systemDiskId",
    "systemDiskSize",
    "volumeAttacheds",
    "volumeId",
    "isSysVolume",
    "size",
    "attachments",
    "instanceId",
    "serverId",
    "device",
    SECRET_SIG_KEY,
]
INTERESTING_STRINGS = [
    "",
    "prePaid",
    "postPaid",
    "spot",
    "true",
    "false",
    "2027-03-15T16:00:00Z",
    "0001-01-01T00:00:00+01:00",
    "9999-12-31T23:59:59-01:00",
    "urn:pulumi:dev::p::t::n",
    "urn:pulumi:::::",
    SERVER,
    VOLUME,
    "pulumi:pulumi:Stack",
    "pulumi:providers:huaweicloud",
    "hooks",
    "teardown-before-delete-0123456789",
    "huaweicloud:Vpc/eip:Eip",
    "id-web-1",
    DB_DATA_ID,
    "10.0.0.1",
    "8.8.8.8",
    "::1",
]

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(INTERESTING_STRINGS),
    st.text(max_size=12),
)
json_keys = st.one_of(st.sampled_from(INTERESTING_KEYS), st.text(max_size=6))
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(json_keys, inner, max_size=5),
        st.builds(lambda v: {**secret(), "x": v}, inner),
    ),
    max_leaves=25,
)


def _expect_state_error_or_success(text: str | bytes) -> None:
    try:
        state = parse_state(text, "fuzz.json")
    except StateError as e:
        assert e.source == "fuzz.json"
        assert "\n" not in e.problem
    else:
        assert isinstance(state, StackState)
        assert CIPHERTEXT not in repr(state)


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_any_json_value_gives_a_state_error_or_a_state(value: object) -> None:
    _expect_state_error_or_success(json.dumps(value))


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(json_keys, json_values, max_size=4), json_values)
def test_any_document_shape_gives_a_state_error_or_a_state(
    body: dict[str, Any], resources: object
) -> None:
    for doc in (
        {"version": 3, "deployment": {**body, "resources": resources}},
        {"version": 3, "checkpoint": {"latest": {"resources": [resources]}}},
        {"version": 3, "deployment": {"resources": [{**body, "urn": P + "x:y:Z::n"}]}},
        {"version": 4, "features": ["hooks"], "deployment": {**body, "resources": resources}},
        {**body, "version": 4, "deployment": {"resources": [resources]}},
    ):
        _expect_state_error_or_success(json.dumps(doc))


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=64))
def test_any_bytes_give_a_state_error_or_a_state(data: bytes) -> None:
    _expect_state_error_or_success(data)


_EXAMPLE_TEXT = EXAMPLE.read_text()
_READ_KEYS = frozenset(INTERESTING_KEYS)


def _mutate(data: st.DataObject, node: Any) -> Any:
    """Replace, delete or add one thing somewhere inside ``node``; returns the new node."""
    children: list[Any] = []
    if isinstance(node, dict):
        children = list(node)
    elif isinstance(node, list):
        children = list(range(len(node)))
    if children and data.draw(st.integers(0, 4)) > 0:
        read = [k for k in children if k in _READ_KEYS]
        prefer_read: bool = data.draw(st.booleans())
        key = data.draw(st.sampled_from(read if read and prefer_read else children))
        node[key] = _mutate(data, node[key])
        return node
    action = data.draw(st.sampled_from(["replace", "delete", "add"]))
    if action == "replace" or not children:
        return data.draw(json_values)
    if action == "delete":
        del node[data.draw(st.sampled_from(children))]
        return node
    if isinstance(node, dict):
        node[data.draw(json_keys)] = data.draw(json_values)
    else:
        node.append(data.draw(json_values))
    return node


def _mutate_example(data: st.DataObject, doc: Any) -> Any:
    """Mutate mostly inside one resource (or its outputs), sometimes anywhere in the document."""
    target = data.draw(st.sampled_from(["outputs", "outputs", "resource", "anywhere"]))
    try:
        resources = doc["deployment"]["resources"]
        if not isinstance(resources, list):  # an earlier mutation replaced the list
            raise TypeError(type(resources).__name__)
        i = data.draw(st.integers(0, len(resources) - 1))
        res = resources[i]
    except (KeyError, TypeError, ValueError, IndexError):
        target = "anywhere"
    if target == "anywhere":
        return _mutate(data, doc)
    if target == "outputs" and isinstance(res, dict) and isinstance(res.get("outputs"), dict):
        res["outputs"] = _mutate(data, res["outputs"])
    else:
        resources[i] = _mutate(data, res)
    return doc


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_mutated_exports_give_a_state_error_or_a_state(data: st.DataObject) -> None:
    doc = json.loads(_EXAMPLE_TEXT)
    for _ in range(data.draw(st.integers(1, 4))):
        doc = _mutate_example(data, doc)
    _expect_state_error_or_success(json.dumps(doc))


_FIELD_PATHS: list[tuple[str | int, ...]] = [
    *[(k,) for k in ("urn", "type", "id", "delete", "custom", "external", "protect")],
    ("pendingReplacement",),
    ("resourceHooks",),
    ("resourceHooks", "BeforeDelete"),
    ("dependencies",),
    ("dependencies", 0),
    ("outputs",),
    ("inputs",),
    *[
        (props, k)
        for props in ("outputs", "inputs")
        for k in (
            "id",
            "name",
            "tags",
            "chargingMode",
            "orderId",
            "expiredTime",
            "autoRenew",
            "accessIpV4",
            "publicIp",
            "address",
            "network",
            "networks",
            "systemDiskId",
            "systemDiskSize",
            "volumeAttacheds",
            "size",
            "attachments",
        )
    ],
    ("outputs", "tags", "role"),
    ("outputs", "networks", 0),
    ("outputs", "networks", 0, "fixedIpV4"),
    *[("outputs", "volumeAttacheds", i) for i in (0, 1)],
    *[
        ("outputs", "volumeAttacheds", i, k)
        for i in (0, 1)
        for k in ("volumeId", "isSysVolume", "size")
    ],
    ("outputs", "attachments", 0),
    *[("outputs", "attachments", 0, k) for k in ("instanceId", "serverId", "device")],
]


def _place(node: Any, path: tuple[str | int, ...], value: object) -> None:
    """Set ``value`` at ``path`` inside ``node`` where the path exists (or ends in a new key)."""

    def reachable(node: Any, step: str | int, new: bool) -> bool:
        if isinstance(node, dict):
            return isinstance(step, str) and (new or step in node)
        return isinstance(node, list) and isinstance(step, int) and step < len(node)

    for step in path[:-1]:
        if not reachable(node, step, new=False):
            return
        node = node[step]
    if reachable(node, path[-1], new=True):
        node[path[-1]] = value


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(st.integers(2, 10), st.sampled_from(_FIELD_PATHS), json_values),
        min_size=1,
        max_size=3,
    )
)
def test_any_value_in_any_field_the_reader_reads_gives_a_state_error_or_a_state(
    changes: list[tuple[int, tuple[str | int, ...], object]],
) -> None:
    doc = json.loads(_EXAMPLE_TEXT)
    for index, path, value in changes:
        _place(doc["deployment"]["resources"][index], path, value)
    _expect_state_error_or_success(json.dumps(doc))
