"""The sandbox's EIP API, EVS DeleteVolume, DeleteServers' ``delete_publicip`` and what EIPs bill,
driven by the official SDK clients (``huaweicloudsdkeip.v2``, ``evs``, ``ecs``, ``bss``).

Facts and assumptions are listed in docs/huawei-api.md (sections EIP and EVS); a test whose name
holds ``assumption`` shows what the sandbox does where the reference is silent. Time moves only
with ``rig.advance``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from huaweicloudsdkbss.v2 import (
    CancelResourcesSubscriptionRequest,
    ListPayPerUseCustomerResourcesRequest,
    QueryResourcesReq,
    UnsubscribeResourcesReq,
)
from huaweicloudsdkcore.auth.credentials import BasicCredentials
from huaweicloudsdkcore.exceptions.exceptions import ClientRequestException
from huaweicloudsdkecs.v2 import (
    DeleteServersRequest,
    DeleteServersRequestBody,
    ServerId,
    ShowServerRequest,
)
from huaweicloudsdkeip.v2 import (
    DeletePublicipRequest,
    EipClient,
    ListPublicipsRequest,
    ShowPublicipRequest,
)
from huaweicloudsdkevs.v2 import (
    CreateSnapshotOption,
    CreateSnapshotRequest,
    CreateSnapshotRequestBody,
    DeleteVolumeRequest,
    ShowSnapshotRequest,
    ShowVolumeRequest,
)
from huaweicloudsdkevs.v2 import ShowJobRequest as EvsShowJobRequest

from teardown.core.errors import ConfigError
from teardown.sandbox.billing import still_billing
from teardown.sandbox.config import Faults
from teardown.sandbox.resources import volume_data_dir
from teardown.sandbox.scenario import DiskSpec, Scenario, ServerSpec, VolumeSpec, seed
from teardown.sandbox.store import Store
from tests.helpers import FakeClock
from tests.sandbox_rig import SandboxRig, bss, ecs, evs, running_sandbox
from tests.test_sandbox_api import raw_call

MODEL_FIELDS = {
    "id", "status", "type", "public_ip_address", "private_ip_address", "port_id", "tenant_id",
    "create_time", "bandwidth_id", "bandwidth_name", "bandwidth_share_type", "bandwidth_size",
    "enterprise_project_id", "ip_version", "alias", "profile",
}  # fmt: skip
"""``PublicipShowResp`` fields the sandbox fills (a subset of the SDK model's attribute_map)."""


# -- helpers -------------------------------------------------------------------------------


def eip(rig: SandboxRig) -> EipClient:
    a = rig.app.config.account
    creds = BasicCredentials(a.ak, a.sk, a.project_id)
    return (
        EipClient.new_builder().with_credentials(creds).with_endpoints([rig.endpoints.eip]).build()
    )


def web(name: str = "web", ip: str = "121.36.0.10", **kw: Any) -> ServerSpec:
    last = ip.rsplit(".", 1)[1]
    return ServerSpec(name=name, private_ip=f"192.168.0.{last}", public_ip=ip, **kw)


def scenario(
    *servers: ServerSpec,
    volumes: tuple[VolumeSpec, ...] = (),
    subscriptions: tuple[dict[str, Any], ...] = (),
) -> Scenario:
    return Scenario(name="eip-test", servers=servers, volumes=volumes, subscriptions=subscriptions)


def refused(call: Callable[[], object], status: int, code: str) -> ClientRequestException:
    with pytest.raises(ClientRequestException) as info:
        call()
    assert (info.value.status_code, info.value.error_code) == (status, code)
    assert info.value.error_msg
    return info.value


def show(rig: SandboxRig, eip_id: str) -> Any:
    return eip(rig).show_publicip(ShowPublicipRequest(publicip_id=eip_id)).publicip


def listed(rig: SandboxRig, **filters: Any) -> list[Any]:
    return list(eip(rig).list_publicips(ListPublicipsRequest(**filters)).publicips or [])


def delete(rig: SandboxRig, eip_id: str) -> Any:
    return eip(rig).delete_publicip(DeletePublicipRequest(publicip_id=eip_id))


def delete_servers(rig: SandboxRig, sid: str, delete_publicip: bool | None) -> None:
    body = DeleteServersRequestBody(servers=[ServerId(id=sid)], delete_publicip=delete_publicip)
    ecs(rig).delete_servers(DeleteServersRequest(body=body))
    rig.advance(rig.app.config.durations.delete_server + 1)
    settle(rig)


def settle(rig: SandboxRig) -> None:
    """Apply the timers that are due (a request applies them; a refused one rolls them back)."""
    listed(rig)


def floating(rig: SandboxRig, sid: str) -> list[tuple[str, str]]:
    server = ecs(rig).show_server(ShowServerRequest(server_id=sid)).server
    return [
        (a.addr, a.os_ext_ip_sport_id)
        for net in server.addresses.values()
        for a in net
        if a.os_ext_ip_stype == "floating"
    ]


def billing_eips(rig: SandboxRig) -> list[dict[str, Any]]:
    settle(rig)
    return [b for b in still_billing(rig.store.conn, rig.clock.now()) if b["kind"] == "eip"]


def eips_state(rig: SandboxRig) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in rig.store.conn.execute("SELECT * FROM eips ORDER BY id")]


