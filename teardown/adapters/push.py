"""The Fetcher port in push mode (``[backup] transfer = "push"``): the server uploads its files
straight to the object store; the runner moves no payload bytes.

One pull, over one SSH connection (the same target and host-key rules as :class:`SshFetcher`):

1. the host must run commands and have ``curl`` (``command -v curl``) and ``openssl`` or
   ``sha256sum``; otherwise the pull goes via the runner (:class:`ObjectStoreFetcher`) and the
   artifact's detail says why;
2. ``before`` commands; the inventory of the paths (``find -H``: the same name, exclude and
   refusal rules as a pull, ``teardown.adapters.ssh.inventory``); every file hashed on the host;
3. for each file, a presigned PUT URL (SigV4, valid one hour) for
   ``<prefix>/backups/<key>/files/<path without its leading />``, signed with the file's SHA-256
   (``x-amz-checksum-sha256``: S3 refuses a body that differs), the sha256 in the metadata and
   the store's encryption; the host runs ``curl -T FILE --config -``, the URL and headers sent
   on curl's standard input, so the URL (a secret while it is valid) is in no command line,
   log or message;
4. the inventory is listed again: a file whose size or mtime changed during the push fails;
5. each object is confirmed by the checksum the store reports (``ObjectStore.verify``); then
   ``objects.json`` (the same index as :class:`ObjectStoreFetcher`'s) and ``manifest.json``
   last. The artifact is the manifest's object; its sha256 is that of the index, so
   :meth:`ObjectStoreFetcher.check` checks it before the destroy;
6. ``after`` commands, whether or not the push succeeded.

An object already in the bucket with the host's checksum and size (an earlier attempt) is not
sent again. Files of 5 GiB or more (beyond one PUT) go via the runner.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import shlex
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from teardown.adapters.object_fetcher import INDEX, MANIFEST, ObjectStoreFetcher
from teardown.adapters.objstore import META_SHA256, ObjectStore
from teardown.adapters.ssh.connect import (
    Resolved,
    close_transport,
    fingerprint,
    open_transport,
    resolve,
)
from teardown.adapters.ssh.fetcher import origin_of, target_for
from teardown.adapters.ssh.inventory import inventory
from teardown.adapters.ssh.pull import _run_hooks
from teardown.adapters.ssh.pull_check import split_refused
from teardown.adapters.ssh.pull_types import Entry, PullRequest
from teardown.adapters.ssh.remote import (
    choose_hasher,
    exec_works,
    host_hashes,
    run_command,
    tail,
)
from teardown.adapters.store_urls import object_key
from teardown.core.errors import TeardownError
from teardown.core.model import Artifact, Origin, PullSpec, Resource
from teardown.core.text import printable
from teardown.ports import ProgressCallback

MAX_SINGLE_PUT = 5 << 30
"""S3's limit for one PUT: a larger file would need a multipart upload."""
URL_EXPIRES = 3600
"""Seconds a presigned URL stays valid."""
_PRESIGN_HANDLER = "teardown-push-sigv4-presign"
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://\S+")
_CURL_EXITS = {
    6: "cannot resolve the store's host",
    7: "cannot connect to the store",
    22: "the store refused the upload (HTTP error)",
    28: "timed out",
    35: "TLS handshake failed",
    55: "sending the data failed",
    56: "receiving the answer failed",
    60: "the store's TLS certificate is not trusted by the host",
}


class _Fallback(Exception):
    """Push is not possible on this host: pull via the runner, for this reason."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class _Pushed:
    entry: Entry
    sha256: str
    name: str
    """The object's name under ``backups/<key>/`` (``files/...``)."""


