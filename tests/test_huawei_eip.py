"""The Huawei adapter's EIPs and stand-alone disk deletes, through the official SDK over HTTP,
against the sandbox (fake clock: each poll's sleep moves sandbox time, no test waits).

- the inventory turns an EIP bound to a server into an ADDRESS resource after it, and never
  attaches another server's EIP, even when the service ignores the filter;
- the destroyer deletes an unbound pay-per-use EIP (after its server), deletes a detached
  pay-per-use disk, unsubscribes a prepaid EIP, and answers ``presence`` for both.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from huaweicloudsdkeip.v2 import DeletePublicipRequest

from teardown.adapters.huawei import HuaweiProfile, load_profile
from teardown.adapters.huawei import inventory as inventory_module
from teardown.adapters.huawei.catalog import TYPE_KINDS, VOLUME_TYPE
from teardown.adapters.huawei.errors import call
from teardown.adapters.huawei.inventory import EIP_TYPE, _bound_to, _floating, volume_urn
from teardown.core.errors import ConfigError, PermanentError
from teardown.core.model import BillingMode, DestroyAction, Kind, Resource
from teardown.ports import Presence
from teardown.sandbox.api import Endpoints
from teardown.sandbox.config import Faults, SandboxConfig
from teardown.sandbox.runtime import Layout, write_profile
from teardown.sandbox.scenario import DiskSpec, Scenario, ServerSpec, VolumeSpec, load_scenario
from tests.test_huawei_adapter import Cloud, start


def web(name: str, ip: str, eip_charging: str = "postPaid") -> ServerSpec:
    last = ip.rsplit(".", 1)[1]
    return ServerSpec(
        name=name,
        private_ip=f"192.168.0.{last}",
        public_ip=ip,
        eip_charging=eip_charging,
        tags={"env": "t"},
    )


def scenario(
    *servers: ServerSpec,
    volumes: tuple[VolumeSpec, ...] = (),
    subscriptions: tuple[dict[str, Any], ...] = (),
) -> Scenario:
    return Scenario(
        name="eip-adapter", servers=servers, volumes=volumes, subscriptions=subscriptions
    )


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[Cloud]:
    yield from start(tmp_path, load_scenario("demo"))


def eip_of(cloud: Cloud, server: str) -> Resource:
    (found,) = [
        r
        for r in cloud.inventory().resources(server_ids=[cloud.rig.ids[server]])
        if r.kind is Kind.ADDRESS
    ]
    return found


def eip_status(cloud: Cloud, eip_id: str) -> str | None:
    row = cloud.rig.store.conn.execute(
        "SELECT status FROM eips WHERE id=? AND deleted=0", (eip_id,)
    ).fetchone()
    return None if row is None else str(row[0])


# -- inventory -------------------------------------------------------------------------------


def test_inventory_finds_web_1s_eip_after_it_with_its_billing_and_parent(demo: Cloud) -> None:
    resources = demo.inventory().resources(tags=[("app", "shop")])
    names = [r.name for r in resources]
    by_name = {r.name: r for r in resources}
    ids = demo.rig.ids
    web, address = by_name["web-1"], by_name["121.36.87.11"]

    assert names.index("121.36.87.11") == names.index("web-1") + 1
    assert address.kind is Kind.ADDRESS and address.type == EIP_TYPE
    assert TYPE_KINDS[EIP_TYPE] is Kind.ADDRESS
    assert address.urn == f"cloud:huawei:eip:{ids['web-1-eip']}"
    assert address.cloud_id == ids["web-1-eip"]
    assert address.parent == web.urn
    assert address.account == web.account == demo.profile.account
    assert address.billing.mode is BillingMode.POST_PAID and address.billing.order_id is None
    assert address.created_at == web.created_at  # bought with the server in the scenario
    assert [(a.ip, a.public) for a in address.addresses] == [("121.36.87.11", True)]
    assert sum(r.kind is Kind.ADDRESS for r in resources) == 1  # db-1 and cache-1 have none


def test_a_prepaid_eip_carries_its_order_expiry_auto_renew_and_payments(tmp_path: Path) -> None:
    subs = ({"resource": "a-eip", "period": "year", "paid": "360.00", "auto_renew": True},)
    spec = web("a", "121.36.0.10", eip_charging="prePaid")
    for cloud in start(tmp_path, scenario(spec, subscriptions=subs)):
        b = eip_of(cloud, "a").billing
        now = cloud.rig.clock.now()

        assert b.mode is BillingMode.PRE_PAID and b.order_id and b.order_id.startswith("CS")
        assert b.expires_at is not None and b.expires_at - now > timedelta(days=300)
        assert b.auto_renew and b.is_main
        assert [p.cash for p in b.payments] == [Decimal("360.00")]


@pytest.mark.parametrize("ignored", [False, True])
def test_an_eip_bound_to_another_server_is_never_attached_to_this_one(
    tmp_path: Path, ignored: bool
) -> None:
    config = SandboxConfig(faults=Faults(ignore_filters=("eip.ListPublicips",) if ignored else ()))
    a, b = web("a", "121.36.0.10"), web("b", "121.36.0.11")
    for cloud in start(tmp_path, scenario(a, b), config):
        ids = cloud.rig.ids
        everything = cloud.inventory()._eips()  # what an ignored filter returns: both

        mine = cloud.inventory().resources(server_ids=[ids["a"]])

        assert len(everything) == 2
        assert [(r.name, r.cloud_id) for r in mine if r.kind is Kind.ADDRESS] == [
            ("121.36.0.10", ids["a-eip"])
        ]


def test_each_returned_eip_is_checked_on_its_own_address_and_port() -> None:
    """ECS says what is floating on which port; an EIP counts only when its own fields agree."""
    addr = SimpleNamespace
    server = {"net": [
        addr(addr="192.168.0.10", os_ext_ip_stype="fixed", os_ext_ip_sport_id="port-a"),
        addr(addr="121.36.0.10", os_ext_ip_stype="floating", os_ext_ip_sport_id="port-a"),
        addr(addr="121.36.0.20", os_ext_ip_stype="floating", os_ext_ip_sport_id=None),
    ]}  # fmt: skip
    floating = _floating(server)

    def eip(ip: str, port: str | None) -> SimpleNamespace:
        return SimpleNamespace(public_ip_address=ip, public_ipv6_address=None, port_id=port)

    assert floating == {"121.36.0.10": "port-a", "121.36.0.20": None}
    assert _bound_to(eip("121.36.0.10", "port-a"), floating)
    assert not _bound_to(eip("121.36.0.10", "port-b"), floating)  # bound elsewhere
    assert not _bound_to(eip("121.36.0.11", "port-a"), floating)  # not this server's address
    assert not _bound_to(eip("121.36.0.10", None), floating)  # unbound
    assert _bound_to(eip("121.36.0.20", "port-x"), floating)  # ECS named no port: any port
    assert not _bound_to(eip("192.168.0.10", "port-a"), floating)  # a fixed address


def test_all_eips_are_listed_page_by_page(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    servers = [web(f"s{i}", f"121.36.0.{10 + i}") for i in range(5)]
    monkeypatch.setattr(inventory_module, "EIP_PAGE", 2)
    for cloud in start(tmp_path, scenario(*servers)):
        found = cloud.inventory()._eips()

        assert sorted(e.id for e in found) == sorted(cloud.rig.ids[f"s{i}-eip"] for i in range(5))
        assert len(cloud.rig.calls("eip.ListPublicips")) == 3


def test_servers_without_public_ips_never_call_the_eip_api(tmp_path: Path) -> None:
    for cloud in start(tmp_path, scenario(ServerSpec(name="plain", tags={"env": "t"}))):
        assert [r.name for r in cloud.inventory().resources()] == ["plain"]
        assert cloud.rig.calls("eip.ListPublicips") == []


# -- destroy ---------------------------------------------------------------------------------


def test_the_eip_is_deleted_after_its_server_and_is_then_gone(demo: Cloud) -> None:
    r = demo.by_name()
    server, address = r["web-1"], r["121.36.87.11"]
    d = demo.destroyer()

    d.destroy(server, DestroyAction.DELETE, "run1-destroy-web-1")

    assert eip_status(demo, address.cloud_id or "") == "DOWN"  # only unbound: delete_publicip
    assert d.presence(address) is Presence.EXISTS
    result = d.destroy(address, DestroyAction.DELETE, "run1-destroy-eip")

    assert result.presence is Presence.GONE
    assert d.presence(address) is Presence.GONE
    assert ("eip.DeletePublicip", 204) in demo.rig.calls()
    assert demo.inventory()._eips() == []


def test_deleting_a_bound_eip_is_refused_with_a_hint_and_changes_nothing(demo: Cloud) -> None:
    address = demo.by_name()["121.36.87.11"]

    with pytest.raises(PermanentError) as info:
        demo.destroyer().destroy(address, DestroyAction.DELETE, "k")

    assert info.value.code == "VPC.0517"
    assert info.value.hint and "server" in info.value.hint
    assert eip_status(demo, address.cloud_id or "") == "ACTIVE"


def test_an_eip_being_released_is_going(demo: Cloud) -> None:
    r = demo.by_name()
    d = demo.destroyer()
    d.destroy(r["web-1"], DestroyAction.DELETE, "k1")
    address = r["121.36.87.11"]
    req = DeletePublicipRequest(publicip_id=address.cloud_id)

    call("eip.DeletePublicip", lambda: demo.clients.eip.delete_publicip(req), idempotent=False)

    assert d.presence(address) is Presence.GOING


def test_unsubscribing_a_prepaid_eip_releases_it(tmp_path: Path) -> None:
    subs = ({"resource": "a-eip", "period": "month", "paid": "30.00"},)
    spec = web("a", "121.36.0.10", eip_charging="prePaid")
    for cloud in start(tmp_path, scenario(spec, subscriptions=subs)):
        r = {x.kind: x for x in cloud.inventory().resources()}
        d = cloud.destroyer()
        d.destroy(r[Kind.SERVER], DestroyAction.DELETE, "k1")

        with pytest.raises(PermanentError) as info:  # a yearly/monthly EIP: unsubscribe it
            d.destroy(r[Kind.ADDRESS], DestroyAction.DELETE, "k2")
        result = d.destroy(r[Kind.ADDRESS], DestroyAction.UNSUBSCRIBE, "k3")

        assert info.value.code == "VPC.0525" and "unsubscribe" in (info.value.hint or "")
        assert result.presence is Presence.GONE and len(result.order_ids) == 1
        assert d.presence(r[Kind.ADDRESS]) is Presence.GONE


def test_a_detached_pay_per_use_disk_is_deleted_and_then_gone(tmp_path: Path) -> None:
    loose = VolumeSpec(name="loose", disk=DiskSpec(size=10, files={"a.txt": "x"}))
    for cloud in start(tmp_path, scenario(volumes=(loose,))):
        vid = cloud.rig.ids["loose"]
        disk = Resource(
            urn=volume_urn(vid), type=VOLUME_TYPE, kind=Kind.VOLUME, name="loose", cloud_id=vid
        )
        d = cloud.destroyer()
        assert d.presence(disk) is Presence.EXISTS

        result = d.destroy(disk, DestroyAction.DELETE, "run1-destroy-loose")

        assert result.presence is Presence.GONE and result.job_id
        assert d.presence(disk) is Presence.GONE
        assert ("evs.DeleteVolume", 200) in cloud.rig.calls()


def test_deleting_an_attached_disk_is_refused_with_a_hint(tmp_path: Path) -> None:
    app = ServerSpec(name="app", data_disks=(DiskSpec(size=10, bound=False),))
    for cloud in start(tmp_path, scenario(app)):
        vid = cloud.rig.ids["app-data1"]
        disk = Resource(
            urn=volume_urn(vid), type=VOLUME_TYPE, kind=Kind.VOLUME, name="data", cloud_id=vid
        )

        with pytest.raises(PermanentError) as info:
            cloud.destroyer().destroy(disk, DestroyAction.DELETE, "k")

        assert info.value.code == "EVS.1046" and info.value.hint
        assert cloud.destroyer().presence(disk) is Presence.EXISTS


def test_other_kinds_are_still_not_deleted_by_this_destroyer(demo: Cloud) -> None:
    net = Resource(
        urn="cloud:huawei:vpc:x", type="huaweicloud:Vpc/vpc:Vpc", kind=Kind.NETWORK, name="x",
        cloud_id="x",
    )  # fmt: skip
    bandwidth = Resource(
        urn="urn:pulumi:s::p::huaweicloud:Vpc/bandwidth:Bandwidth::bw",
        type="huaweicloud:Vpc/bandwidth:Bandwidth",
        kind=Kind.ADDRESS,
        name="bw",
        cloud_id=demo.rig.ids["web-1-eip"],  # even an id that names an EIP
    )
    for other in (net, bandwidth):
        for action in (DestroyAction.DELETE, DestroyAction.UNSUBSCRIBE):
            with pytest.raises(PermanentError):
                demo.destroyer().destroy(other, action, "k")
        with pytest.raises(PermanentError):
            demo.destroyer().presence(other)
    assert demo.rig.calls("eip.DeletePublicip") == []


# -- profile ---------------------------------------------------------------------------------


def test_the_eip_endpoint_is_the_regions_vpc_endpoint_or_the_profiles(tmp_path: Path) -> None:
    real = HuaweiProfile("cn-north-4", "p", "d", "ak", "sk")
    four = {s: "http://127.0.0.1:1" for s in ("ecs", "evs", "cbr", "bss")}
    old = HuaweiProfile("cn-north-4", "p", "d", "ak", "sk", endpoints=four)
    layout = Layout(tmp_path)
    urls = {**four, "eip": "http://127.0.0.1:5"}
    write_profile(layout, SandboxConfig(), Endpoints(**urls), pid=1)

    assert real.endpoint("eip") == "https://vpc.cn-north-4.myhuaweicloud.com"
    assert load_profile(layout.profile).endpoint("eip") == "http://127.0.0.1:5"
    with pytest.raises(ConfigError, match=r"huawei\.endpoints\.eip: missing"):
        old.endpoint("eip")
    (tmp_path / "old.toml").write_text(
        '[huawei]\nregion="r"\nproject_id="p"\ndomain_id="d"\nak="a"\nsk="s"\n'
        "[huawei.endpoints]\n" + "".join(f'{k}="{v}"\n' for k, v in four.items())
    )
    assert load_profile(tmp_path / "old.toml").endpoint("ecs") == "http://127.0.0.1:1"