# -- ListPublicips, ShowPublicip -------------------------------------------------------------


def test_a_servers_public_ip_is_an_eip_bound_to_its_port_shaped_as_the_sdk_models(
    tmp_path: Path,
) -> None:
    with running_sandbox(tmp_path, scenario(web(), ServerSpec(name="plain"))) as rig:
        sid, eid = rig.ids["web"], rig.ids["web-eip"]
        (e,) = listed(rig)
        raw = e.to_dict()

        assert e.id == eid == show(rig, eid).id
        assert (e.status, e.public_ip_address, e.private_ip_address) == (
            "ACTIVE", "121.36.0.10", "192.168.0.10",
        )  # fmt: skip
        assert floating(rig, sid) == [("121.36.0.10", e.port_id)]
        assert floating(rig, rig.ids["plain"]) == []
        assert (e.type, e.ip_version, e.bandwidth_share_type, e.bandwidth_size) == (
            "5_bgp", 4, "PER", 5,
        )  # fmt: skip
        assert e.tenant_id == rig.app.config.account.project_id
        assert e.create_time and "T" not in e.create_time  # "2015-07-16 04:22:32"
        assert e.profile is None  # pay-per-use: no order
        assert {k for k, v in raw.items() if v is not None} <= MODEL_FIELDS
        assert set(MODEL_FIELDS) - {"profile"} <= {k for k, v in raw.items() if v is not None}
        refused(lambda: show(rig, "no-such-eip"), 404, "VPC.0504")


def test_eip_ids_are_derived_from_the_scenario(tmp_path: Path) -> None:
    def seeded(root: Path) -> dict[str, str]:
        store = Store(root / "state.db")
        try:
            with store.tx() as conn:
                spec = web(id="5f0e1d2c-0000-4000-8000-000000000001")
                return seed(conn, root, scenario(spec), FakeClock().now())
        finally:
            store.close()

    assert seeded(tmp_path / "a")["web-eip"] == seeded(tmp_path / "b")["web-eip"]


def test_scenario_eip_keys_are_validated(tmp_path: Path) -> None:
    store = Store(tmp_path / "state.db")
    try:
        for bad in (web(eip_charging="spot"), web(eip_bandwidth_size=0)):
            with pytest.raises(ConfigError, match="eip_"), store.tx() as conn:
                seed(conn, tmp_path, scenario(bad), FakeClock().now())
    finally:
        store.close()


def test_list_publicips_filters_by_port_address_and_id_and_pages_by_marker(
    tmp_path: Path,
) -> None:
    servers = [web(f"web{i}", f"121.36.0.{10 + i}") for i in range(3)]
    with running_sandbox(tmp_path, scenario(*servers)) as rig:
        everything = listed(rig)
        ports = {e.public_ip_address: e.port_id for e in everything}

        assert len(everything) == 3
        by_port = listed(rig, port_id=[ports["121.36.0.10"], ports["121.36.0.12"]])
        assert sorted(e.public_ip_address for e in by_port) == ["121.36.0.10", "121.36.0.12"]
        assert [e.id for e in listed(rig, public_ip_address=["121.36.0.11"])] == [
            rig.ids["web1-eip"]
        ]
        assert [e.id for e in listed(rig, id=[rig.ids["web2-eip"]])] == [rig.ids["web2-eip"]]
        assert [e.id for e in listed(rig, private_ip_address=["192.168.0.10"])] == [
            rig.ids["web0-eip"]
        ]
        assert listed(rig, port_id=["port-nobody"]) == []

        first = listed(rig, limit=2)
        rest = listed(rig, limit=2, marker=first[-1].id)
        assert [e.id for e in first + rest] == [e.id for e in everything]
        assert listed(rig, limit=2, marker=rest[-1].id) == []
        refused(lambda: listed(rig, limit=-1), 400, "VPC.0501")


