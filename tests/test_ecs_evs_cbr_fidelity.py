"""ECS, EVS and CBR as Huawei's published API answers, through the official SDK clients against
the sandbox, and the adapter reading those answers (docs/huawei-api.md, ECS, EVS and CBR).

One test per rule; a test whose name contains ``assumption`` shows what the sandbox does where
no source settles the behaviour (each is listed as an assumption in docs/huawei-api.md).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from huaweicloudsdkcbr.v1 import (
    CheckpointParam,
    CreateCheckpointRequest,
    ListBackupsRequest,
    ShowBackupRequest,
    ShowCheckpointRequest,
    VaultBackup,
    VaultBackupReq,
)
from huaweicloudsdkcore.exceptions.exceptions import ClientRequestException
from huaweicloudsdkecs.v2 import (
    BatchStopServersOption,
    BatchStopServersRequest,
    BatchStopServersRequestBody,
    DeleteServersRequest,
    DeleteServersRequestBody,
    ListServersDetailsRequest,
    ServerDetail,
    ServerExtendVolumeAttachment,
    ServerId,
    ShowJobRequest,
    ShowServerRequest,
)
from huaweicloudsdkevs.v2 import Attachment, ListVolumesRequest, ShowVolumeRequest, VolumeDetail

from teardown.adapters.huawei import CbrSnapshotter, Clients, HuaweiDestroyer, HuaweiInventory
from teardown.adapters.huawei._parse import parse_flag, parse_time
from teardown.adapters.huawei.errors import HINTS
from teardown.adapters.huawei.inventory import _ServerFacts, server_lock
from teardown.adapters.huawei.profile import HuaweiProfile
from teardown.adapters.huawei.snapshots import NAME_MAX, checkpoint_name
from teardown.core.errors import PermanentError
from teardown.core.model import DestroyAction, Resource, SnapshotKind
from teardown.ports import Presence
from teardown.sandbox.config import Faults
from teardown.sandbox.resources import SERVER_DETAIL_KEYS, server_json, server_stub
from teardown.sandbox.scenario import DiskSpec, Scenario, ServerSpec, to_period_order_id
from tests.sandbox_rig import SandboxRig, cbr, ecs, evs, running_sandbox

VAULT = "vault-sandbox"
NO_ZONE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}$")
"""How EVS and CBR write times: UTC, no zone, microseconds (``2019-05-10T07:59:12.084695``)."""


@dataclass
class Cloud:
    rig: SandboxRig
    clients: Clients
    slept: list[float] = field(default_factory=list)

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.rig.advance(seconds)

    def inventory(self) -> HuaweiInventory:
        return HuaweiInventory(self.clients, sleep=self.sleep)

    def destroyer(self, poll_interval: float = 2.0) -> HuaweiDestroyer:
        return HuaweiDestroyer(self.clients, sleep=self.sleep, poll_interval=poll_interval)

    def snapshotter(self) -> CbrSnapshotter:
        return CbrSnapshotter(self.clients, VAULT, sleep=self.sleep)

    def by_name(self) -> dict[str, Resource]:
        return {r.name: r for r in self.inventory().resources()}


@contextmanager
def cloud(root: Path, *servers: ServerSpec) -> Iterator[Cloud]:
    with running_sandbox(root, Scenario(name="fidelity", servers=servers)) as rig:
        a = rig.app.config.account
        profile = HuaweiProfile(
            a.region, a.project_id, a.domain_id, a.ak, a.sk,
            endpoints=rig.endpoints.as_dict(), vault_id=VAULT,
        )  # fmt: skip
        yield Cloud(rig, Clients(profile))


def refused(call: Callable[[], object], status: int, code: str) -> ClientRequestException:
    with pytest.raises(ClientRequestException) as info:
        call()
    assert (info.value.status_code, info.value.error_code) == (status, code)
    return info.value


def delete(rig: SandboxRig, *ids: str) -> str:
    body = DeleteServersRequestBody(servers=[ServerId(id=i) for i in ids], delete_publicip=False)
    return str(ecs(rig).delete_servers(DeleteServersRequest(body=body)).job_id)


def show(rig: SandboxRig, server_id: str) -> Any:
    return ecs(rig).show_server(ShowServerRequest(server_id=server_id)).server


def job(rig: SandboxRig, job_id: str) -> Any:
    return ecs(rig).show_job(ShowJobRequest(job_id=job_id))


def servers_table(rig: SandboxRig) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in rig.store.conn.execute("SELECT * FROM servers ORDER BY id")]


def checkpoint(rig: SandboxRig, resource_id: str, **params: Any) -> Any:
    body = VaultBackupReq(
        checkpoint=VaultBackup(
            vault_id=VAULT, parameters=CheckpointParam(resources=[resource_id], **params)
        )
    )
    return cbr(rig).create_checkpoint(CreateCheckpointRequest(body=body)).checkpoint


# -- 1. locks --------------------------------------------------------------------------------


def test_a_locked_pay_per_use_server_is_not_deleted(tmp_path: Path) -> None:
    with cloud(tmp_path, ServerSpec(name="conv", locked=True), ServerSpec(name="free")) as c:
        sid = c.rig.ids["conv"]
        server = show(c.rig, sid)
        meta = server.metadata
        # The documented lock: an order converting the pay-per-use server to yearly/monthly.
        assert server.locked is True and meta["charging_mode"] == "0"
        assert meta["lockSource"] == "ORDER"
        assert meta["lockScene"] == "TO_PERIOD_LOCK"
        assert meta["lockSourceId"] == to_period_order_id(sid)
        assert meta["lockCheckEndpoint"] == ""
        assert "metering.order_id" not in meta  # still pay-per-use until the order is paid
        assert "lockScene" not in show(c.rig, c.rig.ids["free"]).metadata

        before = servers_table(c.rig)
        refused(lambda: delete(c.rig, sid), 400, "Ecs.0605")
        refused(lambda: delete(c.rig, c.rig.ids["free"], sid), 400, "Ecs.0605")  # whole batch
        c.rig.advance(10)
        assert servers_table(c.rig) == before

        conv = c.by_name()["conv"]
        assert conv.billing.locked and conv.billing.lock_order_id == to_period_order_id(sid)
        assert not c.by_name()["free"].billing.locked
        with pytest.raises(PermanentError) as info:
            c.destroyer().destroy(conv, DestroyAction.DELETE, "k")
        assert info.value.code == "Ecs.0605"
        assert info.value.hint is not None and "lockSourceId" in info.value.hint
        assert c.destroyer().presence(conv) is Presence.EXISTS


def test_assumption_a_locked_prepaid_server_shows_to_period_lock_by_its_own_order(
    tmp_path: Path,
) -> None:
    with cloud(tmp_path, ServerSpec(name="yearly", charging="prePaid", locked=True)) as c:
        meta = show(c.rig, c.rig.ids["yearly"]).metadata
        assert meta["lockSource"] == "ORDER" and meta["lockScene"] == "TO_PERIOD_LOCK"
        assert meta["lockSourceId"] == meta["metering.order_id"]
        # Both refusals apply; the prepaid one is answered first.
        refused(lambda: delete(c.rig, c.rig.ids["yearly"]), 400, "Ecs.0513")


def test_an_unlocked_prepaid_server_has_the_lock_keys_empty_and_is_not_locked(
    tmp_path: Path,
) -> None:
    with cloud(tmp_path, ServerSpec(name="yearly", charging="prePaid")) as c:
        server = show(c.rig, c.rig.ids["yearly"])
        assert server.locked is False
        lock_keys = ("lockCheckEndpoint", "lockSource", "lockSourceId", "lockScene")
        assert {k: server.metadata[k] for k in lock_keys} == dict.fromkeys(lock_keys, "")
        assert server_lock(server) == (False, None)
        assert not c.by_name()["yearly"].billing.locked


def test_the_lock_order_is_read_only_from_an_order_source() -> None:
    def detail(locked: bool, **meta: str) -> ServerDetail:
        return ServerDetail(id="s", locked=locked, metadata=meta)

    order = {"lockSourceId": "CS1", "lockScene": "TO_PERIOD_LOCK"}
    assert server_lock(detail(True, lockSource="ORDER", **order)) == (True, "CS1")
    assert server_lock(detail(False, lockSource="ORDER", **order)) == (True, "CS1")
    assert server_lock(detail(True, **order)) == (True, "CS1")  # no source named: an order's
    assert server_lock(detail(True, lockSource="OTHER", **order)) == (True, None)
    assert server_lock(detail(True)) == (True, None)  # the Nova lock: no order holds it


# -- 2. error codes --------------------------------------------------------------------------


def test_ecs_0219_is_not_used_for_prepaid_deletes(tmp_path: Path) -> None:
    with cloud(tmp_path, ServerSpec(name="yearly", charging="prePaid")) as c:
        e = refused(lambda: delete(c.rig, c.rig.ids["yearly"]), 400, "Ecs.0513")
        assert "cycle order" in e.error_msg

        with pytest.raises(PermanentError) as info:
            c.destroyer().destroy(c.by_name()["yearly"], DestroyAction.DELETE, "k")
        assert info.value.code == "Ecs.0513"
        assert info.value.hint is not None and "unsubscribe" in info.value.hint
    assert "Ecs.0219" not in HINTS  # "failed to create the ECS": nothing teardown does


def test_assumption_a_failed_delete_job_carries_ecs_0501_not_the_quota_code(
    tmp_path: Path,
) -> None:
    with cloud(tmp_path, ServerSpec(name="stuck")) as c:
        sid = c.rig.ids["stuck"]
        stuck = c.by_name()["stuck"]
        c.rig.app.config = replace(c.rig.app.config, faults=Faults(failing_jobs=(sid,)))
        with pytest.raises(PermanentError) as info:
            c.destroyer().destroy(stuck, DestroyAction.DELETE, "k")
        assert info.value.code == "Ecs.0501"  # "Failed to delete the ECS"; Ecs.0001 is quota
        assert info.value.hint is not None and "run again" in info.value.hint
        assert c.destroyer().presence(stuck) is Presence.EXISTS


# -- 3. enums, statuses, shapes --------------------------------------------------------------


def test_show_job_init_is_polled_as_running(tmp_path: Path) -> None:
    with cloud(tmp_path, ServerSpec(name="a"), ServerSpec(name="b")) as c:
        job_id = delete(c.rig, c.rig.ids["a"])
        first = job(c.rig, job_id)
        assert first.status == "INIT"
        assert [s.status for s in first.entities.sub_jobs] == ["INIT"]
        c.rig.advance(0.5)
        assert job(c.rig, job_id).status == "RUNNING"
        c.rig.advance(1.5)
        done = job(c.rig, job_id)
        assert done.status == "SUCCESS" and (done.error_code, done.fail_reason) == (None, None)

        seen: list[str] = []
        client = c.clients.ecs
        original = client.show_job

        def show_job(request: Any) -> Any:
            answer = original(request)
            seen.append(answer.status)
            return answer

        client.show_job = show_job
        result = c.destroyer(poll_interval=0.25).destroy(
            c.by_name()["b"], DestroyAction.DELETE, "k"
        )
        assert result.presence is Presence.GONE
        assert seen[0] == "INIT" and "RUNNING" in seen and seen[-1] == "SUCCESS"


def test_list_offset_zero_is_the_first_page(tmp_path: Path) -> None:
    servers = [ServerSpec(name=f"s{i:02d}") for i in range(26)]
    with cloud(tmp_path, *servers) as c:
        client = ecs(c.rig)

        def ids(**query: Any) -> tuple[int, list[str]]:
            r = client.list_servers_details(ListServersDetailsRequest(**query))
            return r.count, [s.id for s in r.servers]

        assert ids(offset=0, limit=10) == ids(offset=1, limit=10)
        assert ids(offset=0, limit=10)[1] != ids(offset=2, limit=10)[1]
        count, default_page = ids()
        assert (count, len(default_page)) == (26, 25)  # limit defaults to 25
        refused(lambda: ids(offset=-1), 400, "Ecs.0005")
        assert len(c.inventory().resources()) == 26  # pages from 1, 1000 a page


def test_assumption_an_unknown_server_id_is_a_stub_counted_in_count(tmp_path: Path) -> None:
    with cloud(tmp_path, ServerSpec(name="real")) as c:
        real = c.rig.ids["real"]
        r = ecs(c.rig).list_servers_details(
            ListServersDetailsRequest(server_id=f"no-such-server,{real}")
        )
        assert r.count == 2 and [s.id for s in r.servers] == ["no-such-server", real]
        stub = r.servers[0]
        assert stub.fault["code"] == 404
        assert (stub.name, stub.status, stub.metadata, stub.tags, stub.flavor) == (None,) * 5
        raw = server_stub("x", c.rig.clock.now())
        assert set(raw) == set(SERVER_DETAIL_KEYS)
        assert {k for k, v in raw.items() if v is not None} == {"id", "fault"}

        found = c.inventory().resources(server_ids=["no-such-server", real])
        assert [x.cloud_id for x in found] == [real]  # the stub never enters a plan


def test_task_state_deleting_is_reported_as_going(tmp_path: Path) -> None:
    with cloud(tmp_path, ServerSpec(name="web"), ServerSpec(name="app")) as c:
        web = c.by_name()["web"]
        assert show(c.rig, web.cloud_id or "").os_ext_st_stask_state is None
        delete(c.rig, web.cloud_id or "")
        going = show(c.rig, web.cloud_id or "")
        # "active" + "deleting" is still ACTIVE (the reference's table of the three states).
        assert (going.status, going.os_ext_st_stask_state) == ("ACTIVE", "deleting")
        assert c.destroyer().presence(web) is Presence.GOING
        c.rig.advance(2)
        assert c.destroyer().presence(web) is Presence.GONE

        app_id = c.rig.ids["app"]
        stop = BatchStopServersRequestBody(
            os_stop=BatchStopServersOption(servers=[ServerId(id=app_id)], type="SOFT")
        )
        ecs(c.rig).batch_stop_servers(BatchStopServersRequest(body=stop))
        assert show(c.rig, app_id).os_ext_st_stask_state == "powering-off"
        c.rig.advance(1)
        stopped = show(c.rig, app_id)
        assert (stopped.status, stopped.os_ext_st_stask_state) == ("SHUTOFF", None)


def test_a_server_detail_carries_the_documented_fields(tmp_path: Path) -> None:
    with cloud(tmp_path, ServerSpec(name="web", flavor="s6.large.2")) as c:
        server = show(c.rig, c.rig.ids["web"])
        f = server.flavor
        assert (f.id, f.name) == ("s6.large.2", "s6.large.2")
        assert (f.vcpus, f.ram, f.disk) == ("2", "4096", "0")  # strings; ram in MB
        assert [g.name for g in server.security_groups] == ["default"]
        assert [(t.key, t.value) for t in server.sys_tags] == [("_sys_enterprise_project_id", "0")]
        documented = {
            "charging_mode", "vpc_id", "metering.image_id", "metering.imagetype",
            "metering.resourcespeccode", "metering.resourcetype", "image_name", "os_bit",
            "os_type",
        }  # fmt: skip
        assert documented <= set(server.metadata)
        assert server.metadata["metering.resourcespeccode"] == "s6.large.2.linux"
        assert server.tenant_id == c.rig.app.config.account.project_id
        assert NO_ZONE.match(server.os_srv_us_glaunched_at)  # ECS: launched_at has no zone
        assert server.created.endswith("Z")  # ECS: created/updated in UTC with Z
        row = c.rig.store.conn.execute(
            "SELECT * FROM servers WHERE id=?", (c.rig.ids["web"],)
        ).fetchone()
        assert list(server_json(c.rig.store.conn, row, c.rig.data_dir)) == list(SERVER_DETAIL_KEYS)


def test_bootable_false_in_any_case(tmp_path: Path) -> None:
    with cloud(tmp_path, ServerSpec(name="app", data_disks=(DiskSpec(size=10),))) as c:
        client = evs(c.rig)
        system = client.show_volume(ShowVolumeRequest(volume_id=c.rig.ids["app-sys"])).volume
        data = client.show_volume(ShowVolumeRequest(volume_id=c.rig.ids["app-data1"])).volume
        assert (system.bootable, data.bootable) == ("true", "false")  # strings, as documented

    assert [parse_flag(v) for v in ("true", "True", "TRUE", "false", "False", " FALSE ")] == [
        True, True, True, False, False, False,
    ]  # fmt: skip
    unclear = [parse_flag(v) for v in (None, "", "yes")]
    assert unclear == [None, None, None] and (parse_flag(True), parse_flag(False)) == (True, False)

    # An attachment that does not give its bootIndex: EVS's bootable says, in any case.
    def facts(bootable: str, device: str = "/dev/vda") -> Any:
        server = ServerDetail(
            id="s",
            metadata={"charging_mode": "0"},
            os_ext_srv_att_rroot_device_name="/dev/vda",
            os_extended_volumesvolumes_attached=[
                ServerExtendVolumeAttachment(id="v", device=device, delete_on_termination="False")
            ],
        )
        volume = VolumeDetail(
            id="v", size=40, bootable=bootable,
            attachments=[Attachment(server_id="s", device=device)],
        )  # fmt: skip
        (disk,) = _ServerFacts.of(server, {"v": volume}).disks
        return disk

    assert facts("False").system is False
    assert facts("false").system is False
    assert facts("True").system is True
    assert facts("true", device="/dev/vdb").system is False  # bootable, but not the root device
    assert facts("False").delete_on_termination is False  # ECS's flag, "False" read as false


def wire(value: object) -> str:
    """A time as it was on the wire. The SDK hands it over as the string, or, when
    ``python-dateutil`` is installed (boto3 brings it), as the datetime it parsed after
    appending ``Z`` to a time written without a zone (``huaweicloudsdkcore.client``
    ``_deserialize_data_time``): UTC, as teardown's ``parse_time`` takes such a time."""
    if isinstance(value, datetime):
        assert value.utcoffset() == timedelta(0), value  # read as UTC
        return value.replace(tzinfo=None).isoformat(timespec="microseconds")
    return str(value)


