"""The object store (teardown.adapters.objstore) against moto's S3 server on 127.0.0.1, through
boto3: round trips with verified SHA-256 checksums (one PUT and multipart), tampered and missing
objects, exclusive creation with ``If-None-Match: *`` and its fallback, scope locks, server-side
encryption, error mapping; and the ``[store]`` settings that describe it (StoreConfig)."""

from __future__ import annotations

import base64
import hashlib
import json
import random
import socket
from pathlib import Path
from typing import Any

import moto
import pytest
from botocore.exceptions import ClientError

from teardown.adapters.objstore import ObjectStore, ObjectVerificationFailed, StoredObject
from teardown.app.config import parse_config
from teardown.core.config import StoreConfig
from teardown.core.errors import ConfigError, PermanentError, TransientError
from tests.s3_server import S3Server, s3_endpoint  # noqa: F401  (the fixture)

MiB = 1 << 20
PREFIX = "team/ci"


@pytest.fixture
def s3(s3_endpoint: S3Server) -> S3Server:  # noqa: F811  (the imported fixture)
    """The session's moto S3 server."""
    return s3_endpoint


def _config(s3: S3Server, bucket: str, prefix: str = PREFIX, **more: Any) -> StoreConfig:
    url = f"s3://{bucket}/{prefix}" if prefix else f"s3://{bucket}"
    return StoreConfig(url=url, endpoint_url=s3.endpoint, region=s3.region, **more)


def _store(s3: S3Server, bucket: str | None = None, **more: Any) -> ObjectStore:
    return ObjectStore.open(
        _config(s3, bucket or s3.new_bucket(), **more),
        s3.env,
        max_attempts=1,
        multipart_threshold=5 * MiB,
        part_size=5 * MiB,
    )


def _client_error(status: int, code: str, message: str) -> ClientError:
    """A ClientError as botocore raises it for a PutObject the service answered so."""
    response: Any = {
        "Error": {"Code": code, "Message": message},
        "ResponseMetadata": {"HTTPStatusCode": status},
    }
    return ClientError(response, "PutObject")


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _data(size: int, seed: int = 7) -> bytes:
    return random.Random(seed).randbytes(size)


# -- round trips ---------------------------------------------------------------------------


def test_small_bytes_round_trip_with_the_checksum_s3_reports(s3: S3Server) -> None:
    store = _store(s3)
    data = b"journal snapshot\n" * 100
    put = store.put_bytes("runs/r1/journal.db", data)
    assert put.sha256 == _sha(data)
    assert put.checksum == base64.b64encode(hashlib.sha256(data).digest()).decode()

    head = store.head("runs/r1/journal.db")
    assert head is not None
    assert (head.size, head.sha256, head.parts) == (len(data), _sha(data), 1)
    assert store.verify("runs/r1/journal.db", _sha(data), len(data)).sha256 == _sha(data)
    assert store.verify_by_reading("runs/r1/journal.db", _sha(data), len(data)).size == len(data)
    assert store.get_bytes("runs/r1/journal.db") == data
    # the key lives under the configured prefix
    raw = s3.client().head_object(Bucket=store.bucket, Key=f"{PREFIX}/runs/r1/journal.db")
    assert raw["ContentLength"] == len(data)


def test_a_small_file_round_trip(s3: S3Server, tmp_path: Path) -> None:
    store = _store(s3)
    data = _data(300_000)
    src = tmp_path / "index.jsonl"
    src.write_bytes(data)
    put = store.put_file("backups/k1/index.jsonl", src)
    assert (put.size, put.sha256, put.parts) == (len(data), _sha(data), 1)
    store.verify("backups/k1/index.jsonl", _sha(data), len(data))

    dest = tmp_path / "back" / "index.jsonl"
    dest.parent.mkdir()
    got = store.get_file("backups/k1/index.jsonl", dest)
    assert dest.read_bytes() == data
    assert got.sha256 == _sha(data)
    assert not (dest.parent / "index.jsonl.part").exists()


