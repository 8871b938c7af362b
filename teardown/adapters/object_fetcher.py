"""The Fetcher port with an object store behind the local one (``[store] url``, via the runner).

A pull runs as with the local store (over SSH into a staging directory under ``[store] path``,
every file's sha256 checked against the host's). Once it is verified, its files are copied to
the object store under ``<prefix>/backups/<key>/``: the tar segments, the index and the host
checksums, then ``objects.json`` (each object's key, size and sha256, the manifest's too), then
the manifest last, each upload confirmed by the checksum the store reports. The artifact then
names the manifest's object (``s3://bucket/prefix/backups/<key>/manifest.json``) and its sha256
is that of ``objects.json``: the check before a destroy reads the index by that checksum and
confirms every object it lists, so a changed, missing or replaced object stops the destroy,
naming the file. The staging copy is removed: the backup lives in the bucket, not on the runner.

A run resumed elsewhere (another machine) finds a verified pull in the bucket and does not send
it again.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import replace
from typing import Any

from teardown.adapters.objstore import ObjectStore
from teardown.adapters.ssh.fetcher import SshFetcher, origin_of
from teardown.adapters.store_urls import INDEX, MANIFEST, check_stored_pull, object_key
from teardown.core.errors import TeardownError
from teardown.core.model import Artifact, PullSpec, Resource
from teardown.ports import ProgressCallback


class ObjectStoreFetcher:
    """Implements ``teardown.ports.Fetcher``: :class:`SshFetcher` into local staging, then the
    verified pull copied to ``store`` (module docstring)."""

    def __init__(self, inner: SshFetcher, store: ObjectStore) -> None:
        self.inner = inner
        self.store = store

    def pull(
        self, resource: Resource, spec: PullSpec, key: str, progress: ProgressCallback | None
    ) -> Artifact:
        # The same key is the same step's attempt: a pull that reached the bucket before its
        # process died (its outcome not journalled, or journalled only on another machine) is
        # not sent again.
        stored = self._stored(resource, spec, key)
        if stored is not None:
            return stored
        artifact = self.inner.pull(resource, spec, key, progress)
        if not artifact.verified:
            return artifact
        return self._upload(key, artifact)

    def _stored(self, resource: Resource, spec: PullSpec, key: str) -> Artifact | None:
        """The verified pull stored under ``key`` in the bucket, or None."""
        index = self.store.get_bytes(object_key(key, INDEX))
        manifest = self.store.get_bytes(object_key(key, MANIFEST))
        if index is None or manifest is None:
            return None
        data = json.loads(manifest)
        if not data.get("verified"):
            return None
        local = self.inner.find(resource, spec, key)
        base = local if local is not None else _from_manifest(resource, spec, data)
        ref = self.store.where(object_key(key, MANIFEST))
        return replace(base, ref=ref, sha256=hashlib.sha256(index).hexdigest())

    def _upload(self, key: str, artifact: Artifact) -> Artifact:
        pd = self.inner.store.pull_dir(key)
        objects: list[dict[str, Any]] = []
        files = sorted(
            p
            for p in pd.dir.rglob("*")
            if p.is_file() and p != pd.manifest_path and not p.name.endswith((".part", ".tmp"))
        )
        for path in files:
            name = path.relative_to(pd.dir).as_posix()
            stored = self.store.put_file(object_key(key, name), path)
            objects.append({"name": name, "size": stored.size, "sha256": stored.sha256})
        manifest_sha = hashlib.sha256(pd.manifest_path.read_bytes()).hexdigest()
        if manifest_sha != artifact.sha256:
            raise TeardownError(f"the manifest of {key} changed while it was being stored")
        size = pd.manifest_path.stat().st_size
        objects.append({"name": MANIFEST, "size": size, "sha256": manifest_sha})
        index = json.dumps({"objects": objects}, sort_keys=True).encode()
        self.store.put_bytes(object_key(key, INDEX), index)
        stored = self.store.put_file(object_key(key, MANIFEST), pd.manifest_path)  # last
        if stored.sha256 != manifest_sha:
            raise TeardownError(
                f"{self.store.where(object_key(key, MANIFEST))} was not stored intact"
            )
        shutil.rmtree(pd.dir)
        ref = self.store.where(object_key(key, MANIFEST))
        return replace(
            artifact,
            ref=ref,
            sha256=hashlib.sha256(index).hexdigest(),
            detail=f"{artifact.detail}; stored in {ref} ({len(objects)} objects, checksums "
            "confirmed)",
        )

    def find(self, resource: Resource, spec: PullSpec, key: str) -> Artifact | None:
        """A verified pull already in the bucket (from this run or one elsewhere), else one in
        local staging (copied to the bucket now), else None."""
        stored = self._stored(resource, spec, key)
        if stored is not None:
            return stored
        found = self.inner.find(resource, spec, key)
        return None if found is None else self._upload(key, found)

    def check(self, resource: Resource, spec: PullSpec, artifact: Artifact) -> str | None:
        """Every object of the stored pull is still there with its recorded checksum (from the
        index, read by the artifact's checksum), or the problem, naming the file."""
        if not artifact.ref.startswith("s3://"):
            return self.inner.check(resource, spec, artifact)
        prefix = artifact.ref.removesuffix("/" + MANIFEST)
        key = prefix.rsplit("/", 1)[-1]
        return check_stored_pull(self.store, key, artifact.sha256).first()


def _from_manifest(resource: Resource, spec: PullSpec, data: dict[str, Any]) -> Artifact:
    """The artifact of a pull verified elsewhere, from its manifest in the bucket."""
    files = data.get("files", [])
    return Artifact(
        kind="pull",
        ref="",
        verified=True,
        survives_destroy=True,
        size=int(data.get("total_bytes", 0)),
        sha256="",
        detail=f"{len(files)} files verified earlier (in the object store)",
        origin=origin_of(resource, spec),
        host_key=str((data.get("origin") or {}).get("host_key", "")),
        files=len(files),
        refused=tuple(f"{r.get('path')}: {r.get('reason')}" for r in data.get("refused", [])),
    )


__all__ = ["INDEX", "MANIFEST", "ObjectStoreFetcher"]