def test_cbr_times_without_zone_parse(tmp_path: Path) -> None:
    with cloud(tmp_path, ServerSpec(name="app")) as c:
        now = c.rig.clock.now()
        made = checkpoint(c.rig, c.rig.ids["app"], name="k", retention_duration_days=3)
        assert NO_ZONE.match(wire(made.created_at))
        c.rig.advance(2)
        (backup,) = cbr(c.rig).list_backups(ListBackupsRequest(checkpoint_id=made.id)).backups
        for value in (backup.created_at, backup.updated_at, backup.expired_at):
            assert NO_ZONE.match(wire(value)), value
        assert parse_time(backup.created_at) == now
        assert parse_time(backup.expired_at) == now + timedelta(days=3)
        volume = evs(c.rig).list_volumes(ListVolumesRequest(server_id=c.rig.ids["app"])).volumes[0]
        assert NO_ZONE.match(wire(volume.created_at))
        assert NO_ZONE.match(wire(volume.attachments[0].attached_at))

        app = c.by_name()["app"]
        art = c.snapshotter().wait(app, made.id)
        assert art.verified, art.detail
        assert f"made {now.isoformat()}" in art.detail
        assert f"CBR deletes it at {(now + timedelta(days=3)).isoformat()}" in art.detail

    utc = datetime(2019, 5, 10, 7, 59, 12, 84695, tzinfo=UTC)
    for text in (
        "2019-05-10T07:59:12.084695",  # CBR, EVS: no zone, UTC
        "2019-05-10t07:59:12.084695",  # an EVS snapshot example
        "2019-05-10T07:59:12.084695Z",
        "2019-05-10T07:59:12.084695z",
        "2019-05-10T07:59:12.084695+00:00",
        "2019-05-10T15:59:12.084695+08:00",
    ):
        assert parse_time(text) == utc, text
    assert parse_time("not a time") is None


