"""The object store: backups, journal snapshots, reports and scope locks in an S3 bucket (Huawei
OBS through its S3-compatible endpoint, or any S3 service), over boto3. docs/object-store.md
has the design; this module is its I/O.

Keys are relative to the store's prefix (``[store] url = "s3://bucket/prefix"``): ``put_bytes(
"runs/r1/report.json", ...)`` writes ``prefix/runs/r1/report.json``. Layout::

    <prefix>/runs/<run_id>/...              a run's journal snapshot and reports
    <prefix>/backups/<key>/segments/...     a pull's segments, index and manifest
    <prefix>/locks/<scope>.json             a scope's lock (:meth:`ObjectStore.lock`)

Every object is written with a SHA-256 checksum S3 checks on arrival (``ChecksumSHA256``) and
with the whole object's sha256 in its metadata (``x-amz-meta-sha256``). What a backup's
verification relies on, and how a multipart object (whose S3 checksum is a checksum of the
parts' checksums) is tied to the whole file's sha256, is :meth:`ObjectStore.head`'s docstring.

Every boto3/botocore failure becomes a :class:`TransientError` (throttling, 5xx, connection) or
a :class:`PermanentError` naming the bucket and key and never a credential; a backup that is not
what it should be is an :class:`ObjectVerificationFailed`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, TypeVar, cast

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config as BotoConfig
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    FlexibleChecksumError,
    HTTPClientError,
    NoCredentialsError,
    ParamValidationError,
    PartialCredentialsError,
)
from botocore.exceptions import (
    ConnectionError as BotoConnectionError,
)
from s3transfer.utils import ChunksizeAdjuster

from teardown.core.config import ENV_REF, StoreConfig
from teardown.core.errors import (
    AdapterError,
    ConfigError,
    PermanentError,
    TransientError,
    VerificationFailed,
)
from teardown.core.text import printable

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.literals import ServerSideEncryptionType, StorageClassType
    from mypy_boto3_s3.type_defs import HeadObjectOutputTypeDef, PutObjectRequestTypeDef

MULTIPART_THRESHOLD = 64 << 20
"""Files of this size or more go up in parts (boto3's managed transfer)."""
PART_SIZE = 16 << 20
"""The size of each part (raised by boto3 when a file would need more than 10,000 parts)."""
READ_CHUNK = 1 << 20
"""Bytes read at a time when hashing a file or a downloaded body."""
META_SHA256 = "sha256"
"""Object metadata (``x-amz-meta-sha256``): the whole object's sha256, hex."""
META_PARTS = "sha256-parts"
"""Object metadata (``x-amz-meta-sha256-parts``) of a multipart object: the composite SHA-256
computed locally from the same bytes as ``sha256``, as S3 reports it (``base64-N``)."""

_T = TypeVar("_T")
_SCOPE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}")
_TRANSIENT_CODES = frozenset(
    {
        "SlowDown",
        "Throttling",
        "ThrottlingException",
        "TooManyRequests",
        "RequestLimitExceeded",
        "RequestTimeout",
        "RequestTimeoutException",
        "InternalError",
        "ServiceUnavailable",
        "OperationAborted",
    }
)
_UNSUPPORTED_CODES = frozenset({"NotImplemented", "NotImplementedError"})


class ObjectVerificationFailed(VerificationFailed):
    """An object of the store is missing, or not the bytes it should be: its size or its
    checksum differs, or the store cannot vouch for its checksum. Names the key."""

    def __init__(self, where: str, problem: str) -> None:
        self.where = where
        self.problem = problem
        super().__init__(printable(f"{where}: {problem}"))


@dataclass(frozen=True)
class StoredObject:
    """An object in the store, as written or as S3 describes it."""

    key: str
    """Relative to the store's prefix."""
    size: int
    sha256: str | None
    """The whole object's sha256 (hex) as far as the store vouches for it without reading it
    back (:meth:`ObjectStore.head`); on a put, the sha256 computed while reading the source.
    None: nothing vouches for it (then only :meth:`ObjectStore.verify_by_reading` can tell)."""
    checksum: str | None
    """``ChecksumSHA256`` as S3 reports it: base64 of the object's SHA-256, or for a multipart
    object the composite (a SHA-256 of the parts' SHA-256s, ``base64-N``)."""
    parts: int = 1
    """How many parts the object was uploaded in (1: a single PUT)."""
    encryption: str | None = None
    """``ServerSideEncryption`` as S3 reports it (``AES256``, ``aws:kms``; None: not said)."""
    storage_class: str | None = None
    etag: str | None = None


