"""Stored pulls and runs named by their ``s3://`` URL, and the store's retention rule.

A pull stored by ``teardown.adapters.object_fetcher`` lies under ``<prefix>/backups/<key>/``:
its files (segments, index, host checksums), ``objects.json`` (each object's name, size and
sha256, the manifest's included) and ``manifest.json``. A run lies under
``<prefix>/runs/<run_id>/`` (``teardown.adapters.run_archive``).

``parse_backup_url(url)``
    ``s3://bucket/prefix/backups/<key>/manifest.json`` (or the backup's directory URL) ->
    the store's URL and the key.
``open_at(config, url, env)``
    The :class:`ObjectStore` of ``[store]``'s settings (endpoint, region, credentials) with the
    bucket and prefix of ``url``.
``check_stored_pull(store, key, index_sha256)``
    Every object of the pull present with the size and sha256 its index records (a HEAD each,
    or a read with ``read=True``): the problems, each naming the object. The check
    ``ObjectStoreFetcher.check`` makes before a destroy is its first problem.
``download_stored_pull(store, key, dest)``
    The pull's objects downloaded into ``dest/<key>/`` (a pull directory as the local store
    has them), each file's sha256 compared with the index.
``list_runs(store)``
    The runs under ``runs/``: id, journal and report present, the report's phase and scope.
``apply_retention(store, days)``
    A lifecycle rule expiring ``<prefix>/backups/`` objects after ``days`` days.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import tarfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from teardown.adapters.objstore import ObjectStore, ObjectVerificationFailed
from teardown.adapters.stored_pull import Problem
from teardown.core.config import StoreConfig
from teardown.core.errors import InputError, TeardownError
from teardown.core.text import printable

if TYPE_CHECKING:
    from mypy_boto3_s3.type_defs import LifecycleRuleOutputTypeDef, LifecycleRuleTypeDef

INDEX = "objects.json"
"""The stored pull's index: each object's name, size and sha256 (``object_fetcher.INDEX``)."""
MANIFEST = "manifest.json"
BACKUPS = "backups"
RUNS = "runs"
RULE_PREFIX = "teardown-retention"
"""The id of the lifecycle rule :func:`apply_retention` owns starts with this."""

_KEY = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]*")


@dataclass(frozen=True)
class BackupUrl:
    """A stored pull's place: the store (``s3://bucket[/prefix]``) and the pull's key."""

    store_url: str
    key: str

    @property
    def manifest_url(self) -> str:
        return f"{self.store_url}/{BACKUPS}/{self.key}/{MANIFEST}"


def is_store_url(text: str) -> bool:
    return text.startswith("s3://")


def parse_backup_url(url: str) -> BackupUrl:
    """``s3://bucket[/prefix]/backups/<key>[/manifest.json][/]`` -> BackupUrl; InputError
    otherwise."""
    form = "s3://BUCKET[/PREFIX]/backups/<key>/manifest.json (or that directory's URL)"
    if not is_store_url(url):
        raise InputError(printable(url), f"not a stored backup's URL: {form}")
    parts = url.removeprefix("s3://").rstrip("/").split("/")
    if parts and parts[-1] == MANIFEST:
        parts.pop()
    if len(parts) < 3 or parts[-2] != BACKUPS or not _KEY.fullmatch(parts[-1]):
        raise InputError(printable(url), f"not a stored backup's URL: {form}")
    store_url = "s3://" + "/".join(parts[:-2])
    if StoreConfig.split_url(store_url) is None:
        raise InputError(printable(url), StoreConfig.URL_FORM)
    return BackupUrl(store_url, parts[-1])


def open_at(config: StoreConfig, url: str, env: Mapping[str, str]) -> ObjectStore:
    """The store at ``url`` (``s3://bucket[/prefix]``) with ``config``'s endpoint, region,
    credentials, encryption and storage class. InputError for a bad URL."""
    try:
        settings = replace(config, url=url.rstrip("/"))
    except ValueError as e:
        raise InputError(printable(url), str(e)) from None
    return ObjectStore.open(settings, env)


def object_key(key: str, name: str) -> str:
    """The store key of the file ``name`` of the pull ``key``."""
    return f"{BACKUPS}/{key}/{name}"


# -- checking ----------------------------------------------------------------------------


@dataclass
class StoredPullCheck:
    """What :func:`check_stored_pull` found."""

    backup: str
    """The pull's manifest URL."""
    ok: bool
    objects: int
    """Objects confirmed."""
    expected: int
    """Objects in the index."""
    total_bytes: int
    problems: list[Problem] = field(default_factory=list)

    @property
    def bad_files(self) -> list[str]:
        return sorted({p.path for p in self.problems})

    def first(self) -> str | None:
        """The first problem as one line, or None when all is well."""
        return str(self.problems[0]) if self.problems else None


def read_index(
    store: ObjectStore, key: str, index_sha256: str | None = None
) -> tuple[list[dict[str, Any]], Problem | None]:
    """The objects the pull's index lists, or the problem with the index: gone, not the one
    recorded (``index_sha256``, the artifact's checksum, when given), or unreadable."""
    where = store.where(object_key(key, INDEX))
    data = store.get_bytes(object_key(key, INDEX))
    if data is None:
        return [], Problem(where, "gone")
    if index_sha256 is not None and hashlib.sha256(data).hexdigest() != index_sha256.lower():
        return [], Problem(where, "changed since the backup")
    try:
        objects = json.loads(data)["objects"]
        checked = [
            {"name": str(o["name"]), "size": int(o["size"]), "sha256": str(o["sha256"])}
            for o in objects
        ]
    except (ValueError, KeyError, TypeError) as e:
        return [], Problem(where, f"unreadable: {type(e).__name__}")
    return checked, None


def check_stored_pull(
    store: ObjectStore, key: str, index_sha256: str | None = None, *, read: bool = False
) -> StoredPullCheck:
    """Every object the index of the pull ``key`` lists is in the store with its recorded
    size and sha256: the store vouches for it (:meth:`ObjectStore.verify`, a HEAD), or with
    ``read`` the object is read back and hashed. Each problem names the object's URL."""
    backup = store.where(object_key(key, MANIFEST))
    objects, problem = read_index(store, key, index_sha256)
    if problem is not None:
        return StoredPullCheck(backup, False, 0, 0, 0, [problem])
    check = store.verify_by_reading if read else store.verify
    good, total, problems = 0, 0, []
    for obj in objects:
        name = object_key(key, obj["name"])
        try:
            check(name, obj["sha256"], obj["size"])
        except ObjectVerificationFailed as e:
            problems.append(Problem(e.where, e.problem))
            continue
        except TeardownError as e:
            problems.append(Problem(store.where(name), str(e)))
            continue
        good += 1
        total += obj["size"]
    return StoredPullCheck(backup, not problems, good, len(objects), total, problems)


# -- downloading -------------------------------------------------------------------------


@dataclass
class DownloadReport:
    backup: str
    directory: str
    """The pull directory the objects were written to."""
    ok: bool
    objects: int
    expected: int
    total_bytes: int
    problems: list[Problem] = field(default_factory=list)


def download_stored_pull(
    store: ObjectStore, key: str, dest: Path, index_sha256: str | None = None
) -> DownloadReport:
    """Download every object of the pull ``key`` into ``dest/<key>/`` (created), the layout
    of a pull in the local store: ``teardown verify`` and ``restore`` take that directory.
    Each file's size and sha256 are compared with the index; a file that differs is named and
    removed. Nothing is written outside ``dest/<key>/``."""
    backup = store.where(object_key(key, MANIFEST))
    if not _KEY.fullmatch(key):
        raise InputError(printable(key), "not a stored pull's key")
    directory = dest / key
    objects, problem = read_index(store, key, index_sha256)
    if problem is not None:
        return DownloadReport(backup, str(directory), False, 0, 0, 0, [problem])
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    good, total, problems = 0, 0, []
    for obj in objects:
        name = obj["name"]
        where = store.where(object_key(key, name))
        segments = name.split("/")
        if any(s in ("", ".", "..") for s in segments) or printable(name) != name:
            problems.append(Problem(where, "a name that would leave the pull's directory"))
            continue
        path = directory.joinpath(*segments)
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            got = store.get_file(object_key(key, name), path)
        except ObjectVerificationFailed as e:
            problems.append(Problem(e.where, e.problem))
            continue
        except TeardownError as e:
            problems.append(Problem(where, str(e)))
            continue
        if got.size != obj["size"] or got.sha256 != obj["sha256"].lower():
            path.unlink(missing_ok=True)
            problems.append(
                Problem(
                    where,
                    f"read {got.size} bytes with sha256 {got.sha256}, the index records "
                    f"{obj['size']} bytes with sha256 {obj['sha256']}",
                )
            )
            continue
        good += 1
        total += got.size
    ok = not problems and good == len(objects)
    return DownloadReport(backup, str(directory), ok, good, len(objects), total, problems)


# -- runs --------------------------------------------------------------------------------


@dataclass
class StoredRun:
    run_id: str
    journal: bool
    """``journal.db`` is there."""
    report: bool
    """``report.json`` is there."""
    phase: str | None = None
    """The report's phase (None: no report, or unreadable)."""
    scope: str | None = None
    files: list[str] = field(default_factory=list)
    """The run's objects, relative to ``runs/<run_id>/``."""


def list_runs(store: ObjectStore) -> list[StoredRun]:
    """The runs in the store (``runs/<run_id>/``), by run id; each report.json read for its
    phase and scope."""
    by_run: dict[str, list[str]] = {}
    for key in store.list(f"{RUNS}/"):
        _, run_id, rest = key.split("/", 2) if key.count("/") >= 2 else (key, "", "")
        if run_id and rest:
            by_run.setdefault(run_id, []).append(rest)
    runs = []
    for run_id in sorted(by_run):
        files = sorted(by_run[run_id])
        run = StoredRun(run_id, "journal.db" in files, "report.json" in files, files=files)
        if run.report:
            data = store.get_bytes(f"{RUNS}/{run_id}/report.json")
            try:
                report = json.loads(data) if data is not None else None
            except ValueError:
                report = None
            if isinstance(report, dict):
                run.phase = _text(report.get("phase"))
                run.scope = _text(report.get("scope"))
        runs.append(run)
    return runs


def _text(value: object) -> str | None:
    return None if value is None else printable(str(value))


# -- retention ---------------------------------------------------------------------------


def backups_prefix(store: ObjectStore) -> str:
    return f"{store.prefix}/{BACKUPS}/" if store.prefix else f"{BACKUPS}/"


def rule_id(store: ObjectStore) -> str:
    """The id of this store's retention rule (one per prefix)."""
    return f"{RULE_PREFIX}:{store.prefix or '/'}"[:255]


def apply_retention(
    store: ObjectStore, days: int, warn: Callable[[str], None] | None = None
) -> bool:
    """Put a lifecycle rule on the bucket expiring the objects under ``<prefix>/backups/``
    ``days`` days after their creation (and unfinished multipart uploads there after one day).
    The bucket's other rules are kept: only the rule with this store's id
    (:func:`rule_id`) is replaced. True when the rule is in place; when the service refuses
    (no permission, no lifecycle support), one line to ``warn`` and False, never an error."""
    if days < 1:
        raise InputError("[store] retention_days", "must be 1 or more")
    ours: LifecycleRuleTypeDef = {
        "ID": rule_id(store),
        "Filter": {"Prefix": backups_prefix(store)},
        "Status": "Enabled",
        "Expiration": {"Days": days},
        "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1},
    }
    try:
        rules = _lifecycle_rules(store)
        kept: list[Any] = [r for r in rules if r.get("ID") != ours["ID"]]
        store.client.put_bucket_lifecycle_configuration(
            Bucket=store.bucket, LifecycleConfiguration={"Rules": [*kept, ours]}
        )
    except (ClientError, BotoCoreError) as e:
        if warn is not None:
            warn(
                f"the retention rule ({days} days on {store.where(BACKUPS + '/')}) was not "
                f"applied: {_said(e)}; set it on the bucket by hand"
            )
        return False
    return True


def _lifecycle_rules(store: ObjectStore) -> list[LifecycleRuleOutputTypeDef]:
    try:
        answer = store.client.get_bucket_lifecycle_configuration(Bucket=store.bucket)
    except ClientError as e:
        if e.response.get("Error", {}).get("Code") == "NoSuchLifecycleConfiguration":
            return []
        raise
    return list(answer.get("Rules", []))


def retention_rule(store: ObjectStore) -> LifecycleRuleOutputTypeDef | None:
    """This store's retention rule as the bucket has it, or None."""
    try:
        rules = _lifecycle_rules(store)
    except (ClientError, BotoCoreError):
        return None
    return next((r for r in rules if r.get("ID") == rule_id(store)), None)


def _said(e: Exception) -> str:
    if isinstance(e, ClientError):
        error = e.response.get("Error", {})
        code = error.get("Code", "")
        message = printable(str(error.get("Message", "")))[:200]
        return f"{code} ({message})" if message and message != code else str(code)
    return type(e).__name__


def as_pull_layout(directory: Path) -> None:
    """Turn a downloaded *pushed* backup (its files under ``files/``, each as the host sent it)
    into the layout of a pull (one tar segment, a manifest naming each file's segment), so that
    it is checked and restored as any pull is. A pull downloaded as it was stored is left as is.
    Each file's sha256 was checked against the index by the download."""
    manifest_path = directory / MANIFEST
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    if manifest.get("transfer") != "push":
        return
    segments = directory / "segments"
    segments.mkdir(mode=0o700, exist_ok=True)
    segment = segments / "000001.tar"
    files = manifest.get("files", [])
    with tarfile.open(segment, "w", format=tarfile.PAX_FORMAT) as tar:
        for entry in files:
            name = str(entry["path"]).lstrip("/")
            info = tar.gettarinfo(str(directory / "files" / name), arcname=name)
            info.mode = int(entry.get("mode", 0o644)) & 0o7777
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            with (directory / "files" / name).open("rb") as f:
                tar.addfile(info, f)
    for entry in files:
        entry["segment"] = 1
    manifest["segments"] = [{"name": segment.name, "size": segment.stat().st_size}]
    manifest.setdefault("dirs", [])
    manifest.setdefault("symlinks", [])
    manifest_path.write_text(json.dumps(manifest, sort_keys=True), encoding="utf-8")
    shutil.rmtree(directory / "files")


__all__ = [
    "BackupUrl",
    "DownloadReport",
    "StoredPullCheck",
    "StoredRun",
    "apply_retention",
    "as_pull_layout",
    "check_stored_pull",
    "download_stored_pull",
    "is_store_url",
    "list_runs",
    "open_at",
    "parse_backup_url",
    "read_index",
    "retention_rule",
]
