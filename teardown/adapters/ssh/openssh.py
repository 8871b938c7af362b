"""Bulk streams through OpenSSH's own client (``ssh``), pinned to the host key paramiko verified.

A pull's inventory, commands and host checksums go over the paramiko transport. Its big ``tar``
streams can go through a separate ``ssh`` process instead: decryption then runs in C in another
process, beside the Python that parses, hashes and writes. Measured with ``scripts/bench_pull``
(docs/ssh-pull.md): paramiko costs about 1.4 CPU seconds per GiB received before any hashing or
writing, ``ssh`` about 0.9 in its own process, which on two cores is the difference between
0.65x and 1.0x rsync's speed.

Nothing is trusted less than over paramiko:

- the host key: ``ssh`` gets a known_hosts file of its own holding exactly the key the paramiko
  transport already verified (``HostKeyAlias``, ``StrictHostKeyChecking=yes``, no global file,
  no updates), so it connects only to that same host;
- ``-F /dev/null``: only what teardown resolved applies (host, port, user, identity files), as
  for paramiko; ``BatchMode=yes``: it never prompts; public keys only;
- the command's names travel on its standard input, never on a command line.

``ssh`` that cannot connect or log in (no usable key without a prompt, a key it refuses, a host
key that differs, no common cipher) exits 255 before sending a byte: the caller then streams over
the verified paramiko transport (``OpensshUnavailable``). After the first byte, a failure is a
dropped connection (``EOFError``), kept for a resumed pull like any other.
"""

from __future__ import annotations

import contextlib
import os
import select
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PIN_ALIAS = "teardown-pinned"
"""The name the pinned host key is filed under (``HostKeyAlias``)."""
CIPHERS = (
    "aes128-gcm@openssh.com,aes256-gcm@openssh.com,chacha20-poly1305@openssh.com,"
    "aes128-ctr,aes256-ctr"
)
"""AES-GCM first: with AES-NI it costs about half of ChaCha20-Poly1305 here (docs/ssh-pull.md)."""
KEX = (
    "curve25519-sha256,curve25519-sha256@libssh.org,ecdh-sha2-nistp256,ecdh-sha2-nistp384,"
    "ecdh-sha2-nistp521,diffie-hellman-group16-sha512,diffie-hellman-group14-sha256"
)
"""The key exchanges paramiko offers (the pull's other connection): OpenSSH 9's default
post-quantum hybrid costs about 90 ms more per connection here (0.22 s against 0.13 s)."""
READ = 1 << 20
"""Pipe reads of up to 1 MiB, into one reused buffer."""
PIPE_SIZE = 1 << 20
"""The pipe from ``ssh`` is enlarged to this (Linux ``F_SETPIPE_SZ``; 64 KiB otherwise), so
that ``ssh`` keeps receiving while a chunk is hashed and written."""
_F_SETPIPE_SZ = 1031
STDERR_KEEP = 64 << 10


class OpensshUnavailable(Exception):
    """``ssh`` ended before sending anything: it could not connect, or log in, or the host
    offered another key. The message is ``ssh``'s own last line (never a secret: it is not
    given any)."""


@dataclass(frozen=True)
class OpensshLink:
    """How to reach one host with ``ssh``: what paramiko resolved and verified."""

    program: str
    hostname: str
    port: int
    user: str
    identity_files: tuple[str, ...]
    host_key: str
    """``<type> <base64>``: the key the paramiko transport verified."""
    connect_timeout: float


def host_key_line(transport: Any) -> str:
    """``<type> <base64>`` of the key the (verified) paramiko transport's host offered."""
    key = transport.get_remote_server_key()
    return f"{key.get_name()} {key.get_base64()}"


def link_for(
    hostname: str,
    port: int,
    user: str,
    identity_files: tuple[str, ...],
    transport: Any,
    *,
    connect_timeout: float,
    jump: str | None = None,
    passphrase: str | None = None,
) -> OpensshLink | None:
    """An ``OpensshLink`` to the host behind the verified ``transport``, or None when ``ssh``
    cannot take over its streams: no ``ssh`` on PATH, a jump host (its key could not be pinned
    the same way), or a key that needs a passphrase (``ssh`` would have to prompt)."""
    program = shutil.which("ssh")
    if program is None or jump or passphrase or hostname.startswith("-") or user.startswith("-"):
        return None
    files = tuple(os.path.expanduser(f) for f in identity_files)
    if not files:
        for name in ("id_ed25519", "id_ecdsa", "id_rsa"):  # as paramiko's defaults (connect.py)
            p = Path(os.path.expanduser(f"~/.ssh/{name}"))
            if p.exists():
                files += (str(p),)
    return OpensshLink(
        program, hostname, port, user, files, host_key_line(transport), connect_timeout
    )


def _algorithms(key_type: str) -> str:
    """The host key algorithms that use a key of ``key_type``."""
    if key_type == "ssh-rsa":
        return "rsa-sha2-512,rsa-sha2-256,ssh-rsa"
    return key_type


