"""A real OpenSSH ``sshd`` on 127.0.0.1 for the tests and the benchmarks.

``Sshd(root).start()`` generates an ed25519 host key and an ed25519 client key under ``root``,
writes an ``sshd_config`` that accepts only that client key for the current user, starts
``sshd -D -e -f CONFIG`` as a child on a free loopback port and waits until it answers with an SSH
banner. ``stop()`` kills the listener and every per-connection process it forked.

As root, sshd needs its privilege-separation directory (``/run/sshd``), which is created when
missing. As any other user, sshd runs unprivileged and can log in only that same user; that is all
the tests need. The machine's own sshd service is never touched: nothing here reads or writes
``/etc/ssh`` (the config passes every path explicitly).
"""

from __future__ import annotations

import contextlib
import functools
import getpass
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from types import TracebackType

HOST = "127.0.0.1"
PRIVSEP_DIR = Path("/run/sshd")


@dataclass(frozen=True)
class SshdInfo:
    """Everything a client needs to reach one running test sshd."""

    host: str  # "127.0.0.1"
    port: int
    user: str  # the current user
    client_key: Path  # ed25519 private key (no passphrase) authorized for ``user``
    known_hosts: Path  # this sshd's host key as [127.0.0.1]:PORT (as of start())
    host_key_pub: str  # the host's current public key line
    config: Path  # the sshd_config written
    root: Path  # working dir holding keys, config, logs


def sshd_path() -> str | None:
    """The sshd binary: ``$TEARDOWN_SSHD``, else /usr/sbin/sshd, else ``sshd`` on PATH."""
    env = os.environ.get("TEARDOWN_SSHD")
    if env:
        return env
    if os.access("/usr/sbin/sshd", os.X_OK):
        return "/usr/sbin/sshd"
    return shutil.which("sshd")


def _keygen(path: Path, comment: str) -> str:
    """Write a new ed25519 key pair at ``path`` (replacing any) and return the public key line."""
    for old in (path, path.with_name(path.name + ".pub")):
        old.unlink(missing_ok=True)
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)],
        check=True,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=30,
    )
    return path.with_name(path.name + ".pub").read_text().strip()


def _account_locked(user: str) -> bool:
    """True when /etc/shadow (readable as root only) marks ``user`` locked ('!').

    With ``UsePAM no`` sshd refuses a locked account even for public-key logins.
    """
    try:
        lines = Path("/etc/shadow").read_text().splitlines()
    except OSError:
        return False
    for line in lines:
        fields = line.split(":")
        if len(fields) > 1 and fields[0] == user:
            return fields[1].startswith("!")
    return False


@functools.cache
def unavailable_reason() -> str | None:
    """None when a test sshd can run here; otherwise one line saying why not (cached)."""
    sshd = sshd_path()
    if sshd is None:
        return "no sshd binary (install openssh-server or set TEARDOWN_SSHD)"
    if not os.path.isabs(sshd) or not os.access(sshd, os.X_OK):
        return f"sshd at {sshd!r} is not an absolute path to an executable"
    if shutil.which("ssh-keygen") is None:
        return "ssh-keygen is not installed (openssh-client)"
    user = getpass.getuser()
    if os.geteuid() == 0:
        try:
            _ensure_privsep_dir()
        except OSError as exc:
            return f"cannot create sshd's privilege-separation directory {PRIVSEP_DIR}: {exc}"
        if _account_locked(user):
            return f"account {user!r} is locked in /etc/shadow; sshd (UsePAM no) refuses it"
    # Check that this sshd accepts our config (sshd -t), e.g. that it can read its keys.
    with tempfile.TemporaryDirectory(prefix="teardown-sshd-check-") as tmp:
        try:
            server = Sshd(Path(tmp))
            server._make_keys()
            server._write_config(port=22222)
            check = subprocess.run(
                [sshd, "-t", "-f", str(server.config)],
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=30,
            )
        except (OSError, subprocess.SubprocessError) as exc:
            return f"cannot run sshd {sshd}: {exc}"
        if check.returncode != 0:
            detail = " ".join((check.stderr or check.stdout).split())[:300]
            return f"sshd {sshd} cannot run here (sshd -t exit {check.returncode}): {detail}"
    return None


def _ensure_privsep_dir() -> None:
    if not PRIVSEP_DIR.is_dir():
        PRIVSEP_DIR.mkdir(mode=0o755, parents=True, exist_ok=True)
        PRIVSEP_DIR.chmod(0o755)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def _read_banner(port: int, timeout: float) -> bool:
    """True when a connection to ``port`` succeeds and the server sends an ``SSH-`` banner."""
    try:
        with socket.create_connection((HOST, port), timeout=timeout) as sock:
            data = b""
            while b"\n" not in data and len(data) < 1024:
                chunk = sock.recv(256)
                if not chunk:
                    break
                data += chunk
            if not any(line.startswith(b"SSH-") for line in data.splitlines()):
                return False
            # Answer with our own banner so that sshd does not log the probe as an error.
            sock.sendall(b"SSH-2.0-teardown-probe\r\n")
            return True
    except OSError:
        return False