@dataclass(frozen=True)
class LockResult:
    """What :meth:`ObjectStore.lock` found: the lock taken, or who holds it."""

    acquired: bool
    holder: dict[str, Any]
    """The holder recorded in the lock: the caller's own when ``acquired``, else the other's
    (run id, host, started at: whatever it wrote)."""
    key: str
    """The lock object's key (relative to the store's prefix)."""

    def describe(self) -> str:
        """``run r1 on host h since 2025-01-01T00:00:00Z`` (the parts the holder recorded)."""
        h = self.holder
        words = [f"run {h['run_id']}" if "run_id" in h else "an unknown run"]
        if "host" in h:
            words.append(f"on {h['host']}")
        if "started" in h:
            words.append(f"since {h['started']}")
        return printable(" ".join(words))


@dataclass
class ObjectStore:
    """A bucket and prefix holding teardown's objects. Make one with :meth:`open`; the
    constructor takes a ready boto3 S3 client (tests make their own)."""

    client: S3Client
    bucket: str
    prefix: str = ""
    sse: str = "AES256"
    """``AES256``, ``aws:kms`` or ``none`` (see ``StoreConfig.sse``)."""
    storage_class: str | None = None
    multipart_threshold: int = MULTIPART_THRESHOLD
    part_size: int = PART_SIZE
    conditional_writes: bool = True
    """Use ``If-None-Match: *`` for :meth:`create_exclusive` (and ``If-Match`` for unlock).
    Set to False once the service answers that it does not implement them."""
    secrets: Sequence[str] = field(default=(), repr=False)
    """Values never to show in a message (the resolved credentials)."""

    @classmethod
    def open(
        cls,
        config: StoreConfig,
        env: Mapping[str, str],
        *,
        max_attempts: int = 5,
        multipart_threshold: int = MULTIPART_THRESHOLD,
        part_size: int = PART_SIZE,
    ) -> ObjectStore:
        """The store ``config.url`` names. Credentials: ``access_key``/``secret_key``
        (``${env:NAME}``) resolved from ``env``; without them, ``AWS_ACCESS_KEY_ID`` /
        ``AWS_SECRET_ACCESS_KEY`` (and ``AWS_SESSION_TOKEN``) from ``env``; without those,
        boto3's standard credential chain (shared files, instance roles). ConfigError naming a
        variable that is not set (never a value). ``max_attempts``: botocore's retries
        (standard mode) before an error reaches the caller."""
        if config.url is None or config.bucket is None:
            raise ConfigError("[store]", "url is not set: the store is the local directory")
        access = _resolve(config.access_key, "access_key", env)
        secret = _resolve(config.secret_key, "secret_key", env)
        token = None
        if access is None and env.get("AWS_ACCESS_KEY_ID") and env.get("AWS_SECRET_ACCESS_KEY"):
            access, secret = env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"]
            token = env.get("AWS_SESSION_TOKEN") or None
        boto_config = BotoConfig(
            retries={"mode": "standard", "max_attempts": max_attempts},
            connect_timeout=15,
            read_timeout=120,
        )
        try:
            session = boto3.session.Session()
            client = session.client(
                "s3",
                endpoint_url=config.endpoint_url,
                region_name=config.region,
                aws_access_key_id=access,
                aws_secret_access_key=secret,
                aws_session_token=token,
                config=boto_config,
            )
        except BotoCoreError as e:
            raise ConfigError("[store]", f"cannot make an S3 client: {type(e).__name__}") from None
        return cls(
            client=client,
            bucket=config.bucket,
            prefix=config.prefix,
            sse=config.sse,
            storage_class=config.storage_class,
            multipart_threshold=multipart_threshold,
            part_size=part_size,
            secrets=tuple(s for s in (access, secret, token) if s),
        )

    # -- keys ------------------------------------------------------------------------------

    def full_key(self, key: str) -> str:
        """``prefix/key``; PermanentError for a key that is empty, absolute, has an empty,
        ``.`` or ``..`` segment, or holds control characters."""
        parts = key.split("/")
        if (
            not key
            or len(key.encode()) > 900
            or printable(key) != key
            or any(p in ("", ".", "..") for p in parts)
        ):
            raise PermanentError(f"not a store key: {printable(key)!r}")
        return f"{self.prefix}/{key}" if self.prefix else key

    def where(self, key: str) -> str:
        """``s3://bucket/prefix/key``, for messages."""
        return printable(f"s3://{self.bucket}/{self.prefix + '/' if self.prefix else ''}{key}")

    # -- writing ---------------------------------------------------------------------------

    def put_bytes(self, key: str, data: bytes) -> StoredObject:
        """Write ``data`` at ``key`` in one PUT, with its SHA-256 for S3 to check on arrival
        (a body that arrives different is refused) and in the metadata."""
        digest = hashlib.sha256(data).digest()
        return self._put_single(key, data, len(data), digest)

    def put_file(self, key: str, path: Path) -> StoredObject:
        """Upload the file at ``path`` to ``key``. Below ``multipart_threshold``: one PUT
        carrying the SHA-256 computed while reading the file (S3 refuses a body that differs,
        so a file that changed meanwhile fails). From it on: boto3's managed multipart transfer
        with a SHA-256 per part, the whole file's sha256 and the composite computed locally in
        the metadata; the object is then read back by HEAD and its composite compared (a file
        that changed between the hashing and the upload fails with ObjectVerificationFailed)."""
        where = self.where(key)
        try:
            size = path.stat().st_size
            if size < self.multipart_threshold:
                with path.open("rb") as f:
                    whole, _ = _hash_file(f, 0)
                    f.seek(0)
                    return self._put_single(key, f, size, whole)
            part = ChunksizeAdjuster().adjust_chunksize(self.part_size, size)
            with path.open("rb") as f:
                whole, parts = _hash_file(f, part)
                f.seek(0)
                composite = _composite(parts)
                self._upload_parts(key, f, size, part, whole.hex(), composite)
        except OSError as e:
            raise PermanentError(f"cannot read {printable(path)} for {where}: {e.strerror}") from e
        stored = self.head(key)
        if stored is None:
            raise ObjectVerificationFailed(where, "missing right after its upload")
        if stored.sha256 != whole.hex() or stored.size != size:
            raise ObjectVerificationFailed(
                where,
                f"uploaded, but S3's checksum {stored.checksum} is not the composite "
                f"{composite} of the file read (did {printable(path)} change meanwhile?)",
            )
        return stored

    def _put_single(
        self, key: str, body: bytes | IO[bytes], size: int, digest: bytes
    ) -> StoredObject:
        checksum = base64.b64encode(digest).decode()
        args = self._put_args(key, checksum, digest.hex())
        args["Body"] = body
        if self.storage_class is not None:
            args["StorageClass"] = cast("StorageClassType", self.storage_class)
        answer = self._call("upload", key, lambda: self.client.put_object(**args))
        reported = answer.get("ChecksumSHA256")
        if reported is not None and reported != checksum:
            raise ObjectVerificationFailed(
                self.where(key), f"S3 reports checksum {reported}, the data sent {checksum}"
            )
        return StoredObject(
            key=key,
            size=size,
            sha256=digest.hex(),
            checksum=reported,
            encryption=answer.get("ServerSideEncryption"),
            storage_class=self.storage_class,
            etag=answer.get("ETag"),
        )

    def _put_args(self, key: str, checksum: str, sha256_hex: str) -> PutObjectRequestTypeDef:
        args: PutObjectRequestTypeDef = {
            "Bucket": self.bucket,
            "Key": self.full_key(key),
            "ChecksumAlgorithm": "SHA256",
            "ChecksumSHA256": checksum,
            "Metadata": {META_SHA256: sha256_hex},
        }
        if self.sse != "none":
            args["ServerSideEncryption"] = cast("ServerSideEncryptionType", self.sse)
        return args

    def _upload_parts(
        self, key: str, f: IO[bytes], size: int, part: int, sha256_hex: str, composite: str
    ) -> None:
        extra: dict[str, Any] = {
            "ChecksumAlgorithm": "SHA256",
            "Metadata": {META_SHA256: sha256_hex, META_PARTS: composite},
        }
        if self.sse != "none":
            extra["ServerSideEncryption"] = self.sse
        if self.storage_class is not None:
            extra["StorageClass"] = self.storage_class
        transfer = TransferConfig(
            multipart_threshold=min(self.multipart_threshold, size),
            multipart_chunksize=part,
            # the classic client honours the part size, which the composite depends on
            preferred_transfer_client="classic",
        )
        full = self.full_key(key)
        self._call(
            "upload",
            key,
            lambda: self.client.upload_fileobj(
                f, self.bucket, full, ExtraArgs=extra, Config=transfer
            ),
        )

    # -- reading ---------------------------------------------------------------------------

    def head(self, key: str) -> StoredObject | None:
        """The object at ``key`` as S3 describes it (HEAD with ``ChecksumMode=ENABLED``), or
        None when there is none.

        ``sha256`` is what the store vouches for without reading the object:

        - a single-part object: S3's own ``ChecksumSHA256`` (checked by S3 when the object
          arrived), decoded to hex;
        - a multipart object: S3's checksum is a composite, the SHA-256 of the parts'
          SHA-256s (``base64-N``; SHA-256 has no full-object form for multipart uploads). The
          upload recorded two values computed in one pass over the same bytes: the whole
          file's sha256 and the composite of its parts. When S3's composite equals the recorded
          one, the stored parts are the bytes that were hashed, and the recorded sha256 is
          vouched for; otherwise None;
        - no SHA-256 checksum at all (written by another tool, or a service without flexible
          checksums): None.
        """
        full = self.full_key(key)
        try:
            answer = self.client.head_object(Bucket=self.bucket, Key=full, ChecksumMode="ENABLED")
        except ClientError as e:
            # A HEAD answer has no body: a missing bucket is a 404 too, and reads as missing.
            if _code(e) != "NoSuchBucket" and (_status(e) == 404 or _code(e) == "NoSuchKey"):
                return None
            raise self._mapped(e, "read", key) from None
        except BotoCoreError as e:
            raise self._mapped(e, "read", key) from None
        return _described(key, answer)

    def verify(self, key: str, expected_sha256: str, size: int | None = None) -> StoredObject:
        """Confirm, without reading it, that the object at ``key`` is the one expected: present,
        of ``size`` bytes (when given), with the sha256 the store vouches for (:meth:`head`)
        equal to ``expected_sha256``. ObjectVerificationFailed naming the key otherwise."""
        where = self.where(key)
        stored = self.head(key)
        if stored is None:
            raise ObjectVerificationFailed(where, "missing")
        if size is not None and stored.size != size:
            raise ObjectVerificationFailed(where, f"holds {stored.size} bytes, expected {size}")
        if stored.sha256 is None:
            raise ObjectVerificationFailed(
                where,
                "no SHA-256 checksum the store vouches for (written without one, or changed "
                "since it was written): read it back to check it",
            )
        if stored.sha256 != expected_sha256.lower():
            raise ObjectVerificationFailed(
                where, f"checksum differs: sha256 {stored.sha256}, expected {expected_sha256}"
            )
        return stored

    def verify_by_reading(
        self, key: str, expected_sha256: str, size: int | None = None
    ) -> StoredObject:
        """Read the object at ``key`` back and hash it: ObjectVerificationFailed naming the
        key when it is missing or its size or sha256 differs."""
        stored, sha256, read = self._read(key, None)
        where = self.where(key)
        if size is not None and read != size:
            raise ObjectVerificationFailed(where, f"read {read} bytes, expected {size}")
        if sha256 != expected_sha256.lower():
            raise ObjectVerificationFailed(
                where, f"checksum differs: read sha256 {sha256}, expected {expected_sha256}"
            )
        return stored

    def get_file(self, key: str, dest: Path) -> StoredObject:
        """Download the object at ``key`` to ``dest`` (written beside it, renamed when whole).
        When the store vouches for a sha256 (:meth:`head`), the bytes read must have it, or
        ObjectVerificationFailed and ``dest`` is left alone. Returns the object with the sha256
        of the bytes read."""
        part = dest.with_name(dest.name + ".part")
        try:
            with part.open("wb") as out:
                stored, sha256, read = self._read(key, out)
                out.flush()
                os.fsync(out.fileno())
            if stored.sha256 is not None and stored.sha256 != sha256:
                raise ObjectVerificationFailed(
                    self.where(key),
                    f"read sha256 {sha256}, but the store vouches for {stored.sha256}",
                )
            part.replace(dest)
        except OSError as e:
            part.unlink(missing_ok=True)
            raise PermanentError(f"cannot write {printable(dest)}: {e.strerror}") from e
        except BaseException:
            part.unlink(missing_ok=True)
            raise
        return StoredObject(
            key=key,
            size=read,
            sha256=sha256,
            checksum=stored.checksum,
            parts=stored.parts,
            encryption=stored.encryption,
            storage_class=stored.storage_class,
            etag=stored.etag,
        )

    def get_bytes(self, key: str) -> bytes | None:
        """The whole object at ``key`` (small objects: locks, snapshots), or None when none."""
        try:
            return self._get(key)[0]
        except ObjectVerificationFailed:
            return None

    @contextmanager
    def _reading(self, key: str) -> Iterator[None]:
        """Read errors of ``key`` as teardown errors: a missing object or a body that fails its
        checksum is ObjectVerificationFailed; the rest is mapped (:meth:`_mapped`)."""
        where = self.where(key)
        try:
            yield
        except ClientError as e:
            if _code(e) in ("NoSuchKey", "404"):
                raise ObjectVerificationFailed(where, "missing") from None
            raise self._mapped(e, "read", key) from None
        except FlexibleChecksumError:
            # botocore checks a single-part object's SHA-256 as the body streams in
            raise ObjectVerificationFailed(where, "the body read fails its checksum") from None
        except BotoCoreError as e:
            raise self._mapped(e, "read", key) from None

    def _get(self, key: str) -> tuple[bytes, str | None]:
        """(body, ETag) of a small object; ObjectVerificationFailed when it is missing."""
        with self._reading(key):
            answer = self.client.get_object(Bucket=self.bucket, Key=self.full_key(key))
            return answer["Body"].read(), answer.get("ETag")
        raise AssertionError("unreachable")  # pragma: no cover

    def _read(self, key: str, out: IO[bytes] | None) -> tuple[StoredObject, str, int]:
        """Stream the object through sha256 (into ``out`` if given): (object, sha256, bytes)."""
        digest = hashlib.sha256()
        read = 0
        with self._reading(key):
            answer = self.client.get_object(
                Bucket=self.bucket, Key=self.full_key(key), ChecksumMode="ENABLED"
            )
            for chunk in answer["Body"].iter_chunks(READ_CHUNK):
                digest.update(chunk)
                read += len(chunk)
                if out is not None:
                    out.write(chunk)
        return _described(key, cast("HeadObjectOutputTypeDef", answer)), digest.hexdigest(), read

    def list(self, prefix: str = "") -> list[str]:
        """The keys under ``prefix`` (relative to the store's prefix; ``""``: all), sorted."""
        if prefix and printable(prefix) != prefix:
            raise PermanentError(f"not a store prefix: {printable(prefix)!r}")
        base = f"{self.prefix}/" if self.prefix else ""
        keys: list[str] = []
        try:
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=base + prefix
            )
            for page in pages:
                keys.extend(o["Key"].removeprefix(base) for o in page.get("Contents", []))
        except (ClientError, BotoCoreError) as e:
            raise self._mapped(e, "list", prefix or ".") from None
        return sorted(keys)

    def delete(self, key: str) -> None:
        """Delete the object at ``key`` (nothing when there is none)."""
        full = self.full_key(key)
        self._call("delete", key, lambda: self.client.delete_object(Bucket=self.bucket, Key=full))

    # -- exclusive creation and scope locks ------------------------------------------------

    def create_exclusive(self, key: str, data: bytes) -> bool:
        """Create the object at ``key`` holding ``data`` only if there is none: True when this
        call created it, False when an object is there (412 PreconditionFailed) or another
        conditional write to the key was under way (409 ConditionalRequestConflict).

        With conditional writes (``PutObject`` with ``If-None-Match: *``) this is atomic: of
        two callers, one gets True. A service that answers it does not implement them (501
        NotImplemented, or a 400 naming the header; or a botocore too old to send it) turns
        :attr:`conditional_writes` off, and then, best effort and NOT
        atomic: HEAD (False if the object exists), PUT, read back and compare with ``data``
        (make ``data`` unique to the caller, an owner token). Two callers racing through that
        window can both get True; docs/object-store.md says when this is acceptable. A service
        that ignores the header altogether cannot be told apart: it overwrites."""
        digest = hashlib.sha256(data).digest()
        if self.conditional_writes:
            args = self._put_args(key, base64.b64encode(digest).decode(), digest.hex())
            args["Body"] = data
            args["IfNoneMatch"] = "*"
            try:
                self.client.put_object(**args)
                return True
            except ClientError as e:
                if _status(e) == 412 or _code(e) == "PreconditionFailed":
                    return False
                if _status(e) == 409 or _code(e) == "ConditionalRequestConflict":
                    return False
                if not _unsupported(e):
                    raise self._mapped(e, "create", key) from None
                self.conditional_writes = False
            except ParamValidationError:  # a botocore that does not know If-None-Match
                self.conditional_writes = False
            except BotoCoreError as e:
                raise self._mapped(e, "create", key) from None
        if self.head(key) is not None:
            return False
        self._put_single(key, data, len(data), digest)
        return self.get_bytes(key) == data

    def lock_key(self, scope: str) -> str:
        """``locks/<scope>.json``; PermanentError for a scope that is not a plain name."""
        if not _SCOPE.fullmatch(scope):
            raise PermanentError(f"not a scope name for a lock: {printable(scope)!r}")
        return f"locks/{scope}.json"

    def lock(self, scope: str, holder: Mapping[str, Any]) -> LockResult:
        """Take ``scope``'s lock for ``holder`` (JSON: run id, host, started at) through
        :meth:`create_exclusive`. Refused: ``acquired`` False and the holder on record. The
        same holder locking again gets it (a resumed run)."""
        key = self.lock_key(scope)
        mine = dict(holder)
        data = json.dumps(mine, sort_keys=True, separators=(",", ":")).encode()
        for _ in range(3):
            if self.create_exclusive(key, data):
                return LockResult(True, mine, key)
            current = self._holder(key)
            if current is None:  # released (or a conflicting write failed) meanwhile
                continue
            return LockResult(current == mine, current, key)
        raise TransientError(f"{self.where(key)}: the lock keeps changing hands; try again")

    def unlock(self, scope: str, holder: Mapping[str, Any]) -> bool:
        """Release ``scope``'s lock if ``holder`` holds it: True when released; False (and
        nothing done) when there is no lock or another holder's. With conditional writes the
        delete carries ``If-Match`` with the lock's ETag, so a lock taken over meanwhile stays."""
        key = self.lock_key(scope)
        try:
            data, etag = self._get(key)
        except ObjectVerificationFailed:
            return False
        if _parsed_holder(data) != dict(holder):
            return False
        full = self.full_key(key)
        if self.conditional_writes and etag:
            try:
                self.client.delete_object(Bucket=self.bucket, Key=full, IfMatch=etag)
                return True
            except ClientError as e:
                if _status(e) == 412 or _code(e) == "PreconditionFailed":
                    return False
                if _status(e) == 404 or _code(e) == "NoSuchKey":
                    return False
                if not _unsupported(e):
                    raise self._mapped(e, "unlock", key) from None
            except ParamValidationError:  # a botocore that does not know If-Match here
                pass
            except BotoCoreError as e:
                raise self._mapped(e, "unlock", key) from None
        self._call("unlock", key, lambda: self.client.delete_object(Bucket=self.bucket, Key=full))
        return True

    def _holder(self, key: str) -> dict[str, Any] | None:
        data = self.get_bytes(key)
        return None if data is None else _parsed_holder(data)

    # -- errors ----------------------------------------------------------------------------

    def _call(self, action: str, key: str, fn: Callable[[], _T]) -> _T:
        try:
            return fn()
        except (ClientError, BotoCoreError) as e:
            raise self._mapped(e, action, key) from None
        except Exception as e:  # boto3's managed transfer wraps a ClientError
            cause = e.__cause__ or e.__context__
            if isinstance(cause, ClientError | BotoCoreError):
                raise self._mapped(cause, action, key) from None
            raise

    def _mapped(self, e: Exception, action: str, key: str) -> AdapterError:
        """The teardown error for a boto3/botocore failure: ``action where: code (message)``,
        scrubbed of the credentials."""
        error = _adapter_error(e, f"{action} {self.where(key)}", self.bucket)
        text = str(error)
        for secret in self.secrets:
            if len(secret) >= 8:  # a real key; a shorter one would blot out ordinary words
                text = text.replace(secret, "***")
        if text == str(error):
            return error
        return type(error)(text, code=error.code)


