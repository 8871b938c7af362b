"""No test switches in the product: no hidden or test-only option in any command, no fake cloud
or benchmark hook in the package, and a server's tag never sends a pull to loopback."""

from __future__ import annotations

import importlib
from dataclasses import replace
from pathlib import Path

import click
import pytest

from teardown.adapters.huawei.profile import load_profile
from teardown.adapters.ssh.fetcher import target_for
from teardown.cli.main import cli
from teardown.core.config import SshConfig
from teardown.core.model import Address
from tests.helpers import server

PACKAGE = Path(__file__).resolve().parent.parent / "teardown"


def commands(group: click.Group, prefix: str = "teardown") -> list[tuple[str, click.Command]]:
    out: list[tuple[str, click.Command]] = [(prefix, group)]
    for name, command in sorted(group.commands.items()):
        if isinstance(command, click.Group):
            out += commands(command, f"{prefix} {name}")
        else:
            out.append((f"{prefix} {name}", command))
    return out


def test_no_command_has_a_hidden_or_test_only_option() -> None:
    found = commands(cli)
    assert len(found) > 10
    for name, command in found:
        hidden = [p.name for p in command.params if getattr(p, "hidden", False)]
        assert not hidden, f"{name} has hidden options {hidden}"
        ctx = click.Context(command, info_name=name)
        text = command.get_help(ctx).lower()
        for word in ("crash", "fake", "bench", "fault injection"):
            assert word not in text, f"{name} --help mentions {word!r}"


def test_the_package_ships_no_fake_cloud_or_benchmark_hook() -> None:
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("teardown.adapters.fake")
    names = {p.stem for p in PACKAGE.rglob("*.py")}
    assert not {n for n in names if "fake" in n or "bench" in n}


def test_a_server_tagged_with_a_sandbox_port_is_reached_at_its_own_address() -> None:
    web = replace(
        server("web"),
        tags=(("sandbox.ssh_port", "1234"),),
        addresses=(Address("192.168.0.11"), Address("121.36.87.11", public=True)),
    )
    target = target_for(web, SshConfig())
    assert (target.host, target.port) == ("121.36.87.11", None)
    sandbox = target_for(web, SshConfig(), {web.cloud_id or "": 40022})
    assert (sandbox.host, sandbox.port) == ("127.0.0.1", 40022)


def test_only_a_sandbox_profile_names_local_ssh_ports(tmp_path: Path) -> None:
    real = tmp_path / "cloud.toml"
    real.write_text(
        '[huawei]\nregion = "cn-north-4"\nproject_id = "p"\ndomain_id = "d"\nak = "a"\nsk = "s"\n'
    )
    assert load_profile(real).ssh_ports == {}
    sandbox = tmp_path / "sb.toml"
    sandbox.write_text(
        real.read_text() + '[sandbox]\ndir = "/tmp/sb"\n[sandbox.ssh_ports]\n"id-web" = 40022\n'
    )
    assert load_profile(sandbox).ssh_ports == {"id-web": 40022}
