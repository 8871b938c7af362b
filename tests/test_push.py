"""Push mode (``[backup] transfer = "push"``): a real OpenSSH sshd on 127.0.0.1 is the server
(its files in a temp dir of this machine), moto's S3 on loopback is the bucket, and the host's
own curl uploads each file; the runner moves no payload bytes."""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from teardown.adapters.object_fetcher import INDEX, MANIFEST, ObjectStoreFetcher
from teardown.adapters.objstore import ObjectStore
from teardown.adapters.push import PushFetcher
from teardown.adapters.ssh.fetcher import SshFetcher
from teardown.adapters.store import LocalStore
from teardown.core.config import BackupConfig, SshConfig
from teardown.core.model import Kind, PullSpec, Resource
from tests.s3_server import S3Server, s3_endpoint
from tests.sshd import SshdInfo

__all__ = ["s3_endpoint"]  # the fixture

KEY = "push-step-1"
PREFIX = "td"


@dataclass
class Rig:
    fetcher: PushFetcher
    store: ObjectStore
    s3: S3Server
    bucket: str
    data: Path
    staging: Path
    resource: Resource

    def object_keys(self) -> list[str]:
        found = self.s3.client().list_objects_v2(Bucket=self.bucket, Prefix=f"{PREFIX}/")
        return sorted(o["Key"] for o in found.get("Contents", []))

    def object_key(self, path: Path) -> str:
        return f"{PREFIX}/backups/{KEY}/files/{str(path).lstrip('/')}"


def make_rig(
    tmp_path: Path, sshd: SshdInfo, s3: S3Server, *, remote_path: str | None = None
) -> Rig:
    data = tmp_path / "data"
    (data / "sub").mkdir(parents=True)
    (data / "a.txt").write_bytes(b"hello\n")
    (data / "sub" / "big.bin").write_bytes(os.urandom((5 << 20) + 12345))  # > 5 MiB
    (data / "odd name [1] 'q' $x.txt").write_bytes(b"odd\n")  # quoting and curl's globbing
    (data / "skip.tmp").write_bytes(b"excluded\n")
    ssh = SshConfig(
        user=sshd.user,
        identity_file=str(sshd.client_key),
        known_hosts=(str(sshd.known_hosts),),
        use_ssh_config=False,
    )
    resource = Resource(
        urn="urn:srv-1",
        type="huaweicloud:Ecs/instance:Instance",
        kind=Kind.SERVER,
        name="web-1",
        cloud_id="srv-1",
    )
    staging = tmp_path / "staging"
    bucket = s3.new_bucket()
    store = ObjectStore(client=s3.client(), bucket=bucket, prefix=PREFIX)
    inner = SshFetcher(LocalStore(staging), ssh, local_ports={"srv-1": sshd.port})
    via_runner = ObjectStoreFetcher(inner, store)
    fetcher = PushFetcher(via_runner, store, remote_path=remote_path)
    return Rig(fetcher, store, s3, bucket, data, staging, resource)


def spec_of(rig: Rig) -> PullSpec:
    return PullSpec(name="data", paths=(str(rig.data),), excludes=("*.tmp",))


