"""The sandbox's CBR vaults, driven by the official ``CbrClient`` over real HTTP: ShowVault,
ListVault, AddVaultResource, RemoveVaultResource, and what a vault does to CreateCheckpoint
(its type, its bindings, its capacity, a backup's retention), and the vaults in what is still
billing. Facts and assumptions: docs/huawei-api.md, "CBR". Time moves only with ``rig.advance``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from huaweicloudsdkcbr.v1 import (
    AddVaultResourceRequest,
    CheckpointParam,
    CreateCheckpointRequest,
    ListBackupsRequest,
    ListVaultRequest,
    RemoveVaultResourceRequest,
    ResourceCreate,
    ShowBackupRequest,
    ShowVaultRequest,
    VaultAddResourceReq,
    VaultBackup,
    VaultBackupReq,
    VaultRemoveResourceReq,
)
from huaweicloudsdkcore.exceptions.exceptions import ClientRequestException

from teardown.adapters.huawei._parse import parse_time
from teardown.core.errors import ConfigError
from teardown.sandbox.billing import still_billing
from teardown.sandbox.scenario import (
    DEFAULT_VAULTS,
    DiskSpec,
    Scenario,
    ServerSpec,
    VaultSpec,
    VolumeSpec,
)
from teardown.sandbox.store import advance
from tests.sandbox_rig import SandboxRig, cbr, running_sandbox

SERVER, VOLUME = "OS::Nova::Server", "OS::Cinder::Volume"
STRICT = (
    VaultSpec(id="servers", name="server-backups", capacity_gb=100, auto_bind=False),
    VaultSpec(
        id="disks", name="disk-backups", object_type="disk", capacity_gb=100, auto_bind=False
    ),
)


def world(*vaults: VaultSpec) -> Scenario:
    """Two servers (a: 40 GB, b: 40 + 10 GB) and one loose 20 GB disk."""
    return Scenario(
        name="vault-test",
        servers=(
            ServerSpec(name="a", system_disk=DiskSpec(size=40, files={"etc/a": "a\n"})),
            ServerSpec(name="b", system_disk=DiskSpec(size=40), data_disks=(DiskSpec(size=10),)),
        ),
        volumes=(VolumeSpec(name="loose", disk=DiskSpec(size=20, files={"x": "x\n"})),),
        vaults=vaults or STRICT,
    )


def refused(call: Callable[[], object], status: int, code: str) -> ClientRequestException:
    with pytest.raises(ClientRequestException) as info:
        call()
    assert (info.value.status_code, info.value.error_code) == (status, code), info.value.error_msg
    assert info.value.error_msg
    return info.value


def show(rig: SandboxRig, vault_id: str) -> Any:
    return cbr(rig).show_vault(ShowVaultRequest(vault_id=vault_id)).vault


def add(rig: SandboxRig, vault_id: str, *resources: tuple[str, str]) -> list[str]:
    body = VaultAddResourceReq(resources=[ResourceCreate(id=i, type=t) for i, t in resources])
    req = AddVaultResourceRequest(vault_id=vault_id, body=body)
    return list(cbr(rig).add_vault_resource(req).add_resource_ids)


def checkpoint(
    rig: SandboxRig, vault_id: str, *resources: str, retention: int | None = None
) -> Any:
    params = CheckpointParam(resources=list(resources), name="k", retention_duration_days=retention)
    body = VaultBackupReq(checkpoint=VaultBackup(vault_id=vault_id, parameters=params))
    return cbr(rig).create_checkpoint(CreateCheckpointRequest(body=body)).checkpoint


def backups(rig: SandboxRig, **filters: Any) -> list[Any]:
    return list(cbr(rig).list_backups(ListBackupsRequest(**filters)).backups)


def bindings(rig: SandboxRig) -> list[tuple[str, str]]:
    rows = rig.store.conn.execute("SELECT vault_id, resource_id FROM vault_resources ORDER BY 1, 2")
    return [(r[0], r[1]) for r in rows]


def billing(rig: SandboxRig) -> dict[str, dict[str, Any]]:
    with rig.store.tx() as conn:
        advance(conn, rig.clock.now())
        return {b["resource_id"]: b for b in still_billing(conn, rig.clock.now())}


# -- ShowVault, ListVault ----------------------------------------------------------------------


def test_show_vault_reports_billing_as_the_sdk_models_it_assumption_used_is_full_disk_size(
    tmp_path: Path,
) -> None:
    with running_sandbox(tmp_path, world(*DEFAULT_VAULTS)) as rig:
        vault = show(rig, "vault-sandbox")
        b = vault.billing
        assert (vault.id, vault.name, vault.auto_bind) == ("vault-sandbox", "sandbox", True)
        assert (b.object_type, b.size, b.used, b.allocated) == ("server", 10240, 0, 0)
        assert (b.charging_mode, b.status, b.protect_type) == ("post_paid", "available", "backup")
        assert b.spec_code == "vault.backup.server.normal"
        disk = show(rig, "vault-sandbox-disk").billing
        assert (disk.object_type, disk.spec_code) == ("disk", "vault.backup.volume.normal")
        refused(lambda: show(rig, "no-such-vault"), 404, "BackupService.6105")
        checkpoint(rig, "vault-sandbox", rig.ids["b"])  # 40 + 10 GB of disks
        rig.advance(2)
        b = show(rig, "vault-sandbox").billing
        assert (b.used, b.allocated) == (50 * 1024, 50)  # used in MB, allocated in GB


def test_list_vault_filters_and_pages(tmp_path: Path) -> None:
    with running_sandbox(tmp_path, world()) as rig:
        client = cbr(rig)
        every = client.list_vault(ListVaultRequest())
        assert every.count == 2 and [v.id for v in every.vaults] == ["servers", "disks"]
        disks = client.list_vault(ListVaultRequest(object_type="disk"))
        assert [v.id for v in disks.vaults] == ["disks"]
        page = client.list_vault(ListVaultRequest(limit=1, offset=1))
        assert page.count == 2 and [v.id for v in page.vaults] == ["disks"]
        add(rig, "servers", (rig.ids["a"], SERVER))
        holding = client.list_vault(ListVaultRequest(resource_ids=rig.ids["a"]))
        assert [v.id for v in holding.vaults] == ["servers"]


# -- AddVaultResource, RemoveVaultResource -----------------------------------------------------


def test_add_vault_resource_binds_a_resource_of_the_vaults_type_once(tmp_path: Path) -> None:
    with running_sandbox(tmp_path, world()) as rig:
        a, loose = rig.ids["a"], rig.ids["loose"]
        assert add(rig, "servers", (a, SERVER)) == [a]
        assert add(rig, "disks", (loose, VOLUME)) == [loose]
        vault = show(rig, "servers")
        assert [(r.id, r.type, r.size) for r in vault.resources] == [(a, SERVER, 40)]
        assert vault.billing.allocated == 40
        refused(lambda: add(rig, "servers", (a, SERVER)), 400, "BackupService.7116")
        refused(lambda: add(rig, "disks", (loose, VOLUME)), 400, "BackupService.7006")
        refused(lambda: add(rig, "servers", (loose, VOLUME)), 400, "BackupService.6102")
        refused(lambda: add(rig, "disks", (rig.ids["b"], SERVER)), 400, "BackupService.6102")
        refused(lambda: add(rig, "nowhere", (a, SERVER)), 404, "BackupService.6105")
        assert bindings(rig) == sorted([("disks", loose), ("servers", a)])


def test_assumption_adding_a_resource_that_does_not_exist_is_refused_0001(
    tmp_path: Path,
) -> None:
    with running_sandbox(tmp_path, world()) as rig:
        refused(lambda: add(rig, "servers", ("nobody", SERVER)), 400, "BackupService.0001")
        refused(lambda: add(rig, "servers", (rig.ids["a"], VOLUME)), 400, "BackupService.6102")
        assert bindings(rig) == []


def test_a_resource_is_in_one_vault_at_most(tmp_path: Path) -> None:
    scenario = world(*STRICT, VaultSpec(id="more", object_type="server", auto_bind=False))
    with running_sandbox(tmp_path, scenario) as rig:
        add(rig, "servers", (rig.ids["a"], SERVER))
        refused(lambda: add(rig, "more", (rig.ids["a"], SERVER)), 400, "BackupService.6103")
        refused(lambda: checkpoint(rig, "more", rig.ids["a"]), 400, "BackupService.6135")


def test_remove_vault_resource_deletes_its_backups_assumption_unbound_is_6135(
    tmp_path: Path,
) -> None:
    with running_sandbox(tmp_path, world()) as rig:
        a, b = rig.ids["a"], rig.ids["b"]
        add(rig, "servers", (a, SERVER), (b, SERVER))
        checkpoint(rig, "servers", a, b)
        rig.advance(2)
        req = RemoveVaultResourceRequest(
            vault_id="servers", body=VaultRemoveResourceReq(resource_ids=[a])
        )
        assert list(cbr(rig).remove_vault_resource(req).remove_resource_ids) == [a]
        assert [x.status for x in backups(rig, resource_id=a)] == ["deleting"]
        rig.advance(1)
        assert backups(rig, resource_id=a) == []
        assert [x.status for x in backups(rig, resource_id=b)] == ["available"]
        assert bindings(rig) == [("servers", b)]
        refused(lambda: cbr(rig).remove_vault_resource(req), 400, "BackupService.6135")


# -- what a vault does to CreateCheckpoint -------------------------------------------------------


def test_assumption_a_checkpoint_of_a_resource_not_in_the_vault_is_refused_6135(
    tmp_path: Path,
) -> None:
    with running_sandbox(tmp_path, world()) as rig:
        refused(lambda: checkpoint(rig, "servers", rig.ids["a"]), 400, "BackupService.6135")
        assert backups(rig) == [] and bindings(rig) == []
        add(rig, "servers", (rig.ids["a"], SERVER))
        assert checkpoint(rig, "servers", rig.ids["a"]).status == "protecting"


def test_assumption_an_auto_binding_vault_binds_the_resource_at_the_checkpoint(
    tmp_path: Path,
) -> None:
    with running_sandbox(tmp_path, world(VaultSpec(id="auto", capacity_gb=100))) as rig:
        checkpoint(rig, "auto", rig.ids["a"])
        assert bindings(rig) == [("auto", rig.ids["a"])]


def test_a_vault_backs_up_only_its_object_type_6102(tmp_path: Path) -> None:
    auto = (
        VaultSpec(id="servers", capacity_gb=500),
        VaultSpec(id="disks", object_type="disk", capacity_gb=500),
    )
    with running_sandbox(tmp_path, world(*auto)) as rig:
        refused(lambda: checkpoint(rig, "servers", rig.ids["loose"]), 400, "BackupService.6102")
        refused(lambda: checkpoint(rig, "disks", rig.ids["a"]), 400, "BackupService.6102")
        assert bindings(rig) == [] and backups(rig) == []
        assert checkpoint(rig, "disks", rig.ids["loose"]).vault.resources[0].type == VOLUME


def test_assumption_a_checkpoint_past_the_vault_capacity_is_refused_6114_before_any_backup(
    tmp_path: Path,
) -> None:
    small = (VaultSpec(id="servers", capacity_gb=80, auto_bind=False),)
    with running_sandbox(tmp_path, world(*small)) as rig:
        a, b = rig.ids["a"], rig.ids["b"]
        add(rig, "servers", (a, SERVER), (b, SERVER))
        refused(lambda: checkpoint(rig, "servers", a, b), 400, "BackupService.6114")  # 40 + 50
        assert backups(rig) == []
        checkpoint(rig, "servers", a)
        rig.advance(2)
        assert show(rig, "servers").billing.used == 40 * 1024  # MB
        refused(lambda: checkpoint(rig, "servers", b), 400, "BackupService.6114")  # 40 + 50
        checkpoint(rig, "servers", a)  # 40 + 40 fits exactly
        rig.advance(2)
        assert show(rig, "servers").billing.used == 80 * 1024
        refused(lambda: checkpoint(rig, "servers", a), 400, "BackupService.6114")


def test_retention_sets_expired_at_and_the_backup_is_deleted_when_it_expires(
    tmp_path: Path,
) -> None:
    with running_sandbox(tmp_path, world()) as rig:
        a = rig.ids["a"]
        add(rig, "servers", (a, SERVER))
        kept = checkpoint(rig, "servers", a)
        dated = checkpoint(rig, "servers", a, retention=3)
        assert dated.extra_info.retention_duration == 3
        rig.advance(2)
        (listed,) = backups(rig, checkpoint_id=dated.id)
        backup = cbr(rig).show_backup(ShowBackupRequest(backup_id=listed.id)).backup
        made = utc(backup.created_at)
        assert parse_time(backup.expired_at) == made + timedelta(days=3)
        assert {parse_time(c.expired_at) for c in backup.children} == {made + timedelta(days=3)}
        (forever,) = backups(rig, checkpoint_id=kept.id)
        assert forever.expired_at is None
        assert billing(rig)["servers"]["retention_days"] is None  # one is kept until deleted
        rig.advance(timedelta(days=3).total_seconds())
        assert backups(rig, checkpoint_id=dated.id) == []
        assert [x.id for x in backups(rig, resource_id=a)] == [forever.id]
        assert show(rig, "servers").billing.used == 40 * 1024


# -- still billing -----------------------------------------------------------------------------


def test_every_vault_is_still_billing_by_its_capacity_with_the_gb_its_backups_use(
    tmp_path: Path,
) -> None:
    vaults = (
        VaultSpec(id="servers", name="server-backups", capacity_gb=200, auto_bind=False,
                  price_per_gb_month=Decimal("0.12")),
        VaultSpec(id="disks", object_type="disk", capacity_gb=50),
    )  # fmt: skip
    with running_sandbox(tmp_path, world(*vaults)) as rig:
        before = billing(rig)
        assert before["servers"]["size_gb"] == 0 and before["disks"]["backups"] == 0
        servers = before["servers"]
        assert (servers["kind"], servers["charging"], servers["name"]) == (
            "vault", "storage", "server-backups"
        )  # fmt: skip
        assert servers["capacity_gb"] == 200
        assert servers["monthly_cost"] == Decimal("24.00")  # 200 GB x 0.12
        assert servers["hourly_price"] == Decimal("0.0329")  # 24.00 / 730 h
        add(rig, "servers", (rig.ids["b"], SERVER))
        checkpoint(rig, "servers", rig.ids["b"], retention=30)
        checkpoint(rig, "disks", rig.ids["loose"])
        rig.advance(2)
        after = billing(rig)
        assert (after["servers"]["size_gb"], after["servers"]["backups"]) == (50, 1)
        assert after["servers"]["retention_days"] == 30
        assert (after["disks"]["size_gb"], after["disks"]["retention_days"]) == (20, None)
        assert after["servers"]["monthly_cost"] == Decimal("24.00")  # capacity, not use


# -- scenario validation -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("vault", "problem"),
    [
        (VaultSpec(object_type="file"), "vaults[0].object_type"),
        (VaultSpec(capacity_gb=0), "vaults[0].capacity_gb"),
        (VaultSpec(resources=("nobody",)), "vaults[0].resources"),
        (VaultSpec(resources=("loose",)), "vaults[0].resources"),
        (VaultSpec(object_type="disk", resources=("a",)), "vaults[0].resources"),
    ],
)
def test_scenario_vaults_are_validated(tmp_path: Path, vault: VaultSpec, problem: str) -> None:
    match = problem.replace("[", r"\[").replace("]", r"\]")
    with pytest.raises(ConfigError, match=match), running_sandbox(tmp_path, world(vault)):
        pass


def test_scenario_vault_bindings_are_made_at_seed(tmp_path: Path) -> None:
    vault = VaultSpec(id="servers", auto_bind=False, resources=("a",))
    with running_sandbox(tmp_path, world(vault)) as rig:
        assert bindings(rig) == [("servers", rig.ids["a"])]
        assert checkpoint(rig, "servers", rig.ids["a"]).status == "protecting"


def utc(value: object) -> datetime:
    """A time the SDK returned (a string, or a datetime when python-dateutil is installed)."""
    parsed = parse_time(value)
    assert parsed is not None, value
    return parsed