def test_assumption_eips_are_listed_oldest_first_and_an_unknown_marker_is_refused(
    tmp_path: Path,
) -> None:
    old = web("old", "121.36.0.20", provisioned_days_ago=9)
    new = web("new", "121.36.0.10", provisioned_days_ago=1)
    with running_sandbox(tmp_path, scenario(new, old)) as rig:
        assert [e.id for e in listed(rig)] == [rig.ids["old-eip"], rig.ids["new-eip"]]
        refused(lambda: listed(rig, marker="no-such-eip"), 400, "VPC.0501")


def test_the_ignore_filters_knob_makes_list_publicips_answer_everything(tmp_path: Path) -> None:
    with running_sandbox(
        tmp_path, scenario(web("a", "121.36.0.10"), web("b", "121.36.0.11"))
    ) as rig:
        port = listed(rig, id=[rig.ids["a-eip"]])[0].port_id
        rig.app.config = replace(
            rig.app.config, faults=Faults(ignore_filters=("eip.ListPublicips",))
        )

        assert len(listed(rig, port_id=[port])) == 2


def test_eip_errors_use_the_eip_apis_own_body(tmp_path: Path) -> None:
    with running_sandbox(tmp_path, scenario(web())) as rig:
        project = rig.app.config.account.project_id
        status, body = raw_call(rig, "eip", "GET", f"/v1/{project}/publicips/nope")

        assert status == 404
        assert body == {"code": "VPC.0504", "message": "Floating IP could not be found."}


# -- DeletePublicip --------------------------------------------------------------------------


def test_delete_publicip_refuses_a_bound_eip_with_vpc_0517_and_changes_nothing(
    tmp_path: Path,
) -> None:
    with running_sandbox(tmp_path, scenario(web())) as rig:
        before = eips_state(rig)

        refused(lambda: delete(rig, rig.ids["web-eip"]), 409, "VPC.0517")

        assert eips_state(rig) == before


def test_delete_publicip_refuses_a_prepaid_eip_with_vpc_0525(tmp_path: Path) -> None:
    spec = web(eip_charging="prePaid")
    with running_sandbox(tmp_path, scenario(spec)) as rig:
        eid = rig.ids["web-eip"]
        delete_servers(rig, rig.ids["web"], delete_publicip=False)  # unbound now
        assert show(rig, eid).status == "DOWN"

        refused(lambda: delete(rig, eid), 409, "VPC.0525")

        assert show(rig, eid).status == "DOWN"


def test_assumption_a_prepaid_bound_eip_is_refused_with_vpc_0525(tmp_path: Path) -> None:
    with running_sandbox(tmp_path, scenario(web(eip_charging="prePaid"))) as rig:
        refused(lambda: delete(rig, rig.ids["web-eip"]), 409, "VPC.0525")


def test_assumption_deleted_eip_is_pending_delete_then_gone_and_stops_billing(
    tmp_path: Path,
) -> None:
    with running_sandbox(tmp_path, scenario(web())) as rig:
        eid = rig.ids["web-eip"]
        delete_servers(rig, rig.ids["web"], delete_publicip=False)

        delete(rig, eid)

        assert show(rig, eid).status == "PENDING_DELETE"
        refused(lambda: delete(rig, eid), 409, "VPC.0512")
        rig.advance(rig.app.config.durations.delete_eip + 0.1)
        refused(lambda: show(rig, eid), 404, "VPC.0504")
        assert listed(rig) == []
        assert billing_eips(rig) == []
        assert ("eip.DeletePublicip", 204) in rig.calls()


# -- ECS DeleteServers delete_publicip -------------------------------------------------------


def test_delete_servers_with_delete_publicip_false_leaves_the_eip_unbound_and_billing(
    tmp_path: Path,
) -> None:
    with running_sandbox(tmp_path, scenario(web())) as rig:
        eid = rig.ids["web-eip"]

        delete_servers(rig, rig.ids["web"], delete_publicip=False)

        e = show(rig, eid)
        assert (e.status, e.port_id, e.private_ip_address) == ("DOWN", None, None)
        assert [(b["resource_id"], b["server_id"]) for b in billing_eips(rig)] == [(eid, None)]


def test_delete_servers_without_delete_publicip_follows_delete_on_termination(
    tmp_path: Path,
) -> None:
    with running_sandbox(tmp_path, scenario(web(), web("other", "121.36.0.11"))) as rig:
        with rig.store.tx() as conn:
            conn.execute(
                "UPDATE eips SET delete_on_termination=1 WHERE id=?", (rig.ids["other-eip"],)
            )

        delete_servers(rig, rig.ids["web"], delete_publicip=None)
        delete_servers(rig, rig.ids["other"], delete_publicip=None)

        assert show(rig, rig.ids["web-eip"]).status == "DOWN"  # default false: only unbound
        refused(lambda: show(rig, rig.ids["other-eip"]), 404, "VPC.0504")


