"""A backup counts only for the machine it copied, with the settings it was made with, and only
while it still exists: identity, reuse and existence at the moment of the destroy (I1)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from teardown.core.config import BackupConfig, Config, PullRule
from teardown.core.invariants import may_destroy
from teardown.core.model import Artifact, Origin, Resource, StepKind
from teardown.core.phases import Phase, RunPhase, StepStatus
from teardown.core.planner import make_plan
from teardown.engine.events import Event, StepSucceeded
from teardown.engine.journal import Journal
from teardown.engine.runner import Ports, Runner
from teardown.support.retry import RetryPolicy
from tests.fake_cloud import FakeCloud, FakeSnapshotter, fake_ports
from tests.helpers import FakeClock, make_rig, server

ACCOUNT = "huawei:cn-north-4:project-a"
CREATED = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
PULL_SITE = PullRule(paths=("/srv",), name="site")


def machine(cloud_id: str = "id-web", created: datetime = CREATED) -> Resource:
    return replace(server("web"), cloud_id=cloud_id, account=ACCOUNT, created_at=created)


def config(*rules: PullRule, reuse: str = "1h") -> Config:
    return Config(backup=BackupConfig(pull=rules or (PULL_SITE,), reuse_within=reuse))


def runner_over(
    cloud: FakeCloud, journal: Journal, clock: FakeClock, events: list[Event], reuse: str = "1h"
) -> Runner:
    snap, fetch, destroy, billing = fake_ports(cloud)
    return Runner(
        journal,
        Ports(snap, fetch, destroy, billing),
        clock=clock,
        retry=RetryPolicy(attempts=2, initial=0.1, maximum=0.1, jitter=0),
        sleep=lambda _s: None,
        observers=[events.append],
        reuse_within=timedelta(seconds=config(reuse=reuse).backup.reuse_seconds),
    )


def backups_made(cloud: FakeCloud) -> list[str]:
    return [c["op"] for c in cloud.calls() if c["op"] in ("snapshot.create", "pull")]


# -- identity --------------------------------------------------------------------------------


def test_backup_step_ids_depend_on_the_machine_and_the_settings() -> None:
    def ids(r: Resource, cfg: Config) -> list[str]:
        return [s.id for s in make_plan([r], cfg, "dev").resources[0].backups]

    base = ids(machine(), config())
    assert ids(machine(), config()) == base  # deterministic
    assert set(ids(machine(cloud_id="id-web-2"), config())).isdisjoint(base)
    recreated = replace(machine(), created_at=datetime(2026, 11, 21, tzinfo=UTC))
    assert set(ids(recreated, config())).isdisjoint(base)
    assert set(ids(replace(machine(), account="huawei:cn-north-4:b"), config())).isdisjoint(base)
    wider = config(PullRule(paths=("/srv", "/var/lib/orders"), name="site"))
    snap, pull = ids(machine(), wider)
    assert snap == base[0] and pull != base[1]  # only the changed rule's backup is new


def test_a_backup_of_a_recreated_machine_with_the_same_urn_is_never_reused(tmp_path: Path) -> None:
    old = machine("id-web-old")
    rig = make_rig(tmp_path / "first", [old])
    first = rig.runner.start(make_plan([old], config(), "dev"))
    assert first.phase is RunPhase.COMPLETED

    # `pulumi up` made it again: same URN, new cloud id; the journal is shared.
    new = machine("id-web-new", datetime(2026, 11, 26, 11, 0, tzinfo=UTC))
    cloud = FakeCloud.create(tmp_path / "second", [new])
    events: list[Event] = []
    runner = runner_over(cloud, rig.journal, rig.clock, events)
    second = runner.start(make_plan([new], config(), "dev"))

    assert second.phase is RunPhase.COMPLETED
    assert sorted(backups_made(cloud)) == ["pull", "snapshot.create"]  # made anew, both
    assert not [e for e in events if isinstance(e, StepSucceeded) and e.reused_from]
    (destroy,) = cloud.calls("destroy")
    assert destroy["backups"]  # backups of the new machine existed when it was destroyed
    arts = rig.journal.artifacts(second.run_id).values()
    assert {a.origin.resource_id for a in arts} == {"id-web-new"}


def test_changed_pull_paths_are_pulled_anew_not_reused(tmp_path: Path) -> None:
    web = machine()
    # the first run backs up but fails to destroy (the server stays)
    switches = {"fail": {"destroy": [{"error": "permanent", "times": 1}]}}
    rig = make_rig(tmp_path, [web], switches=switches)
    first = rig.runner.start(make_plan([web], config(), "dev"))
    assert first.phase is RunPhase.FAILED
    wider = config(PullRule(paths=("/srv", "/var/lib/orders"), name="site"))
    second = rig.runner.start(make_plan([web], wider, "dev"))

    assert second.phase is RunPhase.COMPLETED
    assert len(rig.cloud.calls("pull")) == 2  # the changed rule pulled again
    assert len(rig.cloud.calls("snapshot.create")) == 1  # the unchanged snapshot was reused
    reused = [e for e in rig.events if isinstance(e, StepSucceeded) and e.reused_from]
    assert [e.kind for e in reused] == [StepKind.SNAPSHOT]
    assert reused[0].reused_from == first.run_id
    assert reused[0].reuse_note.startswith(f"reused from run {first.run_id} (made at 2026-")


def test_reuse_within_bounds_the_age_and_zero_disables_it(tmp_path: Path) -> None:
    web = machine()
    switches = {"fail": {"destroy": [{"error": "permanent", "times": 2}]}}
    rig = make_rig(tmp_path, [web], switches=switches)
    events: list[Event] = []
    runner = runner_over(rig.cloud, rig.journal, rig.clock, events, reuse="30m")
    runner.start(make_plan([web], config(reuse="30m"), "dev"))
    rig.clock.advance(31 * 60)
    runner.start(make_plan([web], config(reuse="30m"), "dev"))
    assert len(rig.cloud.calls("snapshot.create")) == 2  # too old to reuse

    never = runner_over(rig.cloud, rig.journal, rig.clock, events, reuse="0")
    never.start(make_plan([web], config(reuse="0"), "dev"))
    assert len(rig.cloud.calls("snapshot.create")) == 3


def test_an_artifact_of_another_resource_never_satisfies_i1(tmp_path: Path) -> None:
    web = machine()
    rp = make_plan([web], config(), "dev").resources[0]
    ok = {s.id: Artifact("cbr", "cp", True, True, origin=s.expect or Origin()) for s in rp.backups}
    assert may_destroy(rp, ok).ok
    snap = rp.backups[0]
    assert snap.expect is not None
    other = replace(ok[snap.id], origin=replace(snap.expect, resource_id="id-db"))
    verdict = may_destroy(rp, {**ok, snap.id: other})
    assert not verdict.ok
    assert "resource_id id-db is not id-web" in verdict.reasons[0]
    unknown = replace(ok[snap.id], origin=Origin())  # recorded before origins existed
    assert not may_destroy(rp, {**ok, snap.id: unknown}).ok


def test_a_cloud_backup_recorded_as_another_resources_is_not_counted(tmp_path: Path) -> None:
    web = machine()
    rig = make_rig(tmp_path, [web], switches={"foreign_snapshots": [web.urn]})
    result = rig.runner.start(make_plan([web], config(), "dev"))
    assert result.phase is RunPhase.FAILED
    assert rig.cloud.calls("destroy") == []
    assert "is not a copy of web as planned" in result.errors[web.urn]


# -- existence -------------------------------------------------------------------------------


def test_a_reused_backup_deleted_since_is_made_again(tmp_path: Path) -> None:
    web = machine()
    switches = {"fail": {"destroy": [{"error": "permanent", "times": 1}]}}
    rig = make_rig(tmp_path, [web], switches=switches)
    first = rig.runner.start(make_plan([web], config(), "dev"))
    assert first.phase is RunPhase.FAILED
    for ref in list(rig.cloud.read()["snapshots"]):
        FakeSnapshotter(rig.cloud).delete(ref)  # vault retention, or a person in the console
    for art in rig.journal.artifacts(first.run_id).values():
        if art.kind == "pull":
            (Path(art.ref) / "manifest.json").unlink()  # the local store was wiped

    second = rig.runner.start(make_plan([web], config(), "dev"))

    assert second.phase is RunPhase.COMPLETED
    assert len(rig.cloud.calls("snapshot.create")) == 2
    assert len(rig.cloud.calls("pull")) == 2
    assert not [e for e in rig.events if isinstance(e, StepSucceeded) and e.reused_from]


def test_a_backup_deleted_before_the_destroy_stops_it_and_resume_makes_it_again(
    tmp_path: Path,
) -> None:
    web = machine()
    rig = make_rig(tmp_path, [web], parallel=1)
    snapper = FakeSnapshotter(rig.cloud)

    def delete_right_after_it_verified(event: Event) -> None:
        if isinstance(event, StepSucceeded) and event.kind is StepKind.SNAPSHOT:
            for ref in list(rig.cloud.read()["snapshots"]):
                snapper.delete(ref)

    rig.runner.observers.append(delete_right_after_it_verified)
    first = rig.runner.start(make_plan([web], config(), "dev"))

    assert first.phase is RunPhase.FAILED
    assert rig.cloud.calls("destroy") == []
    why = first.errors[web.urn]
    assert "refused to destroy" in why and "no longer exists" in why
    snap = next(s for s in rig.journal.steps(first.run_id) if s.kind is StepKind.SNAPSHOT)
    assert snap.status is StepStatus.FAILED and "no longer exists" in (snap.error or "")
    assert not rig.journal.artifacts(first.run_id)[snap.step_id].verified

    rig.runner.observers.remove(delete_right_after_it_verified)
    second = rig.runner.resume(first.run_id)
    assert second.phase is RunPhase.COMPLETED
    assert second.phases[web.urn] is Phase.DONE
    assert len(rig.cloud.calls("snapshot.create")) == 2
    (destroy,) = rig.cloud.calls("destroy")
    assert destroy["backups"]