def _resolve(ref: str | None, name: str, env: Mapping[str, str]) -> str | None:
    """The value ``${env:NAME}`` names; ConfigError naming the variable when it is unset."""
    if ref is None:
        return None
    m = ENV_REF.fullmatch(ref)
    if m is None:  # StoreConfig refuses this; a hand-made config may not have gone through it
        raise ConfigError("[store]", f"{name} must be an ${{env:NAME}} reference (not shown)")
    value = env.get(m.group(1))
    if not value:
        raise ConfigError("[store]", f"{name} = ${{env:{m.group(1)}}}: {m.group(1)} is not set")
    return value


def _hash_file(f: IO[bytes], part: int) -> tuple[bytes, list[bytes]]:
    """(the SHA-256 digest of the whole file, that of each ``part``-sized part; none when
    ``part`` is 0), in one pass from the current position."""
    whole = hashlib.sha256()
    parts: list[bytes] = []
    current = hashlib.sha256()
    filled = 0
    while chunk := f.read(READ_CHUNK if part == 0 else min(READ_CHUNK, part - filled)):
        whole.update(chunk)
        if part:
            current.update(chunk)
            filled += len(chunk)
            if filled == part:
                parts.append(current.digest())
                current, filled = hashlib.sha256(), 0
    if part and (filled or not parts):
        parts.append(current.digest())
    return whole.digest(), parts


