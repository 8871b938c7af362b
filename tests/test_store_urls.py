"""Stored pulls and runs by their ``s3://`` URL (``teardown verify``, ``restore``, ``runs
--store``) and the retention rule, against moto's S3 server on loopback. The stored pulls are
laid out as ``ObjectStoreFetcher`` writes them: the pull's files, ``objects.json``, then
``manifest.json``."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from teardown.adapters.objstore import ObjectStore
from teardown.adapters.store_urls import (
    apply_retention,
    check_stored_pull,
    download_stored_pull,
    parse_backup_url,
    retention_rule,
)
from teardown.app.config import load_config
from teardown.cli.backups import restore, verify
from teardown.cli.journal_commands import runs
from teardown.core.errors import InputError
from teardown.core.model import Artifact, Step, StepKind
from teardown.engine.journal import Journal
from tests.helpers import FakeClock
from tests.s3_server import S3Server, s3_endpoint
from tests.test_restore import FILES, Pulled, assert_restored, pulled

__all__ = ["pulled", "s3_endpoint"]  # the fixtures

PREFIX = "ci/teardown"
KEY = "pull-web-1-0123abcd"

CONFIG = """
[store]
url = "s3://{bucket}/{prefix}"
endpoint_url = "{endpoint}"
region = "{region}"
"""


class World:
    def __init__(self, root: Path, s3: S3Server) -> None:
        self.root = root
        self.s3 = s3
        self.bucket = s3.new_bucket()
        self.config = root / "teardown.toml"
        self.config.write_text(
            CONFIG.format(bucket=self.bucket, prefix=PREFIX, endpoint=s3.endpoint, region=s3.region)
        )
        self.store = ObjectStore.open(load_config(self.config).store, s3.env, max_attempts=1)

    def url(self, key: str = KEY, name: str = "manifest.json") -> str:
        return f"s3://{self.bucket}/{PREFIX}/backups/{key}/{name}".rstrip("/")

    def store_pull(self, pull_dir: Path, key: str = KEY) -> str:
        """Upload the pull directory ``pull_dir`` as ObjectStoreFetcher does; the sha256 of the
        index (the artifact's checksum)."""
        objects: list[dict[str, Any]] = []
        manifest = pull_dir / "manifest.json"
        for path in sorted(p for p in pull_dir.rglob("*") if p.is_file() and p != manifest):
            name = path.relative_to(pull_dir).as_posix()
            stored = self.store.put_file(f"backups/{key}/{name}", path)
            objects.append({"name": name, "size": stored.size, "sha256": stored.sha256})
        data = manifest.read_bytes()
        objects.append(
            {"name": "manifest.json", "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
        )
        index = json.dumps({"objects": objects}, sort_keys=True).encode()
        self.store.put_bytes(f"backups/{key}/objects.json", index)
        self.store.put_file(f"backups/{key}/manifest.json", manifest)
        return hashlib.sha256(index).hexdigest()

    def tamper(self, key: str, name: str, body: bytes = b"changed bytes") -> None:
        self.s3.client().put_object(
            Bucket=self.bucket, Key=f"{PREFIX}/backups/{key}/{name}", Body=body
        )

    def invoke(self, command: Any, *args: str) -> Any:
        return CliRunner().invoke(command, [*args, "--config", str(self.config)])


@pytest.fixture
def world(tmp_path: Path, s3_endpoint: S3Server, monkeypatch: pytest.MonkeyPatch) -> World:
    for key, value in s3_endpoint.env.items():
        monkeypatch.setenv(key, value)
    return World(tmp_path, s3_endpoint)


def make_pull_dir(root: Path) -> Path:
    """A pull directory as the local store has it (its contents are opaque to the checks of
    the object store: only the index matters there)."""
    pd = root / KEY
    (pd / "segments").mkdir(parents=True)
    (pd / "segments" / "000001.tar").write_bytes(bytes(range(256)) * 64)
    (pd / "segments" / "000002.tar").write_bytes(b"second segment\n" * 100)
    (pd / "index.jsonl").write_text('{"path": "/srv/a"}\n')
    (pd / "hostsums.jsonl").write_text('{"path": "/srv/a", "sha256": "00"}\n')
    (pd / "manifest.json").write_text(json.dumps({"verified": True, "files": []}))
    return pd


def tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


# -- URLs --------------------------------------------------------------------------------


def test_parse_backup_url_takes_the_manifest_or_its_directory() -> None:
    for url in (
        "s3://b-1/ci/teardown/backups/k1/manifest.json",
        "s3://b-1/ci/teardown/backups/k1",
        "s3://b-1/ci/teardown/backups/k1/",
    ):
        where = parse_backup_url(url)
        assert (where.store_url, where.key) == ("s3://b-1/ci/teardown", "k1")
    assert parse_backup_url("s3://b-1/backups/k1").store_url == "s3://b-1"
    for bad in ("s3://b-1/ci/k1", "s3://b-1/backups/..", "s3://B/backups/k1", "/tmp/backups/k"):
        with pytest.raises(InputError):
            parse_backup_url(bad)


# -- verify ------------------------------------------------------------------------------


def test_verify_a_stored_pull_by_its_url(world: World) -> None:
    index_sha = world.store_pull(make_pull_dir(world.root))
    for url in (world.url(), world.url(name="")):
        result = world.invoke(verify, url)
        assert result.exit_code == 0, result.output
        assert "5 objects" in result.stdout and "match the index" in result.stdout

    result = world.invoke(verify, world.url(), "--json", "--read")
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert body["ok"] is True and body["objects"] == body["expected"] == 5
    assert body["bad_files"] == []
    assert check_stored_pull(world.store, KEY, index_sha).ok  # the artifact's checksum


def test_verify_fails_naming_a_tampered_object(world: World) -> None:
    index_sha = world.store_pull(make_pull_dir(world.root))
    world.tamper(KEY, "segments/000002.tar")

    result = world.invoke(verify, world.url())
    assert result.exit_code == 1, result.output
    assert "segments/000002.tar" in result.stderr
    assert "4 of 5 objects" in result.stderr
    assert "000001.tar" not in result.stderr  # only the tampered one is named

    body = json.loads(world.invoke(verify, world.url(), "--json", "--read").stdout)
    assert body["ok"] is False
    (bad,) = body["bad_files"]
    assert bad.endswith(f"backups/{KEY}/segments/000002.tar")

    # what ObjectStoreFetcher.check says before a destroy: the first problem, naming the file
    first = check_stored_pull(world.store, KEY, index_sha).first()
    assert first is not None and "segments/000002.tar" in first


def test_verify_fails_when_the_index_is_not_the_recorded_one_or_gone(world: World) -> None:
    world.store_pull(make_pull_dir(world.root))
    changed = check_stored_pull(world.store, KEY, "0" * 64)
    assert not changed.ok and "objects.json: changed since the backup" in str(changed.first())
    world.store.delete(f"backups/{KEY}/objects.json")
    result = world.invoke(verify, world.url())
    assert result.exit_code == 1
    assert "objects.json: gone" in result.stderr


def test_verify_a_missing_object_names_it(world: World) -> None:
    world.store_pull(make_pull_dir(world.root))
    world.store.delete(f"backups/{KEY}/hostsums.jsonl")
    result = world.invoke(verify, world.url())
    assert result.exit_code == 1
    assert "hostsums.jsonl: missing" in result.stderr


def test_verify_a_run_checks_its_stored_pulls(world: World) -> None:
    """``teardown verify RUN``: the pulls the run's journal records, by their s3 refs and the
    index checksum recorded."""
    index_sha = world.store_pull(make_pull_dir(world.root / "src"))
    journal_path = world.root / "j" / "journal.db"
    journal = Journal.open(journal_path, FakeClock())
    journal.create_run("r1", "ci-103", "{}", "digest")
    journal.record_intent("r1", Step(id="s1", kind=StepKind.PULL, urn="urn:x"), "s1-1")
    art = Artifact("pull", world.url(), verified=True, survives_destroy=True, sha256=index_sha)
    journal.record_success("r1", "s1", {}, artifact=art)
    journal.close()

    result = world.invoke(verify, "r1", "--journal", str(journal_path), "--json")
    assert result.exit_code == 0, result.output
    (body,) = json.loads(result.stdout)
    assert body["ok"] is True and body["backup"] == world.url()

    world.tamper(KEY, "index.jsonl")
    result = world.invoke(verify, "r1", "--journal", str(journal_path))
    assert result.exit_code == 1
    assert f"backups/{KEY}/index.jsonl" in result.stderr


def test_verify_of_a_run_id_without_a_journal_is_bad_input(world: World) -> None:
    result = world.invoke(verify, "20261126T101500Z-a1b2c3", "--journal", str(world.root / "j.db"))
    assert result.exit_code == 2
    assert "no such backup" in result.stderr


# -- download and restore ----------------------------------------------------------------


def test_restore_download_gives_identical_files(world: World) -> None:
    source = make_pull_dir(world.root / "src")
    world.store_pull(source)
    dest = world.root / "copy"
    result = world.invoke(restore, world.url(), "--download", str(dest), "--json")
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert body["ok"] is True and body["objects"] == 5
    assert tree(dest / KEY) == tree(source)  # objects.json is not part of the pull directory


def test_download_of_a_tampered_object_names_it_and_keeps_no_copy(world: World) -> None:
    world.store_pull(make_pull_dir(world.root / "src"))
    world.tamper(KEY, "segments/000001.tar")
    report = download_stored_pull(world.store, KEY, world.root / "copy")
    assert not report.ok and report.objects == 4
    (problem,) = report.problems
    assert problem.path.endswith("segments/000001.tar")
    assert not (world.root / "copy" / KEY / "segments" / "000001.tar").exists()

    result = world.invoke(restore, world.url(), "--download", str(world.root / "again"))
    assert result.exit_code == 1
    assert "segments/000001.tar" in result.stderr


def test_restore_needs_a_destination(world: World) -> None:
    result = world.invoke(restore, world.url())
    assert result.exit_code == 2 and "--to" in result.stderr
    local = world.invoke(restore, str(world.root), "--download", str(world.root / "x"))
    assert local.exit_code == 2 and "object store" in local.stderr


def test_restore_of_a_stored_pull_over_ssh(
    pulled: Pulled, s3_endpoint: S3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A real pull, stored in the bucket, put back on the host from its URL."""
    for key, value in s3_endpoint.env.items():
        monkeypatch.setenv(key, value)
    world = World(pulled.root, s3_endpoint)
    world.store_pull(pulled.pd.dir, key=pulled.pd.key)
    dest = pulled.root / "from-bucket"
    t = pulled.target
    args = [
        world.url(pulled.pd.key),
        "--to", f"root@127.0.0.1:{t.port}:{dest}",
        "--identity", t.identity_files[0],
        "--known-hosts", t.known_hosts[0],
        "--json",
    ]  # fmt: skip
    result = world.invoke(restore, *args)
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert body["ok"] is True and body["files"] == FILES
    assert body["source"] == world.url(pulled.pd.key)
    assert_restored(dest, pulled.data)


# -- runs --store ------------------------------------------------------------------------


def test_runs_store_lists_the_runs_in_the_bucket(world: World) -> None:
    report = {"run_id": "r-one", "scope": "ci-103", "phase": "completed"}
    world.store.put_bytes("runs/r-one/report.json", json.dumps(report).encode())
    world.store.put_bytes("runs/r-one/journal.db", b"sqlite")
    world.store.put_bytes(
        "runs/r-two/report.json", json.dumps({"scope": "ci-7", "phase": "blocked"}).encode()
    )
    world.store.put_bytes("backups/x/objects.json", b"{}")  # not a run
    url = f"s3://{world.bucket}/{PREFIX}"

    result = world.invoke(runs, "--store", url)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    one = next(line for line in lines if "r-one" in line)
    two = next(line for line in lines if "r-two" in line)
    assert "completed" in one and "ci-103" in one
    assert "blocked" in two and "ci-7" in two

    body = json.loads(world.invoke(runs, "--store", url, "--json").stdout)
    assert [(r["run_id"], r["phase"], r["scope"], r["report"], r["journal"]) for r in body] == [
        ("r-one", "completed", "ci-103", True, True),
        ("r-two", "blocked", "ci-7", True, False),
    ]

    empty = world.invoke(runs, "--store", f"s3://{world.bucket}/elsewhere")
    assert empty.exit_code == 0 and "No runs" in empty.stdout
    bad = world.invoke(runs, "--store", "s3://Not_A_Bucket")
    assert bad.exit_code == 2


# -- retention ---------------------------------------------------------------------------


def test_apply_retention_puts_a_lifecycle_rule_and_keeps_the_others(world: World) -> None:
    client = world.s3.client()
    other = {
        "ID": "someone-else",
        "Filter": {"Prefix": "logs/"},
        "Status": "Enabled",
        "Expiration": {"Days": 7},
    }
    client.put_bucket_lifecycle_configuration(
        Bucket=world.bucket,
        LifecycleConfiguration={"Rules": [other]},  # type: ignore[list-item]
    )
    assert apply_retention(world.store, 90)
    assert apply_retention(world.store, 30)  # replaces its own rule, not a second one
    rules = client.get_bucket_lifecycle_configuration(Bucket=world.bucket)["Rules"]
    assert sorted(r["ID"] for r in rules) == ["someone-else", "teardown-retention:ci/teardown"]
    ours = retention_rule(world.store)
    assert ours is not None
    assert ours["Filter"].get("Prefix") == f"{PREFIX}/backups/"
    assert ours["Expiration"].get("Days") == 30
    assert ours["Status"] == "Enabled"


def test_apply_retention_refused_is_one_warning_not_a_failure(s3_endpoint: S3Server) -> None:
    store = ObjectStore(s3_endpoint.client(), "td-no-such-bucket-here", "p")
    warnings: list[str] = []
    assert not apply_retention(store, 10, warnings.append)
    (line,) = warnings
    assert "NoSuchBucket" in line and "retention" in line
    with pytest.raises(InputError):
        apply_retention(store, 0)