def test_a_multipart_file_round_trip_is_verified_through_its_composite(
    s3: S3Server, tmp_path: Path
) -> None:
    store = _store(s3)
    data = _data(11 * MiB + 123)
    src = tmp_path / "000001.tar"
    src.write_bytes(data)
    put = store.put_file("backups/k1/segments/000001.tar", src)
    assert put.parts == 3  # 5 MiB + 5 MiB + the rest
    assert put.sha256 == _sha(data)
    assert put.checksum is not None

    # S3's checksum is the composite (a SHA-256 of the parts' SHA-256s), not the file's...
    digests = [hashlib.sha256(data[i : i + 5 * MiB]).digest() for i in range(0, len(data), 5 * MiB)]
    composite = base64.b64encode(hashlib.sha256(b"".join(digests)).digest()).decode()
    assert put.checksum.split("-")[0] == composite
    # ...which ties the whole file's sha256 recorded beside it
    store.verify("backups/k1/segments/000001.tar", _sha(data), len(data))
    store.verify_by_reading("backups/k1/segments/000001.tar", _sha(data))
    dest = tmp_path / "restored.tar"
    assert store.get_file("backups/k1/segments/000001.tar", dest).sha256 == _sha(data)
    assert dest.read_bytes() == data


def test_a_multipart_object_replaced_with_its_metadata_copied_is_not_vouched_for(
    s3: S3Server, tmp_path: Path
) -> None:
    store = _store(s3)
    data = _data(11 * MiB, seed=1)
    src = tmp_path / "seg.tar"
    src.write_bytes(data)
    store.put_file("backups/k/seg.tar", src)
    raw = s3.client()
    full = f"{PREFIX}/backups/k/seg.tar"
    meta = raw.head_object(Bucket=store.bucket, Key=full)["Metadata"]
    other = tmp_path / "other.tar"
    other.write_bytes(_data(11 * MiB, seed=2))
    # another tool rewrites the object in parts, carrying the old metadata along
    from boto3.s3.transfer import TransferConfig

    raw.upload_file(
        str(other),
        store.bucket,
        full,
        ExtraArgs={"ChecksumAlgorithm": "SHA256", "Metadata": meta},
        Config=TransferConfig(multipart_threshold=5 * MiB, multipart_chunksize=5 * MiB),
    )
    head = store.head("backups/k/seg.tar")
    assert head is not None and head.sha256 is None
    with pytest.raises(ObjectVerificationFailed, match=r"backups/k/seg.tar: no SHA-256 checksum"):
        store.verify("backups/k/seg.tar", _sha(data))
    with pytest.raises(ObjectVerificationFailed, match=r"backups/k/seg.tar: checksum differs"):
        store.verify_by_reading("backups/k/seg.tar", _sha(data))


# -- verification failures -----------------------------------------------------------------


def test_a_tampered_object_fails_verification_naming_its_key(s3: S3Server, tmp_path: Path) -> None:
    store = _store(s3)
    data = b"the real backup"
    store.put_bytes("backups/k2/manifest.json", data)
    s3.client().put_object(
        Bucket=store.bucket,
        Key=f"{PREFIX}/backups/k2/manifest.json",
        Body=b"the fake backup",  # same size, other bytes, with a valid checksum of its own
        ChecksumAlgorithm="SHA256",
    )
    with pytest.raises(ObjectVerificationFailed) as caught:
        store.verify("backups/k2/manifest.json", _sha(data), len(data))
    assert f"s3://{store.bucket}/{PREFIX}/backups/k2/manifest.json" in str(caught.value)
    assert "checksum differs" in str(caught.value)
    with pytest.raises(ObjectVerificationFailed, match=r"k2/manifest.json: checksum differs"):
        store.verify_by_reading("backups/k2/manifest.json", _sha(data))
    dest = tmp_path / "manifest.json"
    got = store.get_file("backups/k2/manifest.json", dest)  # S3 vouches for the new bytes
    assert got.sha256 == _sha(b"the fake backup") != _sha(data)


def test_an_object_without_a_sha256_checksum_is_not_verified(s3: S3Server) -> None:
    store = _store(s3)
    data = b"written by another tool"
    s3.client().put_object(Bucket=store.bucket, Key=f"{PREFIX}/runs/x/report.json", Body=data)
    with pytest.raises(ObjectVerificationFailed, match="no SHA-256 checksum the store vouches"):
        store.verify("runs/x/report.json", _sha(data))
    store.verify_by_reading("runs/x/report.json", _sha(data), len(data))