def test_delete_servers_with_delete_publicip_true_releases_a_pay_per_use_eip(
    tmp_path: Path,
) -> None:
    with running_sandbox(tmp_path, scenario(web())) as rig:
        delete_servers(rig, rig.ids["web"], delete_publicip=True)

        refused(lambda: show(rig, rig.ids["web-eip"]), 404, "VPC.0504")
        assert billing_eips(rig) == []


def test_assumption_delete_publicip_true_only_unbinds_a_prepaid_eip(tmp_path: Path) -> None:
    with running_sandbox(tmp_path, scenario(web(eip_charging="prePaid"))) as rig:
        delete_servers(rig, rig.ids["web"], delete_publicip=True)

        e = show(rig, rig.ids["web-eip"])
        assert (e.status, e.port_id) == ("DOWN", None)
        assert e.profile.order_id


# -- prepaid EIPs in BSS ---------------------------------------------------------------------


def test_assumption_a_prepaid_eip_bills_as_hws_resource_type_ip_and_unsubscribing_releases_it(
    tmp_path: Path,
) -> None:
    subs = ({"resource": "web-eip", "period": "month", "paid": "60.00"},)
    with running_sandbox(
        tmp_path, scenario(web(eip_charging="prePaid"), subscriptions=subs)
    ) as rig:
        eid = rig.ids["web-eip"]
        client = bss(rig)
        req = ListPayPerUseCustomerResourcesRequest(body=QueryResourcesReq(resource_ids=[eid]))
        (row,) = client.list_pay_per_use_customer_resources(req).data
        e = show(rig, eid)
        (entry,) = [
            b for b in still_billing(rig.store.conn, rig.clock.now()) if b.get("resource_id") == eid
        ]

        assert (row.resource_type_code, row.service_type_code, row.is_main_resource) == (
            "hws.resource.type.ip", "hws.service.type.vpc", 1,
        )  # fmt: skip
        ledger = rig.store.conn.execute(
            "SELECT order_id FROM subscriptions WHERE resource_id=?", (eid,)
        ).fetchone()
        assert e.profile.order_id == ledger[0] and e.profile.order_id.startswith("CS")
        assert (entry["kind"], entry["billing"]) == ("eip", "prePaid")
        assert billing_eips(rig) == [entry]  # not also billed by the hour

        body = UnsubscribeResourcesReq(resource_ids=[eid], unsubscribe_type=1)
        orders = client.cancel_resources_subscription(CancelResourcesSubscriptionRequest(body=body))
        assert orders.order_ids
        rig.advance(rig.app.config.durations.release + 1)

        refused(lambda: show(rig, eid), 404, "VPC.0504")
        assert floating(rig, rig.ids["web"]) == []  # assumption: released although bound
        assert billing_eips(rig) == []


def test_a_prepaid_eip_without_a_subscription_entry_gets_the_default_one(tmp_path: Path) -> None:
    with running_sandbox(tmp_path, scenario(web(eip_charging="prePaid"))) as rig:
        (entry,) = billing_eips(rig)
        assert (entry["resource_id"], entry["billing"]) == (rig.ids["web-eip"], "prePaid")


def test_assumption_an_unsubscribed_prepaid_server_leaves_its_eip_unbound_and_billing(
    tmp_path: Path,
) -> None:
    with running_sandbox(tmp_path, scenario(web(charging="prePaid"))) as rig:
        body = UnsubscribeResourcesReq(resource_ids=[rig.ids["web"]], unsubscribe_type=1)
        bss(rig).cancel_resources_subscription(CancelResourcesSubscriptionRequest(body=body))
        rig.advance(rig.app.config.durations.release + 1)

        assert show(rig, rig.ids["web-eip"]).status == "DOWN"
        assert [b["server_id"] for b in billing_eips(rig)] == [None]


def test_still_billing_lists_a_live_pay_per_use_eip_by_the_hour(tmp_path: Path) -> None:
    spec = web(eip_hourly_price=Decimal("0.45"))
    with running_sandbox(tmp_path, scenario(spec)) as rig:
        assert billing_eips(rig) == [
            {
                "kind": "eip",
                "resource_id": rig.ids["web-eip"],
                "name": "121.36.0.10",
                "charging": "hourly",
                "hourly_price": Decimal("0.45"),
                "server_id": rig.ids["web"],
                "billing": "postPaid",
            }
        ]


