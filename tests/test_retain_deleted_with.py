"""Pulumi's ``retainOnDelete`` and ``deletedWith`` as the engine writes them in a deployment
(``sdk/go/common/apitype/core.go``, ResourceV3; the fixture is the output of ``pulumi stack
export`` v3.274.1 after importing the sandbox demo's export with those two fields set): a retained
resource is never destroyed by teardown, and a child deleted with its parent is destroyed once, by
its parent, after its own backups are verified."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from teardown.adapters.pulumi.state import read_state
from teardown.core.config import Config
from teardown.core.model import DestroyAction, Kind, Resource, StepKind
from teardown.core.phases import Phase, RunPhase
from teardown.core.planner import make_plan
from teardown.engine.report import build_report
from tests.helpers import make_rig

FIXTURE = Path(__file__).parent / "fixtures" / "retain-deleted-with.json"
DB = "urn:pulumi:dev::shop-sandbox::huaweicloud:Ecs/instance:Instance::db-1"


def data_resources() -> list[Resource]:
    state = read_state(FIXTURE)
    return [r for r in state.resources if r.kind in (Kind.SERVER, Kind.VOLUME)]


def test_the_reader_keeps_retain_on_delete_and_deleted_with() -> None:
    by_name = {r.name: r for r in read_state(FIXTURE).resources}
    assert by_name["web-1"].retain
    assert by_name["db-data"].deleted_with == DB
    assert by_name["db-1"].created_at is not None  # the engine's `created`


def test_a_retained_server_is_never_destroyed_and_shows_as_retain() -> None:
    plan = make_plan(read_state(FIXTURE).resources, Config(), "dev")
    web = next(rp for rp in plan.resources if rp.resource.name == "web-1")
    assert web.action is DestroyAction.RETAIN
    assert web.destroy is None and web.backups == () and web.billing == ()
    assert not plan.blocked


def test_a_deleted_with_child_is_destroyed_once_by_its_parent() -> None:
    plan = make_plan(read_state(FIXTURE).resources, Config(), "dev")
    by_name = {rp.resource.name: rp for rp in plan.resources}
    db, data = by_name["db-1"], by_name["db-data"]
    assert data.action is DestroyAction.WITH_PARENT
    assert db.carries == (data.resource.urn,)
    assert db.destroy is not None and data.destroy is not None
    # the child is held by the parent's backup; the child's "destroy" is the parent's
    assert data.covered_by == db.resource.urn and data.backups == ()
    assert db.destroy.id in data.destroy.after
    assert data.destroy.id not in db.destroy.after
    assert not [s for s in data.billing if s.kind is StepKind.RECORD_REFUND]


def test_run_destroys_the_parent_once_and_records_the_child_gone_with_it(tmp_path: Path) -> None:
    resources = data_resources()
    rig = make_rig(tmp_path, resources)
    result = rig.runner.start(make_plan(resources, Config(), "dev"))

    assert result.phase is RunPhase.COMPLETED, result.errors
    destroyed = sorted(c["urn"].rsplit("::", 1)[1] for c in rig.cloud.calls("destroy"))
    assert destroyed == ["cache-1", "db-1"]  # web-1 retained; db-data went with db-1
    assert result.phases[DB] is Phase.DONE
    report = build_report(rig.journal, result.run_id)
    still = {s["name"]: s["why"] for s in report["still_billing"]}
    assert "retainOnDelete" in still["web-1"]


def test_the_parent_is_not_destroyed_while_the_childs_backup_is_not_verified(
    tmp_path: Path,
) -> None:
    # db-data is not among db-1's disks here, so it has a backup of its own, which fails
    resources = [
        replace(r, disks=tuple(d for d in r.disks if d.system)) if r.urn == DB else r
        for r in data_resources()
    ]
    child = next(r for r in resources if r.name == "db-data")
    rig = make_rig(tmp_path, resources, switches={"snapshot_error": [child.urn]})
    plan = make_plan(resources, Config(), "dev")
    assert next(rp for rp in plan.resources if rp.resource is child).backups
    result = rig.runner.start(plan)

    destroyed = [c["urn"].rsplit("::", 1)[1] for c in rig.cloud.calls("destroy")]
    assert "db-1" not in destroyed  # cache-1 may go; db-1 would take db-data with it
    assert result.phases[DB] is Phase.FAILED


def test_the_parent_is_not_destroyed_while_its_backup_does_not_hold_the_child(
    tmp_path: Path,
) -> None:
    # db-data is attached to db-1: db-1's whole-server backup must hold it (no second backup)
    resources = data_resources()
    plan = make_plan(resources, Config(), "dev")
    child = next(rp for rp in plan.resources if rp.resource.name == "db-data")
    assert child.backups == () and child.covered_by == DB
    rig = make_rig(tmp_path, resources, switches={"uncovered": [DB]})
    result = rig.runner.start(plan)

    destroyed = [c["urn"].rsplit("::", 1)[1] for c in rig.cloud.calls("destroy")]
    assert "db-1" not in destroyed
    assert result.phases[DB] is Phase.FAILED
    assert "holds disk" in result.errors[DB]


def test_a_child_whose_parent_is_not_in_scope_is_destroyed_on_its_own() -> None:
    resources = [
        replace(r, deleted_with="urn:pulumi:dev::shop-sandbox::x::elsewhere")
        for r in data_resources()
        if r.name == "db-data"
    ]
    (rp,) = make_plan(resources, Config(), "dev").resources
    assert rp.action is not DestroyAction.WITH_PARENT


def test_a_child_of_a_retained_parent_is_destroyed_on_its_own() -> None:
    resources = [replace(r, retain=True) if r.urn == DB else r for r in data_resources()]
    by_name = {rp.resource.name: rp for rp in make_plan(resources, Config(), "dev").resources}
    assert by_name["db-1"].action is DestroyAction.RETAIN
    assert by_name["db-data"].action is not DestroyAction.WITH_PARENT