def test_cbr_server_backups_list_no_children_and_show_backup_lists_them(tmp_path: Path) -> None:
    app = ServerSpec(name="app", data_disks=(DiskSpec(size=10),))
    with cloud(tmp_path, app) as c:
        ids = c.rig.ids
        made = checkpoint(c.rig, ids["app"], name="k")
        c.rig.advance(2)
        (listed,) = cbr(c.rig).list_backups(ListBackupsRequest(checkpoint_id=made.id)).backups
        assert listed.resource_type == "OS::Nova::Server" and listed.children == []
        shown = cbr(c.rig).show_backup(ShowBackupRequest(backup_id=listed.id)).backup
        assert {ch.resource_id for ch in shown.children} == {ids["app-sys"], ids["app-data1"]}
        assert {ch.parent_id for ch in shown.children} == {listed.id}
        assert all(ch.children == [] for ch in shown.children)

        art = c.snapshotter().wait(c.by_name()["app"], made.id)
        assert art.verified, art.detail
        assert art.covers == tuple(sorted([ids["app-sys"], ids["app-data1"]]))
        assert "cbr.ShowBackup" in [op for op, _status in c.rig.calls()]


def test_cbr_backup_names_are_as_given_in_the_request(tmp_path: Path) -> None:
    with cloud(tmp_path, ServerSpec(name="app")) as c:
        sid = c.rig.ids["app"]
        made = checkpoint(c.rig, sid, name="before-teardown", description="why")
        (listed,) = cbr(c.rig).list_backups(ListBackupsRequest(checkpoint_id=made.id)).backups
        assert (listed.name, listed.description) == ("before-teardown", "why")
        refused(lambda: checkpoint(c.rig, sid, name="x" * 65), 400, "BackupService.9900")
        refused(lambda: checkpoint(c.rig, sid, name=""), 400, "BackupService.9900")

        long_key = "step-" + "x" * 80
        assert len(checkpoint_name(long_key)) == NAME_MAX
        assert checkpoint_name("short") == "short"
        snap = c.snapshotter()
        app = c.by_name()["app"]
        ref = snap.create(app, SnapshotKind.CBR, long_key)
        assert snap.find(app, SnapshotKind.CBR, long_key) == ref
        c.rig.advance(2)
        assert snap.wait(app, ref).verified


