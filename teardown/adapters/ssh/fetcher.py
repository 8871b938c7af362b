"""The Fetcher port over SSH: which host a server is, connect, pull into the local store."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

from teardown.adapters.ssh.connect import SshTarget, close_transport, open_transport, resolve
from teardown.adapters.ssh.pull import PullRequest, pull
from teardown.adapters.store import LocalStore, sha256_file
from teardown.core.config import SshConfig
from teardown.core.model import Artifact, PullSpec, Resource
from teardown.ports import ProgressCallback

SANDBOX_PORT_TAG = "sandbox.ssh_port"


def target_for(resource: Resource, config: SshConfig) -> SshTarget:
    """Where to reach a server: a sandbox server's advertised port on 127.0.0.1, else its public
    address, else its private one, else its name (which ~/.ssh/config may define)."""
    host, port = resource.name, None
    sandbox_port = resource.tag(SANDBOX_PORT_TAG)
    if sandbox_port and sandbox_port.isdigit() and int(sandbox_port) > 0:
        host, port = "127.0.0.1", int(sandbox_port)
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
        self, store: LocalStore, config: SshConfig, env: Mapping[str, str] | None = None
    ) -> None:
        self.store = store
        self.config = config
        self._env = dict(env or {})

    def pull(
        self, resource: Resource, spec: PullSpec, key: str, progress: ProgressCallback | None
    ) -> Artifact:
        target = target_for(resource, self.config)
        resolved = resolve(target)
        request = PullRequest(
            server=resource.name,
            paths=spec.paths,
            excludes=spec.excludes,
            before=spec.before,
            after=spec.after,
            verify_with=self.config.verify_with,
            method=spec.method.value,
            command_timeout=self.config.command_timeout,
            env=self._env,
        )
        transport = open_transport(target)
        try:
            report = pull(
                transport,
                self.store.pull_dir(key),
                request,
                progress,
                host_label=f"{resolved.hostname}:{resolved.port}",
                user=resolved.user,
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
        )

    def find(self, resource: Resource, spec: PullSpec, key: str) -> Artifact | None:
        pd = self.store.pull_dir(key)
        manifest = pd.manifest()
        if manifest is None or not manifest.get("verified"):
            return None
        return Artifact(
            kind="pull",
            ref=str(pd.manifest_path),
            verified=True,
            survives_destroy=True,
            size=int(manifest.get("total_bytes", 0)),
            sha256=sha256_file(pd.manifest_path),
            detail=f"{len(manifest.get('files', []))} files verified earlier",
        )


def with_known_hosts(config: SshConfig, extra: Path) -> SshConfig:
    """``config`` also trusting the host keys in ``extra`` (e.g. a sandbox's known_hosts)."""
    return replace(config, known_hosts=(*config.known_hosts, str(extra)))
