"""Restore drills: ``verify`` re-hashes a pull, ``restore`` puts it back over SSH (sandbox host and
real OpenSSH), ``teardown sandbox restore`` copies a sandbox CBR backup back out."""

from __future__ import annotations

import hashlib
import json
import os
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from huaweicloudsdkcbr.v1 import (
    CheckpointParam,
    CreateCheckpointRequest,
    ListBackupsRequest,
    ShowBackupRequest,
    VaultBackup,
    VaultBackupReq,
)

from teardown.adapters.ssh.connect import SshTarget, connected
from teardown.adapters.ssh.pull import PullRequest, pull
from teardown.adapters.ssh.restore import restore_backup
from teardown.adapters.store import LocalStore, PullDir
from teardown.adapters.store_check import verify_backup
from teardown.cli.backups import parse_remote, restore, verify
from teardown.cli.sandbox import sandbox
from teardown.core.errors import InputError
from teardown.sandbox.resources import volume_data_dir
from teardown.sandbox.restore import restore_cbr
from teardown.sandbox.scenario import DiskSpec, Scenario, ServerSpec
from teardown.sandbox.ssh import SshFleet
from tests.sandbox_rig import SandboxRig, cbr, running_sandbox
from tests.ssh_hosts import sandbox_host, sshd_target
from tests.sshd import SshdInfo

BIG = "www/img/logo.bin"
FILES = 24
"""Regular files in make_tree()."""


@dataclass
class Pulled:
    """A verified pull of ``data`` from a sandbox SSH host, and that host."""

    pd: PullDir
    data: Path
    target: SshTarget
    fleet: SshFleet
    root: Path


def make_tree(root: Path) -> Path:
    data = root / "srv"
    (data / "www" / "img").mkdir(parents=True)
    (data / "www" / "index.html").write_text("<h1>shop</h1>\n")
    (data / BIG).write_bytes(os.urandom(300_000))
    (data / "www" / "empty.txt").write_bytes(b"")
    (data / "www" / "current").symlink_to("index.html")
    (data / "www" / "tool").write_text("#!/bin/sh\n")
    (data / "www" / "tool").chmod(0o755)
    for i in range(20):
        (data / "www" / f"page{i}.html").write_text(f"page {i}\n" * (i + 1))
    return data


def digests(root: Path) -> dict[str, str]:
    """Relative path -> sha256 of every regular file under ``root`` (symlinks left out)."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.is_symlink()
    }


def restored_copy(dest: Path, data: Path) -> Path:
    """Where ``data`` lands when restored under ``dest``: DEST + its absolute path."""
    return dest / str(data).lstrip("/")


@pytest.fixture
def pulled(tmp_path: Path) -> Iterator[Pulled]:
    data = make_tree(tmp_path / "src")
    fleet, target = sandbox_host(tmp_path / "sandbox-host", tmp_path)
    try:
        pd = LocalStore(tmp_path / "store").pull_dir("k1")
        with connected(target) as transport:
            report = pull(transport, pd, PullRequest("web-1", (str(data),)), host_label="web-1")
        assert report.verified, report.detail
        yield Pulled(pd, data, target, fleet, tmp_path)
    finally:
        fleet.stop()


def flip_byte_in(pd: PullDir, path: str) -> None:
    """Flip one byte in the middle of ``path``'s body inside its stored segment."""
    manifest = pd.manifest()
    assert manifest is not None
    (entry,) = [f for f in manifest["files"] if f["path"] == path]
    segment = pd.segment_path(entry["segment"], part=False)
    with tarfile.open(segment) as tar:
        member = tar.getmember(path.lstrip("/"))
        offset = member.offset_data + member.size // 2
    with open(segment, "r+b") as f:
        f.seek(offset)
        byte = f.read(1)
        f.seek(offset)
        f.write(bytes([byte[0] ^ 0xFF]))


# -- verify ------------------------------------------------------------------------------


def test_verify_passes_for_a_fresh_pull(pulled: Pulled) -> None:
    report = verify_backup(pulled.pd.dir)
    manifest = pulled.pd.manifest()
    assert manifest is not None
    assert report.ok, report.problems
    assert report.files == report.expected == len(manifest["files"]) == FILES
    assert report.total_bytes == manifest["total_bytes"]
    assert report.problems == []
    assert verify_backup(pulled.pd.manifest_path).ok  # the manifest's path works too

    result = CliRunner().invoke(verify, [str(pulled.pd.dir)])
    assert result.exit_code == 0, result.output
    assert f"{FILES} files" in result.stdout


def test_flipped_byte_fails_verify_and_names_the_file(pulled: Pulled) -> None:
    bad = str(pulled.data / BIG)
    flip_byte_in(pulled.pd, bad)
    report = verify_backup(pulled.pd.dir)
    assert not report.ok
    assert report.bad_files == [bad]
    assert report.files == report.expected - 1
    assert "sha256 differs" in report.problems[0].problem

    result = CliRunner().invoke(verify, [str(pulled.pd.dir)])
    assert result.exit_code == 1
    assert bad in result.stderr
    assert str(pulled.data / "www" / "index.html") not in result.stderr

    as_json = CliRunner().invoke(verify, [str(pulled.pd.dir), "--json"])
    assert as_json.exit_code == 1
    body = json.loads(as_json.stdout)
    assert body["ok"] is False and body["bad_files"] == [bad]