def _composite(parts: list[bytes]) -> str:
    """S3's composite SHA-256 of a multipart object: base64 of the SHA-256 of the parts'
    digests, then ``-N``."""
    return f"{base64.b64encode(hashlib.sha256(b''.join(parts)).digest()).decode()}-{len(parts)}"


def _split_checksum(value: str) -> tuple[str, int | None]:
    """``(base64, N)`` of ``base64-N``; ``(value, None)`` without a part count."""
    head, dash, tail = value.rpartition("-")
    if dash and tail.isdigit():
        return head, int(tail)
    return value, None


def _described(key: str, answer: HeadObjectOutputTypeDef) -> StoredObject:
    """A StoredObject from a HEAD (or GET) answer; ``sha256`` as :meth:`ObjectStore.head`
    says."""
    checksum = answer.get("ChecksumSHA256")
    meta = {k.lower(): v for k, v in answer.get("Metadata", {}).items()}
    recorded = meta.get(META_PARTS)
    sha256: str | None = None
    parts = 1
    if recorded is not None:
        want, n = _split_checksum(recorded)
        parts = n or 1
        if checksum is not None:
            got, m = _split_checksum(checksum)
            if got == want and m in (None, n):
                sha256 = meta.get(META_SHA256, "").lower() or None
    elif checksum is not None:
        value, n = _split_checksum(checksum)
        if n is None and answer.get("ChecksumType") != "COMPOSITE":
            try:
                raw = base64.b64decode(value, validate=True)
            except (binascii.Error, ValueError):
                raw = b""
            sha256 = raw.hex() if len(raw) == 32 else None
        else:
            parts = n or 1
    return StoredObject(
        key=key,
        size=answer.get("ContentLength", 0),
        sha256=sha256,
        checksum=checksum,
        parts=parts,
        encryption=answer.get("ServerSideEncryption"),
        storage_class=answer.get("StorageClass"),
        etag=answer.get("ETag"),
    )


