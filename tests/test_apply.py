"""Plan files: review, then apply exactly what was reviewed; drift is refused (I5)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from teardown.cli.main import cli
from teardown.sandbox.runtime import Sandbox
from teardown.sandbox.scenario import DiskSpec, add_volume
from tests.sandbox_rig import demo_unlocked

ROOT = Path(__file__).resolve().parent.parent
DEMO_SERVERS = {"web-1", "db-1", "cache-1", "promo-1", "legacy-1"}


@pytest.fixture
def sb(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Sandbox]:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sb").mkdir()
    (tmp_path / "sb" / "sandbox.toml").write_text(
        "[durations]\ndelete_server = 0.05\nsnapshot = 0.05\ncheckpoint = 0.05\nrelease = 0.05\n"
    )
    config = (ROOT / "examples" / "sandbox-demo.toml").read_text()
    (tmp_path / "teardown.toml").write_text(config)
    with Sandbox(tmp_path / "sb", scenario=demo_unlocked(tmp_path)) as sandbox:
        yield sandbox


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


def make_plan_file(sb: Sandbox, tmp: Path) -> Path:
    out = tmp / "plan.json"
    code, _, err = invoke(
        "plan", "--profile", str(sb.layout.profile), "--tag", "app=shop", "--out", str(out)
    )
    assert code == 0, err
    assert "teardown apply" in err
    return out


def server_names(sb: Sandbox) -> set[str]:
    assert sb.store is not None
    return {r[0] for r in sb.store.conn.execute("SELECT name FROM servers WHERE deleted=0")}


def test_apply_refuses_when_a_disk_was_added_since_the_plan(sb: Sandbox, tmp_path: Path) -> None:
    plan_file = make_plan_file(sb, tmp_path)
    assert sb.store is not None
    with sb.store.tx() as conn:
        web = conn.execute("SELECT id FROM servers WHERE name='web-1'").fetchone()[0]
        add_volume(conn, sb.layout.root, sb.clock.now(), DiskSpec(size=20, name="late-disk"),
                   name="late-disk", server_id=web, device="/dev/vdc")  # fmt: skip
    code, _, err = invoke("apply", str(plan_file), "--profile", str(sb.layout.profile), "--yes")
    assert code == 3
    assert "changed since the plan" in err and "web-1: disks was" in err
    assert server_names(sb) == DEMO_SERVERS  # nothing destroyed


def test_apply_runs_the_reviewed_plan_once(sb: Sandbox, tmp_path: Path) -> None:
    plan_file = make_plan_file(sb, tmp_path)
    code, out, err = invoke(
        "apply", str(plan_file), "--profile", str(sb.layout.profile), "--yes", "--json"
    )
    assert code == 0, err
    assert json.loads(out)["phase"] == "completed"
    assert server_names(sb) == set()
    code, _, err = invoke("apply", str(plan_file), "--profile", str(sb.layout.profile), "--yes")
    assert code == 0 and "already applied" in err


def test_a_changed_plan_file_is_refused(sb: Sandbox, tmp_path: Path) -> None:
    plan_file = make_plan_file(sb, tmp_path)
    body = json.loads(plan_file.read_text())
    body["plan"]["scope"] = "something-else"
    plan_file.write_text(json.dumps(body))
    code, _, err = invoke("apply", str(plan_file), "--yes")
    assert code == 2 and "digest mismatch" in err
    assert server_names(sb) == DEMO_SERVERS


def test_not_a_plan_file_is_refused_naming_it(tmp_path: Path) -> None:
    bad = tmp_path / "x.json"
    bad.write_text('{"hello": 1}')
    code, _, err = invoke("apply", str(bad))
    assert code == 2 and str(bad) in err and "not a teardown plan file" in err


def test_a_forged_plan_file_with_a_valid_digest_is_refused(sb: Sandbox, tmp_path: Path) -> None:
    from teardown.app.planfile import _digest

    plan_file = make_plan_file(sb, tmp_path)
    body = json.loads(plan_file.read_text())
    web = next(r for r in body["plan"]["resources"] if r["resource"]["name"] == "web-1")
    assert web["backups"]
    web["backups"] = []  # no backup needed...
    web["loss_accepted"] = True  # ...because the loss is "accepted"
    web["destroy"]["after"] = []
    body["digest"] = _digest(body)  # and the seal made to match
    plan_file.write_text(json.dumps(body))

    code, _, err = invoke("apply", str(plan_file), "--profile", str(sb.layout.profile), "--yes")

    assert code == 3
    assert "not the plan the live inventory and its settings give" in err
    assert "web-1: backups" in err and "web-1: loss_accepted was True, now False" in err
    assert server_names(sb) == DEMO_SERVERS  # nothing destroyed