def test_verify_rejects_a_missing_or_corrupt_manifest(tmp_path: Path, pulled: Pulled) -> None:
    with pytest.raises(InputError, match="no such backup"):
        verify_backup(tmp_path / "nope")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match=r"no manifest\.json"):
        verify_backup(empty)
    pulled.pd.manifest_path.write_text('{"files": [')
    with pytest.raises(InputError, match="unreadable"):
        verify_backup(pulled.pd.dir)
    pulled.pd.manifest_path.write_text('{"files": [{"path": "/x"}]}')
    with pytest.raises(InputError, match="malformed"):
        verify_backup(pulled.pd.dir)
    result = CliRunner().invoke(verify, [str(pulled.pd.dir)])
    assert result.exit_code == 2
    assert "malformed" in result.stderr


# -- restore over SSH --------------------------------------------------------------------


def assert_restored(dest: Path, data: Path) -> None:
    copy = restored_copy(dest, data)
    assert digests(copy) == digests(data)
    assert os.readlink(copy / "www" / "current") == "index.html"
    assert (copy / "www" / "img").is_dir()


def test_restore_to_the_sandbox_host_recreates_every_file(pulled: Pulled) -> None:
    dest = pulled.root / "restored"
    report = restore_backup(pulled.pd.dir, pulled.target, str(dest))
    assert report.ok, report.problems
    assert report.files == report.expected == FILES
    assert report.symlinks == 1 and report.dirs == 3
    assert report.verified_with.startswith("host:")
    assert_restored(dest, pulled.data)
    assert report.destination.endswith(f":{dest}")


def test_second_restore_is_refused_without_overwrite_and_works_with_it(pulled: Pulled) -> None:
    dest = pulled.root / "restored"
    assert restore_backup(pulled.pd.dir, pulled.target, str(dest)).ok
    copy = restored_copy(dest, pulled.data)
    (copy / "www" / "index.html").write_text("changed on the host\n")
    with pytest.raises(InputError, match="already exist") as err:
        restore_backup(pulled.pd.dir, pulled.target, str(dest))
    assert "--overwrite" in str(err.value)
    assert (copy / "www" / "index.html").read_text() == "changed on the host\n"  # nothing sent

    report = restore_backup(pulled.pd.dir, pulled.target, str(dest), overwrite=True)
    assert report.ok, report.problems
    assert_restored(dest, pulled.data)


def test_restore_of_a_corrupt_backup_reports_the_file(pulled: Pulled) -> None:
    bad = str(pulled.data / BIG)
    flip_byte_in(pulled.pd, bad)
    report = restore_backup(pulled.pd.dir, pulled.target, str(pulled.root / "restored"))
    assert not report.ok
    assert {p.path for p in report.problems} == {bad}
    assert report.files == report.expected - 1


def test_restore_cli_uses_known_hosts_and_identity(pulled: Pulled) -> None:
    dest = pulled.root / "via-cli"
    t = pulled.target
    to = f"root@127.0.0.1:{t.port}:{dest}"
    args = [str(pulled.pd.dir), "--to", to, "--identity", t.identity_files[0]]
    strict = CliRunner().invoke(restore, args)  # the host's key is not in ~/.ssh/known_hosts
    assert strict.exit_code == 1
    assert "not in known_hosts" in strict.stderr
    assert not dest.exists()

    args += ["--known-hosts", t.known_hosts[0]]
    result = CliRunner().invoke(restore, [*args, "--json"])
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert body["ok"] is True and body["files"] == FILES
    assert_restored(dest, pulled.data)

    again = CliRunner().invoke(restore, args)
    assert again.exit_code == 2
    assert "already exist" in again.stderr
    assert CliRunner().invoke(restore, [*args, "--overwrite"]).exit_code == 0


def test_restore_to_real_openssh(pulled: Pulled, sshd: SshdInfo) -> None:
    dest = pulled.root / "openssh-restore"
    report = restore_backup(pulled.pd.dir, sshd_target(sshd), str(dest))
    assert report.ok, report.problems
    assert report.files == FILES
    assert_restored(dest, pulled.data)
    with pytest.raises(InputError, match="already exist"):
        restore_backup(pulled.pd.dir, sshd_target(sshd), str(dest))


def test_restore_rejects_a_relative_destination_before_connecting(pulled: Pulled) -> None:
    unreachable = SshTarget(host="127.0.0.1", port=1, use_ssh_config=False)
    with pytest.raises(InputError, match="absolute path"):
        restore_backup(pulled.pd.dir, unreachable, "relative/dir")


