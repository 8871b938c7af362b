"""The Fetcher port over SSH: which host a server is, connect, pull into the local store."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

from teardown.adapters.ssh.connect import (
    SshTarget,
    close_transport,
    fingerprint,
    open_transport,
    resolve,
)
from teardown.adapters.ssh.openssh import link_for
from teardown.adapters.ssh.pull import PullRequest, pull
from teardown.adapters.store import LocalStore, sha256_file
from teardown.adapters.store_check import check_backup
from teardown.core.config import SshConfig
from teardown.core.model import Artifact, Origin, PullSpec, Resource
from teardown.core.planner import expected_origin, pull_spec_digest
from teardown.ports import ProgressCallback


def target_for(
    resource: Resource, config: SshConfig, local_ports: Mapping[str, int] | None = None
) -> SshTarget:
    """Where to reach a server: its public address, else its private one, else its name (which
    ~/.ssh/config may define). Only a sandbox profile's ``local_ports`` (server id -> port on
    127.0.0.1) send a pull to loopback: a tag on a server never does, on any cloud."""
    host, port = resource.name, None
    local = (local_ports or {}).get(resource.cloud_id or "")
    if local is not None:
        host, port = "127.0.0.1", local
    else:
        public = [a.ip for a in resource.addresses if a.public]
        private = [a.ip for a in resource.addresses if not a.public]
        host = (public or private or [resource.name])[0]
    return SshTarget(
        host=host,
        port=port,
        user=config.user,
        identity_files=(config.identity_file,) if config.identity_file else (),
        known_hosts=config.known_hosts,
        auto_add=config.auto_add_host_keys,
        jump=config.jump,
        use_ssh_config=config.use_ssh_config,
        connect_timeout=config.connect_timeout,
    )


class SshFetcher:
    """Implements ``teardown.ports.Fetcher`` with paramiko and a ``LocalStore``.

    Example::

        fetcher = SshFetcher(LocalStore(Path(".teardown/backups")), config.ssh)
        artifact = fetcher.pull(server, spec, key, progress=None)
    """

    def __init__(
        self,
        store: LocalStore,
        config: SshConfig,
        env: Mapping[str, str] | None = None,
        local_ports: Mapping[str, int] | None = None,
    ) -> None:
        self.store = store
        self.config = config
        # Only what ssh.pass_env allows may ever reach a host.
        self._env = {k: v for k, v in (env or {}).items() if k in config.pass_env}
        self._local_ports = dict(local_ports or {})

    def request_for(self, resource: Resource, spec: PullSpec) -> PullRequest:
        """What a pull of ``resource`` by the rule ``spec`` asks the host, with this fetcher's
        SSH settings and the environment values it may pass."""
        return PullRequest(
            server=resource.name,
            paths=spec.paths,
            excludes=spec.excludes,
            before=spec.before,
            after=spec.after,
            verify_with=self.config.verify_with,
            method=spec.method.value,
            command_timeout=self.config.command_timeout,
            env=self._env,
            allow_empty=spec.allow_empty,
            accept_refused=spec.accept_refused,
            rule=spec.name,
            streams=self.config.streams,
            client=self.config.client,
        )

    def pull(
        self, resource: Resource, spec: PullSpec, key: str, progress: ProgressCallback | None
    ) -> Artifact:
        target = target_for(resource, self.config, self._local_ports)
        resolved = resolve(target)
        request = self.request_for(resource, spec)
        transport = open_transport(target)
        host_key = fingerprint(transport.get_remote_server_key())
        origin = origin_of(resource, spec)
        request = replace(
            request,
            origin={
                "account": origin.account,
                "resource_id": origin.resource_id,
                "created_at": origin.created_at,
                "spec": origin.spec,
                "host_key": host_key,
            },
        )
        try:
            link = link_for(
                resolved.hostname,
                resolved.port,
                resolved.user,
                resolved.identity_files,
                transport,
                connect_timeout=target.connect_timeout,
                jump=resolved.jump,
                passphrase=target.passphrase,
            )
            report = pull(
                transport,
                self.store.pull_dir(key),
                request,
                progress,
                host_label=f"{resolved.hostname}:{resolved.port}",
                user=resolved.user,
                link=link,
            )
        finally:
            close_transport(transport)
        return Artifact(
            kind="pull",
            ref=report.manifest_path or str(self.store.pull_dir(key).dir),
            verified=report.verified,
            survives_destroy=True,
            size=report.total_bytes,
            sha256=report.manifest_sha256,
            detail=report.detail,
            origin=origin,
            host_key=host_key,
            files=report.files,
            refused=tuple(f"{r['path']}: {r['reason']}" for r in report.accepted_refusals),
        )

    def find(self, resource: Resource, spec: PullSpec, key: str) -> Artifact | None:
        pd = self.store.pull_dir(key)
        manifest = pd.manifest()
        if manifest is None or not manifest.get("verified"):
            return None
        files = manifest.get("files", [])
        return Artifact(
            kind="pull",
            ref=str(pd.manifest_path),
            verified=True,
            survives_destroy=True,
            size=int(manifest.get("total_bytes", 0)),
            sha256=sha256_file(pd.manifest_path),
            detail=f"{len(files)} files verified earlier",
            origin=origin_of(resource, spec),
            host_key=str((manifest.get("origin") or {}).get("host_key", "")),
            files=len(files),
            refused=tuple(
                f"{r.get('path')}: {r.get('reason')}" for r in manifest.get("refused", [])
            ),
        )

    def check(self, resource: Resource, spec: PullSpec, artifact: Artifact) -> str | None:
        """The stored copy still exists and matches its checksums (``check_backup``: all files
        up to 1 GiB, else segment sizes and a rolling sample). A damaged copy is moved aside
        (``<key>.damaged-N``, kept for inspection) so that the next pull starts afresh."""
        path = Path(artifact.ref)
        problem = check_backup(path, artifact.sha256, seed=str(time.time_ns()))
        if problem is not None:
            directory = path.parent if path.name == "manifest.json" else path
            if directory.is_dir():
                n = 1
                while directory.with_name(f"{directory.name}.damaged-{n}").exists():
                    n += 1
                directory.rename(directory.with_name(f"{directory.name}.damaged-{n}"))
        return problem


def origin_of(resource: Resource, spec: PullSpec) -> Origin:
    """What a pull of ``resource`` with ``spec`` is a copy of (the machine reached at its
    address; its host key is recorded beside)."""
    return expected_origin(resource, pull_spec_digest(spec))


def with_known_hosts(config: SshConfig, extra: Path) -> SshConfig:
    """``config`` also trusting the host keys in ``extra`` (e.g. a sandbox's known_hosts)."""
    return replace(config, known_hosts=(*config.known_hosts, str(extra)))