def _proc_table() -> dict[int, tuple[int, str]]:
    """pid -> (ppid, state) for every process visible in /proc."""
    table: dict[int, tuple[int, str]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2 :].split()
        table[int(entry.name)] = (int(fields[1]), fields[0])
    return table


def descendants(pid: int) -> list[int]:
    """Every live descendant of ``pid``, parents before children (zombies excluded)."""
    children: dict[int, list[int]] = {}
    states: dict[int, str] = {}
    for child, (parent, state) in _proc_table().items():
        children.setdefault(parent, []).append(child)
        states[child] = state
    found: list[int] = []
    todo = list(children.get(pid, []))
    while todo:
        current = todo.pop(0)
        if states.get(current) != "Z":
            found.append(current)
        todo.extend(children.get(current, []))
    return found


def _alive(pid: int) -> bool:
    """True when ``pid`` exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rfind(")") + 2] != "Z"


def sessions_on_port(port: int) -> list[int]:
    """Live processes whose environment says they run in an SSH session to 127.0.0.1:port."""
    suffix = f" {HOST} {port}".encode()
    found: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:  # gone, or another user's process
            continue
        for var in environ.split(b"\0"):
            if var.startswith(b"SSH_CONNECTION=") and var.endswith(suffix):
                found.append(int(entry.name))
                break
    return found


def _signal(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, sig)


class Sshd:
    """One OpenSSH sshd on 127.0.0.1, for the current user only. Use as a context manager.

    ``extra_config`` lines are placed before the defaults (sshd keeps the first value of a
    keyword, so they override them); any ``Match`` block in it goes at the end.
    """

    def __init__(
        self, root: Path, *, allow_tcp_forwarding: bool = True, extra_config: str = ""
    ) -> None:
        self.root = Path(root).resolve()
        self.allow_tcp_forwarding = allow_tcp_forwarding
        self.extra_config = extra_config
        self.user = getpass.getuser()
        self.host_key = self.root / "host_ed25519"
        self.client_key = self.root / "client_ed25519"
        self.authorized_keys = self.root / "authorized_keys"
        self.known_hosts = self.root / "known_hosts"
        self.config = self.root / "sshd_config"
        self.log = self.root / "sshd.log"
        self.pid_file = self.root / "sshd.pid"
        self.port: int | None = None
        self.host_key_pub = ""
        self._proc: subprocess.Popen[bytes] | None = None
        self._info: SshdInfo | None = None

    # --- public API ---------------------------------------------------------------------------

    @property
    def info(self) -> SshdInfo:
        """The running server's details (``host_key_pub`` follows ``rotate_host_key``)."""
        if self._info is None:
            raise RuntimeError("sshd is not started")
        return self._info

    @property
    def pid(self) -> int | None:
        return None if self._proc is None else self._proc.pid

    def start(self, timeout: float = 10.0) -> SshdInfo:
        """Make keys, write the config, start sshd on a free port and wait for its banner."""
        if self._proc is not None:
            raise RuntimeError("sshd is already started")
        if os.geteuid() == 0:
            _ensure_privsep_dir()
        self.root.mkdir(parents=True, exist_ok=True)
        self._make_keys()
        last_error: RuntimeError | None = None
        for _ in range(5):
            port = _free_port()
            try:
                self._launch(port, timeout)
            except RuntimeError as exc:  # most likely: the port was taken meanwhile
                last_error = exc
                if "Address already in use" not in str(exc):
                    raise
                continue
            self.known_hosts.write_text(self._known_hosts_line())
            self._info = SshdInfo(
                host=HOST,
                port=port,
                user=self.user,
                client_key=self.client_key,
                known_hosts=self.known_hosts,
                host_key_pub=self.host_key_pub,
                config=self.config,
                root=self.root,
            )
            return self._info
        assert last_error is not None
        raise last_error

    def stop(self) -> None:
        """Stop the listener and every process it started (connections, sessions). Idempotent.

        sshd puts every connection and every session command in a session of its own (setsid),
        and a command outlives its connection when the client goes away, so killing the
        listener's process group is not enough. The processes to stop are the listener's
        descendants plus every process whose ``SSH_CONNECTION`` names this server's port (and
        their descendants). They are frozen first (a stopped process cannot fork), sent SIGTERM
        (so that, e.g., shell EXIT traps in the user's startup files remove their lock files),
        given a moment, then killed.
        """
        proc = self._proc
        if proc is None:
            return
        self._proc = None
        _signal(proc.pid, signal.SIGSTOP)  # no new connections meanwhile
        tree = self._freeze_tree(proc.pid)
        for pid in tree:
            _signal(pid, signal.SIGTERM)
            _signal(pid, signal.SIGCONT)
        deadline = time.monotonic() + 2.0
        while any(_alive(pid) for pid in tree) and time.monotonic() < deadline:
            time.sleep(0.02)
        _signal(proc.pid, signal.SIGTERM)  # last, so that it reaps its children
        _signal(proc.pid, signal.SIGCONT)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=2.0)
        for _ in range(3):  # whatever survived TERM, or was forked meanwhile
            survivors = self._freeze_tree(proc.pid)
            if not survivors:
                break
            for pid in survivors:
                _signal(pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)  # the listener and anything left in its group
        proc.wait(timeout=10)
        self.pid_file.unlink(missing_ok=True)

    def _freeze_tree(self, listener: int) -> list[int]:
        """SIGSTOP every live process this server started (see ``stop``); return their pids."""
        frozen: list[int] = []
        while True:
            found = descendants(listener)
            if self.port is not None:
                for session in sessions_on_port(self.port):
                    found += [session, *descendants(session)]
            fresh = [pid for pid in dict.fromkeys(found) if pid not in frozen and _alive(pid)]
            if not fresh:
                return frozen
            for pid in fresh:
                _signal(pid, signal.SIGSTOP)
            frozen += fresh

    def rotate_host_key(self) -> None:
        """Replace the host key with a new one and restart sshd on the same port.

        ``info.known_hosts`` keeps the old key (so a strict client now sees a changed host key);
        ``info.host_key_pub`` is the new one; ``write_known_hosts`` writes a file trusting it.
        """
        if self._proc is None or self.port is None or self._info is None:
            raise RuntimeError("sshd is not started")
        port = self.port
        self.stop()
        self.host_key_pub = _keygen(self.host_key, "teardown-test-host")
        deadline = time.monotonic() + 10
        while True:
            try:
                self._launch(port, 10.0)
                break
            except RuntimeError as exc:
                if "Address already in use" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        self._info = replace(self._info, host_key_pub=self.host_key_pub)

    def write_known_hosts(self, path: Path) -> Path:
        """Write a known_hosts file trusting the current host key; return its path."""
        path.write_text(self._known_hosts_line())
        return path

    def __enter__(self) -> SshdInfo:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # --- internals ----------------------------------------------------------------------------

    def _make_keys(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.host_key_pub = _keygen(self.host_key, "teardown-test-host")
        client_pub = _keygen(self.client_key, "teardown-test-client")
        self.authorized_keys.write_text(client_pub + "\n")
        self.authorized_keys.chmod(0o600)

    def _known_hosts_line(self) -> str:
        if self.port is None:
            raise RuntimeError("sshd has no port yet")
        key_type, key_body = self.host_key_pub.split()[:2]
        return f"[{HOST}]:{self.port} {key_type} {key_body}\n"

    def _write_config(self, port: int) -> None:
        forwarding = "yes" if self.allow_tcp_forwarding else "no"
        lines = self.extra_config.splitlines()
        match_at = next(
            (i for i, line in enumerate(lines) if line.strip().lower().startswith("match ")),
            len(lines),
        )
        head, match_block = lines[:match_at], lines[match_at:]
        config = [
            "# Written by tests/sshd.py: a throwaway sshd for tests, loopback only.",
            *head,
            f"ListenAddress {HOST}",
            f"Port {port}",
            f"HostKey {self.host_key}",
            f"PidFile {self.pid_file}",
            f"AuthorizedKeysFile {self.authorized_keys}",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "HostbasedAuthentication no",
            "PubkeyAuthentication yes",
            "UsePAM no",
            "StrictModes no",
            "PermitRootLogin prohibit-password",
            f"AllowTcpForwarding {forwarding}",
            "X11Forwarding no",
            "PrintMotd no",
            "PrintLastLog no",
            "UseDNS no",
            "Subsystem sftp internal-sftp",
            # bash sources ~/.bashrc for commands run by sshd only when it is a top-level shell
            # (SHLVL < 2 after its own increment): keep the user's startup files (e.g. a pyenv
            # init that takes a lock on every start) out of the tests and the benchmarks.
            "SetEnv SHLVL=1",
            "LogLevel ERROR",
            "MaxSessions 20",
            "MaxStartups 50:30:100",
            *match_block,
        ]
        self.config.write_text("\n".join(config) + "\n")

    def _log_tail(self, lines: int = 20) -> str:
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:]) or "(empty log)"

    def _launch(self, port: int, timeout: float) -> None:
        """Write the config for ``port``, start sshd and wait for its banner (or raise)."""
        sshd = sshd_path()
        if sshd is None:
            raise RuntimeError("no sshd binary (install openssh-server or set TEARDOWN_SSHD)")
        self.port = port
        self._write_config(port)
        with self.log.open("ab") as log:
            proc = subprocess.Popen(
                [sshd, "-D", "-e", "-f", str(self.config)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
                close_fds=True,
            )
        self._proc = proc
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                self._proc = None
                raise RuntimeError(
                    f"sshd exited with {proc.returncode} before serving port {port}; "
                    f"log tail ({self.log}):\n{self._log_tail()}"
                )
            if _read_banner(port, timeout=1.0):
                return
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(
                    f"sshd gave no SSH banner on {HOST}:{port} within {timeout:.0f}s; "
                    f"log tail ({self.log}):\n{self._log_tail()}"
                )
            time.sleep(0.02)
