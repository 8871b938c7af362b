"""The sandbox as a user starts it: detached, logged in to with OpenSSH, stopped cleanly."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
from huaweicloudsdkcore.auth.credentials import BasicCredentials
from huaweicloudsdkecs.v2 import EcsClient, ListServersDetailsRequest

TEARDOWN = [sys.executable, "-m", "teardown.cli.main"]
DEMO_SERVERS = {"web-1", "db-1", "cache-1", "promo-1", "legacy-1"}


def teardown(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*TEARDOWN, *args], capture_output=True, text=True, timeout=60)


def processes_mentioning(text: str) -> list[str]:
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if text in cmdline:
            found.append(f"{proc.name}: {cmdline}")
    return found


def exited(pid: int) -> bool:
    """Gone, or a zombie waiting for its (re)parent to reap it."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[-1].split()[0] == "Z"


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[Path]:
    root = tmp_path / "sb"
    up = teardown("sandbox", "up", "--dir", str(root), "--scenario", "demo", "--detach")
    assert up.returncode == 0, up.stderr
    assert "sandbox ready" in up.stdout
    try:
        yield root
    finally:
        teardown("sandbox", "down", "--dir", str(root))


def test_profile_points_the_official_sdk_at_the_sandbox(demo: Path) -> None:
    profile = tomllib.loads((demo / "profile.toml").read_text())
    assert oct((demo / "profile.toml").stat().st_mode & 0o777) == "0o600"
    hw = profile["huawei"]
    creds = BasicCredentials(hw["ak"], hw["sk"], hw["project_id"])
    client = (
        EcsClient.new_builder()
        .with_credentials(creds)
        .with_endpoints([hw["endpoints"]["ecs"]])
        .build()
    )
    names = {s.name for s in client.list_servers_details(ListServersDetailsRequest()).servers}
    assert names == DEMO_SERVERS


def test_openssh_logs_in_to_every_server_with_strict_host_keys_and_lists_its_data(
    demo: Path,
) -> None:
    if shutil.which("ssh") is None:
        pytest.skip("the OpenSSH client is not installed (scripts/test installs it as root)")
    profile = tomllib.loads((demo / "profile.toml").read_text())
    hw = profile["huawei"]
    creds = BasicCredentials(hw["ak"], hw["sk"], hw["project_id"])
    client = (
        EcsClient.new_builder()
        .with_credentials(creds)
        .with_endpoints([hw["endpoints"]["ecs"]])
        .build()
    )
    servers = client.list_servers_details(ListServersDetailsRequest()).servers
    listed = {}
    for server in servers:
        tags = dict(t.split("=", 1) for t in server.tags)
        port = tags["sandbox.ssh_port"]
        paths = tags["sandbox.data"].split(";")
        cmd = [
            "ssh",
            "-o", "StrictHostKeyChecking=yes",
            "-o", f"UserKnownHostsFile={demo / 'known_hosts'}",
            "-o", "BatchMode=yes",
            "-o", "IdentitiesOnly=yes",
            "-i", str(demo / "ssh" / "client_key"),
            "-p", port,
            "root@127.0.0.1",
            "find " + " ".join(paths) + " -type f | sort",
        ]  # fmt: skip
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
        assert proc.returncode == 0, proc.stderr
        listed[server.name] = [line.rsplit("/", 1)[-1] for line in proc.stdout.split()]
    assert "index.html" in listed["web-1"]
    assert "orders.csv" in listed["db-1"]
    assert "dump.rdb" in listed["cache-1"]


def test_status_shows_servers_disks_orders_and_what_still_bills(demo: Path) -> None:
    proc = teardown("sandbox", "status", "--dir", str(demo), "--json")
    assert proc.returncode == 0, proc.stderr
    view = json.loads(proc.stdout)
    assert view["running"] is True
    assert {s["name"] for s in view["servers"]} == DEMO_SERVERS
    assert any(d["name"] == "db-data" for d in view["disks"])
    assert view["orders"] and view["still_billing"]
    vaults = {e["resource_id"] for e in view["still_billing"] if e["kind"] == "vault"}
    assert vaults == {"vault-sandbox", "vault-sandbox-disk"}  # they bill by capacity

    text = teardown("sandbox", "status", "--dir", str(demo))
    assert text.returncode == 0, text.stderr
    tables = sections(text.stdout)
    assert list(tables) == ["servers", "disks", "orders", "still billing"]
    assert tables["servers"][0] == ["NAME", "STATUS", "BILLING", "SSH PORT"]
    assert tables["servers"][1:] == [
        [s["name"], s["status"], s["charging_mode"], str(s["ssh_port"])] for s in view["servers"]
    ]
    assert tables["disks"][0] == ["NAME", "SIZE (GB)", "BILLING", "ATTACHED TO"]
    assert ["db-data", "200", "prePaid", "db-1"] in tables["disks"][1:]
    assert tables["orders"][0] == ["ORDER", "TYPE", "STATUS", "AMOUNT"]
    assert [row[0] for row in tables["orders"][1:]] == [o["id"] for o in view["orders"]]
    assert ["new", "pending payment"] in [row[1:3] for row in tables["orders"][1:]]
    assert tables["still billing"][0] == ["NAME", "KIND", "HOW IT BILLS"]
    assert len(tables["still billing"]) == 1 + len(view["still_billing"])
    assert ["web-1", "server"] in [row[:2] for row in tables["still billing"][1:]]


def sections(text: str) -> dict[str, list[list[str]]]:
    """The tables of ``teardown sandbox status``: title -> rows, the header row first, each row
    cut into its cells (two blanks or more apart)."""
    out: dict[str, list[list[str]]] = {}
    for line in text.splitlines()[1:]:
        if not line.startswith(" "):
            title = line.removesuffix(":")
            out[title] = []
        else:
            out[title].append(re.split(r"\s{2,}", line.strip()))
    return out


def test_down_stops_everything_it_started(tmp_path: Path) -> None:
    root = tmp_path / "sb"
    up = teardown("sandbox", "up", "--dir", str(root), "--scenario", "demo", "--detach")
    assert up.returncode == 0, up.stderr
    pid = int((root / "sandbox.pid").read_text())
    assert processes_mentioning(str(root))
    down = teardown("sandbox", "down", "--dir", str(root))
    assert down.returncode == 0 and "stopped" in down.stdout
    assert processes_mentioning(str(root)) == []
    assert exited(pid)
    assert not (root / "sandbox.pid").exists()
    again = teardown("sandbox", "down", "--dir", str(root))
    assert again.returncode == 0 and "no sandbox running" in again.stdout


def test_state_survives_a_restart(tmp_path: Path) -> None:
    root = tmp_path / "sb"
    assert (
        teardown("sandbox", "up", "--dir", str(root), "--scenario", "demo", "--detach").returncode
        == 0
    )
    first = json.loads(teardown("sandbox", "status", "--dir", str(root), "--json").stdout)
    teardown("sandbox", "down", "--dir", str(root))
    assert teardown("sandbox", "up", "--dir", str(root), "--detach").returncode == 0
    try:
        second = json.loads(teardown("sandbox", "status", "--dir", str(root), "--json").stdout)
    finally:
        teardown("sandbox", "down", "--dir", str(root))
    assert [s["id"] for s in first["servers"]] == [s["id"] for s in second["servers"]]


def test_unknown_scenario_is_refused_naming_it(tmp_path: Path) -> None:
    proc = teardown(
        "sandbox", "up", "--dir", str(tmp_path / "sb"), "--scenario", "nope", "--detach"
    )
    assert proc.returncode == 2
    assert "nope" in proc.stderr and "demo" in proc.stderr