def b64sha(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def staged_bytes(rig: Rig) -> int:
    if not rig.staging.exists():
        return 0
    return sum(p.stat().st_size for p in rig.staging.rglob("*") if p.is_file())


def wrap_push_file(rig: Rig, after: Callable[[Any], None], before: bool = False) -> None:
    """Call ``after(item)`` after (or before) each host upload (a test hook)."""
    original = rig.fetcher._push_file

    def hooked(transport: Any, key: str, item: Any, timeout: float) -> str | None:
        if before:
            after(item)
        result = original(transport, key, item, timeout)
        if not before:
            after(item)
        return result

    rig.fetcher._push_file = hooked  # type: ignore[method-assign]


def test_the_host_pushes_its_files_verified_and_nothing_passes_through_the_runner(
    tmp_path: Path, sshd: SshdInfo, s3_endpoint: S3Server
) -> None:
    rig = make_rig(tmp_path, sshd, s3_endpoint)
    seen: list[tuple[int, int]] = []
    artifact = rig.fetcher.pull(rig.resource, spec_of(rig), KEY, lambda b, n: seen.append((b, n)))

    assert artifact.verified, artifact.detail
    assert rig.fetcher.runner_payload_bytes == 0
    assert staged_bytes(rig) == 0  # nothing landed on the runner
    files = [rig.data / "a.txt", rig.data / "sub" / "big.bin", rig.data / "odd name [1] 'q' $x.txt"]
    total = sum(p.stat().st_size for p in files)
    assert rig.fetcher.pushed_bytes == total and artifact.size == total and artifact.files == 3
    assert seen and seen[-1] == (total, 3)
    assert "pushed by the host" in artifact.detail and "0 payload bytes" in artifact.detail
    assert artifact.ref == f"s3://{rig.bucket}/{PREFIX}/backups/{KEY}/{MANIFEST}"
    assert artifact.host_key.startswith("SHA256:")
    # presigned PUTs are SigV4, the checksum header signed (botocore's S3 default is SigV2)
    url = rig.store.client.generate_presigned_url(
        "put_object",
        Params={"Bucket": rig.bucket, "Key": "k", "ChecksumSHA256": b64sha(b"")},
        ExpiresIn=60,
    )
    assert "X-Amz-Algorithm=AWS4-HMAC-SHA256" in url and "x-amz-checksum-sha256" in url

    client = rig.s3.client()
    for path in files:
        head = client.head_object(
            Bucket=rig.bucket, Key=rig.object_key(path), ChecksumMode="ENABLED"
        )
        assert head["ChecksumSHA256"] == b64sha(path.read_bytes())
        assert head["ContentLength"] == path.stat().st_size
        assert head.get("ServerSideEncryption") == "AES256"
    body = client.get_object(Bucket=rig.bucket, Key=rig.object_key(files[1]))["Body"].read()
    assert body == files[1].read_bytes()
    assert rig.object_key(rig.data / "skip.tmp") not in rig.object_keys()  # excluded

    # the index and the manifest, in ObjectStoreFetcher's format; the artifact's sha256 is the
    # index's, so the via-runner check confirms every object before a destroy
    index = client.get_object(Bucket=rig.bucket, Key=f"{PREFIX}/backups/{KEY}/{INDEX}")
    index_bytes = index["Body"].read()
    assert hashlib.sha256(index_bytes).hexdigest() == artifact.sha256
    names = {o["name"] for o in json.loads(index_bytes)["objects"]}
    assert MANIFEST in names and len(names) == 4
    manifest = json.loads(
        client.get_object(Bucket=rig.bucket, Key=f"{PREFIX}/backups/{KEY}/{MANIFEST}")[
            "Body"
        ].read()
    )
    assert manifest["verified"] is True and manifest["transfer"] == "push"
    assert manifest["total_bytes"] == total and len(manifest["files"]) == 3
    assert manifest["origin"]["host_key"] == artifact.host_key
    assert rig.fetcher.check(rig.resource, spec_of(rig), artifact) is None

    # a rerun of the step finds the verified push and sends nothing
    again = rig.fetcher.pull(rig.resource, spec_of(rig), KEY, None)
    assert again.verified and again.sha256 == artifact.sha256
    assert rig.fetcher.pushed_bytes == total and rig.fetcher.runner_payload_bytes == 0

    # a replaced object is caught by the check, naming it
    client.put_object(Bucket=rig.bucket, Key=rig.object_key(files[0]), Body=b"HELLO\n")
    problem = rig.fetcher.check(rig.resource, spec_of(rig), artifact)
    assert problem is not None and "a.txt" in problem


def test_an_object_whose_checksum_does_not_match_is_not_verified_naming_the_file(
    tmp_path: Path, sshd: SshdInfo, s3_endpoint: S3Server
) -> None:
    rig = make_rig(tmp_path, sshd, s3_endpoint)
    target = rig.data / "a.txt"
    client = rig.s3.client()

    def tamper(item: Any) -> None:
        if item.entry.path == str(target):  # overwritten between the upload and the check
            client.put_object(Bucket=rig.bucket, Key=rig.object_key(target), Body=b"HELLO\n")

    wrap_push_file(rig, tamper)
    artifact = rig.fetcher.pull(rig.resource, spec_of(rig), KEY, None)
    assert not artifact.verified
    assert str(target) in artifact.detail and "1 of 3 files not verified" in artifact.detail
    keys = rig.object_keys()
    assert f"{PREFIX}/backups/{KEY}/{MANIFEST}" not in keys  # no manifest: not a backup
    assert f"{PREFIX}/backups/{KEY}/{INDEX}" not in keys
    assert "X-Amz-Signature" not in artifact.detail and "http" not in artifact.detail


def test_a_file_that_changes_on_the_host_during_the_push_is_not_verified(
    tmp_path: Path, sshd: SshdInfo, s3_endpoint: S3Server
) -> None:
    rig = make_rig(tmp_path, sshd, s3_endpoint)
    target = rig.data / "sub" / "big.bin"

    def change(item: Any) -> None:
        if item.entry.path == str(target):  # after hashing, before the upload: same size
            stat = target.stat()
            with target.open("r+b") as f:
                f.write(b"CHANGED")
            os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))

    wrap_push_file(rig, change, before=True)
    artifact = rig.fetcher.pull(rig.resource, spec_of(rig), KEY, None)
    assert not artifact.verified
    assert str(target) in artifact.detail and "changed on the host" in artifact.detail
    assert f"{PREFIX}/backups/{KEY}/{MANIFEST}" not in rig.object_keys()