def test_assumption_unnamed_and_disk_backups_are_named_manualbk_and_autobk(
    tmp_path: Path,
) -> None:
    with cloud(tmp_path, ServerSpec(name="app")) as c:
        made = checkpoint(c.rig, c.rig.ids["app"])
        (listed,) = cbr(c.rig).list_backups(ListBackupsRequest(checkpoint_id=made.id)).backups
        assert re.fullmatch(r"manualbk_[0-9a-f]{4}", listed.name)
        shown = cbr(c.rig).show_backup(ShowBackupRequest(backup_id=listed.id)).backup
        (child,) = shown.children
        assert re.fullmatch(r"autobk_[0-9a-f]{4}_app-sys", child.name) and child.description is None


def test_create_checkpoint_answers_protecting_with_available_resources_and_zero_counts(
    tmp_path: Path,
) -> None:
    with cloud(tmp_path, ServerSpec(name="app")) as c:
        made = checkpoint(c.rig, c.rig.ids["app"], name="k")
        assert made.status == "protecting"
        (r,) = made.vault.resources
        assert (r.protect_status, r.resource_size, r.backup_size, r.backup_count) == (
            "available", "40", "0", "0",
        )  # fmt: skip
        assert made.extra_info.retention_duration == -1
        c.rig.advance(2)
        shown = cbr(c.rig).show_checkpoint(ShowCheckpointRequest(checkpoint_id=made.id))
        (s,) = shown.checkpoint.vault.resources
        assert shown.checkpoint.status == "available" and s.protect_status == "available"
        assert (s.backup_size, s.backup_count) == (None, None)  # not in ShowCheckpoint's example


