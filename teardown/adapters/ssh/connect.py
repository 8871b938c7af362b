"""Opening SSH connections with paramiko: strict host keys, ~/.ssh/config, jump hosts, the agent.

Every paramiko or socket failure is translated here, once, into ``TransientError`` (worth a retry:
resets, timeouts, refused connections) or ``PermanentError`` (host key changed or unknown,
authentication refused). Messages never contain passwords or passphrases.
"""

from __future__ import annotations

import base64
import contextlib
import errno
import hashlib
import os
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

import paramiko  # type: ignore[import-untyped, unused-ignore]

from teardown.core.errors import PermanentError, TransientError

PREFERRED_CIPHERS = (
    "aes128-gcm@openssh.com",
    "aes256-gcm@openssh.com",
    "aes128-ctr",
    "aes256-ctr",
)
"""paramiko lists GCM last; it is about 35% faster here (measured with scripts/bench_pull)."""
WINDOW = 4 << 20
"""2-8 MiB windows perform alike on loopback; 32 MiB and more get slower (pitfall 3)."""
NO_CLIENT_REKEY = 1 << 60
"""paramiko's own rekey after 512 MiB can deadlock with a closing channel (paramiko #822,
pitfall 1): leave rekeying to the server (OpenSSH does it per its RekeyLimit)."""

T = TypeVar("T")


@dataclass(frozen=True)
class SshTarget:
    """Where and how to connect. ``host`` may be an alias from ~/.ssh/config."""

    host: str
    port: int | None = None
    user: str | None = None
    identity_files: tuple[str, ...] = ()
    known_hosts: tuple[str, ...] = ()
    """Extra known_hosts files, read besides ~/.ssh/known_hosts."""
    auto_add: bool = False
    """Accept and record unknown host keys (never changed ones). Off unless configured."""
    jump: str | None = None
    """A ProxyJump spec ``[user@]host[:port]``; ~/.ssh/config's ProxyJump applies otherwise."""
    use_ssh_config: bool = True
    ssh_config: str = "~/.ssh/config"
    connect_timeout: float = 15.0
    passphrase: str | None = field(default=None, repr=False)


def fingerprint(key: Any) -> str:
    """OpenSSH-style ``SHA256:...`` fingerprint of a paramiko key."""
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def _known_name(host: str, port: int) -> str:
    return host if port == 22 else f"[{host}]:{port}"


def translate(e: BaseException, where: str) -> TransientError | PermanentError:
    """The one mapping from socket/paramiko failures to teardown's two error kinds."""
    if isinstance(e, TransientError | PermanentError):
        return e
    if isinstance(e, paramiko.AuthenticationException):
        return PermanentError(f"{where}: authentication refused", hint="check user and keys")
    if isinstance(e, paramiko.PasswordRequiredException):
        return PermanentError(f"{where}: the private key needs a passphrase")
    if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT):
        return PermanentError(
            f"{where}: the backup store is full ({e.strerror})", hint="free space and resume"
        )
    if isinstance(e, socket.gaierror):
        return PermanentError(f"{where}: cannot resolve host ({e.strerror})")
    if isinstance(e, ConnectionRefusedError | ConnectionResetError | TimeoutError | EOFError):
        return TransientError(f"{where}: {type(e).__name__}: {e}")
    if isinstance(e, OSError | paramiko.SSHException):
        return TransientError(f"{where}: {type(e).__name__}: {e}")
    return PermanentError(f"{where}: {type(e).__name__}: {e}")


@dataclass(frozen=True)
class Resolved:
    hostname: str
    port: int
    user: str
    identity_files: tuple[str, ...]
    jump: str | None
    label: str
    """``user@host:port`` for messages."""


def resolve(target: SshTarget) -> Resolved:
    """Apply ~/.ssh/config (Host, HostName, Port, User, IdentityFile, ProxyJump) under the
    explicit settings."""
    options: dict[str, Any] = {}
    path = Path(os.path.expanduser(target.ssh_config))
    if target.use_ssh_config and path.exists():
        options = dict(paramiko.SSHConfig.from_path(str(path)).lookup(target.host))
    hostname = str(options.get("hostname", target.host))
    port = target.port or int(options.get("port", 22))
    user = target.user or str(options.get("user") or os.environ.get("USER") or "root")
    identities = target.identity_files or tuple(
        os.path.expanduser(p) for p in options.get("identityfile", [])
    )
    jump = target.jump or options.get("proxyjump")
    if jump in ("none", ""):
        jump = None
    return Resolved(hostname, port, user, identities, jump, f"{user}@{hostname}:{port}")


def _host_keys(target: SshTarget) -> tuple[paramiko.HostKeys, Path | None]:
    keys = paramiko.HostKeys()
    files = [Path(os.path.expanduser("~/.ssh/known_hosts"))]
    files += [Path(os.path.expanduser(p)) for p in target.known_hosts]
    for f in files:
        if f.exists():
            keys.load(str(f))
    writable = Path(os.path.expanduser(target.known_hosts[0])) if target.known_hosts else files[0]
    return keys, writable


