"""The sandbox's SSH data plane: one real SSH server per sandbox cloud server, on loopback.

Each sandbox server gets an asyncssh server on 127.0.0.1 with its own port and a stable host key,
so that teardown (paramiko) and the OpenSSH client can log in and pull data exactly as they would
from a real host. Commands run through ``/bin/sh -c`` on this machine with the server's data root
as working directory, and SFTP is served with ``/`` as its root so absolute paths behave as on a
real host (relative paths start at the data root, which is also ``$HOME``).

All servers of a fleet share one asyncio loop running in a background thread of the current
process. Children are ``subprocess.Popen`` processes whose pipes are handed to asyncssh's
``redirect``: redirecting asyncio subprocess streams was measured to reset large transfers
mid-stream, while pipe file objects streamed hundreds of MB intact. Waiting for children happens
in worker threads, off the event loop.

Fault injection: ``SshServerSpec.drop_after_bytes`` aborts the whole TCP connection once that many
bytes of a session's output (exec stdout or SFTP read data) have been sent, so that clients see a
connection reset in the middle of a stream.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import os
import signal
import subprocess
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import asyncssh

__all__ = [
    "SshFleet",
    "SshKeys",
    "SshServerSpec",
    "ensure_host_key",
    "ensure_keys",
    "write_known_hosts",
]

log = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"

# Read size of the fault-injection pump. Large reads keep Python overhead per byte low.
_PUMP_CHUNK = 256 * 1024
# How long stop() waits for connections and sessions to wind down before giving up on them.
_STOP_TIMEOUT = 10.0
# How long start() waits for all listeners to be bound.
_START_TIMEOUT = 30.0


@dataclass(frozen=True)
class SshServerSpec:
    """One SSH server of the fleet, standing in for one sandbox cloud server."""

    server_id: str  # cloud id of the sandbox server
    host_key: Path  # private host key file (OpenSSH format); created if missing
    root: Path  # the server's data root on local disk (cwd and $HOME for commands)
    port: int = 0  # 0 = pick a free port on 127.0.0.1
    # Fault injection: abort the connection after this many bytes of output were sent in one
    # session (exec stdout or SFTP read data).
    drop_after_bytes: int | None = None
    # An SFTP-only account: exec and shell requests are answered with an error, as on hosts
    # that force ``internal-sftp``.
    exec_allowed: bool = True


@dataclass(frozen=True)
class SshKeys:
    """The client key pair the sandbox accepts, and every public key accepted for login."""

    client_key: Path  # ed25519 private key, no passphrase, mode 0600; public key beside it (.pub)
    authorized: tuple[str, ...]  # public keys (OpenSSH one-line format) accepted for login


# --- keys and known_hosts ---------------------------------------------------------------------


def _public_line(key: asyncssh.SSHKey) -> str:
    """``ssh-ed25519 AAAA...`` without a comment: the form known_hosts and authorized keys use."""
    algorithm, blob = key.export_public_key("openssh").decode("ascii").split()[:2]
    return f"{algorithm} {blob}"


def _write_atomically(path: Path, data: bytes, *, replace: bool) -> None:
    """Write ``data`` to ``path`` via a 0600 temp file in the same directory.

    With ``replace=False`` the file is only created if absent (``os.link`` fails when the target
    exists), so two processes racing to create a key both end up using the same one.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as f:  # mkstemp creates the file with mode 0600
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if replace:
            os.replace(tmp, path)
        else:
            with contextlib.suppress(FileExistsError):
                os.link(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _ensure_key_pair(path: Path) -> asyncssh.SSHKey:
    """Load the ed25519 private key at ``path``, creating it (and ``path.pub``) if missing."""
    if not path.exists():
        new_key = asyncssh.generate_private_key("ssh-ed25519")
        _write_atomically(path, new_key.export_private_key("openssh"), replace=False)
    key = asyncssh.read_private_key(path)
    pub = path.with_name(path.name + ".pub")
    line = (_public_line(key) + "\n").encode("ascii")
    if not pub.exists() or pub.read_bytes() != line:
        _write_atomically(pub, line, replace=True)
    return key


def ensure_host_key(path: Path) -> str:
    """Create an ed25519 host key at ``path`` if missing (mode 0600); return its public key line.

    The same file always yields the same key, so a restarted server keeps its identity and the
    known_hosts file stays valid.
    """
    return _public_line(_ensure_key_pair(path))


def ensure_keys(ssh_dir: Path) -> SshKeys:
    """Create (once; stable across restarts) the client key pair under ``ssh_dir``; return it.

    Idempotent: an existing ``ssh_dir/client_key`` is reused.
    """
    ssh_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(ssh_dir, 0o700)
    client_key = ssh_dir / "client_key"
    key = _ensure_key_pair(client_key)
    return SshKeys(client_key=client_key, authorized=(_public_line(key),))


def write_known_hosts(path: Path, entries: Sequence[tuple[int, str]]) -> None:
    """Write an OpenSSH known_hosts file, atomically (temp + rename), mode 0600.

    One line per ``(port, host public key line)``: ``[127.0.0.1]:PORT ssh-ed25519 AAAA...``.
    """
    lines = []
    for port, key_line in entries:
        fields = key_line.split()
        if len(fields) < 2:
            raise ValueError(f"not an OpenSSH public key line: {key_line!r}")
        lines.append(f"[{LOOPBACK}]:{port} {fields[0]} {fields[1]}\n")
    _write_atomically(path, "".join(lines).encode("ascii"), replace=True)


# --- the servers ------------------------------------------------------------------------------


def _parse_authorized(lines: Sequence[str]) -> frozenset[bytes]:
    """The public key blobs of the accepted keys, for comparison with what clients offer."""
    return frozenset(asyncssh.import_public_key(line).public_data for line in lines)


class _Auth(asyncssh.SSHServer):
    """Per-connection policy: public-key auth only, one username, the authorized keys only."""

    def __init__(self, fleet: SshFleet, server_id: str) -> None:
        self._fleet = fleet
        self._server_id = server_id
        self._conn: asyncssh.SSHServerConnection | None = None

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self._conn = conn
        self._fleet._connections.add(conn)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._conn is not None:
            self._fleet._connections.discard(self._conn)
        if exc is not None:
            log.debug("sandbox ssh %s: connection lost: %s", self._server_id, exc)

    def begin_auth(self, username: str) -> bool:
        return True  # always require authentication

    def password_auth_supported(self) -> bool:
        return False

    def kbdint_auth_supported(self) -> bool:
        return False

    def host_based_auth_supported(self) -> bool:
        return False

    def public_key_auth_supported(self) -> bool:
        return True

    def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
        # asyncssh verifies the signature itself; this only decides whether the key may log in.
        return username == self._fleet._username and key.public_data in self._fleet._authorized


class _SftpServer(asyncssh.SFTPServer):
    """SFTP rooted at ``/`` like a real host, with relative paths starting at the data root."""

    def __init__(self, chan: asyncssh.SSHServerChannel[bytes], spec: SshServerSpec) -> None:
        super().__init__(chan)
        self._home = os.fsencode(spec.root.resolve())
        self._limit = spec.drop_after_bytes
        self._sent = 0

    def map_path(self, path: bytes) -> bytes:
        if path.startswith(b"/"):
            return path
        return os.path.join(self._home, path) if path else self._home

    def read(self, file_obj: object, offset: int, size: int) -> bytes:
        data: bytes = super().read(file_obj, offset, size)  # type: ignore[assignment]
        if self._limit is not None:
            self._sent += len(data)
            if self._sent > self._limit:
                log.info("sandbox ssh: dropping SFTP connection after %d bytes", self._limit)
                self.channel.get_connection().abort()
        return data

    def exit(self) -> None:
        # Like OpenSSH's sftp-server, report exit status 0 when the session ends: without it
        # `scp` (which speaks SFTP since OpenSSH 9) exits 1 after a complete transfer.
        with contextlib.suppress(OSError):
            self.channel.exit(0)


def _exit_with(process: asyncssh.SSHServerProcess[bytes], returncode: int) -> None:
    """Report the child's exit status (or the signal that killed it) and close the channel."""
    with contextlib.suppress(OSError):
        if returncode >= 0:
            process.exit(returncode)
            return
        try:
            name = signal.Signals(-returncode).name.removeprefix("SIG")
        except ValueError:
            process.exit(255)
            return
        process.exit_with_signal(name)


class SshFleet:
    """Runs many SSH servers in one background asyncio loop thread inside the current process."""

    def __init__(self, keys: SshKeys, username: str = "root") -> None:
        self._keys = keys
        self._username = username
        self._authorized = _parse_authorized(keys.authorized)
        self._lock = threading.Lock()  # guards start/stop and the port table
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        # Waiting for children happens here, off the event loop; one thread per running command.
        self._waiters: concurrent.futures.ThreadPoolExecutor | None = None
        self._ports: dict[str, int] = {}
        # Touched only from the loop thread:
        self._acceptors: dict[str, asyncssh.SSHAcceptor] = {}
        self._connections: set[asyncssh.SSHServerConnection] = set()
        self._children: set[subprocess.Popen[bytes]] = set()
        self._sessions: set[asyncio.Task[Any]] = set()
        self.exec_requests: list[tuple[str, str]] = []
        """Every exec request received, as (server id, command text): what a host's audit log
        (or ``ps``) would show of the commands run on it."""

    # -- public API --

    def start(self, specs: Sequence[SshServerSpec]) -> dict[str, int]:
        """Start a server per spec; block until all listen; return ``server_id -> port``.

        May be called again on a running fleet to add servers; a server_id already running is an
        error. If any server cannot listen, the ones started by this call are closed again.
        """
        ids = [spec.server_id for spec in specs]
        if len(set(ids)) != len(ids):
            raise ValueError(f"duplicate server ids in {ids}")
        with self._lock:
            clash = sorted(set(ids) & set(self._ports))
            if clash:
                raise ValueError(f"SSH servers already running: {', '.join(clash)}")
            loop = self._ensure_loop()
            future = asyncio.run_coroutine_threadsafe(self._listen_all(specs), loop)
            ports = future.result(timeout=_START_TIMEOUT)
            self._ports.update(ports)
            return ports

    def stop(self) -> None:
        """Close listeners and connections, kill running commands, stop the loop thread.

        Idempotent; afterwards no thread or child process of the fleet is left, and the fleet
        can be started again.
        """
        with self._lock:
            loop, thread, waiters = self._loop, self._thread, self._waiters
            if loop is None or thread is None or waiters is None:
                return
            try:
                future = asyncio.run_coroutine_threadsafe(self._shutdown(), loop)
                future.result(timeout=_STOP_TIMEOUT * 3)
            finally:
                loop.call_soon_threadsafe(loop.stop)
                thread.join()
                loop.close()
                waiters.shutdown(wait=True)
                self._loop = self._thread = self._waiters = None
                self._ports.clear()

    def ports(self) -> dict[str, int]:
        """``server_id -> port`` of the servers currently listening."""
        with self._lock:
            return dict(self._ports)

    def __enter__(self) -> SshFleet:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- loop thread management --

    def _ensure_loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is not None:
            return self._loop
        loop = asyncio.new_event_loop()
        loop.set_exception_handler(_log_loop_exception)
        started = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(loop)
            loop.call_soon(started.set)
            loop.run_forever()

        # Daemon, so a fleet someone forgot to stop cannot keep the interpreter alive.
        thread = threading.Thread(target=run, name="sandbox-ssh-loop", daemon=True)
        thread.start()
        started.wait()
        self._loop, self._thread = loop, thread
        self._waiters = concurrent.futures.ThreadPoolExecutor(
            max_workers=256, thread_name_prefix="sandbox-ssh-wait"
        )
        return loop

    # -- on the loop thread --

    async def _listen_all(self, specs: Sequence[SshServerSpec]) -> dict[str, int]:
        started: list[str] = []
        try:
            for spec in specs:
                self._acceptors[spec.server_id] = await self._listen(spec)
                started.append(spec.server_id)
        except BaseException:
            for server_id in started:
                acceptor = self._acceptors.pop(server_id)
                acceptor.close()
                await acceptor.wait_closed()
            raise
        return {server_id: self._acceptors[server_id].get_port() for server_id in started}

    async def _listen(self, spec: SshServerSpec) -> asyncssh.SSHAcceptor:
        ensure_host_key(spec.host_key)
        host_key = asyncssh.read_private_key(spec.host_key)

        async def run_process(process: asyncssh.SSHServerProcess[bytes]) -> None:
            await self._run_session(spec, process)

        def make_sftp(chan: asyncssh.SSHServerChannel[bytes]) -> asyncssh.SFTPServer:
            return _SftpServer(chan, spec)

        try:
            return await asyncssh.listen(
                host=LOOPBACK,
                port=spec.port,
                reuse_address=True,  # a restarted server may take its old port back at once
                server_factory=lambda: _Auth(self, spec.server_id),
                server_host_keys=[host_key],
                process_factory=run_process,
                sftp_factory=make_sftp,
                allow_scp=False,  # `scp -O` then runs the real scp binary through the shell
                encoding=None,  # bytes in, bytes out
                line_editor=False,
                agent_forwarding=False,
                x11_forwarding=False,
                gss_host=None,
                login_timeout=30,
            )
        except OSError as exc:
            raise OSError(
                exc.errno,
                f"sandbox SSH server {spec.server_id} cannot listen on "
                f"{LOOPBACK}:{spec.port}: {exc.strerror or exc}",
            ) from exc

    async def _run_session(
        self, spec: SshServerSpec, process: asyncssh.SSHServerProcess[bytes]
    ) -> None:
        """Run one exec or shell request. Never raises: one bad session must not hurt others."""
        task = asyncio.current_task()
        assert task is not None
        self._sessions.add(task)
        try:
            try:
                await self._exec(spec, process)
            except Exception:
                log.exception("sandbox ssh %s: session failed", spec.server_id)
                with contextlib.suppress(Exception):
                    process.stderr.write(b"sandbox ssh: internal error\n")
                _exit_with(process, 255)
            # Also runs asyncssh's cleanup for the redirected pipes (it awaits their closing).
            with contextlib.suppress(Exception):
                await process.wait_closed()
        except asyncio.CancelledError:
            process.channel.abort()
            raise
        finally:
            self._sessions.discard(task)

    async def _exec(self, spec: SshServerSpec, process: asyncssh.SSHServerProcess[bytes]) -> None:
        if process.subsystem is not None:  # sftp is handled by asyncssh before we get here
            process.stderr.write(f"subsystem {process.subsystem} not supported\n".encode())
            _exit_with(process, 1)
            return
        if not spec.exec_allowed:
            process.stderr.write(b"This service allows sftp connections only.\n")
            _exit_with(process, 1)
            return
        command = process.command
        self.exec_requests.append((spec.server_id, command or ""))
        argv = ["/bin/sh"] if command is None else ["/bin/sh", "-c", command]
        env = {**os.environ, "HOME": str(spec.root), "TEARDOWN_SANDBOX_SERVER": spec.server_id}
        try:
            # A session of its own, so stop() and disconnects can kill whole pipelines.
            child = subprocess.Popen(
                argv,
                cwd=spec.root,
                env=env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,
            )
        except OSError as exc:
            process.stderr.write(f"sandbox ssh: cannot run command: {exc}\n".encode())
            _exit_with(process, 127)
            return
        self._children.add(child)
        try:
            await self._supervise(spec, process, child)
        finally:
            self._children.discard(child)

    async def _supervise(
        self,
        spec: SshServerSpec,
        process: asyncssh.SSHServerProcess[bytes],
        child: subprocess.Popen[bytes],
    ) -> None:
        assert child.stdin is not None and child.stdout is not None and child.stderr is not None
        loop = asyncio.get_running_loop()
        pump: asyncio.Task[None] | None = None
        feeding: asyncio.Future[None] | None = None
        closed = asyncio.ensure_future(process.channel.wait_closed())
        try:
            # The pipes belong to asyncssh's pipe transports from here on; they close them at
            # EOF. send_eof=False: with True, asyncssh sends EOF on the channel as soon as
            # *either* stdout or stderr reaches EOF, and stderr written just before exit can then
            # be lost. We send EOF ourselves once both are drained.
            # stdin goes through our own pump: redirecting it lost up to ~64 KB at the
            # client's EOF (seen when restoring a large archive through the sandbox).
            feeding = asyncio.ensure_future(_pump_stdin(process, child.stdin))
            if spec.drop_after_bytes is None:
                await process.redirect(stdout=child.stdout, stderr=child.stderr, send_eof=False)
            else:
                # redirect() cannot count bytes, so stdout goes through our own pump.
                await process.redirect(stderr=child.stderr, send_eof=False)
                pump = asyncio.ensure_future(
                    _pump_with_limit(process, child.stdout, spec.drop_after_bytes)
                )

            exited = loop.run_in_executor(self._waiters, _wait_until_exited, child)
            either: set[asyncio.Future[Any]] = {exited, closed}
            await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
            if not exited.done():
                return  # the client went away or the connection was dropped: finally kills
            # Drain: wait until stdout and stderr reached EOF and were handed to the channel
            # (a background job of the command may hold them open longer, as with sshd).
            with contextlib.suppress(OSError, asyncssh.Error):
                if pump is not None:
                    await pump
                else:
                    await process.stdout.drain()
                await process.stderr.drain()
            # Whatever the command left running in its session dies with it. The child is not
            # reaped yet, so its pid (the group id) cannot have been reused by another process.
            _kill_group(child)
            returncode = child.wait()  # an exited, unreaped child: returns at once
            if not closed.done():
                with contextlib.suppress(OSError):
                    process.channel.write_eof()
                _exit_with(process, returncode)
        finally:
            closed.cancel()
            if feeding is not None:
                feeding.cancel()
            if pump is not None:
                pump.cancel()
            if child.returncode is None:
                _kill_group(child)
                await loop.run_in_executor(self._waiters, child.wait)

    async def _shutdown(self) -> None:
        acceptors = list(self._acceptors.values())
        self._acceptors.clear()
        for acceptor in acceptors:
            acceptor.close()
        for acceptor in acceptors:
            await acceptor.wait_closed()
        for child in list(self._children):
            _kill_group(child)
        for conn in list(self._connections):
            conn.abort()
        if self._sessions:
            _, pending = await asyncio.wait(set(self._sessions), timeout=_STOP_TIMEOUT)
            for task in pending:
                task.cancel()
        # asyncssh's own per-connection tasks: let them finish their cancellation cleanly so
        # closing the loop does not warn about destroyed pending tasks.
        me = asyncio.current_task()
        rest = [task for task in asyncio.all_tasks() if task is not me]
        for task in rest:
            task.cancel()
        await asyncio.gather(*rest, return_exceptions=True)
        # asyncssh resolves names through the default executor; do not leave its threads behind.
        await asyncio.get_running_loop().shutdown_default_executor()


async def _pump_stdin(process: asyncssh.SSHServerProcess[bytes], stdin: IO[bytes]) -> None:
    """Copy the channel's input to the command, then close its stdin (EOF) once all is written."""
    loop = asyncio.get_running_loop()
    try:
        while True:
            data = await process.stdin.read(1 << 16)
            if not data:
                break
            await loop.run_in_executor(None, _write_all, stdin, data)
    except (OSError, asyncssh.Error):
        pass
    finally:
        with contextlib.suppress(OSError):
            await loop.run_in_executor(None, stdin.close)


def _write_all(stdin: IO[bytes], data: bytes) -> None:
    stdin.write(data)
    stdin.flush()


async def _pump_with_limit(
    process: asyncssh.SSHServerProcess[bytes], pipe: Any, limit: int
) -> None:
    """Forward the child's stdout to the channel; abort the connection after ``limit`` bytes."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=4 * _PUMP_CHUNK, loop=loop)
    transport, _ = await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader, loop=loop), pipe
    )
    sent = 0
    try:
        while chunk := await reader.read(_PUMP_CHUNK):
            if sent + len(chunk) >= limit:
                process.stdout.write(chunk[: limit - sent])
                await process.stdout.drain()
                log.info("sandbox ssh: dropping exec connection after %d bytes", limit)
                process.channel.get_connection().abort()
                return
            process.stdout.write(chunk)
            sent += len(chunk)
            await process.stdout.drain()  # flow control: the channel window, not memory
    finally:
        transport.close()


def _wait_until_exited(child: subprocess.Popen[bytes]) -> None:
    """Block until the child exits, without reaping it (so its pid stays reserved)."""
    if hasattr(os, "waitid"):  # not on every platform; there, reaping at once is the fallback
        with contextlib.suppress(ChildProcessError):
            os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)
            return
    child.wait()


def _kill_group(child: subprocess.Popen[bytes]) -> None:
    """SIGKILL the child's process group (the command and anything it started)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(child.pid, signal.SIGKILL)


def _log_loop_exception(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    # Errors inside one connection are logged and otherwise ignored; the loop keeps serving.
    exc = context.get("exception")
    log.warning("sandbox ssh: %s", context.get("message", "error"), exc_info=exc)