def _parsed_holder(data: bytes) -> dict[str, Any]:
    """A lock's holder: its JSON object, or ``{"unreadable": ...}``."""
    try:
        value = json.loads(data)
    except (ValueError, RecursionError):
        value = None
    if isinstance(value, dict):
        return value
    return {"unreadable": printable(data[:200].decode("utf-8", "replace"))}


def _code(e: ClientError) -> str:
    return str(e.response.get("Error", {}).get("Code", ""))


def _status(e: ClientError) -> int:
    return int(e.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))


def _unsupported(e: ClientError) -> bool:
    """Whether the service says it does not implement what was asked (a conditional write)."""
    if _status(e) == 501 or _code(e) in _UNSUPPORTED_CODES:
        return True
    message = str(e.response.get("Error", {}).get("Message", "")).lower()
    return _status(e) == 400 and ("if-none-match" in message or "if-match" in message)


_HINTS = {
    "NoSuchBucket": "the bucket does not exist: create it, or fix [store] url",
    "AccessDenied": "the store's credentials are not allowed this",
    "AllAccessDisabled": "the store's credentials are not allowed this",
    "InvalidAccessKeyId": "the store's access key is not known to the service",
    "SignatureDoesNotMatch": "check the store's secret key (and region)",
    "AuthorizationHeaderMalformed": "check [store] region",
    "PermanentRedirect": "the bucket is in another region or endpoint: check [store]",
    "BadDigest": "the data changed while it was sent",
    "XAmzContentSHA256Mismatch": "the data changed while it was sent",
    "InvalidStorageClass": "check [store] storage_class",
    "KMS.NotFoundException": "check the bucket's KMS key ([store] sse)",
}