def test_a_wrong_size_or_a_missing_object_fails_verification(s3: S3Server, tmp_path: Path) -> None:
    store = _store(s3)
    data = b"0123456789"
    store.put_bytes("backups/k3/index.jsonl", data)
    with pytest.raises(
        ObjectVerificationFailed, match=r"k3/index.jsonl: holds 10 bytes, expected 11"
    ):
        store.verify("backups/k3/index.jsonl", _sha(data), 11)
    with pytest.raises(ObjectVerificationFailed, match=r"k3/index.jsonl: checksum differs"):
        store.verify("backups/k3/index.jsonl", _sha(b"else"))

    assert store.head("backups/k3/nothing") is None
    with pytest.raises(ObjectVerificationFailed, match=r"k3/nothing: missing"):
        store.verify("backups/k3/nothing", _sha(data))
    with pytest.raises(ObjectVerificationFailed, match=r"k3/nothing: missing"):
        store.verify_by_reading("backups/k3/nothing", _sha(data))
    dest = tmp_path / "nothing"
    with pytest.raises(ObjectVerificationFailed, match="missing"):
        store.get_file("backups/k3/nothing", dest)
    assert list(tmp_path.iterdir()) == []


# -- listing, deleting, keys ---------------------------------------------------------------


def test_list_and_delete_stay_under_the_prefix(s3: S3Server) -> None:
    bucket = s3.new_bucket()
    store = _store(s3, bucket)
    neighbour = _store(s3, bucket, prefix="team/other")
    for key in ("runs/r1/report.json", "runs/r1/journal.db", "backups/k/manifest.json"):
        store.put_bytes(key, key.encode())
    neighbour.put_bytes("runs/r9/report.json", b"not ours")

    assert store.list("runs/") == ["runs/r1/journal.db", "runs/r1/report.json"]
    assert store.list() == [
        "backups/k/manifest.json",
        "runs/r1/journal.db",
        "runs/r1/report.json",
    ]
    store.delete("runs/r1/journal.db")
    store.delete("runs/r1/journal.db")  # deleting what is gone is fine
    assert store.list("runs/") == ["runs/r1/report.json"]
    assert neighbour.list() == ["runs/r9/report.json"]


@pytest.mark.parametrize("key", ["", "/abs", "a//b", "../up", "a/./b", "a/..", "bad\nname"])
def test_keys_that_could_escape_the_prefix_are_refused(s3: S3Server, key: str) -> None:
    store = _store(s3)
    with pytest.raises(PermanentError, match="not a store key"):
        store.put_bytes(key, b"x")


# -- server-side encryption and storage class ----------------------------------------------


def test_objects_are_encrypted_at_rest_by_default(s3: S3Server, tmp_path: Path) -> None:
    store = _store(s3)
    assert store.put_bytes("runs/r/small", b"x").encryption == "AES256"
    big = tmp_path / "big"
    big.write_bytes(_data(6 * MiB))
    assert store.put_file("runs/r/big", big).encryption == "AES256"
    raw = s3.client()
    for key in ("runs/r/small", "runs/r/big"):
        answer = raw.head_object(Bucket=store.bucket, Key=f"{PREFIX}/{key}")
        assert answer["ServerSideEncryption"] == "AES256"


def test_sse_none_asks_for_no_encryption_and_a_storage_class_is_set(
    s3: S3Server,
) -> None:
    store = _store(s3, sse="none", storage_class="STANDARD_IA")
    store.put_bytes("runs/r/plain", b"x")
    answer = s3.client().head_object(Bucket=store.bucket, Key=f"{PREFIX}/runs/r/plain")
    assert "ServerSideEncryption" not in answer
    assert answer["StorageClass"] == "STANDARD_IA"


# -- exclusive creation --------------------------------------------------------------------


def _moto_ignores_if_none_match(s3: S3Server) -> bool:
    raw, bucket = s3.client(), s3.new_bucket("probe")
    raw.put_object(Bucket=bucket, Key="k", Body=b"1", IfNoneMatch="*")
    try:
        raw.put_object(Bucket=bucket, Key="k", Body=b"2", IfNoneMatch="*")
    except ClientError:
        return False
    return True


def test_create_exclusive_creates_once_with_a_conditional_write(s3: S3Server) -> None:
    if _moto_ignores_if_none_match(s3):
        pytest.skip(f"moto {moto.__version__} ignores If-None-Match on PutObject")
    store = _store(s3)
    sent: list[dict[str, Any]] = []

    def record(params: dict[str, Any], **_: Any) -> None:
        sent.append(dict(params))

    store.client.meta.events.register("before-parameter-build.s3.PutObject", record)
    assert store.create_exclusive("locks/x.json", b"first") is True
    assert store.create_exclusive("locks/x.json", b"second") is False
    assert store.get_bytes("locks/x.json") == b"first"
    assert [p.get("IfNoneMatch") for p in sent] == ["*", "*"]  # no fallback was needed
    assert store.conditional_writes is True