def test_without_curl_on_the_host_the_pull_goes_via_the_runner_and_says_so(
    tmp_path: Path, sshd: SshdInfo, s3_endpoint: S3Server
) -> None:
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    rig = make_rig(tmp_path, sshd, s3_endpoint, remote_path=str(empty))
    artifact = rig.fetcher.pull(rig.resource, spec_of(rig), KEY, None)
    assert artifact.verified, artifact.detail
    assert artifact.detail.startswith("curl absent on the host: pulled via the runner")
    assert rig.fetcher.pushed_bytes == 0
    assert rig.fetcher.runner_payload_bytes == artifact.size > 5 << 20
    assert artifact.ref == f"s3://{rig.bucket}/{PREFIX}/backups/{KEY}/{MANIFEST}"
    assert any("/segments/" in k for k in rig.object_keys())  # the via-runner layout
    assert rig.fetcher.check(rig.resource, spec_of(rig), artifact) is None


def test_a_hostile_name_is_refused_as_a_pull_refuses_it(
    tmp_path: Path, sshd: SshdInfo, s3_endpoint: S3Server
) -> None:
    rig = make_rig(tmp_path, sshd, s3_endpoint)
    (rig.data / "evil\nname").write_bytes(b"x")
    artifact = rig.fetcher.pull(rig.resource, spec_of(rig), KEY, None)
    assert not artifact.verified
    assert "refused 1 entries" in artifact.detail and "control character" in artifact.detail
    assert not rig.object_keys()  # nothing uploaded


def test_transfer_setting_is_validated() -> None:
    assert BackupConfig().transfer == "via-runner"
    assert BackupConfig(transfer="push").transfer == "push"
    with pytest.raises(ValueError, match="transfer must be 'via-runner' or 'push'"):
        BackupConfig(transfer="pull")


def test_before_commands_run_on_the_host_first_and_a_failing_one_stops_the_push(
    tmp_path: Path, sshd: SshdInfo, s3_endpoint: S3Server
) -> None:
    rig = make_rig(tmp_path, sshd, s3_endpoint)
    dump = rig.data / "dump.sql"
    spec = PullSpec(
        name="data",
        paths=(str(rig.data),),
        excludes=("*.tmp",),
        before=(f"echo dumped > {dump}",),
        after=(f"rm {dump}",),
    )
    artifact = rig.fetcher.pull(rig.resource, spec, KEY, None)
    assert artifact.verified and artifact.files == 4, artifact.detail
    assert rig.object_key(dump) in rig.object_keys() and not dump.exists()

    failing = PullSpec(name="data", paths=(str(rig.data),), before=("exit 3",))
    failed = rig.fetcher.pull(rig.resource, failing, "push-step-2", None)
    assert not failed.verified and "before command #1 failed" in failed.detail
    assert not [k for k in rig.object_keys() if "/push-step-2/" in k]


def test_a_refused_upload_fails_the_push_without_showing_the_url(
    tmp_path: Path, sshd: SshdInfo, s3_endpoint: S3Server
) -> None:
    rig = make_rig(tmp_path, sshd, s3_endpoint)
    rig.fetcher.via_runner._stored = lambda *_: None  # type: ignore[method-assign]
    rig.store.bucket = "td-no-such-bucket"  # the store answers 404 to every upload
    artifact = rig.fetcher.pull(rig.resource, spec_of(rig), KEY, None)
    assert not artifact.verified
    assert "3 of 3 files not verified" in artifact.detail
    assert "curl exit status 22: the store refused the upload" in artifact.detail
    assert "X-Amz-" not in artifact.detail and "127.0.0.1" not in artifact.detail
    assert rig.fetcher.pushed_bytes == 0 and rig.fetcher.runner_payload_bytes == 0


def test_a_pushed_backup_is_restored_from_its_url_and_verified_on_the_host(
    tmp_path: Path, sshd: SshdInfo, s3_endpoint: S3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pushed backup holds plain files, not tar segments: ``teardown restore <url>`` puts them
    in a segment after checking each against the index, then restores as for any pull."""
    from click.testing import CliRunner

    from teardown.cli.main import cli

    rig = make_rig(tmp_path, sshd, s3_endpoint)
    assert rig.fetcher.pull(rig.resource, spec_of(rig), KEY, None).verified
    for name, value in s3_endpoint.env.items():
        monkeypatch.setenv(name, value)
    cfg = tmp_path / "teardown.toml"
    cfg.write_text(
        f'[store]\nurl = "s3://{rig.bucket}/{PREFIX}"\nendpoint_url = "{s3_endpoint.endpoint}"\n'
        f'region = "{s3_endpoint.region}"\n'
    )
    dest = tmp_path / "restored"
    url = f"s3://{rig.bucket}/{PREFIX}/backups/{KEY}/{MANIFEST}"
    result = CliRunner().invoke(
        cli,
        ["restore", url, "--config", str(cfg),
         "--to", f"{sshd.user}@127.0.0.1:{sshd.port}:{dest}",
         "--identity", str(sshd.client_key), "--known-hosts", str(sshd.known_hosts), "--json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert body["ok"] is True and body["files"] == 3 and body["source"] == url
    for original in (rig.data / "a.txt", rig.data / "sub" / "big.bin"):
        copy = dest / str(original).lstrip("/")
        assert copy.read_bytes() == original.read_bytes()
    assert not (dest / str(rig.data / "skip.tmp").lstrip("/")).exists()  # excluded: not pushed