def _adapter_error(e: Exception, what: str, bucket: str) -> AdapterError:
    """A boto3/botocore failure as a teardown error: TransientError for throttling, 5xx and
    connection failures, PermanentError for the rest. The message names ``what`` (the action
    and the object) and the service's code and message, never the credentials."""
    if isinstance(e, ClientError):
        code, status = _code(e), _status(e)
        message = printable(str(e.response.get("Error", {}).get("Message", "")))[:300]
        said = code or str(status)
        if status and code != str(status):
            said += f" {status}"
        text = f"{what}: {said}" + (f" ({message})" if message and message != code else "")
        hint = _HINTS.get(code)
        if status == 403 and hint is None:
            hint = _HINTS["AccessDenied"]
        if code == "404" and "NoSuchBucket" not in text:
            hint = f"not found (is bucket {bucket} there?)"
        transient = status >= 500 or status == 429 or code in _TRANSIENT_CODES
        cls = TransientError if transient else PermanentError
        return cls(text, code=code or str(status), hint=hint)
    if isinstance(e, BotoConnectionError | HTTPClientError):
        return TransientError(f"{what}: cannot reach the store ({type(e).__name__})")
    if isinstance(e, NoCredentialsError | PartialCredentialsError):
        return PermanentError(
            f"{what}: no credentials for the store",
            hint="set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or [store] access_key and "
            "secret_key as ${env:NAME}",
        )
    return PermanentError(f"{what}: {type(e).__name__}")


__all__ = [
    "MULTIPART_THRESHOLD",
    "PART_SIZE",
    "LockResult",
    "ObjectStore",
    "ObjectVerificationFailed",
    "StoredObject",
]