def test_create_exclusive_best_effort_without_conditional_writes(s3: S3Server) -> None:
    store = _store(s3)
    store.conditional_writes = False
    assert store.create_exclusive("locks/y.json", b"first") is True
    assert store.create_exclusive("locks/y.json", b"second") is False
    assert store.get_bytes("locks/y.json") == b"first"


def test_a_service_without_conditional_writes_falls_back(s3: S3Server) -> None:
    """The service answers 501 NotImplemented to ``If-None-Match`` (as a ClientError raised
    where botocore would raise it): the store falls back to HEAD, PUT, read back."""
    store = _store(s3)
    refused: list[str] = []

    def no_conditions(params: dict[str, Any], **_: Any) -> None:
        if "IfNoneMatch" in params:
            refused.append(params["Key"])
            raise _client_error(501, "NotImplemented", "A header you provided implies...")

    store.client.meta.events.register("before-parameter-build.s3.PutObject", no_conditions)
    assert store.create_exclusive("locks/z.json", b"first") is True
    assert store.conditional_writes is False
    assert store.create_exclusive("locks/z.json", b"second") is False
    assert store.get_bytes("locks/z.json") == b"first"
    assert refused == [f"{PREFIX}/locks/z.json"]  # asked once, then remembered


def test_a_conflicting_conditional_write_is_a_refusal(s3: S3Server) -> None:
    store = _store(s3)

    def conflict(params: dict[str, Any], **_: Any) -> None:
        raise _client_error(409, "ConditionalRequestConflict", "A conflicting operation...")

    store.client.meta.events.register("before-parameter-build.s3.PutObject", conflict)
    assert store.create_exclusive("locks/c.json", b"mine") is False
    assert store.conditional_writes is True  # a conflict is no sign of missing support


def test_a_multipart_upload_that_is_not_what_was_hashed_fails(s3: S3Server, tmp_path: Path) -> None:
    """The bytes uploaded differ from those hashed (simulated: the composite recorded at the
    start of the upload is another file's): the HEAD after the upload catches it."""
    store = _store(s3)
    src = tmp_path / "seg.tar"
    src.write_bytes(_data(11 * MiB, seed=3))
    other = [hashlib.sha256(b"other part").digest()] * 3
    wrong = base64.b64encode(hashlib.sha256(b"".join(other)).digest()).decode() + "-3"

    def swap(params: dict[str, Any], **_: Any) -> None:
        params["Metadata"] = {**params["Metadata"], "sha256-parts": wrong}

    store.client.meta.events.register("before-parameter-build.s3.CreateMultipartUpload", swap)
    with pytest.raises(ObjectVerificationFailed, match=r"backups/k/seg.tar: uploaded, but S3"):
        store.put_file("backups/k/seg.tar", src)


# -- scope locks ---------------------------------------------------------------------------

ALICE = {"run_id": "r-alice", "host": "runner-1", "started": "2025-05-01T10:00:00Z"}
BOB = {"run_id": "r-bob", "host": "runner-2", "started": "2025-05-01T10:01:00Z"}


@pytest.mark.parametrize("conditional", [True, False])
def test_a_scope_lock_refuses_a_second_holder(s3: S3Server, conditional: bool) -> None:
    store = _store(s3)
    store.conditional_writes = conditional
    first = store.lock("ci-env-42", ALICE)
    assert first.acquired and first.key == "locks/ci-env-42.json"
    assert (
        f"{PREFIX}/locks/ci-env-42.json"
        in s3.client().list_objects_v2(Bucket=store.bucket)["Contents"][0]["Key"]
    )

    second = store.lock("ci-env-42", BOB)
    assert not second.acquired
    assert second.holder == ALICE
    assert second.describe() == "run r-alice on runner-1 since 2025-05-01T10:00:00Z"
    assert store.lock("ci-env-42", ALICE).acquired  # the holder itself, resuming

    assert store.unlock("ci-env-42", BOB) is False  # not Bob's: nothing happens
    assert store.lock("ci-env-42", BOB).holder == ALICE
    assert store.unlock("ci-env-42", ALICE) is True
    assert store.unlock("ci-env-42", ALICE) is False  # gone already
    assert store.lock("ci-env-42", BOB).acquired
    assert store.lock("other-scope", ALICE).acquired  # scopes are independent