class PushFetcher:
    """Implements ``teardown.ports.Fetcher``: the host uploads its files to ``store`` with curl
    (module docstring); ``via_runner`` is the fallback, and checks the result before a destroy.

    Example::

        via_runner = ObjectStoreFetcher(SshFetcher(LocalStore(staging), config.ssh), store)
        fetcher = PushFetcher(via_runner, store)
        artifact = fetcher.pull(server, spec, key, progress=None)

    ``remote_path``: when set, the ``PATH`` of the commands that look for and run ``curl`` on
    the host (e.g. ``/usr/local/bin:/usr/bin:/bin``); None keeps the host's.
    """

    def __init__(
        self,
        via_runner: ObjectStoreFetcher,
        store: ObjectStore,
        *,
        remote_path: str | None = None,
    ) -> None:
        self.via_runner = via_runner
        self.store = store
        self.remote_path = remote_path
        self.runner_payload_bytes = 0
        """File bytes that went through the runner (only pulls that fell back add to it)."""
        self.pushed_bytes = 0
        """File bytes the hosts uploaded themselves (sent in this process's pulls)."""
        # botocore presigns S3 URLs with SigV2 unless a signature version is configured; SigV2
        # does not sign the checksum header. Keep SigV4 for presigned PUTs (public event API).
        store.client.meta.events.register_first(
            "choose-signer.s3.PutObject", _keep_sigv4_presign, unique_id=_PRESIGN_HANDLER
        )

    # -- the port --------------------------------------------------------------------------

    def pull(
        self, resource: Resource, spec: PullSpec, key: str, progress: ProgressCallback | None
    ) -> Artifact:
        stored = self.via_runner._stored(resource, spec, key)
        if stored is not None:
            return stored
        inner = self.via_runner.inner
        target = target_for(resource, inner.config, inner._local_ports)
        resolved = resolve(target)
        transport = open_transport(target)
        try:
            host_key = fingerprint(transport.get_remote_server_key())
            try:
                return self._push(transport, resource, spec, key, progress, host_key, resolved)
            except _Fallback as fallback:
                reason = fallback.reason
        finally:
            close_transport(transport)
        artifact = self.via_runner.pull(resource, spec, key, progress)
        self.runner_payload_bytes += artifact.size
        return replace(artifact, detail=f"{reason}: pulled via the runner; {artifact.detail}")

    def find(self, resource: Resource, spec: PullSpec, key: str) -> Artifact | None:
        """A verified pull already in the bucket (pushed or via the runner), else one in local
        staging (copied to the bucket now), else None."""
        return self.via_runner.find(resource, spec, key)

    def check(self, resource: Resource, spec: PullSpec, artifact: Artifact) -> str | None:
        """Every object the stored pull's index lists is still there with its checksum."""
        return self.via_runner.check(resource, spec, artifact)

    # -- the push --------------------------------------------------------------------------

    def _remote(self, command: str) -> str:
        if self.remote_path is None:
            return command
        return f"PATH={shlex.quote(self.remote_path)}; export PATH; {command}"

    def _request(self, resource: Resource, spec: PullSpec) -> PullRequest:
        return self.via_runner.inner.request_for(resource, spec)

    def _push(
        self,
        transport: Any,
        resource: Resource,
        spec: PullSpec,
        key: str,
        progress: ProgressCallback | None,
        host_key: str,
        resolved: Resolved,
    ) -> Artifact:
        req = self._request(resource, spec)
        timeout = req.command_timeout
        if not exec_works(transport, timeout):
            raise _Fallback("the host refuses exec")
        status, out, _ = run_command(transport, self._remote("command -v curl"), timeout)
        if status != 0 or not out.strip():
            raise _Fallback("curl absent on the host")
        if choose_hasher(transport, req.verify_with, timeout, []) == "sftp":
            raise _Fallback("no openssl or sha256sum on the host to hash the files there")
        origin = origin_of(resource, spec)
        failed = _run_hooks(transport, req.before, "before", timeout, req.env)
        if failed:
            after = _run_hooks(transport, req.after, "after", timeout, req.env)
            return self._failed(key, origin, host_key, failed + (f"; {after}" if after else ""))
        try:
            artifact = self._transfer(transport, req, key, progress, origin, host_key, resolved)
        finally:
            after_failed = _run_hooks(transport, req.after, "after", timeout, req.env)
        if after_failed:
            artifact = replace(artifact, detail=f"{artifact.detail} (warning: {after_failed})")
        return artifact

    def _transfer(
        self,
        transport: Any,
        req: PullRequest,
        key: str,
        progress: ProgressCallback | None,
        origin: Origin,
        host_key: str,
        resolved: Resolved,
    ) -> Artifact:
        started = datetime.now(UTC).isoformat()
        timeout = req.command_timeout
        entries, refused = inventory(transport, req)
        files = [e for e in entries if e.kind == "f"]
        big = [e.path for e in files if e.size >= MAX_SINGLE_PUT]
        if big:
            raise _Fallback(f"{printable(big[0])} is 5 GiB or more (beyond one PUT)")
        method = choose_hasher(transport, req.verify_with, timeout, [e.path for e in files])
        if method == "sftp":
            raise _Fallback("no openssl or sha256sum on the host to hash the files there")
        unaccepted, accepted = split_refused(refused, req.accept_refused)
        rule = f"pull {req.rule!r}" if req.rule else "the pull"
        if unaccepted:
            listed = "; ".join(f"{r['path']} ({r['reason']})" for r in unaccepted[:3])
            return self._failed(
                key,
                origin,
                host_key,
                f"{rule} refused {len(unaccepted)} entries, so it does not hold them: {listed}; "
                "list them in the rule's accept_refused to go ahead without them",
            )
        if not files and not req.allow_empty:
            return self._failed(
                key,
                origin,
                host_key,
                f"{rule} found 0 files under {', '.join(req.paths)}: it copied nothing (set "
                "allow_empty = true on the rule if that is expected)",
            )
        sums = host_hashes(transport, method, [e.path for e in files], timeout)
        problems: list[str] = []
        pushed: list[_Pushed] = []
        done_bytes = 0
        for n, entry in enumerate(files, 1):
            sha = sums.get(entry.path)
            if sha is None:
                problems.append(f"{printable(entry.path)}: no checksum from the host")
                continue
            item = _Pushed(entry, sha, "files/" + entry.path.lstrip("/"))
            problem = self._push_file(transport, key, item, timeout)
            if problem is not None:
                problems.append(f"{printable(entry.path)}: {problem}")
                continue
            pushed.append(item)
            done_bytes += entry.size
            if progress is not None:
                progress(done_bytes, n)
        problems += self._changed(transport, req, pushed)
        for item in pushed:
            try:
                self.store.verify(object_key(key, item.name), item.sha256, item.entry.size)
            except TeardownError as e:
                problems.append(f"{printable(item.entry.path)}: {e}")
        if problems:
            more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
            return self._failed(
                key,
                origin,
                host_key,
                f"{len(problems)} of {len(files)} files not verified: "
                + "; ".join(problems[:3])
                + more,
                files=len(files) - len(problems),
            )
        manifest = {
            "key": key,
            "server": req.server,
            "host": f"{resolved.hostname}:{resolved.port}",
            "user": resolved.user,
            "paths": list(req.paths),
            "excludes": list(req.excludes),
            "started": started,
            "finished": datetime.now(UTC).isoformat(),
            "verified": True,
            "verified_with": f"host:{method}; store checksums",
            "transfer": "push",
            "files": [
                {
                    "path": p.entry.path,
                    "size": p.entry.size,
                    "mode": p.entry.mode & ~0o6000,
                    "mtime": p.entry.mtime,
                    "sha256": p.sha256,
                    "object": p.name,
                }
                for p in pushed
            ],
            "dirs": [
                {"path": e.path, "mode": e.mode, "mtime": e.mtime} for e in entries if e.kind == "d"
            ],
            "symlinks": [{"path": e.path, "target": e.link} for e in entries if e.kind == "l"],
            "refused": accepted,
            "origin": {
                "account": origin.account,
                "resource_id": origin.resource_id,
                "created_at": origin.created_at,
                "spec": origin.spec,
                "host_key": host_key,
            },
            "total_bytes": sum(p.entry.size for p in pushed),
        }
        return self._finish(key, manifest, pushed, origin, host_key, accepted)

    def _push_file(self, transport: Any, key: str, item: _Pushed, timeout: float) -> str | None:
        """Have the host upload one file; None when the store took it, else why not (never the
        URL). An object already there with the host's checksum and size is not sent again."""
        obj = object_key(key, item.name)
        existing = self.store.head(obj)
        if existing is not None and (existing.sha256, existing.size) == (
            item.sha256,
            item.entry.size,
        ):
            return None
        checksum = base64.b64encode(bytes.fromhex(item.sha256)).decode()
        params: dict[str, Any] = {
            "Bucket": self.store.bucket,
            "Key": self.store.full_key(obj),
            "ChecksumAlgorithm": "SHA256",
            "ChecksumSHA256": checksum,
            "Metadata": {META_SHA256: item.sha256},
        }
        headers = {
            "x-amz-sdk-checksum-algorithm": "SHA256",
            "x-amz-checksum-sha256": checksum,
            f"x-amz-meta-{META_SHA256}": item.sha256,
        }
        if self.store.sse != "none":
            params["ServerSideEncryption"] = self.store.sse
            headers["x-amz-server-side-encryption"] = self.store.sse
        if self.store.storage_class is not None:
            params["StorageClass"] = self.store.storage_class
            headers["x-amz-storage-class"] = self.store.storage_class
        url = self.store.client.generate_presigned_url(
            "put_object", Params=params, ExpiresIn=URL_EXPIRES
        )
        config = f"url = {_curl_quote(url)}\n" + "".join(
            f"header = {_curl_quote(f'{k}: {v}')}\n" for k, v in headers.items()
        )
        command = self._remote(
            "curl -sS --fail -g -o /dev/null -X PUT -T "
            + shlex.quote(item.entry.path)
            + " --config -"
        )
        status, _out, err = run_command(transport, command, timeout, stdin=config.encode())
        if status == 0:
            self.pushed_bytes += item.entry.size
            return None
        said = _CURL_EXITS.get(status, "failed")
        detail = _scrubbed(tail(err, 200), url)
        return f"curl exit status {status}: {said}" + (f" ({detail})" if detail else "")

    def _changed(self, transport: Any, req: PullRequest, pushed: list[_Pushed]) -> list[str]:
        """The pushed files whose size or mtime differ now from the listing they were hashed
        by (changed during the push), each naming the file."""
        if not pushed:
            return []
        now = {e.path: e for e in inventory(transport, req)[0] if e.kind == "f"}
        problems: list[str] = []
        for item in pushed:
            e = now.get(item.entry.path)
            if e is None:
                problems.append(f"{printable(item.entry.path)}: gone from the host during the push")
            elif (e.size, e.mtime) != (item.entry.size, item.entry.mtime):
                problems.append(
                    f"{printable(item.entry.path)}: changed on the host during the push"
                )
        return problems

    def _finish(
        self,
        key: str,
        manifest: dict[str, Any],
        pushed: list[_Pushed],
        origin: Origin,
        host_key: str,
        accepted: list[dict[str, str]],
    ) -> Artifact:
        """Write the index and then the manifest (last); the verified artifact."""
        data = json.dumps(manifest, sort_keys=True, indent=1).encode()
        manifest_sha = hashlib.sha256(data).hexdigest()
        objects = [{"name": p.name, "size": p.entry.size, "sha256": p.sha256} for p in pushed]
        objects.append({"name": MANIFEST, "size": len(data), "sha256": manifest_sha})
        index = json.dumps({"objects": objects}, sort_keys=True).encode()
        self.store.put_bytes(object_key(key, INDEX), index)
        stored = self.store.put_bytes(object_key(key, MANIFEST), data)
        if stored.sha256 != manifest_sha:
            raise TeardownError(
                f"{self.store.where(object_key(key, MANIFEST))} was not stored intact"
            )
        ref = self.store.where(object_key(key, MANIFEST))
        total = int(manifest["total_bytes"])
        return Artifact(
            kind="pull",
            ref=ref,
            verified=True,
            survives_destroy=True,
            size=total,
            sha256=hashlib.sha256(index).hexdigest(),
            detail=f"{len(pushed)} files ({total} bytes) pushed by the host to "
            f"{self.store.where(object_key(key, ''))}; checksums confirmed; 0 payload bytes "
            "through the runner",
            origin=origin,
            host_key=host_key,
            files=len(pushed),
            refused=tuple(f"{r['path']}: {r['reason']}" for r in accepted),
        )

    def _failed(
        self, key: str, origin: Origin, host_key: str, detail: str, files: int = 0
    ) -> Artifact:
        return Artifact(
            kind="pull",
            ref=self.store.where(object_key(key, MANIFEST)),
            verified=False,
            survives_destroy=True,
            detail=detail,
            origin=origin,
            host_key=host_key,
            files=files,
        )


def _keep_sigv4_presign(signature_version: Any, **_: Any) -> Any:
    """``choose-signer`` handler: a SigV4 presigned URL stays SigV4 (botocore's default for S3
    presigning is SigV2, which leaves the checksum header unsigned). None: no opinion."""
    if isinstance(signature_version, str) and signature_version in ("s3v4-query", "v4-query"):
        return signature_version
    return None


def _curl_quote(value: str) -> str:
    """A value for curl's config file: double-quoted, with ``\\`` and ``"`` escaped."""
    if any(c in value for c in "\r\n\0"):
        raise TeardownError("a curl setting holds a line break")  # never the value: a URL
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _scrubbed(text: str, url: str) -> str:
    """``text`` without the URL or any other URL (a presigned URL is a secret)."""
    text = text.replace(url, "<url>")
    return printable(_URL.sub("<url>", text))


__all__ = ["MAX_SINGLE_PUT", "PushFetcher"]