def test_assumption_create_checkpoint_counts_the_resources_earlier_backups(
    tmp_path: Path,
) -> None:
    with cloud(tmp_path, ServerSpec(name="app")) as c:
        checkpoint(c.rig, c.rig.ids["app"], name="first")
        c.rig.advance(2)
        (r,) = checkpoint(c.rig, c.rig.ids["app"], name="second").vault.resources
        assert (r.backup_count, r.backup_size) == ("1", "40")


def test_assumption_a_failed_stop_sub_job_carries_ecs_0611(tmp_path: Path) -> None:
    with cloud(tmp_path, ServerSpec(name="app")) as c:
        sid = c.rig.ids["app"]
        c.rig.app.config = replace(c.rig.app.config, faults=Faults(failing_jobs=(sid,)))
        stop = BatchStopServersRequestBody(
            os_stop=BatchStopServersOption(servers=[ServerId(id=sid)], type="SOFT")
        )
        job_id = str(ecs(c.rig).batch_stop_servers(BatchStopServersRequest(body=stop)).job_id)
        c.rig.advance(1)
        failed = job(c.rig, job_id)
        # "Batch operation failed": the table has no code for a failed stop
        assert (failed.status, failed.error_code) == ("FAIL", "Ecs.0611")
        assert [s.error_code for s in failed.entities.sub_jobs] == ["Ecs.0611"]