def _check_host_key(transport: Any, target: SshTarget, r: Resolved) -> None:
    offered = transport.get_remote_server_key()
    keys, writable = _host_keys(target)
    name = _known_name(r.hostname, r.port)
    known = keys.lookup(name)
    if known is not None and offered.get_name() in known:
        if known[offered.get_name()] == offered:
            return
        raise PermanentError(
            f"host key for {name} has CHANGED: offered {offered.get_name()} "
            f"{fingerprint(offered)}; refusing to connect (if the change is expected, remove "
            f"the old key from known_hosts)",
            code="host_key_changed",
        )
    if known is not None:
        raise PermanentError(
            f"host {name} offered a {offered.get_name()} key {fingerprint(offered)} but "
            "known_hosts holds another key type for it; refusing to connect",
            code="host_key_changed",
        )
    if not target.auto_add:
        raise PermanentError(
            f"host {name} is not in known_hosts (offered {offered.get_name()} "
            f"{fingerprint(offered)}); add it, or set ssh.auto_add_host_keys = true",
            code="host_key_unknown",
        )
    if writable is not None:
        writable.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        with open(writable, "a") as f:
            f.write(f"{name} {offered.get_name()} {offered.get_base64()}\n")


def _auth(transport: Any, target: SshTarget, r: Resolved) -> None:
    keys: list[Any] = []
    with contextlib.suppress(paramiko.SSHException):  # no agent, or it refused: use files
        keys.extend(paramiko.Agent().get_keys())
    files = list(r.identity_files)
    if not files:
        for name in ("id_ed25519", "id_ecdsa", "id_rsa"):
            p = Path(os.path.expanduser(f"~/.ssh/{name}"))
            if p.exists():
                files.append(str(p))
    for f in files:
        try:
            keys.append(_load_key(f, target.passphrase))
        except PermanentError:
            raise
        except (OSError, paramiko.SSHException) as e:
            raise PermanentError(f"cannot read identity file {f}: {type(e).__name__}") from None
    for key in keys:
        try:
            transport.auth_publickey(r.user, key)
        except paramiko.AuthenticationException:
            continue
        if transport.is_authenticated():
            return
    raise PermanentError(f"{r.label}: authentication refused for every key offered")


def _load_key(path: str, passphrase: str | None) -> Any:
    for cls in (paramiko.Ed25519Key, paramiko.ECDSAKey, paramiko.RSAKey):
        try:
            return cls.from_private_key_file(path, password=passphrase)
        except paramiko.PasswordRequiredException:
            raise PermanentError(f"identity file {path} needs a passphrase") from None
        except paramiko.SSHException:
            continue
    raise PermanentError(f"identity file {path}: not a supported private key")


def _parse_jump(spec: str, base: SshTarget) -> SshTarget:
    first = spec.split(",")[0]
    user: str | None = None
    if "@" in first:
        user, first = first.split("@", 1)
    port: int | None = None
    if first.count(":") == 1:
        first, p = first.split(":")
        port = int(p)
    # The jump host is checked against the same known_hosts and offered the same keys;
    # ~/.ssh/config may say more about it (its Host entry applies as for any host).
    return replace(base, host=first, port=port, user=user, jump=None)


def open_transport(target: SshTarget, sock: Any = None) -> Any:
    """A connected, host-checked, authenticated paramiko Transport (jump hosts included)."""
    r = resolve(target)
    jump_transport = None
    try:
        if sock is None and r.jump:
            jump_transport = open_transport(_parse_jump(r.jump, target))
            sock = jump_transport.open_channel(
                "direct-tcpip", (r.hostname, r.port), ("127.0.0.1", 0)
            )
        if sock is None:
            sock = socket.create_connection((r.hostname, r.port), timeout=target.connect_timeout)
        transport = paramiko.Transport(sock, default_window_size=WINDOW)
        transport.packetizer.REKEY_BYTES = NO_CLIENT_REKEY
        transport.packetizer.REKEY_PACKETS = NO_CLIENT_REKEY
        opts = transport.get_security_options()
        supported = set(opts.ciphers)
        opts.ciphers = tuple(c for c in PREFERRED_CIPHERS if c in supported) + tuple(
            c for c in opts.ciphers if c not in PREFERRED_CIPHERS
        )
        transport.start_client(timeout=target.connect_timeout)
        _check_host_key(transport, target, r)
        _auth(transport, target, r)
    except BaseException as e:
        if jump_transport is not None:
            jump_transport.close()
        raise translate(e, r.label) from None
    transport.set_keepalive(30)
    if jump_transport is not None:
        transport._teardown_jump = jump_transport  # closed together (see close_transport)
    return transport


def close_transport(transport: Any) -> None:
    transport.close()
    jump = getattr(transport, "_teardown_jump", None)
    if jump is not None:
        jump.close()


@contextmanager
def connected(target: SshTarget) -> Iterator[Any]:
    transport = open_transport(target)
    try:
        yield transport
    finally:
        close_transport(transport)


def guarded(where: str, fn: Callable[[], T]) -> T:
    """Run ``fn`` translating socket/paramiko errors (for calls after connecting)."""
    try:
        return fn()
    except (OSError, EOFError, paramiko.SSHException) as e:
        raise translate(e, where) from None
