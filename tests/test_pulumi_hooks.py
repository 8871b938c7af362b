"""teardown's Pulumi hooks, called as Pulumi's engine would call them, against the sandbox."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from teardown.adapters.huawei.clients import Clients
from teardown.adapters.huawei.destroyer import HuaweiDestroyer
from teardown.adapters.huawei.inventory import HuaweiInventory
from teardown.adapters.huawei.profile import load_profile
from teardown.app import Tuning
from teardown.app.pulumi_hooks import (
    DeleteRefused,
    HookSettings,
    after_delete,
    before_delete,
    run_id_for,
)
from teardown.core.config import PullRule
from teardown.core.model import DestroyAction
from teardown.core.phases import StepStatus
from teardown.engine.journal import Journal
from teardown.sandbox.runtime import Sandbox
from teardown.support.clock import SystemClock
from teardown.support.retry import RetryPolicy

SERVER = "huaweicloud:Ecs/instance:Instance"
FAST = Tuning(poll_interval=0.05, retry=RetryPolicy(attempts=2, initial=0.01, maximum=0.02))


def urn(name: str) -> str:
    return f"urn:pulumi:dev::shop::{SERVER}::{name}"


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[tuple[Sandbox, HookSettings]]:
    sb_dir = tmp_path / "sb"
    sb_dir.mkdir()
    (sb_dir / "sandbox.toml").write_text(
        "[durations]\ndelete_server = 0.1\nsnapshot = 0.1\ncheckpoint = 0.1\nrelease = 0.1\n"
    )
    cfg = tmp_path / "teardown.toml"
    cfg.write_text(
        f'[journal]\npath = "{tmp_path / "journal.db"}"\n[store]\npath = "{tmp_path / "store"}"\n'
    )
    with Sandbox(sb_dir, scenario="demo") as sb:
        yield (
            sb,
            HookSettings(
                scope="dev",
                profile=sb_dir / "profile.toml",
                config=cfg,
                pull=PullRule(paths_from_tag="sandbox.data", name="hook"),
                tuning=FAST,
            ),
        )


def outputs(sb: Sandbox, name: str) -> dict[str, Any]:
    """What Pulumi's state holds for the server (as the hook's ``old_outputs``)."""
    profile = load_profile(sb.layout.profile)
    (server,) = [r for r in HuaweiInventory(Clients(profile)).resources() if r.name == name]
    tags = dict(server.tags)
    return {
        "id": server.cloud_id,
        "name": name,
        "chargingMode": server.billing.mode.value,
        "accessIpV4": server.addresses[0].ip,
        "tags": tags,
    }


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_before_delete_refuses_while_ssh_is_unreachable_then_backs_up_then_rechecks(
    sandbox: tuple[Sandbox, HookSettings],
) -> None:
    sb, settings = sandbox
    web_id = outputs(sb, "web-1")["id"]
    # The sandbox profile says where each server's SSH server listens: send web-1 nowhere.
    unreachable = sb.layout.root / "unreachable-profile.toml"
    text = sb.layout.profile.read_text()
    port = load_profile(sb.layout.profile).ssh_ports[web_id]
    unreachable.write_text(text.replace(f'"{web_id}" = {port}', f'"{web_id}" = {closed_port()}'))
    with pytest.raises(DeleteRefused, match="not backed up"):
        before_delete(
            urn("web-1"), SERVER, outputs(sb, "web-1"), None, replace(settings, profile=unreachable)
        )
    journal = Journal.open(
        Path(str(settings.config).replace("teardown.toml", "journal.db")),
        SystemClock(),
        create=False,
    )
    run = run_id_for("dev", urn("web-1"), web_id)
    steps = journal.steps(run)
    assert any(s.kind.value == "pull" and s.status is StepStatus.FAILED for s in steps)
    names = {s.name for s in HuaweiInventory(Clients(load_profile(sb.layout.profile))).resources()}
    assert "web-1" in names  # the delete was stopped: the server still runs

    before_delete(urn("web-1"), SERVER, outputs(sb, "web-1"), None, settings)  # host is back
    verified = journal.artifacts(run)
    assert {a.kind for a in verified.values()} == {"cbr", "pull"}
    assert all(a.verified for a in verified.values())
    intents = len(journal.events(run))

    before_delete(urn("web-1"), SERVER, outputs(sb, "web-1"), None, settings)  # nothing to do
    assert len(journal.events(run)) == intents  # checked, and nothing made again

    # the local store was wiped since: the hook sees it and pulls again before allowing it
    pull = next(a for a in verified.values() if a.kind == "pull")
    manifest = Path(pull.ref)
    manifest.unlink()
    before_delete(urn("web-1"), SERVER, outputs(sb, "web-1"), None, settings)
    assert manifest.exists()
    (pull_step,) = [s for s in journal.steps(run) if s.kind.value == "pull"]
    assert pull_step.status is StepStatus.SUCCEEDED and pull_step.attempt >= 3
    journal.close()


def test_network_resources_return_at_once(sandbox: tuple[Sandbox, HookSettings]) -> None:
    sb, settings = sandbox
    vpc = "urn:pulumi:dev::shop::huaweicloud:Vpc/vpc:Vpc::net"
    assert sb.store is not None
    calls_before = sb.store.conn.execute("SELECT COUNT(*) FROM calls").fetchone()[0]
    before_delete(vpc, "huaweicloud:Vpc/vpc:Vpc", {"id": "v1", "name": "net"}, None, settings)
    after_delete(vpc, "huaweicloud:Vpc/vpc:Vpc", {"id": "v1", "name": "net"}, None, settings)
    # nothing to back up or bill: no cloud call, no journal
    assert sb.store.conn.execute("SELECT COUNT(*) FROM calls").fetchone()[0] == calls_before
    assert not Path(str(settings.config).replace("teardown.toml", "journal.db")).exists()


def test_after_delete_records_the_refund_of_a_prepaid_server(
    sandbox: tuple[Sandbox, HookSettings],
) -> None:
    sb, settings = sandbox
    out = outputs(sb, "cache-1")
    before_delete(urn("cache-1"), SERVER, out, None, settings)
    # Pulumi's provider deletes a prepaid server by unsubscribing it:
    profile = load_profile(sb.layout.profile)
    (cache,) = [r for r in HuaweiInventory(Clients(profile)).resources() if r.name == "cache-1"]
    HuaweiDestroyer(Clients(profile), poll_interval=0.05).destroy(
        cache, DestroyAction.UNSUBSCRIBE, "pulumi"
    )
    after_delete(urn("cache-1"), SERVER, out, None, settings)
    journal = Journal.open(
        Path(str(settings.config).replace("teardown.toml", "journal.db")),
        SystemClock(),
        create=False,
    )
    (record,) = journal.billing_records(run_id_for("dev", urn("cache-1"), out["id"]))
    assert str(record.refund.refund) in ("189.00", "189.0", "189")
    journal.close()