def argv(link: OpensshLink, pin_file: Path, command: str) -> list[str]:
    """The ``ssh`` command line that runs ``command`` on the host (see the module docstring)."""
    options = {
        "BatchMode": "yes",
        "StrictHostKeyChecking": "yes",
        "UserKnownHostsFile": str(pin_file),
        "GlobalKnownHostsFile": "/dev/null",
        "HostKeyAlias": PIN_ALIAS,
        "HostKeyAlgorithms": _algorithms(link.host_key.split(" ", 1)[0]),
        "CheckHostIP": "no",
        "UpdateHostKeys": "no",
        "Ciphers": CIPHERS,
        "KexAlgorithms": KEX,
        "ConnectTimeout": str(max(1, round(link.connect_timeout))),
        "ServerAliveInterval": "15",
        "ServerAliveCountMax": "4",
        "PreferredAuthentications": "publickey",
        "PasswordAuthentication": "no",
        "KbdInteractiveAuthentication": "no",
        "IdentitiesOnly": "yes" if link.identity_files else "no",
        "ControlMaster": "no",
        "ControlPath": "none",
        "ClearAllForwardings": "yes",
        "ForwardAgent": "no",
        "RequestTTY": "no",
        "LogLevel": "ERROR",
    }
    args = [link.program, "-F", "/dev/null", "-T", "-x"]
    for name, value in options.items():
        args += ["-o", f"{name}={value}"]
    for f in link.identity_files:
        args += ["-i", f]
    return [*args, "-p", str(link.port), "-l", link.user, "--", link.hostname, command]


def _feed_stdin(pipe: Any, data: bytes) -> None:
    with contextlib.suppress(OSError):  # ssh went away: its exit status says why
        try:
            pipe.write(data)
        finally:
            pipe.close()


class Session:
    """One ``ssh`` process running ``command`` on the host. Started at once (its connection
    and login proceed while the caller lists what to send), then given its standard input
    (``send``) and read (``read``); ``close`` ends it and removes its files, whatever
    happened. Raises ``OpensshUnavailable`` from ``read`` when ``ssh`` failed before any
    output (see the module docstring)."""

    def __init__(self, link: OpensshLink, command: str) -> None:
        self._folder = Path(tempfile.mkdtemp(prefix="teardown-ssh-"))  # 0700
        pin = self._folder / "known_hosts"
        pin.write_text(f"{PIN_ALIAS} {link.host_key}\n")
        self._err = tempfile.TemporaryFile()  # noqa: SIM115 (closed by close())
        self._writer: threading.Thread | None = None
        r, w = os.pipe()
        with contextlib.suppress(OSError, ImportError):
            import fcntl

            fcntl.fcntl(r, _F_SETPIPE_SZ, PIPE_SIZE)
        self._out = r
        try:
            self._proc: subprocess.Popen[bytes] | None = subprocess.Popen(
                argv(link, pin, command),
                stdin=subprocess.PIPE,
                stdout=w,
                stderr=self._err,
                env={**os.environ, "SSH_ASKPASS_REQUIRE": "never"},
                start_new_session=True,  # a Ctrl-C reaches teardown, which ends ssh itself
            )
            self._why = ""
        except OSError as e:
            self._proc = None
            self._why = f"cannot start ssh: {e.strerror}"
        finally:
            os.close(w)

    def send(self, data: bytes) -> None:
        """Write ``data`` to the command's standard input, then close it (in a thread: the
        command may answer before it has read everything)."""
        if self._proc is None or self._writer is not None:
            return
        self._writer = threading.Thread(
            target=_feed_stdin, args=(self._proc.stdin, data), daemon=True
        )
        self._writer.start()

    def read(self, feed: Callable[[memoryview], None], timeout: float) -> tuple[int, str]:
        """Pass the output to ``feed`` as it arrives (each slice valid only during the call)
        until it ends; return (exit status, last line of standard error). ``TimeoutError``
        when nothing arrived for ``timeout`` seconds, ``EOFError`` when ``ssh`` failed after
        some output."""
        if self._proc is None:
            raise OpensshUnavailable(self._why)
        got = 0
        buf = bytearray(READ)
        view = memoryview(buf)
        poller = select.poll()
        poller.register(self._out, select.POLLIN)
        while True:
            if not poller.poll(timeout * 1000):
                raise TimeoutError(f"no data from the host for {timeout:.0f} s")
            n = os.readv(self._out, [buf])
            if n == 0:
                break
            got += n
            feed(view[:n])
        status = self._proc.wait(timeout=timeout)
        self._err.seek(0)
        lines = self._err.read().decode("utf-8", "replace").strip().splitlines()
        reason = lines[-1][:300] if lines else ""
        if status == 255 and got == 0:
            raise OpensshUnavailable(reason or "ssh exited with status 255")
        if status == 255:
            raise EOFError(f"connection closed before the command finished ({reason})")
        return status, reason

    def close(self) -> None:
        """End ``ssh`` if still running and release everything; safe to call again (a second
        ``os.close`` of the pipe could close a descriptor reused by anything else)."""
        if self._proc is not None:
            if self._proc.poll() is None:
                self._proc.kill()
            self._proc.wait()
            self._proc = None
        if self._writer is not None:
            self._writer.join(timeout=5)
            self._writer = None
        if self._out >= 0:
            os.close(self._out)
            self._out = -1
        self._err.close()
        shutil.rmtree(self._folder, ignore_errors=True)


def run(
    link: OpensshLink,
    command: str,
    stdin: bytes,
    feed: Callable[[memoryview], None],
    timeout: float,
    session: Session | None = None,
) -> tuple[int, str]:
    """Run ``command`` on the host through ``ssh`` (or in ``session``, started earlier with
    it), ``stdin`` on its standard input, and pass its output to ``feed``: see ``Session``.
    The process is always gone when this returns."""
    own = session if session is not None else Session(link, command)
    try:
        own.send(stdin)
        return own.read(feed, timeout)
    finally:
        own.close()