def test_lock_scope_names_are_plain_names(s3: S3Server) -> None:
    store = _store(s3)
    for scope in ("../x", "a/b", "", ".hidden"):
        with pytest.raises(PermanentError, match="not a scope name"):
            store.lock(scope, ALICE)


# -- credentials and errors ----------------------------------------------------------------


def _authorizations(store: ObjectStore) -> list[str]:
    seen: list[str] = []

    def capture(request: Any, **_: Any) -> None:
        seen.append(str(request.headers.get("Authorization", b""), "ascii", "replace"))

    store.client.meta.events.register("before-send.s3", capture)
    return seen


def test_env_references_are_resolved_from_the_given_environment(s3: S3Server) -> None:
    bucket = s3.new_bucket()
    config = _config(s3, bucket, access_key="${env:OBS_AK}", secret_key="${env:OBS_SK}")
    env = {"OBS_AK": "AKIAREFERENCED000001", "OBS_SK": "referenced/secret/0001"}
    store = ObjectStore.open(config, env, max_attempts=1)
    seen = _authorizations(store)
    store.put_bytes("runs/r/x", b"x")
    assert seen and all("Credential=AKIAREFERENCED000001/" in a for a in seen)

    # without references: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY of the environment given
    plain = ObjectStore.open(_config(s3, bucket), s3.env, max_attempts=1)
    seen = _authorizations(plain)
    plain.head("runs/r/x")
    assert seen and all(f"Credential={s3.access_key}/" in a for a in seen)


def test_a_missing_variable_is_named_never_a_value(s3: S3Server) -> None:
    config = _config(s3, "some-bucket", access_key="${env:OBS_AK}", secret_key="${env:OBS_SK}")
    with pytest.raises(ConfigError) as caught:
        ObjectStore.open(config, {"OBS_AK": "AKIAVALUE00000000001"})
    assert "OBS_SK is not set" in str(caught.value)
    assert "AKIAVALUE" not in str(caught.value)
    with pytest.raises(ConfigError, match="url is not set"):
        ObjectStore.open(StoreConfig(), {})


def test_a_missing_bucket_is_permanent_and_names_it_not_the_credentials(
    s3: S3Server,
) -> None:
    store = _store(s3, "no-such-bucket-here")
    with pytest.raises(PermanentError) as caught:
        store.put_bytes("runs/r/x", b"x")
    text = str(caught.value)
    assert "s3://no-such-bucket-here/team/ci/runs/r/x" in text
    assert caught.value.code == "NoSuchBucket"
    assert "the bucket does not exist" in text
    assert s3.secret_key not in text and s3.access_key not in text


def test_an_unreachable_store_is_transient() -> None:
    with socket.socket() as s:  # a port nobody listens on once this closes
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = StoreConfig(url="s3://some-bucket", endpoint_url=f"http://127.0.0.1:{port}")
    store = ObjectStore.open(
        config,
        {
            "AWS_ACCESS_KEY_ID": "AKIAUNREACHABLE00001",
            "AWS_SECRET_ACCESS_KEY": "unreachable/secret",
        },
        max_attempts=1,
    )
    with pytest.raises(TransientError, match=r"s3://some-bucket/runs/x: cannot reach the store"):
        store.put_bytes("runs/x", b"x")


@pytest.mark.parametrize(
    ("status", "code", "kind"),
    [
        (503, "SlowDown", TransientError),
        (500, "InternalError", TransientError),
        (400, "RequestTimeout", TransientError),
        (403, "AccessDenied", PermanentError),
        (400, "InvalidStorageClass", PermanentError),
    ],
)
def test_service_errors_are_mapped_and_scrubbed(status: int, code: str, kind: type) -> None:
    store = ObjectStore(client=None, bucket="bkt", prefix="p", secrets=("s3cr3t-value",))  # type: ignore[arg-type]
    error = _client_error(status, code, "signature for s3cr3t-value failed")
    mapped = store._mapped(error, "upload", "runs/x")
    assert type(mapped) is kind
    assert "upload s3://bkt/p/runs/x: " + code in str(mapped)
    assert "s3cr3t-value" not in str(mapped)
    assert mapped.code == code