def test_parse_remote() -> None:
    assert parse_remote("root@web-1:/restore") == ("root", "web-1", None, "/restore")
    assert parse_remote("10.0.0.5:2222:/a/b") == (None, "10.0.0.5", 2222, "/a/b")
    assert parse_remote("ops@[::1]:22:/x") == ("ops", "::1", 22, "/x")
    for bad in ("web-1", "web-1:relative", "web-1:99999:/x", ":/x"):
        with pytest.raises(InputError):
            parse_remote(bad)
    result = CliRunner().invoke(restore, ["backup", "--to", "web-1:relative"])
    assert result.exit_code == 2


# -- restore a sandbox CBR backup --------------------------------------------------------


def checkpoint(rig: SandboxRig, *resources: str) -> str:
    params = CheckpointParam(resources=list(resources), name="drill")
    body = VaultBackupReq(checkpoint=VaultBackup(vault_id="vault-sandbox", parameters=params))
    checkpoint_id: str = (
        cbr(rig).create_checkpoint(CreateCheckpointRequest(body=body)).checkpoint.id
    )
    return checkpoint_id


def server_backup(rig: SandboxRig, checkpoint_id: str) -> Any:
    """The checkpoint's server backup as ShowBackup shows it, with its disk backups (ListBackups
    shows ``children: []``)."""
    rig.advance(2)
    (listed,) = cbr(rig).list_backups(ListBackupsRequest(checkpoint_id=checkpoint_id)).backups
    backup = cbr(rig).show_backup(ShowBackupRequest(backup_id=listed.id)).backup
    assert backup.status == "available"
    return backup


def cbr_scenario() -> Scenario:
    system = DiskSpec(files={"etc/hostname": "app\n", "srv/www/index.html": "<h1>shop</h1>\n"})
    data = DiskSpec(size=10, files={"db/data.sql": "INSERT 1;\n" * 1000})
    return Scenario(
        name="restore", servers=(ServerSpec("app", system_disk=system, data_disks=(data,)),)
    )


def test_restore_cbr_reproduces_every_disk_of_a_server_backup(tmp_path: Path) -> None:
    with running_sandbox(tmp_path / "sb", cbr_scenario()) as rig:
        backup = server_backup(rig, checkpoint(rig, rig.ids["app"]))
        sys_id, data_id = rig.ids["app-sys"], rig.ids["app-data1"]
        # extra bytes on the disk after the backup are not part of it
        (volume_data_dir(rig.data_dir, sys_id) / "later.txt").write_text("after the backup")
        dest = tmp_path / "restored"
        report = restore_cbr(rig.data_dir, backup.id, dest)
        assert report.ok, report.problems
        assert report.files == report.expected == 3
        assert sorted(p.name for p in dest.iterdir()) == sorted([sys_id, data_id])
        sys_files = digests(volume_data_dir(rig.data_dir, sys_id))
        del sys_files["later.txt"]
        assert digests(dest / sys_id) == sys_files
        assert digests(dest / data_id) == digests(volume_data_dir(rig.data_dir, data_id))
        assert "srv/www/index.html" in sys_files and "db/data.sql" in digests(dest / data_id)

        # never overwrite: a second restore to the same place is refused, nothing touched
        (dest / data_id / "db" / "data.sql").write_text("edited")
        with pytest.raises(InputError, match="never overwritten"):
            restore_cbr(rig.data_dir, backup.id, dest)
        assert (dest / data_id / "db" / "data.sql").read_text() == "edited"

        # one disk backup (a child) restores into the destination itself
        (child,) = [c for c in backup.children if c.resource_id == data_id]
        one = restore_cbr(rig.data_dir, child.id, tmp_path / "one-disk")
        assert one.ok and one.files == 1
        assert digests(tmp_path / "one-disk") == digests(volume_data_dir(rig.data_dir, data_id))

        with pytest.raises(InputError, match="no such CBR backup"):
            restore_cbr(rig.data_dir, "no-such-backup", tmp_path / "x")


def test_sandbox_restore_cli(tmp_path: Path) -> None:
    with running_sandbox(tmp_path / "sb", cbr_scenario()) as rig:
        backup = server_backup(rig, checkpoint(rig, rig.ids["app"]))
        dest = tmp_path / "restored"
        args = ["restore", backup.id, "--dir", str(rig.data_dir), "--to", str(dest)]
        result = CliRunner().invoke(sandbox, args)
        assert result.exit_code == 0, result.output
        assert "restored 3 files" in result.stdout
        again = CliRunner().invoke(sandbox, args)
        assert again.exit_code == 2 and "never overwritten" in again.stderr
        missing = CliRunner().invoke(sandbox, ["restore", backup.id, "--to", str(dest)])
        assert missing.exit_code == 2 and "--dir" in missing.stderr
        # `teardown restore` restores pulls over SSH only: no sandbox option in the product's
        gone = CliRunner().invoke(restore, ["--cbr", backup.id, "--to", str(dest)])
        assert gone.exit_code == 2 and "No such option" in gone.stderr