def test_cbr_missing_backups_checkpoints_and_vaults_answer_their_documented_codes(
    tmp_path: Path,
) -> None:
    with cloud(tmp_path, ServerSpec(name="app")) as c:
        client = cbr(c.rig)
        refused(lambda: client.show_backup(ShowBackupRequest(backup_id="nope")), 404,
                "BackupService.6200")  # fmt: skip
        refused(
            lambda: client.show_checkpoint(ShowCheckpointRequest(checkpoint_id="nope")),
            404,
            "BackupService.6217",
        )
        body = VaultBackupReq(
            checkpoint=VaultBackup(
                vault_id="no-such-vault",
                parameters=CheckpointParam(resources=[c.rig.ids["app"]]),
            )
        )
        refused(lambda: client.create_checkpoint(CreateCheckpointRequest(body=body)), 404,
                "BackupService.6105")  # fmt: skip
        refused(lambda: checkpoint(c.rig, "no-such-server"), 400, "BackupService.0001")


def test_assumption_a_resource_skipped_as_missing_carries_7100_or_7000(tmp_path: Path) -> None:
    with cloud(tmp_path, ServerSpec(name="app")) as c:
        body = VaultBackupReq(
            checkpoint=VaultBackup(
                vault_id=VAULT,
                parameters=CheckpointParam(resources=[c.rig.ids["app"], "no-such-server"]),
            )
        )
        made = cbr(c.rig).create_checkpoint(CreateCheckpointRequest(body=body)).checkpoint
        assert [(s.id, s.code) for s in made.vault.skipped_resources] == [
            ("no-such-server", "BackupService.7100")
        ]