def test_stored_object_reports_what_s3_said(s3: S3Server) -> None:
    store = _store(s3)
    put = store.put_bytes("runs/r/a", b"abc")
    head = store.head("runs/r/a")
    assert isinstance(head, StoredObject)
    assert head.checksum == put.checksum and head.etag == put.etag


# -- [store] settings ----------------------------------------------------------------------


def _parsed(text: str) -> StoreConfig:
    return parse_config(text, "teardown.toml").store


def test_store_url_settings_are_read() -> None:
    store = _parsed(
        '[store]\nurl = "s3://team-teardown.backups/ci/env-42/"\n'
        'endpoint_url = "https://obs.cn-north-4.myhuaweicloud.com"\nregion = "cn-north-4"\n'
        'access_key = "${env:OBS_AK}"\nsecret_key = "${env:OBS_SK}"\n'
        'storage_class = "STANDARD_IA"\nretention_days = 30\n'
    )
    assert (store.bucket, store.prefix) == ("team-teardown.backups", "ci/env-42")
    assert store.sse == "AES256"  # on by default
    assert _parsed('[store]\nurl = "s3://abc"\n').prefix == ""
    assert StoreConfig().bucket is None  # the local store


@pytest.mark.parametrize(
    "url",
    [
        "s3://ab",
        "s3://" + "a" * 64,
        "s3://Upper-Case",
        "s3://under_score",
        "s3://-leading",
        "s3://trailing-",
        "s3://two..dots",
        "s3://192.168.1.10",
        "https://bucket/prefix",
        "s3://bucket//prefix",
        "s3://bucket/a/../b",
        "s3://bucket/a\x01b",
        "bucket",
    ],
)
def test_a_bad_store_url_is_refused_with_one_message(url: str) -> None:
    text = f"[store]\nurl = {json.dumps(url)}\n"  # a JSON string is a TOML string
    with pytest.raises(ConfigError, match=r"url must be s3://BUCKET or s3://BUCKET/PREFIX"):
        _parsed(text)


def test_a_literal_secret_in_the_file_is_refused_and_not_shown() -> None:
    for name in ("access_key", "secret_key"):
        other = "secret_key" if name == "access_key" else "access_key"
        text = (
            f'[store]\nurl = "s3://bucket"\n{name} = "wJalrXUtnFEMI/K7MDENG"\n'
            f'{other} = "${{env:X}}"\n'
        )
        with pytest.raises(ConfigError) as caught:
            _parsed(text)
        assert f"{name} must be an ${{env:NAME}} reference" in str(caught.value)
        assert "wJalrXUtnFEMI" not in str(caught.value)


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ('access_key = "${env:A}"', "give both access_key and secret_key, or neither"),
        ('endpoint_url = "http://obs.example.com"', "endpoint_url must be https://"),
        ('endpoint_url = "https://ak:sk@obs.example.com"', "must not hold credentials"),
        ('endpoint_url = "ftp://obs.example.com"', "endpoint_url must be an https:// URL"),
        ('region = "CN North"', "region must be lowercase"),
        ('sse = "aws:kms:dsse"', "sse must be AES256, aws:kms or none"),
        ('storage_class = "cold"', "storage_class must be an S3 storage class name"),
        ("retention_days = 0", "retention_days must be 1 to 36500"),
    ],
)
def test_bad_store_settings_are_refused(table: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        _parsed(f'[store]\nurl = "s3://bucket"\n{table}\n')


def test_s3_settings_need_a_url() -> None:
    with pytest.raises(ConfigError, match=r"region: only for an s3:// store"):
        _parsed('[store]\nregion = "cn-north-4"\n')
    assert _parsed('[store]\nurl = "s3://bucket"\nendpoint_url = "http://127.0.0.1:9000"\n')


@pytest.mark.parametrize("size", [0, 1, 7, 8, 9, 16, 17])
def test_the_local_composite_matches_s3s_definition(size: int) -> None:
    """Parts of 8 bytes: the composite is the SHA-256 of the parts' digests, ``-N``."""
    import io

    from teardown.adapters.objstore import _composite, _hash_file

    data = _data(size)
    whole, parts = _hash_file(io.BytesIO(data), 8)
    chunks = [data[i : i + 8] for i in range(0, len(data), 8)] or [b""]
    assert whole == hashlib.sha256(data).digest()
    assert parts == [hashlib.sha256(c).digest() for c in chunks]
    joined = hashlib.sha256(b"".join(parts)).digest()
    assert _composite(parts) == f"{base64.b64encode(joined).decode()}-{len(chunks)}"
