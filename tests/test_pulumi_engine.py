"""The real Pulumi engine (CLI v3.274.1, built by ``scripts/get-pulumi``) running ``up`` and
``destroy`` of stacks whose servers carry teardown's hooks, against the sandbox.

The stacks are inline Automation API programs (the Python SDK serves the program; no language
host is needed) with a local file backend in a temporary directory. Their servers are Python
dynamic-provider resources (``tests/engine_provider.py``: the provider process is the
``pulumi-resource-pulumi-python`` shim that ``scripts/get-pulumi`` writes beside the CLI), mapped
to ``server`` through ``[types] kinds``. The hooks run in this process, as they run in a user's
program.

Skipped, with the reason, when no pulumi CLI is found (``scripts/test`` puts the one
``scripts/get-pulumi`` built on PATH; CI builds it first).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
import pytest
from click.testing import CliRunner
from pulumi import automation

from teardown.adapters.huawei.clients import Clients
from teardown.adapters.huawei.inventory import HuaweiInventory
from teardown.adapters.huawei.profile import load_profile
from teardown.app.pulumi_hooks import run_id_for
from teardown.cli.main import cli
from teardown.engine.journal import Journal
from teardown.sandbox.billing import still_billing
from teardown.sandbox.runtime import Sandbox
from teardown.support.clock import SystemClock
from tests.engine_provider import PROFILE_ENV, SERVER_TYPE

REPO = Path(__file__).resolve().parent.parent
PULUMI = shutil.which("pulumi")
SHIM = shutil.which("pulumi-resource-pulumi-python")

pytestmark = [
    pytest.mark.pulumi_engine,
    pytest.mark.skipif(
        PULUMI is None or SHIM is None,
        reason="no pulumi CLI (and pulumi-resource-pulumi-python shim) on PATH: run "
        "scripts/get-pulumi (needs Go) or use scripts/test, which puts the built one on PATH",
    ),
]

PROJECT = "teardown-engine"


@dataclass
class World:
    sb: Sandbox
    root: Path
    project: Path
    config: Path
    journal: Path
    env: dict[str, str]

    def profile(self) -> Path:
        return self.sb.layout.profile

    def names(self) -> set[str]:
        inv = HuaweiInventory(Clients(load_profile(self.profile())))
        return {r.name for r in inv.resources()}

    def ids(self) -> dict[str, str]:
        inv = HuaweiInventory(Clients(load_profile(self.profile())))
        return {r.name: r.cloud_id or "" for r in inv.resources()}


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    sb_dir = tmp_path / "sb"
    sb_dir.mkdir()
    (sb_dir / "sandbox.toml").write_text(
        "[durations]\ndelete_server = 0.1\nsnapshot = 0.1\ncheckpoint = 0.1\nrelease = 0.1\n"
    )
    journal = tmp_path / "journal.db"
    config = tmp_path / "teardown.toml"
    config.write_text(
        f'[journal]\npath = "{journal}"\n[store]\npath = "{tmp_path / "store"}"\n'
        f'[types]\nkinds = {{ "{SERVER_TYPE}" = "server" }}\n'
        '[[backup.pull]]\nname = "data"\npaths_from_tag = "sandbox.data"\n'
    )
    project = tmp_path / "project"
    project.mkdir()
    backend = tmp_path / "backend"
    backend.mkdir()
    with Sandbox(sb_dir, scenario="demo") as sb:
        env = {
            "PULUMI_BACKEND_URL": f"file://{backend}",
            "PULUMI_CONFIG_PASSPHRASE": "test-only",
            "PULUMI_HOME": str(tmp_path / "pulumi-home"),
            "PULUMI_SKIP_UPDATE_CHECK": "true",
            "PULUMI_DIY_BACKEND_NO_LEGACY_WARNING": "true",
            PROFILE_ENV: str(sb.layout.profile),
            # the provider process unpickles tests.engine_provider
            "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
        }
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        yield World(sb, tmp_path, project, config, journal, env)


def inline_stack(world: World, name: str, program: Callable[[], None]) -> automation.Stack:
    """An Automation API stack of ``program`` (inline: no language host) in the world's project
    directory and local backend."""
    return automation.create_or_select_stack(
        stack_name=name,
        project_name=PROJECT,
        program=program,
        opts=automation.LocalWorkspaceOptions(
            work_dir=str(world.project),
            env_vars=world.env,
            project_settings=automation.ProjectSettings(
                name=PROJECT,
                runtime="python",
                backend=automation.ProjectBackend(world.env["PULUMI_BACKEND_URL"]),
            ),
        ),
    )


def make_stack(
    world: World, name: str, servers: list[str], *, hooks: bool = True
) -> automation.Stack:
    def program() -> None:
        from teardown.pulumi import teardown_hooks
        from tests.engine_provider import SandboxServer

        for server in servers:
            opts = None
            if hooks:
                opts = pulumi.ResourceOptions(hooks=teardown_hooks(name=f"teardown-{server}"))
            SandboxServer(server, opts)

    stack = inline_stack(world, name, program)
    stack.set_all_config(
        {
            "teardown:profile": automation.ConfigValue(str(world.profile())),
            "teardown:config": automation.ConfigValue(str(world.config)),
        }
    )
    return stack


def unreachable_profile(world: World, server_id: str) -> Path:
    """The sandbox profile with one server's SSH port pointing nowhere."""
    text = world.profile().read_text()
    port = load_profile(world.profile()).ssh_ports[server_id]
    path = world.root / "unreachable-profile.toml"
    path.write_text(text.replace(f'"{server_id}" = {port}', f'"{server_id}" = {closed_port()}'))
    return path


