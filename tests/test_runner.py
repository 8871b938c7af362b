"""The runner over the fake cloud: I1, I2, I4 and partial failure, as a user would see them."""

from __future__ import annotations

import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from teardown.core.config import BackupConfig, BillingConfig, Config, PrepaidPolicy, PullRule
from teardown.core.errors import LockHeld
from teardown.core.model import BillingMode, DestroyAction, ResourcePlan, Step, StepKind
from teardown.core.phases import Phase, RunPhase, StepStatus
from teardown.core.planner import make_plan
from teardown.engine.codec import plan_to_json
from teardown.engine.events import StepSucceeded
from tests.helpers import Rig, make_rig, network, server, volume

PULL = Config(backup=BackupConfig(pull=(PullRule(paths=("/srv",), name="site"),)))


def test_everything_verified_is_destroyed_and_billing_closed(tmp_path: Path) -> None:
    db = server("db", BillingMode.PRE_PAID, pending=("CS1",))
    resources = [server("web"), db, volume("data", BillingMode.PRE_PAID, parent=db.urn)]
    rig = make_rig(tmp_path, resources)
    result = rig.runner.start(make_plan(resources, PULL, "dev"))
    assert result.phase is RunPhase.COMPLETED
    assert set(result.phases.values()) == {Phase.DONE}
    destroys = rig.cloud.calls("destroy")
    assert sorted(c["urn"] for c in destroys) == sorted(r.urn for r in resources)
    assert all(c["backups"] for c in destroys)
    assert rig.cloud.read()["orders"]["CS1"] == "cancelled"
    refunds = rig.journal.billing_records(result.run_id)
    assert sorted(b.urn for b in refunds) == sorted([db.urn, resources[2].urn])


def test_destroy_refused_when_pull_checksum_differs(tmp_path: Path) -> None:
    web, other = server("web"), server("other")
    rig = make_rig(tmp_path, [web, other], switches={"corrupt_pull": [web.urn]})
    result = rig.runner.start(make_plan([web, other], PULL, "dev"))
    assert result.phase is RunPhase.PARTIALLY_FAILED
    assert result.phases[web.urn] is Phase.FAILED
    assert [c["urn"] for c in rig.cloud.calls("destroy")] == [other.urn]
    pull = next(
        s for s in rig.journal.steps(result.run_id) if s.kind is StepKind.PULL and s.urn == web.urn
    )
    assert pull.status is StepStatus.FAILED and "sha256 mismatch" in (pull.error or "")


def test_backup_in_error_means_nothing_is_destroyed_and_run_failed(tmp_path: Path) -> None:
    web = server("web")
    rig = make_rig(tmp_path, [web], switches={"snapshot_error": [web.urn]})
    result = rig.runner.start(make_plan([web], Config(), "dev"))
    assert result.phase is RunPhase.FAILED
    assert rig.cloud.calls("destroy") == []
    assert "backup failed" in result.errors[web.urn]


def test_transient_errors_are_retried_with_the_injected_sleep(tmp_path: Path) -> None:
    web = server("web")
    switches = {"fail": {"destroy": [{"error": "transient", "times": 2}]}}
    rig = make_rig(tmp_path, [web], switches=switches, attempts=3)
    result = rig.runner.start(make_plan([web], Config(), "dev"))
    assert result.phase is RunPhase.COMPLETED
    assert len(rig.slept) == 2 and all(0 < s <= 2.1 for s in rig.slept)
    assert len(rig.cloud.calls("destroy")) == 3  # two refused, one done


def test_permanent_error_fails_at_once_and_resume_finishes_the_run(tmp_path: Path) -> None:
    web = server("web", BillingMode.PRE_PAID)
    switches = {"fail": {"refund": [{"error": "permanent", "times": 1}]}}
    rig = make_rig(tmp_path, [web], switches=switches)
    first = rig.runner.start(make_plan([web], Config(), "dev"))
    assert first.phase is RunPhase.PARTIALLY_FAILED and rig.slept == []
    second = rig.runner.resume(first.run_id)
    assert second.phase is RunPhase.COMPLETED
    assert len([c for c in rig.cloud.calls("destroy") if "failed" not in c]) == 1


def test_billing_waits_for_destroy_and_dependents_go_first(tmp_path: Path) -> None:
    vpc = network("vpc")
    web = server("web", BillingMode.PRE_PAID, deps=(vpc.urn,))
    rig = make_rig(tmp_path, [vpc, web])
    rig.runner.start(make_plan([vpc, web], Config(), "dev"))
    ops = [(c["op"], c.get("urn")) for c in rig.cloud.calls()]
    assert ops.index(("destroy", web.urn)) < ops.index(("destroy", vpc.urn))
    assert ops.index(("destroy", web.urn)) < ops.index(("refund", web.urn))


