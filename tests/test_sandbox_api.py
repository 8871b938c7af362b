"""The sandbox's ECS, EVS and CBR APIs, driven by the official Huawei Cloud SDK clients.

Every call goes through the SDK's client, request and body classes over real HTTP, so the SDK's
signing, serialisation and error parsing are exercised exactly as teardown's adapter uses them.
Only the two requests the SDK cannot produce (an unknown route, a malformed body) are signed by
hand with the SDK's ``Signer`` and sent with ``urllib``. Time moves only with ``rig.advance``.
"""

from __future__ import annotations

import hashlib
import json
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from huaweicloudsdkbss.v2 import (
    CancelResourcesSubscriptionRequest,
    ListCustomerOrdersRequest,
    UnsubscribeResourcesReq,
)
from huaweicloudsdkcbr.v1 import (
    CheckpointParam,
    CreateCheckpointRequest,
    DeleteBackupRequest,
    ListBackupsRequest,
    ShowBackupRequest,
    ShowCheckpointRequest,
    VaultBackup,
    VaultBackupReq,
)
from huaweicloudsdkcore.auth.credentials import BasicCredentials
from huaweicloudsdkcore.exceptions.exceptions import (
    ClientRequestException,
    ServerResponseException,
)
from huaweicloudsdkcore.sdk_request import SdkRequest
from huaweicloudsdkcore.signer.signer import Signer
from huaweicloudsdkecs.v2 import (
    BatchStopServersOption,
    BatchStopServersRequest,
    BatchStopServersRequestBody,
    DeleteServersRequest,
    DeleteServersRequestBody,
    ListServersDetailsRequest,
    ServerId,
    ShowServerRequest,
)
from huaweicloudsdkecs.v2 import ShowJobRequest as EcsShowJobRequest
from huaweicloudsdkevs.v2 import (
    CreateSnapshotOption,
    CreateSnapshotRequest,
    CreateSnapshotRequestBody,
    DeleteSnapshotRequest,
    ListSnapshotsRequest,
    ListVolumesRequest,
    ShowSnapshotRequest,
    ShowVolumeRequest,
)
from huaweicloudsdkevs.v2 import ShowJobRequest as EvsShowJobRequest

from teardown.sandbox.config import Faults, SandboxConfig
from teardown.sandbox.resources import DATA_TAG, SSH_PORT_TAG, volume_data_dir
from teardown.sandbox.scenario import DiskSpec, Scenario, ServerSpec, VolumeSpec
from teardown.sandbox.store import ts
from tests.sandbox_rig import SandboxRig, bss, cbr, ecs, evs, running_sandbox

VAULT = "vault-sandbox"
STATE_TABLES = ("servers", "volumes", "snapshots", "jobs", "checkpoints", "backups", "timers")


# -- helpers -------------------------------------------------------------------------------


def scenario(*servers: ServerSpec, volumes: tuple[VolumeSpec, ...] = ()) -> Scenario:
    return Scenario(name="api-test", servers=servers, volumes=volumes)


def disk(**files: str) -> DiskSpec:
    return DiskSpec(size=10, files={f"{k}.txt": v for k, v in files.items()})


def with_faults(rig: SandboxRig, faults: Faults) -> None:
    """Switch faults on once the seeded ids are known (the handlers read the config per call)."""
    rig.app.config = replace(rig.app.config, faults=faults)


def refused(call: Callable[[], object], status: int, code: str) -> ClientRequestException:
    """Run ``call``; it must fail with a 4xx carrying ``code`` (parsed by the SDK)."""
    with pytest.raises(ClientRequestException) as info:
        call()
    assert (info.value.status_code, info.value.error_code) == (status, code)
    assert info.value.error_msg
    return info.value


def dump_state(rig: SandboxRig) -> dict[str, list[tuple[Any, ...]]]:
    conn = rig.store.conn
    return {
        t: [tuple(r) for r in conn.execute(f"SELECT * FROM {t} ORDER BY rowid")]
        for t in STATE_TABLES
    }