def export(world: World, stack: str) -> dict[str, Any]:
    """``pulumi stack export`` as the CLI writes it (the Automation API drops ``features``)."""
    assert PULUMI is not None
    out = subprocess.run(
        [PULUMI, "stack", "export", "--stack", stack],
        cwd=world.project, env={**os.environ, **world.env}, capture_output=True, text=True,
        check=True,
    )  # fmt: skip
    doc: dict[str, Any] = json.loads(out.stdout)
    return doc


def test_up_and_destroy_with_teardowns_hooks(world: World) -> None:
    servers = ["web-1", "db-1", "cache-1"]
    stack = make_stack(world, "dev", servers)
    stack.up(on_output=print)

    # -- the state is version 4 with the hooks, and teardown reads it -------------------------
    doc = export(world, "dev")
    assert doc["version"] == 4 and doc["features"] == ["hooks"]
    hooked = [r for r in doc["deployment"]["resources"] if r["type"] == SERVER_TYPE]
    assert sorted(r["urn"].rsplit("::", 1)[1] for r in hooked) == sorted(servers)
    for r in hooked:
        name = r["urn"].rsplit("::", 1)[1]
        assert r["resourceHooks"]["BeforeDelete"][0].startswith(f"teardown-{name}-before-delete-")
        assert r["resourceHooks"]["AfterDelete"][0].startswith(f"teardown-{name}-after-delete-")

    # what the stack's servers bill for: themselves and the disks bought with them (disks bought
    # separately are not the stack's: db-1's data disks stay, as with pulumi-huaweicloud)
    with_disks = {
        r.name: {r.cloud_id, *(d.id for d in r.disks if d.bound)}
        for r in HuaweiInventory(Clients(load_profile(world.profile()))).resources()
        if r.name in servers
    }
    ids = {name: cloud_id for name, cloud_id in world.ids().items() if name in servers}
    state_file = world.root / "export.json"
    state_file.write_text(json.dumps(doc))
    plan = CliRunner().invoke(
        cli,
        ["plan", "--state", str(state_file), "--profile", str(world.profile()),
         "--config", str(world.config), "--json"],
    )  # fmt: skip
    assert plan.exit_code == 0, plan.output
    planned = {rp["urn"].rsplit("::", 1)[1]: rp for rp in json.loads(plan.stdout)["resources"]}
    assert set(planned) == set(servers)
    assert all(rp["kind"] == "server" and rp["backups"] for rp in planned.values())

    # -- a destroy that does not run the program is refused by the engine ----------------------
    with pytest.raises(automation.errors.CommandError) as refused:
        stack.destroy(on_output=print)
    assert "--run-program" in str(refused.value)
    assert set(servers) <= world.names()

    # -- web-1's SSH is unreachable: its before-delete hook stops its delete ------------------
    stack.set_config(
        "teardown:profile",
        automation.ConfigValue(str(unreachable_profile(world, ids["web-1"]))),
    )
    with pytest.raises(automation.errors.CommandError) as stopped:
        stack.destroy(on_output=print, run_program=True)
    assert 'before hook "teardown-web-1-before-delete-' in str(stopped.value)
    left = world.names()
    assert "web-1" in left
    assert not {"db-1", "cache-1"} & left, left
    with Journal.open(world.journal, SystemClock(), create=False) as journal:
        for name in ("db-1", "cache-1"):
            run_id = run_id_for("dev", urn_of(doc, name), ids[name])
            artifacts = journal.artifacts(run_id).values()
            assert {a.kind for a in artifacts} == {"cbr", "pull"} and all(
                a.verified for a in artifacts
            ), name

    # -- SSH is back: the destroy completes --------------------------------------------------
    stack.set_config("teardown:profile", automation.ConfigValue(str(world.profile())))
    stack.destroy(on_output=print, run_program=True)
    assert not set(servers) & world.names()
    with Journal.open(world.journal, SystemClock(), create=False) as journal:
        for name in servers:
            run_id = run_id_for("dev", urn_of(doc, name), ids[name])
            artifacts = journal.artifacts(run_id).values()
            assert artifacts and all(a.verified for a in artifacts), name
            records = journal.billing_records(run_id)
            if name in ("db-1", "cache-1"):  # prepaid: the refund of the provider's unsubscribe
                (record,) = records
                assert record.refund.refund > 0, name
    assert world.sb.store is not None
    billing = still_billing(world.sb.store.conn, SystemClock().now())
    ours = set().union(*with_disks.values())
    assert [e for e in billing if e.get("resource_id") in ours] == []
    assert any(e["kind"] == "vault" for e in billing)