def test_failed_dependent_keeps_its_network(tmp_path: Path) -> None:
    vpc = network("vpc")
    web = server("web", deps=(vpc.urn,))
    rig = make_rig(tmp_path, [vpc, web], switches={"snapshot_error": [web.urn]})
    result = rig.runner.start(make_plan([vpc, web], Config(), "dev"))
    assert rig.cloud.calls("destroy") == []
    assert result.phases[vpc.urn] is Phase.FAILED


def test_keep_to_expiry_backs_up_then_stops_renewals_and_destroys_nothing(tmp_path: Path) -> None:
    db = server("db", BillingMode.PRE_PAID, auto_renew=True)
    config = Config(billing=BillingConfig(prepaid=PrepaidPolicy.KEEP_TO_EXPIRY))
    rig = make_rig(tmp_path, [db])
    result = rig.runner.start(make_plan([db], config, "dev"))
    assert result.phase is RunPhase.COMPLETED
    assert rig.cloud.calls("destroy") == []
    assert [c["op"] for c in rig.cloud.calls() if c["op"] != "snapshot.create"] == [
        "unsubscribe_renewals",
        "cancel_auto_renew",
    ]
    assert rig.cloud.calls("unsubscribe_renewals")[0]["backups"]


def test_blocked_plan_changes_nothing_and_is_recorded(tmp_path: Path) -> None:
    from teardown.core.model import Kind, Resource

    odd = Resource(urn="urn:pulumi:dev::p::x:y:Z::odd", type="x:y:Z", kind=Kind.UNKNOWN, name="odd")
    rig = make_rig(tmp_path, [server("web"), odd])
    result = rig.runner.start(make_plan([server("web"), odd], Config(), "dev"))
    assert result.phase is RunPhase.BLOCKED
    assert rig.cloud.calls() == []
    assert result.phases == {odd.urn: Phase.BLOCKED}


def destroy_intent_written(tmp_path: Path) -> tuple[Rig, ResourcePlan, Step]:
    """A run that backed up ``web`` and wrote its destroy intent, then the process died."""
    web = server("web")
    plan = make_plan([web], Config(), "dev")
    rp = plan.resources[0]
    assert rp.destroy is not None
    rig = make_rig(tmp_path, [web])
    rig.journal.create_run("r1", "dev", plan_to_json(plan), "d")
    for step in rp.backups:
        rig.runner._run_step("r1", step, rp)
    rig.journal.set_phase("r1", web.urn, Phase.VERIFIED)
    rig.journal.set_phase("r1", web.urn, Phase.DESTROYING)
    rig.journal.record_intent("r1", rp.destroy, f"{rp.destroy.id}-1")
    return rig, rp, rp.destroy


def test_intent_without_outcome_is_reconciled_not_repeated(tmp_path: Path) -> None:
    rig, rp, destroy = destroy_intent_written(tmp_path)
    # The call itself had gone through before the process died.
    rig.runner.ports.destroyer.destroy(rp.resource, DestroyAction.DELETE, f"{destroy.id}-1")

    result = rig.runner.resume("r1")
    assert result.phase is RunPhase.COMPLETED
    assert len(rig.cloud.calls("destroy")) == 1
    assert any(isinstance(e, StepSucceeded) and e.reconciled for e in rig.events)


def test_intent_whose_effect_never_happened_is_carried_out_on_resume(tmp_path: Path) -> None:
    rig, _, destroy = destroy_intent_written(tmp_path)  # died before the call

    result = rig.runner.resume("r1")
    assert result.phase is RunPhase.COMPLETED
    (call,) = rig.cloud.calls("destroy")
    assert call["key"] == f"{destroy.id}-r1-2" and call["backups"]


def test_a_second_run_on_a_locked_scope_is_refused_and_changes_nothing(tmp_path: Path) -> None:
    web = server("web")
    rig = make_rig(tmp_path, [web])
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        with sqlite3.connect(rig.journal.path) as c:
            at = rig.clock.now().isoformat()
            c.execute(
                "INSERT INTO locks VALUES ('dev', 'other-run', ?, ?, ?, ?)",
                (holder.pid, socket.gethostname(), at, at),
            )
        with pytest.raises(LockHeld, match="other-run"):
            rig.runner.start(make_plan([web], Config(), "dev"))
    finally:
        holder.kill()
        holder.wait()
    assert rig.cloud.calls() == []
    assert rig.journal.runs() == []