def test_assumption_an_errored_checkpoint_shows_protect_status_error(tmp_path: Path) -> None:
    with cloud(tmp_path, ServerSpec(name="app")) as c:
        sid = c.rig.ids["app"]
        c.rig.app.config = replace(c.rig.app.config, faults=Faults(snapshot_error=(sid,)))
        made = checkpoint(c.rig, sid, name="k")
        c.rig.advance(2)
        shown = cbr(c.rig).show_checkpoint(ShowCheckpointRequest(checkpoint_id=made.id))
        assert shown.checkpoint.status == "error"
        assert [r.protect_status for r in shown.checkpoint.vault.resources] == ["error"]


def test_assumption_an_order_lock_sets_locked_and_delete_is_refused_at_once(
    tmp_path: Path,
) -> None:
    with cloud(tmp_path, ServerSpec(name="conv", locked=True)) as c:
        sid = c.rig.ids["conv"]
        assert show(c.rig, sid).locked is True  # the reference's example shows only false
        jobs_before = c.rig.store.conn.execute("SELECT COUNT(*) FROM jobs").fetchone()[0]
        refused(lambda: delete(c.rig, sid), 400, "Ecs.0605")  # at once, not inside a job
        assert c.rig.store.conn.execute("SELECT COUNT(*) FROM jobs").fetchone()[0] == jobs_before