# -- EVS DeleteVolume ------------------------------------------------------------------------


def test_delete_volume_refuses_an_attached_disk_with_evs_1046(tmp_path: Path) -> None:
    app = ServerSpec(name="app", data_disks=(DiskSpec(size=10, bound=False),))
    with running_sandbox(tmp_path, scenario(app)) as rig:
        vid = rig.ids["app-data1"]

        refused(lambda: evs(rig).delete_volume(DeleteVolumeRequest(volume_id=vid)), 400, "EVS.1046")

        assert evs(rig).show_volume(ShowVolumeRequest(volume_id=vid)).volume.status == "in-use"


def test_delete_volume_refuses_a_prepaid_disk_with_evs_1035(tmp_path: Path) -> None:
    loose = VolumeSpec(name="loose", disk=DiskSpec(size=10, charging="prePaid"))
    with running_sandbox(tmp_path, scenario(volumes=(loose,))) as rig:
        vid = rig.ids["loose"]
        refused(lambda: evs(rig).delete_volume(DeleteVolumeRequest(volume_id=vid)), 400, "EVS.1035")


def test_assumption_a_prepaid_attached_disk_is_refused_with_evs_1035(tmp_path: Path) -> None:
    app = ServerSpec(name="app", data_disks=(DiskSpec(size=10, bound=False, charging="prePaid"),))
    with running_sandbox(tmp_path, scenario(app)) as rig:
        vid = rig.ids["app-data1"]
        refused(lambda: evs(rig).delete_volume(DeleteVolumeRequest(volume_id=vid)), 400, "EVS.1035")


def test_delete_volume_of_a_detached_pay_per_use_disk_runs_a_job_then_it_is_gone(
    tmp_path: Path,
) -> None:
    loose = VolumeSpec(name="loose", disk=DiskSpec(size=10, files={"a.txt": "data"}))
    with running_sandbox(tmp_path, scenario(volumes=(loose,))) as rig:
        vid = rig.ids["loose"]
        client = evs(rig)
        option = CreateSnapshotOption(volume_id=vid, name="before")
        snap = client.create_snapshot(
            CreateSnapshotRequest(body=CreateSnapshotRequestBody(snapshot=option))
        ).snapshot
        rig.advance(2)

        job_id = client.delete_volume(DeleteVolumeRequest(volume_id=vid)).job_id
        job = client.show_job(EvsShowJobRequest(job_id=job_id))

        assert (job.status, job.job_type, job.entities.volume_id) == (
            "INIT", "deleteVolume", vid,
        )  # fmt: skip  # EVS jobs start in INIT as ECS jobs do (ShowJob's documented statuses)
        assert client.show_volume(ShowVolumeRequest(volume_id=vid)).volume.status == "deleting"
        rig.advance(0.5)
        assert client.show_job(EvsShowJobRequest(job_id=job_id)).status == "RUNNING"
        rig.advance(rig.app.config.durations.delete_volume + 0.1)
        assert client.show_job(EvsShowJobRequest(job_id=job_id)).status == "SUCCESS"
        refused(lambda: client.show_volume(ShowVolumeRequest(volume_id=vid)), 404, "EVS.5404")
        refused(
            lambda: client.show_snapshot(ShowSnapshotRequest(snapshot_id=snap.id)), 404, "EVS.5404"
        )
        assert not volume_data_dir(rig.data_dir, vid).exists()
        assert all(
            b.get("resource_id") != vid for b in still_billing(rig.store.conn, rig.clock.now())
        )
        assert ("evs.DeleteVolume", 200) in rig.calls()


def test_a_disk_detached_by_deleting_its_server_can_then_be_deleted(tmp_path: Path) -> None:
    app = ServerSpec(name="app", data_disks=(DiskSpec(size=10, bound=False),))
    with running_sandbox(tmp_path, scenario(app)) as rig:
        vid = rig.ids["app-data1"]
        delete_servers(rig, rig.ids["app"], delete_publicip=False)

        evs(rig).delete_volume(DeleteVolumeRequest(volume_id=vid))
        rig.advance(rig.app.config.durations.delete_volume + 0.1)

        refused(lambda: evs(rig).show_volume(ShowVolumeRequest(volume_id=vid)), 404, "EVS.5404")


def test_sandbox_status_lists_eips(tmp_path: Path) -> None:
    from teardown.sandbox.runtime import status

    with running_sandbox(tmp_path, scenario(web())) as rig:
        eid = rig.ids["web-eip"]
    info = status(tmp_path)
    assert [(e["id"], e["status"]) for e in info["eips"]] == [(eid, "ACTIVE")]
    assert json.dumps(info, default=str)