def tree_digest(root: Path) -> dict[str, str]:
    """Relative path -> sha256 of every file under ``root``."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def raw_call(
    rig: SandboxRig, service: str, method: str, path: str, body: bytes = b""
) -> tuple[int, dict[str, Any]]:
    """A request signed exactly like the SDK's (``Signer``), for what the SDK cannot send."""
    base: str = getattr(rig.endpoints, service)
    host = base.removeprefix("http://")
    account = rig.app.config.account
    request = SdkRequest(
        method=method,
        schema="http",
        host=host,
        resource_path=path,
        query_params=[],
        header_params={
            "Content-Type": "application/json;charset=UTF-8",
            "Host": host,
            "X-Project-Id": account.project_id,
        },
        body=body,
    )
    Signer(BasicCredentials(account.ak, account.sk)).sign(request)
    sent = urllib.request.Request(
        base + path, data=body or None, method=method, headers=dict(request.header_params)
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(sent, timeout=10) as response:
            return int(response.status), json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def show_server(rig: SandboxRig, server_id: str) -> Any:
    return ecs(rig).show_server(ShowServerRequest(server_id=server_id)).server


def show_job(rig: SandboxRig, job_id: str) -> Any:
    return ecs(rig).show_job(EcsShowJobRequest(job_id=job_id))


def delete_servers(rig: SandboxRig, *ids: str, delete_volume: bool = False) -> str:
    body = DeleteServersRequestBody(
        servers=[ServerId(id=i) for i in ids], delete_volume=delete_volume
    )
    return str(ecs(rig).delete_servers(DeleteServersRequest(body=body)).job_id)


def stop_servers(rig: SandboxRig, *ids: str, kind: str = "SOFT") -> str:
    option = BatchStopServersOption(servers=[ServerId(id=i) for i in ids], type=kind)
    body = BatchStopServersRequestBody(os_stop=option)
    return str(ecs(rig).batch_stop_servers(BatchStopServersRequest(body=body)).job_id)


def snapshot(
    rig: SandboxRig,
    volume_id: str,
    *,
    force: bool | None = None,
    name: str = "",
    description: object = None,
) -> Any:
    option = CreateSnapshotOption(
        volume_id=volume_id, force=force, name=name or None, description=description
    )
    body = CreateSnapshotRequestBody(snapshot=option)
    return evs(rig).create_snapshot(CreateSnapshotRequest(body=body))


def show_snapshot(rig: SandboxRig, snapshot_id: str) -> Any:
    return evs(rig).show_snapshot(ShowSnapshotRequest(snapshot_id=snapshot_id)).snapshot


def show_volume(rig: SandboxRig, volume_id: str) -> Any:
    return evs(rig).show_volume(ShowVolumeRequest(volume_id=volume_id)).volume


def checkpoint(rig: SandboxRig, *resources: str, vault: str = VAULT, **options: Any) -> Any:
    params = CheckpointParam(resources=list(resources), **({"name": "before-teardown"} | options))
    body = VaultBackupReq(checkpoint=VaultBackup(vault_id=vault, parameters=params))
    return cbr(rig).create_checkpoint(CreateCheckpointRequest(body=body)).checkpoint


def list_backups(rig: SandboxRig, **query: Any) -> Any:
    return cbr(rig).list_backups(ListBackupsRequest(**query))


def snapshot_ids(rig: SandboxRig, **query: Any) -> list[str]:
    return [s.id for s in evs(rig).list_snapshots(ListSnapshotsRequest(**query)).snapshots]


# -- ECS -----------------------------------------------------------------------------------


def test_list_servers_details_filters_pages_and_counts(tmp_path: Path) -> None:
    servers = (
        ServerSpec(name="web-1", tags={"role": "web"}),
        ServerSpec(name="web-2", tags={"role": "web"}),
        ServerSpec(name="db-1", tags={"role": "db"}),
    )
    with running_sandbox(tmp_path, scenario(*servers)) as rig:
        client = ecs(rig)

        def names(**query: Any) -> tuple[int, list[str]]:
            r = client.list_servers_details(ListServersDetailsRequest(**query))
            return r.count, sorted(s.name for s in r.servers)

        assert names() == (3, ["db-1", "web-1", "web-2"])
        both_webs = f"{rig.ids['web-1']},{rig.ids['web-2']}"
        assert names(server_id=both_webs) == (2, ["web-1", "web-2"])
        # server_id wins over the other filters.
        assert names(server_id=both_webs, name="db") == (2, ["web-1", "web-2"])
        stub = client.list_servers_details(ListServersDetailsRequest(server_id="no-such-server"))
        assert (stub.count, stub.servers[0].id, stub.servers[0].name) == (1, "no-such-server", None)
        assert names(name="web") == (2, ["web-1", "web-2"])
        assert names(tags="role=db") == (1, ["db-1"])
        assert names(tags="role=web", name="2") == (1, ["web-2"])
        assert names(tags="role=cache") == (0, [])

        pages = [names(limit=2, offset=page) for page in (1, 2, 3)]
        assert [count for count, _ in pages] == [3, 3, 3]
        assert [len(page) for _, page in pages] == [2, 1, 0]
        assert sorted(n for _, page in pages for n in page) == ["db-1", "web-1", "web-2"]

        refused(lambda: names(limit=0), 400, "Ecs.0005")
        assert names(offset=0, limit=2) == names(offset=1, limit=2)  # 0 is the first page too
        refused(lambda: names(offset=-1), 400, "Ecs.0005")
        refused(lambda: names(limit=1001), 400, "Ecs.0005")


def test_show_server_reports_billing_disks_addresses_and_tags(tmp_path: Path) -> None:
    shop = ServerSpec(
        name="shop",
        charging="prePaid",
        private_ip="192.168.0.10",
        public_ip="121.36.0.10",
        tags={"app": "shop"},
        system_disk=disk(os="ubuntu"),
        data_disks=(disk(orders="1,2,3"),),
    )
    with running_sandbox(tmp_path, scenario(shop, ServerSpec(name="spare"))) as rig:
        server = show_server(rig, rig.ids["shop"])

        assert server.id == rig.ids["shop"]
        assert (server.name, server.status, server.locked) == ("shop", "ACTIVE", False)
        assert server.metadata["charging_mode"] == "1"
        assert server.metadata["metering.order_id"].startswith("CS")

        attached = {v.id: v.boot_index for v in server.os_extended_volumesvolumes_attached}
        assert attached == {rig.ids["shop-sys"]: "0", rig.ids["shop-data1"]: "-1"}

        addresses = [a for net in server.addresses.values() for a in net]
        assert {(a.addr, a.os_ext_ip_stype) for a in addresses} == {
            ("192.168.0.10", "fixed"),
            ("121.36.0.10", "floating"),
        }

        tags = dict(t.split("=", 1) for t in server.tags)
        assert tags["app"] == "shop"
        assert tags[SSH_PORT_TAG] == "0"
        disk_dirs = [Path(p) for p in tags[DATA_TAG].split(";")]
        assert disk_dirs == [
            volume_data_dir(rig.data_dir, rig.ids["shop-sys"]),
            volume_data_dir(rig.data_dir, rig.ids["shop-data1"]),
        ]
        assert (disk_dirs[1] / "orders.txt").read_text() == "1,2,3"

        spare = show_server(rig, rig.ids["spare"])
        assert spare.metadata["charging_mode"] == "0"
        assert "metering.order_id" not in spare.metadata

        e = refused(lambda: show_server(rig, "no-such-server"), 404, "Ecs.0114")
        assert "no-such-server" in e.error_msg


def test_delete_servers_runs_a_job_and_removes_server_and_disks(tmp_path: Path) -> None:
    servers = (
        ServerSpec(name="keep-data", system_disk=disk(os="a"), data_disks=(disk(db="x"),)),
        ServerSpec(name="drop-data", system_disk=disk(os="b"), data_disks=(disk(db="y"),)),
    )
    with running_sandbox(tmp_path, scenario(*servers)) as rig:
        ids = rig.ids
        job_id = delete_servers(rig, ids["keep-data"], delete_volume=False)

        running = show_job(rig, job_id)
        assert (running.job_id, running.status) == (job_id, "INIT")
        assert running.entities.sub_jobs_total == 1
        assert [s.entities.server_id for s in running.entities.sub_jobs] == [ids["keep-data"]]
        assert show_server(rig, ids["keep-data"]).id == ids["keep-data"]

        rig.advance(2)
        done = show_job(rig, job_id)
        assert done.status == "SUCCESS"
        assert (done.error_code, done.fail_reason) == (None, None)
        assert [s.status for s in done.entities.sub_jobs] == ["SUCCESS"]
        assert done.end_time == ts(rig.clock.now())

        refused(lambda: show_server(rig, ids["keep-data"]), 404, "Ecs.0114")
        refused(lambda: show_volume(rig, ids["keep-data-sys"]), 404, "EVS.5404")
        assert not volume_data_dir(rig.data_dir, ids["keep-data-sys"]).exists()
        kept = show_volume(rig, ids["keep-data-data1"])
        assert (kept.status, kept.attachments) == ("available", [])
        kept_dir = volume_data_dir(rig.data_dir, ids["keep-data-data1"])
        assert (kept_dir / "db.txt").read_text() == "x"

        job_id = delete_servers(rig, ids["drop-data"], delete_volume=True)
        rig.advance(2)
        assert show_job(rig, job_id).status == "SUCCESS"
        for name in ("drop-data-sys", "drop-data-data1"):
            refused(partial(show_volume, rig, ids[name]), 404, "EVS.5404")
            assert not volume_data_dir(rig.data_dir, ids[name]).exists()

        before = dump_state(rig)
        refused(lambda: delete_servers(rig, "no-such-server"), 404, "Ecs.0114")
        refused(lambda: delete_servers(rig), 400, "Ecs.0005")
        assert dump_state(rig) == before


def test_delete_servers_job_fails_for_a_failing_server_and_keeps_it(tmp_path: Path) -> None:
    servers = (ServerSpec(name="stuck"), ServerSpec(name="fine"))
    with running_sandbox(tmp_path, scenario(*servers)) as rig:
        stuck, fine = rig.ids["stuck"], rig.ids["fine"]
        with_faults(rig, Faults(failing_jobs=(stuck,)))

        job_id = delete_servers(rig, stuck, fine)
        rig.advance(2)
        job = show_job(rig, job_id)

        assert job.status == "FAIL"
        assert job.error_code == "Ecs.0501"
        subs = {s.entities.server_id: s for s in job.entities.sub_jobs}
        assert subs[stuck].status == "FAIL"
        assert subs[stuck].error_code == "Ecs.0501"
        assert subs[stuck].entities.errorcode_message
        assert subs[fine].status == "SUCCESS"
        assert show_server(rig, stuck).status == "ACTIVE"
        refused(lambda: show_server(rig, fine), 404, "Ecs.0114")


def test_batch_stop_servers_shuts_the_server_off(tmp_path: Path) -> None:
    with running_sandbox(tmp_path, scenario(ServerSpec(name="app"))) as rig:
        sid = rig.ids["app"]
        job_id = stop_servers(rig, sid)
        assert show_job(rig, job_id).status == "INIT"
        assert show_server(rig, sid).status == "ACTIVE"

        rig.advance(1)
        assert show_job(rig, job_id).status == "SUCCESS"
        stopped = show_server(rig, sid)
        assert stopped.status == "SHUTOFF"
        assert stopped.os_ext_st_svm_state == "stopped"

        before = dump_state(rig)
        refused(lambda: stop_servers(rig, "no-such-server"), 404, "Ecs.0114")
        refused(lambda: stop_servers(rig, sid, kind="GENTLY"), 400, "Ecs.0005")
        assert dump_state(rig) == before


def test_show_job_is_per_service_and_404s_unknown_ids(tmp_path: Path) -> None:
    with running_sandbox(tmp_path, scenario(ServerSpec(name="app"))) as rig:
        ecs_job = stop_servers(rig, rig.ids["app"])
        with rig.store.tx() as conn:
            conn.execute(
                "INSERT INTO jobs(id, service, job_type, status, begin_time, entities) "
                "VALUES ('evs-job-1', 'evs', 'createVolume', 'SUCCESS', ?, ?)",
                (ts(rig.clock.now()), json.dumps({"volume_id": "v-1", "size": 10})),
            )

        assert show_job(rig, ecs_job).job_id == ecs_job
        evs_job = evs(rig).show_job(EvsShowJobRequest(job_id="evs-job-1"))
        assert (evs_job.status, evs_job.entities.volume_id) == ("SUCCESS", "v-1")

        refused(lambda: show_job(rig, "no-such-job"), 404, "Ecs.0200")
        refused(lambda: show_job(rig, "evs-job-1"), 404, "Ecs.0200")
        refused(lambda: evs(rig).show_job(EvsShowJobRequest(job_id=ecs_job)), 404, "EVS.5404")


# -- EVS -----------------------------------------------------------------------------------


def test_list_volumes_filters_by_server_and_status_and_pages(tmp_path: Path) -> None:
    app = ServerSpec(name="app", data_disks=(disk(), disk()))
    loose = VolumeSpec(name="loose", disk=disk())
    with running_sandbox(
        tmp_path, scenario(app, ServerSpec(name="other"), volumes=(loose,))
    ) as rig:
        client = evs(rig)

        def names(**query: Any) -> tuple[int, list[str]]:
            r = client.list_volumes(ListVolumesRequest(**query))
            return r.count, sorted(v.name for v in r.volumes)

        assert names()[0] == 5
        assert names(server_id=rig.ids["app"]) == (3, ["app-data1", "app-data2", "app-sys"])
        assert names(status="available") == (1, ["loose"])
        assert names(status="in-use")[0] == 4
        assert names(server_id="no-such-server") == (0, [])

        pages = [names(limit=2, offset=offset) for offset in (0, 2, 4)]
        assert [count for count, _ in pages] == [5, 5, 5]
        assert [len(page) for _, page in pages] == [2, 2, 1]
        assert sorted(n for _, page in pages for n in page) == names()[1]

        attached = client.list_volumes(ListVolumesRequest(server_id=rig.ids["app"])).volumes
        assert {a.server_id for v in attached for a in v.attachments} == {rig.ids["app"]}

        refused(lambda: names(limit=0), 400, "EVS.1001")
        refused(lambda: names(offset=-1), 400, "EVS.1001")


def test_show_volume_marks_prepaid_disks_with_their_order(tmp_path: Path) -> None:
    servers = (
        ServerSpec(name="yearly", charging="prePaid", data_disks=(disk(),)),
        ServerSpec(name="hourly"),
    )
    with running_sandbox(tmp_path, scenario(*servers)) as rig:
        order_id = show_server(rig, rig.ids["yearly"]).metadata["metering.order_id"]
        for name in ("yearly-sys", "yearly-data1"):
            volume = show_volume(rig, rig.ids[name])
            assert volume.metadata["orderID"] == order_id
            assert volume.status == "in-use"
            assert [a.server_id for a in volume.attachments] == [rig.ids["yearly"]]
        system = show_volume(rig, rig.ids["yearly-sys"])
        assert (system.bootable, system.size) == ("true", 40)
        assert show_volume(rig, rig.ids["yearly-data1"]).bootable == "false"
        assert "orderID" not in show_volume(rig, rig.ids["hourly-sys"]).metadata

        e = refused(lambda: show_volume(rig, "no-such-volume"), 404, "EVS.5404")
        assert "no-such-volume" in e.error_msg


def test_create_snapshot_needs_force_for_an_in_use_disk(tmp_path: Path) -> None:
    app = ServerSpec(name="app", data_disks=(disk(), disk()))
    loose = VolumeSpec(name="loose", disk=disk())
    with running_sandbox(tmp_path, scenario(app, volumes=(loose,))) as rig:
        data1, data2 = rig.ids["app-data1"], rig.ids["app-data2"]
        with_faults(rig, Faults(snapshot_error=(data2,)))
        before = dump_state(rig)
        refused(lambda: snapshot(rig, data1), 400, "EVS.2067")
        refused(lambda: snapshot(rig, data1, force=False), 400, "EVS.2067")
        refused(lambda: snapshot(rig, "no-such-volume", force=True), 404, "EVS.5404")
        refused(lambda: snapshot(rig, data1, force=True, name="autobk_snapshot_x"), 400, "EVS.1001")
        refused(lambda: snapshot(rig, data1, force=True, description="x" * 256), 400, "EVS.1001")
        refused(lambda: snapshot(rig, data1, force=True, description={"a": 1}), 400, "EVS.1001")
        assert dump_state(rig) == before

        created = snapshot(rig, data1, force=True, name="pre-teardown")
        assert created.status_code == 202
        snap = created.snapshot
        assert (snap.status, snap.volume_id, snap.name, snap.size) == (
            "creating",
            data1,
            "pre-teardown",
            10,
        )
        unforced = snapshot(rig, rig.ids["loose"]).snapshot
        failing = snapshot(rig, data2, force=True).snapshot

        rig.advance(1)
        assert show_snapshot(rig, snap.id).status == "available"
        assert show_snapshot(rig, unforced.id).status == "available"
        assert show_snapshot(rig, failing.id).status == "error"


def test_show_snapshot_reports_status_and_progress(tmp_path: Path) -> None:
    loose = VolumeSpec(name="loose", disk=disk())
    with running_sandbox(tmp_path, scenario(volumes=(loose,))) as rig:
        sid = snapshot(rig, rig.ids["loose"]).snapshot.id
        creating = show_snapshot(rig, sid)
        assert (creating.id, creating.status) == (sid, "creating")
        assert creating.os_extended_snapshot_attributesprogress == "0%"
        assert creating.os_extended_snapshot_attributesproject_id == (
            rig.app.config.account.project_id
        )

        rig.advance(0.5)
        assert show_snapshot(rig, sid).status == "creating"
        rig.advance(0.5)
        available = show_snapshot(rig, sid)
        assert available.status == "available"
        assert available.os_extended_snapshot_attributesprogress == "100%"

        refused(lambda: show_snapshot(rig, "no-such-snapshot"), 404, "EVS.5404")


def test_list_snapshots_filters_by_volume(tmp_path: Path) -> None:
    volumes = (VolumeSpec(name="a", disk=disk()), VolumeSpec(name="b", disk=disk()))
    with running_sandbox(tmp_path, scenario(volumes=volumes)) as rig:
        a1 = snapshot(rig, rig.ids["a"]).snapshot.id
        a2 = snapshot(rig, rig.ids["a"]).snapshot.id
        b1 = snapshot(rig, rig.ids["b"]).snapshot.id

        listed = evs(rig).list_snapshots(ListSnapshotsRequest())
        assert listed.count == 3
        assert sorted(snapshot_ids(rig, volume_id=rig.ids["a"])) == sorted([a1, a2])
        assert snapshot_ids(rig, volume_id=rig.ids["b"]) == [b1]
        assert snapshot_ids(rig, volume_id="no-such-volume") == []
        assert snapshot_ids(rig, status="available") == []
        rig.advance(1)
        assert len(snapshot_ids(rig, status="available")) == 3
        assert len(snapshot_ids(rig, limit=2)) == 2

        refused(lambda: snapshot_ids(rig, limit=0), 400, "EVS.1001")


def test_delete_snapshot_goes_deleting_then_gone(tmp_path: Path) -> None:
    loose = VolumeSpec(name="loose", disk=disk())
    with running_sandbox(tmp_path, scenario(volumes=(loose,))) as rig:
        client = evs(rig)
        sid = snapshot(rig, rig.ids["loose"]).snapshot.id
        refused(
            lambda: client.delete_snapshot(DeleteSnapshotRequest(snapshot_id=sid)),
            400,
            "EVS.1001",
        )
        rig.advance(1)

        response = client.delete_snapshot(DeleteSnapshotRequest(snapshot_id=sid))
        assert response.status_code == 202
        assert show_snapshot(rig, sid).status == "deleting"

        rig.advance(0.5)
        refused(lambda: show_snapshot(rig, sid), 404, "EVS.5404")
        assert snapshot_ids(rig) == []
        refused(
            lambda: client.delete_snapshot(DeleteSnapshotRequest(snapshot_id=sid)),
            404,
            "EVS.5404",
        )


# -- CBR -----------------------------------------------------------------------------------


def test_create_checkpoint_backs_up_each_disk_and_skips_unknown_ids(tmp_path: Path) -> None:
    app = ServerSpec(name="app", system_disk=disk(os="x"), data_disks=(disk(db="y"),))
    with running_sandbox(tmp_path, scenario(app)) as rig:
        before = dump_state(rig)
        refused(
            lambda: checkpoint(rig, rig.ids["app"], vault="no-such-vault"),
            404,
            "BackupService.6105",
        )
        refused(lambda: checkpoint(rig, "no-such-server"), 400, "BackupService.0001")
        refused(lambda: checkpoint(rig, rig.ids["app"], name=["x"]), 400, "BackupService.9900")
        refused(
            lambda: checkpoint(rig, rig.ids["app"], retention_duration_days=0),
            400,
            "BackupService.9900",
        )
        assert dump_state(rig) == before

        created = checkpoint(rig, rig.ids["app"], "no-such-server")
        assert created.status == "protecting"
        assert created.vault.id == VAULT
        assert created.extra_info.name == "before-teardown"
        assert [(r.id, r.type) for r in created.vault.resources] == [
            (rig.ids["app"], "OS::Nova::Server")
        ]
        assert [(s.id, s.code) for s in created.vault.skipped_resources] == [
            ("no-such-server", "BackupService.7100")
        ]

        (listed,) = list_backups(rig, checkpoint_id=created.id).backups
        backup = cbr(rig).show_backup(ShowBackupRequest(backup_id=listed.id)).backup
        assert (backup.resource_id, backup.resource_type) == (rig.ids["app"], "OS::Nova::Server")
        children = {c.resource_id: c for c in backup.children}
        assert set(children) == {rig.ids["app-sys"], rig.ids["app-data1"]}
        assert children[rig.ids["app-sys"]].extend_info.system_disk is True
        assert children[rig.ids["app-data1"]].extend_info.system_disk is False
        assert all(c.resource_type == "OS::Cinder::Volume" for c in children.values())


def test_show_checkpoint_goes_protecting_then_available(tmp_path: Path) -> None:
    servers = (ServerSpec(name="good"), ServerSpec(name="bad", data_disks=(disk(),)))
    with running_sandbox(tmp_path, scenario(*servers)) as rig:
        # A fault on one of its disks fails the server's backup, and only that one.
        with_faults(rig, Faults(snapshot_error=(rig.ids["bad-data1"],)))
        client = cbr(rig)
        good = checkpoint(rig, rig.ids["good"]).id
        bad = checkpoint(rig, rig.ids["good"], rig.ids["bad"]).id

        shown = client.show_checkpoint(ShowCheckpointRequest(checkpoint_id=good)).checkpoint
        assert (shown.id, shown.status) == (good, "protecting")
        rig.advance(2)
        shown = client.show_checkpoint(ShowCheckpointRequest(checkpoint_id=good)).checkpoint
        assert shown.status == "available"
        assert [r.protect_status for r in shown.vault.resources] == ["available"]
        assert [b.status for b in list_backups(rig, checkpoint_id=good).backups] == ["available"]

        failed = client.show_checkpoint(ShowCheckpointRequest(checkpoint_id=bad)).checkpoint
        assert failed.status == "error"
        outcome = {
            b.resource_id: (b.status, {c.status for c in b.children})
            for b in (
                client.show_backup(ShowBackupRequest(backup_id=listed.id)).backup
                for listed in list_backups(rig, checkpoint_id=bad).backups
            )
        }
        assert outcome == {
            rig.ids["good"]: ("available", {"available"}),
            rig.ids["bad"]: ("error", {"error"}),
        }

        refused(
            lambda: client.show_checkpoint(ShowCheckpointRequest(checkpoint_id="nope")),
            404,
            "BackupService.6217",
        )


def test_list_backups_by_checkpoint_and_by_resource(tmp_path: Path) -> None:
    servers = (ServerSpec(name="a"), ServerSpec(name="b"))
    with running_sandbox(tmp_path, scenario(*servers)) as rig:
        first = checkpoint(rig, rig.ids["a"], rig.ids["b"]).id
        rig.advance(2)
        second = checkpoint(rig, rig.ids["a"]).id

        by_first = list_backups(rig, checkpoint_id=first)
        assert by_first.count == 2
        assert sorted(b.resource_id for b in by_first.backups) == sorted(
            [rig.ids["a"], rig.ids["b"]]
        )
        by_a = list_backups(rig, resource_id=rig.ids["a"])
        assert sorted(b.checkpoint_id for b in by_a.backups) == sorted([first, second])
        assert {b.vault_id for b in by_a.backups} == {VAULT}
        assert list_backups(rig, resource_id="no-such-server").backups == []
        assert list_backups(rig, limit=1).count == 3
        assert len(list_backups(rig, limit=1).backups) == 1

        refused(lambda: list_backups(rig, limit=0), 400, "BackupService.9900")


def test_show_backup_lists_one_child_per_disk(tmp_path: Path) -> None:
    app = ServerSpec(name="app", data_disks=(disk(), disk()))
    with running_sandbox(tmp_path, scenario(app)) as rig:
        checkpoint_id = checkpoint(rig, rig.ids["app"]).id
        rig.advance(2)
        (listed,) = list_backups(rig, checkpoint_id=checkpoint_id).backups
        client = cbr(rig)
        backup = client.show_backup(ShowBackupRequest(backup_id=listed.id)).backup

        assert (backup.id, backup.status, backup.checkpoint_id) == (
            listed.id,
            "available",
            checkpoint_id,
        )
        assert backup.resource_size == 40 + 10 + 10
        assert backup.children[0].resource_id == rig.ids["app-sys"]  # system disk first
        assert sorted(c.resource_id for c in backup.children) == sorted(
            rig.ids[n] for n in ("app-sys", "app-data1", "app-data2")
        )
        assert {c.parent_id for c in backup.children} == {backup.id}
        assert {c.status for c in backup.children} == {"available"}
        child = client.show_backup(ShowBackupRequest(backup_id=backup.children[0].id)).backup
        assert (child.resource_id, child.parent_id) == (rig.ids["app-sys"], backup.id)

        refused(
            lambda: client.show_backup(ShowBackupRequest(backup_id="no-such-backup")),
            404,
            "BackupService.6200",
        )


# -- the rules that matter -----------------------------------------------------------------


def test_deleting_a_disk_deletes_its_evs_snapshots(tmp_path: Path) -> None:
    servers = (
        ServerSpec(name="doomed", data_disks=(disk(db="x"),)),
        ServerSpec(name="detached", data_disks=(disk(db="y"),)),
    )
    with running_sandbox(tmp_path, scenario(*servers)) as rig:
        doomed = snapshot(rig, rig.ids["doomed-data1"], force=True).snapshot.id
        survivor = snapshot(rig, rig.ids["detached-data1"], force=True).snapshot.id
        rig.advance(1)
        assert sorted(snapshot_ids(rig)) == sorted([doomed, survivor])

        delete_servers(rig, rig.ids["doomed"], delete_volume=True)
        delete_servers(rig, rig.ids["detached"], delete_volume=False)
        rig.advance(2)

        assert snapshot_ids(rig) == [survivor]
        assert snapshot_ids(rig, volume_id=rig.ids["doomed-data1"]) == []
        refused(lambda: show_snapshot(rig, doomed), 404, "EVS.5404")


def test_cbr_backups_survive_deletion_of_their_source(tmp_path: Path) -> None:
    app = ServerSpec(
        name="app",
        system_disk=disk(etc="config"),
        data_disks=(DiskSpec(size=10, files={"db/orders.csv": "1,2,3\n"}, generated_mb=1),),
    )
    with running_sandbox(tmp_path, scenario(app)) as rig:
        originals = {
            vid: tree_digest(volume_data_dir(rig.data_dir, vid))
            for vid in (rig.ids["app-sys"], rig.ids["app-data1"])
        }
        assert all(originals.values())
        checkpoint_id = checkpoint(rig, rig.ids["app"]).id
        rig.advance(2)

        delete_servers(rig, rig.ids["app"], delete_volume=True)
        rig.advance(2)
        refused(lambda: show_server(rig, rig.ids["app"]), 404, "Ecs.0114")
        assert not any(volume_data_dir(rig.data_dir, v).exists() for v in originals)

        (backup,) = list_backups(rig, checkpoint_id=checkpoint_id).backups
        shown = cbr(rig).show_backup(ShowBackupRequest(backup_id=backup.id)).backup
        assert shown.status == "available"
        assert {c.resource_id for c in shown.children} == set(originals)
        for child in shown.children:
            copied = tree_digest(rig.data_dir / "cbr" / child.id)
            assert copied == originals[child.resource_id]


def test_delete_backup_answers_204_and_assumption_deleting_until_gone(
    tmp_path: Path,
) -> None:
    app = ServerSpec(name="app", system_disk=disk(etc="config"))
    with running_sandbox(tmp_path, scenario(app)) as rig:
        checkpoint_id = checkpoint(rig, rig.ids["app"]).id
        rig.advance(2)
        (listed,) = list_backups(rig, checkpoint_id=checkpoint_id).backups
        backup = cbr(rig).show_backup(ShowBackupRequest(backup_id=listed.id)).backup
        child = backup.children[0].id
        assert (rig.data_dir / "cbr" / child).exists()

        resp = cbr(rig).delete_backup(DeleteBackupRequest(backup_id=backup.id))
        assert resp.status_code == 204
        (deleting,) = list_backups(rig, checkpoint_id=checkpoint_id).backups
        assert deleting.status == "deleting"
        refused(
            lambda: cbr(rig).delete_backup(DeleteBackupRequest(backup_id=backup.id)),
            400,
            "BackupService.9900",
        )
        rig.advance(1)
        assert list_backups(rig, checkpoint_id=checkpoint_id).backups == []
        assert not (rig.data_dir / "cbr" / child).exists()
        refused(
            lambda: cbr(rig).show_backup(ShowBackupRequest(backup_id=backup.id)),
            404,
            "BackupService.6200",
        )


def test_delete_servers_refuses_prepaid_servers(tmp_path: Path) -> None:
    servers = (ServerSpec(name="yearly", charging="prePaid"), ServerSpec(name="hourly"))
    with running_sandbox(tmp_path, scenario(*servers)) as rig:
        before = dump_state(rig)
        e = refused(lambda: delete_servers(rig, rig.ids["yearly"]), 400, "Ecs.0513")
        assert rig.ids["yearly"] in e.error_msg
        # A batch with one prepaid server is refused whole.
        refused(
            lambda: delete_servers(rig, rig.ids["hourly"], rig.ids["yearly"], delete_volume=True),
            400,
            "Ecs.0513",
        )
        rig.advance(10)
        assert dump_state(rig) == before
        assert show_server(rig, rig.ids["yearly"]).status == "ACTIVE"
        assert show_server(rig, rig.ids["hourly"]).status == "ACTIVE"


# -- acceptance 4: refused requests change nothing -----------------------------------------


def test_wrong_secret_key_gets_401_and_changes_nothing(tmp_path: Path) -> None:
    app = ServerSpec(name="app", data_disks=(disk(db="x"),))
    with running_sandbox(tmp_path, scenario(app)) as rig:
        wrong = replace(rig.app.config.account, sk="not-the-sandbox-secret-key")
        body = DeleteServersRequestBody(servers=[ServerId(id=rig.ids["app"])], delete_volume=True)
        option = CreateSnapshotOption(volume_id=rig.ids["app-data1"], force=True)
        params = CheckpointParam(resources=[rig.ids["app"]])
        attempts: list[Callable[[], object]] = [
            lambda: ecs(rig, wrong).delete_servers(DeleteServersRequest(body=body)),
            lambda: ecs(rig, wrong).list_servers_details(ListServersDetailsRequest()),
            lambda: evs(rig, wrong).create_snapshot(
                CreateSnapshotRequest(body=CreateSnapshotRequestBody(snapshot=option))
            ),
            lambda: cbr(rig, wrong).create_checkpoint(
                CreateCheckpointRequest(
                    body=VaultBackupReq(checkpoint=VaultBackup(vault_id=VAULT, parameters=params))
                )
            ),
            lambda: bss(rig, wrong).cancel_resources_subscription(
                CancelResourcesSubscriptionRequest(
                    body=UnsubscribeResourcesReq(resource_ids=[rig.ids["app"]], unsubscribe_type=1)
                )
            ),
            lambda: bss(rig, wrong).list_customer_orders(ListCustomerOrdersRequest()),
        ]
        before = dump_state(rig)
        for attempt in attempts:
            e = refused(attempt, 401, "APIGW.0301")
            assert "signature" in e.error_msg
        rig.advance(10)
        assert dump_state(rig) == before
        assert rig.calls() == [("unknown", 401)] * len(attempts)
        assert show_server(rig, rig.ids["app"]).status == "ACTIVE"


def test_unknown_route_gets_404(tmp_path: Path) -> None:
    with running_sandbox(tmp_path, scenario(ServerSpec(name="app"))) as rig:
        project = rig.app.config.account.project_id
        before = dump_state(rig)
        for service, method, path in (
            ("ecs", "GET", f"/v1/{project}/cloudservers/detail/extra"),
            ("ecs", "POST", f"/v1/{project}/cloudservers/{rig.ids['app']}/reboot-everything"),
            ("evs", "GET", f"/v1/{project}/cloudservers/detail"),
            ("cbr", "GET", f"/v3/{project}/vaults/{VAULT}/everything"),
            ("ecs", "GET", f"/v1/not-the-project/cloudservers/{rig.ids['app']}"),
        ):
            status, body = raw_call(rig, service, method, path, b"{}" if method == "POST" else b"")
            assert status == 404, (service, path)
            assert body["error_code"] == "APIGW.0101"
            assert body["error_msg"]
            assert body["request_id"]
        # A known path with a method it does not serve.
        status, body = raw_call(rig, "ecs", "DELETE", f"/v1/{project}/cloudservers/detail")
        assert (status, body["error_code"]) == (405, "APIGW.0101")
        assert dump_state(rig) == before


def test_malformed_body_gets_400_with_a_huawei_style_body(tmp_path: Path) -> None:
    app = ServerSpec(name="app", data_disks=(disk(),))
    with running_sandbox(tmp_path, scenario(app)) as rig:
        project = rig.app.config.account.project_id
        before = dump_state(rig)
        for service, path, body, code in (
            ("ecs", f"/v1/{project}/cloudservers/delete", b'{"servers": [', "Ecs.0005"),
            ("ecs", f"/v1/{project}/cloudservers/delete", b'["not", "an", "object"]', "Ecs.0005"),
            ("ecs", f"/v1/{project}/cloudservers/delete", b'{"servers": "all"}', "Ecs.0005"),
            ("ecs", f"/v1/{project}/cloudservers/action", b"\xff\xfe", "Ecs.0005"),
            ("evs", f"/v2/{project}/cloudsnapshots", b"{snapshot}", "EVS.1001"),
            ("cbr", f"/v3/{project}/checkpoints", b'{"checkpoint": 1', "BackupService.9900"),
        ):
            status, reply = raw_call(rig, service, "POST", path, body)
            assert status == 400, (path, body)
            assert reply["error"]["code"] == code
            assert reply["error"]["message"]
        rig.advance(10)
        assert dump_state(rig) == before


# -- acceptance 5: deterministic faults ----------------------------------------------------


def _thirty_calls(root: Path, faults: Faults) -> tuple[list[tuple[str, int]], list[Exception]]:
    config = SandboxConfig(faults=faults)
    with running_sandbox(root, scenario(ServerSpec(name="app")), config) as rig:
        client = ecs(rig)
        errors: list[Exception] = []
        for i in range(30):
            try:
                if i % 3 == 2:
                    client.show_server(ShowServerRequest(server_id=rig.ids["app"]))
                else:
                    client.list_servers_details(ListServersDetailsRequest(limit=10))
            except (ClientRequestException, ServerResponseException) as e:
                errors.append(e)
        return rig.calls(), errors


def test_the_same_seed_gives_the_same_faults_in_the_same_order(tmp_path: Path) -> None:
    def faults(seed: int) -> Faults:
        return Faults(seed=seed, throttle={"ecs.ListServersDetails": 0.5}, server_error={"*": 0.2})

    first, errors = _thirty_calls(tmp_path / "a", faults(7))
    again, _ = _thirty_calls(tmp_path / "b", faults(7))
    other, _ = _thirty_calls(tmp_path / "c", faults(8))

    assert len(first) == 30
    assert first == again
    assert other != first
    statuses = {status for _, status in first}
    assert {200, 429, 500} <= statuses
    assert all(s != 429 for op, s in first if op == "ecs.ShowServer")

    throttled = [e for e in errors if isinstance(e, ClientRequestException)]
    failed = [e for e in errors if isinstance(e, ServerResponseException)]
    assert len(throttled) + len(failed) == sum(1 for _, s in first if s != 200)
    # On a GET, the SDK's urllib3 Retry (status_forcelist=[429], total=retry_times=0) raises
    # before the body is read, so a 429 surfaces with error_code "429", not APIGW.0308.
    assert {(e.status_code, e.error_code) for e in throttled} == {(429, "429")}
    assert {(e.status_code, e.error_code) for e in failed} == {(500, "SYS.0500")}


def test_a_throttled_call_gets_a_huawei_style_429_and_changes_nothing(tmp_path: Path) -> None:
    config = SandboxConfig(faults=Faults(throttle={"ecs.DeleteServers": 1.0}))
    with running_sandbox(tmp_path, scenario(ServerSpec(name="app")), config) as rig:
        project = rig.app.config.account.project_id
        before = dump_state(rig)
        body = json.dumps({"servers": [{"id": rig.ids["app"]}]}).encode()
        status, reply = raw_call(rig, "ecs", "POST", f"/v1/{project}/cloudservers/delete", body)
        assert (status, reply["error_code"]) == (429, "APIGW.0308")
        assert reply["error_msg"]
        # POST is not in urllib3's retryable methods, so here the SDK reads the body's code.
        refused(lambda: delete_servers(rig, rig.ids["app"]), 429, "APIGW.0308")
        rig.advance(10)
        assert dump_state(rig) == before


def test_latency_is_injected_per_operation(tmp_path: Path) -> None:
    config = SandboxConfig(faults=Faults(latency={"ecs.ShowServer": 0.25}))
    with running_sandbox(tmp_path, scenario(ServerSpec(name="app")), config) as rig:
        ecs(rig).list_servers_details(ListServersDetailsRequest())
        assert rig.slept == []
        show_server(rig, rig.ids["app"])
        assert rig.slept == [0.25]
