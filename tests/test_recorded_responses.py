"""The adapter against recorded-shape answers (Huawei's published response examples, served over
HTTP to the official SDK) from a service that ignores the filters it is sent: only what came
back counts, never what was asked for (I1b)."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest

from teardown.adapters.huawei.clients import Clients
from teardown.adapters.huawei.destroyer import HuaweiDestroyer
from teardown.adapters.huawei.inventory import HuaweiInventory, server_urn
from teardown.adapters.huawei.snapshots import CbrSnapshotter
from teardown.core.config import Config
from teardown.core.model import DestroyAction, Kind, Resource
from teardown.core.planner import make_plan
from tests.recorded import Recorded, fixture, recorded_cloud

P = r"/v\d/[^/]+"


@pytest.fixture
def cloud() -> Iterator[Recorded]:
    with recorded_cloud() as rec:
        rec.answer("GET", P + "/cloudservers/detail", fixture("ecs_list_servers_details.json"))
        rec.answer("GET", P + "/cloudvolumes/detail", fixture("evs_list_volumes.json"))
        rec.answer("GET", P + "/backups", fixture("cbr_list_backups.json"))
        rec.answer("GET", P + "/checkpoints/cp-target", fixture("cbr_show_checkpoint.json"))
        rec.answer("GET", "/v2/orders/customer-orders", {"total_count": 0, "order_infos": []})
        yield rec


def target() -> Resource:
    return Resource(
        urn=server_urn("target-server"),
        type="huaweicloud:Ecs/instance:Instance",
        kind=Kind.SERVER,
        name="target",
        cloud_id="target-server",
    )


def snapshotter(rec: Recorded) -> CbrSnapshotter:
    return CbrSnapshotter(Clients(rec.profile), "vault", sleep=lambda _s: None)


def test_backups_of_other_resources_in_the_answer_do_not_verify_a_checkpoint(
    cloud: Recorded,
) -> None:
    art = snapshotter(cloud).wait(target(), "cp-target")
    assert not art.verified
    assert "does not list target (target-server)" in art.detail
    assert art.size == 0


def test_a_checkpoint_listing_the_target_still_needs_a_backup_of_it(cloud: Recorded) -> None:
    shown = copy.deepcopy(fixture("cbr_show_checkpoint.json"))
    shown["checkpoint"]["vault"]["resources"][0]["id"] = "target-server"
    cloud.answer("GET", P + "/checkpoints/cp-target", shown)

    art = snapshotter(cloud).wait(target(), "cp-target")

    assert not art.verified  # three other backups came back, 110 GiB of them: none counts
    assert "holds no backup of target" in art.detail
    assert "3 backups of other checkpoints or resources ignored" in art.detail
    problem = snapshotter(cloud).check(target(), art)
    assert problem is not None and "no longer holds a backup of target" in problem
    # the answer was asked with the checkpoint filter: it was ignored, and that is the point
    assert any("checkpoint_id=cp-target" in path for _m, path, _b in cloud.requests)


def test_a_backup_whose_own_record_names_the_target_verifies(cloud: Recorded) -> None:
    shown = copy.deepcopy(fixture("cbr_show_checkpoint.json"))
    shown["checkpoint"]["vault"]["resources"][0]["id"] = "target-server"
    listed: dict[str, Any] = copy.deepcopy(fixture("cbr_list_backups.json"))
    ours = listed["backups"][0]
    ours.update(checkpoint_id="cp-target", resource_id="target-server")
    ours["children"][0]["checkpoint_id"] = "cp-target"
    cloud.answer("GET", P + "/checkpoints/cp-target", shown)
    cloud.answer("GET", P + "/backups", listed)

    art = snapshotter(cloud).wait(target(), "cp-target")

    assert art.verified, art.detail
    assert art.size == 40 * 2**30  # its own 40 GiB, not the 110 GiB of the whole answer
    assert art.origin.resource_id == "target-server"
    assert art.origin.account == "huawei:cn-north-4:4229d7a45436489f8c3dc2b1d35d4987"
    assert art.covers == ("other-volume-1",)
    assert "2 backups of other checkpoints or resources ignored" in art.detail


def test_a_server_without_the_requested_tag_never_enters_the_plan(cloud: Recorded) -> None:
    inventory = HuaweiInventory(Clients(cloud.profile), sleep=lambda _s: None)
    found = inventory.resources(tags=[("env", "ci")])
    # the service ignored the tag filter and returned prod-db-1 too
    assert any("tags=env%3Dci" in path or "tags=env=ci" in path for _m, path, _b in cloud.requests)
    assert [r.name for r in found if r.kind is Kind.SERVER] == ["ci-web-1"]
    by_id = inventory.resources(server_ids=["srv-untagged"], tags=[("env", "ci")])
    assert by_id == []


def test_disks_that_ecs_and_evs_disagree_on_are_never_deleted_with_the_server(
    cloud: Recorded,
) -> None:
    calls: list[dict[str, Any]] = []

    def delete(request: Any) -> dict[str, Any]:
        calls.append(request.get_json())
        return {"job_id": "job-1"}

    cloud.answer("POST", P + "/cloudservers/delete", delete)
    cloud.answer("GET", P + "/jobs/job-1", {"job_id": "job-1", "status": "SUCCESS"})
    inventory = HuaweiInventory(Clients(cloud.profile), sleep=lambda _s: None)

    (web,) = [r for r in inventory.resources(tags=[("env", "ci")]) if r.kind is Kind.SERVER]
    # ECS lists two disks; EVS also reports vol-extra-tagged attached to this server
    assert [d.id for d in web.disks] == ["vol-sys-tagged", "vol-data-tagged", "vol-extra-tagged"]
    assert not web.disks_known
    rp = make_plan([web], Config(), "ci").resources[0]
    assert rp.destroy is not None and not rp.destroy.delete_volumes

    HuaweiDestroyer(Clients(cloud.profile), sleep=lambda _s: None).destroy(
        web, DestroyAction.DELETE, "k", delete_volumes=rp.destroy.delete_volumes
    )
    assert calls[0]["delete_volume"] is False


def test_a_server_with_no_disk_known_is_not_deleted_with_its_disks(cloud: Recorded) -> None:
    cloud.answer("GET", P + "/cloudvolumes/detail", {"count": 0, "volumes": []})
    inventory = HuaweiInventory(Clients(cloud.profile), sleep=lambda _s: None)
    (web,) = [r for r in inventory.resources(tags=[("env", "ci")]) if r.kind is Kind.SERVER]
    assert not web.disks_known  # ECS lists two disks, EVS none
    empty = make_plan([web.__class__(**{**web.__dict__, "disks": ()})], Config(), "ci")
    step = empty.resources[0].destroy
    assert step is not None and not step.delete_volumes
