"""The values a pull works with: what it is asked to fetch (``PullRequest``), each entry the
host lists (``Entry``), and what it reports (``PullReport``). See ``teardown.adapters.ssh.pull``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

Progress = Callable[[int, int], None]
"""Called with (file bytes received so far, files received so far)."""


@dataclass(frozen=True)
class PullRequest:
    server: str
    """A label for the manifest (server name or id)."""
    paths: tuple[str, ...]
    excludes: tuple[str, ...] = ()
    before: tuple[str, ...] = ()
    after: tuple[str, ...] = ()
    verify_with: str = "auto"
    """``auto`` (openssl, else sha256sum, else SFTP re-read), ``openssl``, ``sha256sum``,
    ``sftp``."""
    method: str = "tar"
    """``tar`` (streams over exec), or ``sftp``; SFTP is also used when the host refuses
    exec."""
    streams: int = 2
    """At most this many ``tar`` streams at once, each with at least ``stream_min_bytes`` of
    files (docs/ssh-pull.md)."""
    stream_min_bytes: int = 64 << 20
    client: str = "auto"
    """What carries the ``tar`` streams: ``auto`` (OpenSSH's ``ssh`` when the pull is given a
    link to the host and ``ssh`` logs in, else paramiko) or ``paramiko``."""
    command_timeout: float = 600.0
    env: Mapping[str, str] = field(default_factory=dict, repr=False)
    """Values for ``${env:NAME}`` in hook commands: secrets stay out of config, plan and journal."""
    allow_empty: bool = True
    """A pull that verifies zero files still counts (the runner passes the rule's setting,
    false by default there)."""
    accept_refused: tuple[str, ...] | None = None
    """Globs on the path of refused entries that do not fail the pull; None accepts every
    refusal (the default for direct calls; the runner passes the rule's list)."""
    rule: str = ""
    """The pull rule's name, for messages."""
    origin: Mapping[str, str] = field(default_factory=dict)
    """What this pull is a copy of (account, resource id, creation time, settings digest, host
    key), written into the manifest."""


@dataclass
class PullReport:
    verified: bool
    detail: str
    files: int = 0
    total_bytes: int = 0
    sent_bytes: int = 0
    """File bytes received in this pull (a resumed pull receives only what was missing)."""
    refused: list[dict[str, str]] = field(default_factory=list)
    manifest_sha256: str | None = None
    manifest_path: str | None = None
    accepted_refusals: list[dict[str, str]] = field(default_factory=list)
    """Refused entries the rule's ``accept_refused`` lists (recorded, not failing)."""
    streamed: str = ""
    """How the files travelled: ``paramiko x1``, ``openssh x2``, ``sftp``."""


@dataclass(frozen=True)
class Entry:
    """One entry of the host's listing."""

    path: str
    kind: str
    """``find``'s ``%y`` letter: ``f`` file, ``d`` directory, ``l`` symlink, others refused."""
    mode: int
    size: int
    mtime: float
    link: str = ""