def urn_of(doc: dict[str, Any], name: str) -> str:
    (urn,) = [r["urn"] for r in doc["deployment"]["resources"] if r["urn"].endswith(f"::{name}")]
    return str(urn)


def test_teardown_run_on_a_stack_through_the_automation_api(world: World) -> None:
    """``teardown run --stack`` on a stack without hooks: the plan from the stack's state, the
    backups, a targeted ``pulumi destroy`` per server (the engine calls the provider's delete),
    and the report."""
    servers = ["web-1", "cache-1"]
    stack = make_stack(world, "second", servers, hooks=False)
    stack.up(on_output=lambda _: None)
    common = [
        "--stack", "second", "--cwd", str(world.project), "--destroy-with", "pulumi",
        "--profile", str(world.profile()), "--config", str(world.config),
    ]  # fmt: skip
    runner = CliRunner()
    plan = runner.invoke(cli, ["plan", *common, "--json"])
    assert plan.exit_code == 0, plan.output
    planned = json.loads(plan.stdout)["resources"]
    assert sorted(rp["urn"].rsplit("::", 1)[1] for rp in planned) == sorted(servers)
    assert all(rp["destroy"]["action"] == "pulumi" for rp in planned)

    run = runner.invoke(cli, ["run", *common, "--yes", "--quiet", "--json"])
    assert run.exit_code == 0, run.output
    report = json.loads(run.stdout)
    assert report["phase"] == "completed"
    assert not set(servers) & world.names()  # deleted by the engine, through the provider
    remaining = export(world, "second")["deployment"].get("resources") or []
    assert [r for r in remaining if r["type"] == SERVER_TYPE] == []
    for rp in report["resources"]:
        assert rp["phase"] == "done" and rp["destroy"]["status"] == "succeeded", rp["name"]
        assert {b["kind"] for b in rp["backups"]} == {"snapshot", "pull"}, rp["name"]
        assert all(b["status"] == "succeeded" for b in rp["backups"]), rp["name"]
    # cache-1 is prepaid: the provider's unsubscribe refunded it, and the run recorded it
    assert float(report["money"]["recorded_refund"]) > 0


POLICY_PACK = REPO / "stacks" / "policy"


def test_the_policy_pack_run_by_the_engine_rejects_an_unguarded_server(world: World) -> None:
    """``preview`` with teardown's policy pack (mandatory): the server bound to teardown's hooks
    and declaring them passes, the bare one is rejected. No Python language host is at hand (its
    module is not served), so the engine starts the pack as a binary analyzer: the pack's own
    ``run-pack`` script."""

    def program() -> None:
        from teardown.pulumi import hook_tag, teardown_hooks
        from tests.engine_provider import SandboxServer

        binding = teardown_hooks(name="teardown-web-1")
        SandboxServer("web-1", pulumi.ResourceOptions(hooks=binding), tags=hook_tag(binding))
        SandboxServer("db-1", tags={"env": "test"})

    stack = inline_stack(world, "policy", program)
    config = world.root / "policy-config.json"
    config.write_text(
        json.dumps(
            {
                "teardown-data-resources-guarded": {
                    "enforcementLevel": "mandatory",
                    "hookedTypes": [SERVER_TYPE],
                }
            }
        )
    )
    lines: list[str] = []
    with pytest.raises(automation.errors.CommandError) as rejected:
        stack.preview(
            policy_packs=[str(POLICY_PACK / "run-pack")],
            policy_pack_configs=[str(config)],
            on_output=lines.append,
        )
    output = "".join(lines) + str(rejected.value)
    assert f"{SERVER_TYPE} 'db-1' holds data and is not guarded" in output
    assert "'web-1' holds data" not in output
    assert "mandatory" in output


def test_sweep_of_stacks_by_name_glob(world: World) -> None:
    """``teardown sweep --stack-glob 'ci-*'``: every matching stack of the project is a scope,
    destroyed through the engine; a stack that does not match is left as it is."""
    for name, servers in (("ci-a", ["web-1"]), ("ci-b", ["cache-1"]), ("keep-db", ["db-1"])):
        make_stack(world, name, servers, hooks=False).up(on_output=lambda _: None)
    result = CliRunner().invoke(
        cli,
        [
            "sweep", "--stack-glob", "ci-*", "--cwd", str(world.project),
            "--destroy-with", "pulumi", "--profile", str(world.profile()),
            "--config", str(world.config), "--yes", "--quiet", "--json",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert {line["scope"]: line["exit_code"] for line in report["scopes"]} == {
        "ci-a": 0,
        "ci-b": 0,
    }
    assert all(line["destroyed"] == 1 for line in report["scopes"])
    left = world.names()
    assert "db-1" in left and not {"web-1", "cache-1"} & left
    assert [r["type"] for r in export(world, "keep-db")["deployment"]["resources"]].count(
        SERVER_TYPE
    ) == 1
