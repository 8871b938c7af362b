"""A pull counts only if it holds what was asked: a symlinked directory is followed, a pull of
nothing fails, refused entries fail unless the rule accepts them (real SSH servers: OpenSSH sshd
on 127.0.0.1 and the sandbox's)."""

from __future__ import annotations

import os
import tarfile
from pathlib import Path

from teardown.adapters.ssh.pull import PullRequest
from teardown.adapters.store import LocalStore
from teardown.adapters.store_check import check_backup, verify_backup
from teardown.core.config import BackupConfig, Config, PullRule
from teardown.core.planner import make_plan
from tests.helpers import server
from tests.ssh_hosts import Host, do_pull


def mysql_behind_a_symlink(root: Path) -> tuple[Path, Path]:
    """``/var/lib/mysql -> /data/mysql``, the common layout, under ``root``."""
    real = root / "data" / "mysql"
    (real / "shop").mkdir(parents=True)
    (real / "ibdata1").write_bytes(os.urandom(50_000))
    (real / "shop" / "orders.ibd").write_bytes(os.urandom(20_000))
    (real / "shop" / "current").symlink_to("orders.ibd")  # inside the tree: kept as a link
    link = root / "var" / "lib" / "mysql"
    link.parent.mkdir(parents=True)
    link.symlink_to(real)
    return link, real


def test_a_requested_path_that_is_a_symlink_is_pulled_through(host: Host, tmp_path: Path) -> None:
    link, real = mysql_behind_a_symlink(tmp_path / "host")
    pd = LocalStore(tmp_path / "store").pull_dir("k")
    req = PullRequest("db-1", (str(link),), allow_empty=False, accept_refused=())

    report = do_pull(host.target, pd, req)

    assert report.verified, report.detail
    assert report.files == 2 and report.total_bytes == 70_000
    manifest = pd.manifest()
    assert manifest is not None
    assert {f["path"] for f in manifest["files"]} == {
        f"{link}/ibdata1",
        f"{link}/shop/orders.ibd",
    }
    assert manifest["followed"] == [{"path": str(link), "target": str(real)}]
    assert manifest["symlinks"] == [{"path": f"{link}/shop/current", "target": "orders.ibd"}]
    assert verify_backup(pd.dir).ok
    names = set()
    for seg in pd.segments.glob("*.tar"):
        with tarfile.open(seg) as t:
            names |= set(t.getnames())
    assert f"{str(link).lstrip('/')}/shop/orders.ibd" in names


def test_a_pull_that_finds_no_file_fails_unless_the_rule_allows_it(
    host: Host, tmp_path: Path
) -> None:
    empty = tmp_path / "host" / "empty"
    (empty / "sub").mkdir(parents=True)
    store = LocalStore(tmp_path / "store")

    strict = do_pull(
        host.target, store.pull_dir("a"), PullRequest("web-1", (str(empty),), allow_empty=False)
    )
    assert not strict.verified
    assert "verified 0 files" in strict.detail and "allow_empty" in strict.detail
    assert store.pull_dir("a").manifest() is None

    allowed = do_pull(
        host.target, store.pull_dir("b"), PullRequest("web-1", (str(empty),), allow_empty=True)
    )
    assert allowed.verified and allowed.files == 0


def test_refused_entries_fail_the_pull_unless_the_rule_accepts_them(
    host: Host, tmp_path: Path
) -> None:
    data = tmp_path / "host" / "mysql"
    data.mkdir(parents=True)
    (data / "ibdata1").write_bytes(b"rows")
    os.mkfifo(data / "mysqld.sock")  # a special file: never stored
    (data / "escape").symlink_to("/etc/passwd")  # leaves the tree: never stored
    (data / "bad\nname").write_bytes(b"x")  # a control character: never stored
    store = LocalStore(tmp_path / "store")

    strict = do_pull(
        host.target, store.pull_dir("a"), PullRequest("db", (str(data),), accept_refused=())
    )
    assert not strict.verified
    assert "refused 3 entries" in strict.detail
    assert "mysqld.sock (special file" in strict.detail
    assert "accept_refused" in strict.detail

    accept = (f"{data}/mysqld.sock", f"{data}/escape", f"{data}/bad*")
    ok = do_pull(
        host.target, store.pull_dir("b"), PullRequest("db", (str(data),), accept_refused=accept)
    )
    assert ok.verified, ok.detail
    assert ok.files == 1
    assert len(ok.accepted_refusals) == 3
    manifest = store.pull_dir("b").manifest()
    assert manifest is not None and len(manifest["refused"]) == 3


def test_excludes_that_match_everything_block_the_plan() -> None:
    rule = PullRule(paths=("/var/www",), name="site", excludes=("*",))
    plan = make_plan([server("web")], Config(backup=BackupConfig(pull=(rule,))), "dev")
    assert plan.blocked
    (blocker,) = plan.blockers
    assert blocker.code == "excludes_everything"
    assert "excludes everything under /var/www" in blocker.message


def test_the_store_check_finds_a_changed_file_by_full_rehash_or_by_sample(
    host: Host, tmp_path: Path
) -> None:
    data = tmp_path / "host" / "srv"
    data.mkdir(parents=True)
    for i in range(20):
        (data / f"f{i:02d}.bin").write_bytes(os.urandom(4096))
    pd = LocalStore(tmp_path / "store").pull_dir("k")
    report = do_pull(host.target, pd, PullRequest("web", (str(data),)))
    assert report.verified
    digest = report.manifest_sha256
    assert check_backup(pd.dir, digest) is None
    assert check_backup(pd.dir, digest, full_limit=0, sample_bytes=1 << 30) is None

    seg = next(pd.segments.glob("*.tar"))
    raw = bytearray(seg.read_bytes())
    manifest = pd.manifest()
    assert manifest is not None
    victim = manifest["files"][7]
    raw[victim["offset"] + 10] ^= 0xFF
    seg.write_bytes(bytes(raw))

    full = check_backup(pd.dir, digest)
    assert full is not None and victim["path"] in full
    sampled = check_backup(pd.dir, digest, full_limit=0, sample_bytes=1 << 30)
    assert sampled is not None and victim["path"] in sampled
    assert check_backup(pd.dir, "0" * 64) is not None  # the manifest is not the one recorded
    (pd.dir / "manifest.json").unlink()
    gone = check_backup(pd.dir, digest)
    assert gone is not None and "missing" in gone


def test_a_requested_file_that_is_a_symlink_is_pulled_through(host: Host, tmp_path: Path) -> None:
    real = tmp_path / "host" / "srv" / "conf" / "app.conf"
    real.parent.mkdir(parents=True)
    real.write_text("port = 8080\n")
    link = tmp_path / "host" / "etc" / "app.conf"
    link.parent.mkdir(parents=True)
    link.symlink_to(real)
    pd = LocalStore(tmp_path / "store").pull_dir("k")

    report = do_pull(host.target, pd, PullRequest("web", (str(link),), accept_refused=()))

    assert report.verified, report.detail
    assert report.files == 1 and report.total_bytes == len("port = 8080\n")
    manifest = pd.manifest()
    assert manifest is not None
    assert [f["path"] for f in manifest["files"]] == [str(link)]
    assert manifest["followed"] == [{"path": str(link), "target": str(real)}]
    assert verify_backup(pd.dir).ok
