"""Running a sandbox: state, API listeners, one SSH server per cloud server, the profile file.

A sandbox directory holds everything::

    DIR/sandbox.toml     settings (account, durations, faults); written with defaults if absent
    DIR/state.db         the cloud's state (SQLite), kept across restarts
    DIR/disks/<id>/      each disk's files;  DIR/cbr/<id>/  each CBR disk backup's copy
    DIR/ssh/             the client key pair and the servers' host keys
    DIR/known_hosts      the servers' host keys, for strict host key checking
    DIR/profile.toml     endpoints, region, project and domain ids, credentials, SSH settings
    DIR/sandbox.pid      the pid of a detached sandbox
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import tomllib
import uuid
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter, ValidationError

from teardown.adapters.huawei.profile import SANDBOX_VAULT_ID
from teardown.core.errors import ConfigError, TeardownError
from teardown.ports import Clock
from teardown.sandbox.api import ApiServers, Endpoints
from teardown.sandbox.billing import BSS_SCHEMA, seed_billing, still_billing
from teardown.sandbox.config import Account, SandboxConfig
from teardown.sandbox.http import SandboxApp
from teardown.sandbox.resources import volume_data_dir
from teardown.sandbox.scenario import load_scenario, seed
from teardown.sandbox.ssh import (
    SshFleet,
    SshServerSpec,
    ensure_host_key,
    ensure_keys,
    write_known_hosts,
)
from teardown.sandbox.store import Store
from teardown.support.clock import SystemClock

_CONFIG = TypeAdapter(SandboxConfig)
READY_TIMEOUT = 15.0


@dataclass(frozen=True)
class SkewedClock:
    """A clock running ``seconds`` ahead of another (fault injection: clock skew)."""

    base: Clock
    seconds: float

    def now(self) -> datetime:
        return self.base.now() + timedelta(seconds=self.seconds)


class SandboxError(TeardownError):
    """The sandbox cannot be started, stopped or read as asked."""


@dataclass(frozen=True)
class Layout:
    """Paths inside a sandbox directory."""

    root: Path

    @property
    def config(self) -> Path:
        return self.root / "sandbox.toml"

    @property
    def state(self) -> Path:
        return self.root / "state.db"

    @property
    def ssh(self) -> Path:
        return self.root / "ssh"

    @property
    def known_hosts(self) -> Path:
        return self.root / "known_hosts"

    @property
    def profile(self) -> Path:
        return self.root / "profile.toml"

    @property
    def pid(self) -> Path:
        return self.root / "sandbox.pid"

    @property
    def ready(self) -> Path:
        return self.root / "ready.json"

    @property
    def log(self) -> Path:
        return self.root / "sandbox.log"


def load_sandbox_config(layout: Layout) -> SandboxConfig:
    """``sandbox.toml``, or the defaults (written out so users can edit them)."""
    if not layout.config.exists():
        return SandboxConfig()
    try:
        data = tomllib.loads(layout.config.read_text(encoding="utf-8"))
        return _CONFIG.validate_python(data)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(str(layout.config), f"not valid TOML: {e}") from None
    except ValidationError as e:
        err = e.errors()[0]
        loc = ".".join(str(x) for x in err["loc"])
        raise ConfigError(str(layout.config), f"{loc}: {err['msg']}") from None


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(str(value))


def _write_private(path: Path, text: str) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def write_default_config(layout: Layout, config: SandboxConfig) -> None:
    a = config.account
    d = config.durations
    lines = ["# teardown sandbox settings (edit and restart the sandbox)", "", "[account]"]
    lines += [f"{k} = {_toml_value(getattr(a, k))}" for k in a.__dataclass_fields__]
    lines += ["", "[durations]  # seconds until asynchronous work completes"]
    lines += [f"{k} = {_toml_value(getattr(d, k))}" for k in d.__dataclass_fields__]
    lines += [
        "",
        "[faults]  # see README: latency, throttle, server_error, failing_jobs, ...",
        f"seed = {config.faults.seed}",
        "",
    ]
    _write_private(layout.config, "\n".join(lines))


def write_profile(
    layout: Layout,
    config: SandboxConfig,
    endpoints: Endpoints,
    pid: int,
    ssh_ports: dict[str, int] | None = None,
) -> None:
    """``profile.toml``: what teardown needs to reach this sandbox (owner-readable only),
    including where each server's SSH server listens (``[sandbox.ssh_ports]``: only a sandbox
    profile says so; on a real cloud a server is reached at its own address)."""
    a = config.account
    text = "\n".join(
        [
            "# Written by `teardown sandbox up`; pass it with --profile.",
            "[huawei]",
            f"region = {_toml_value(a.region)}",
            f"project_id = {_toml_value(a.project_id)}",
            f"domain_id = {_toml_value(a.domain_id)}",
            f"ak = {_toml_value(a.ak)}",
            f"sk = {_toml_value(a.sk)}",
            f"vault_id = {_toml_value(SANDBOX_VAULT_ID)}",
            "",
            "[huawei.endpoints]",
            *[f"{k} = {_toml_value(v)}" for k, v in endpoints.as_dict().items()],
            "",
            "[ssh]",
            'user = "root"',
            f"identity_file = {_toml_value(layout.ssh / 'client_key')}",
            f"known_hosts = {_toml_value(layout.known_hosts)}",
            "",
            "[sandbox]",
            f"dir = {_toml_value(layout.root)}",
            f"pid = {pid}",
            "",
            "[sandbox.ssh_ports]  # server id -> port on 127.0.0.1",
            *[f"{_toml_value(sid)} = {port}" for sid, port in sorted((ssh_ports or {}).items())],
            "",
        ]
    )
    _write_private(layout.profile, text)


def _own_account(store: Store, account: Account, fresh: bool) -> Account:
    """Each new sandbox is an account of its own, as two real accounts are: unless
    ``sandbox.toml`` chooses them, its project and domain ids are made once, when its state is
    created, and kept in that state (an older sandbox keeps the ids it always had)."""
    kept = store.meta("account.project_id"), store.meta("account.domain_id")
    if kept[0] and kept[1]:
        return replace(account, project_id=kept[0], domain_id=kept[1])
    default = Account()
    if fresh:
        if account.project_id == default.project_id:
            account = replace(account, project_id=uuid.uuid4().hex)
        if account.domain_id == default.domain_id:
            account = replace(account, domain_id=uuid.uuid4().hex)
    store.set_meta("account.project_id", account.project_id)
    store.set_meta("account.domain_id", account.domain_id)
    return account


class Sandbox:
    """A running sandbox in this process: ``start()`` then ``stop()``.

    Example::

        with Sandbox(Path("/tmp/sb"), scenario="demo") as sb:
            print(sb.endpoints.ecs, sb.ssh_ports)
    """

    def __init__(
        self,
        root: Path,
        *,
        scenario: str | None = None,
        seed_value: int | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.layout = Layout(root.resolve())
        self.scenario = scenario
        self.seed_value = seed_value
        self.clock = clock or SystemClock()
        self.store: Store | None = None
        self.api: ApiServers | None = None
        self.fleet: SshFleet | None = None
        self.endpoints: Endpoints | None = None
        self.ssh_ports: dict[str, int] = {}
        self.seeded_now = False

    def start(self) -> Endpoints:
        layout = self.layout
        layout.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        config = load_sandbox_config(layout)
        if self.seed_value is not None:
            config = replace(config, faults=replace(config.faults, seed=self.seed_value))
        fresh = not layout.state.exists()
        self.store = store = Store(layout.state, (BSS_SCHEMA,))
        config = replace(config, account=_own_account(store, config.account, fresh))
        if not layout.config.exists():
            write_default_config(layout, config)
        if fresh:
            scenario = load_scenario(self.scenario or "empty")
            with store.tx() as conn:
                ids = seed(conn, layout.root, scenario, self.clock.now())
                seed_billing(conn, scenario, ids, self.clock.now())
            store.set_meta("scenario", scenario.name)
            self.seeded_now = True
        clock = self.clock
        if config.faults.clock_skew_seconds:
            clock = SkewedClock(self.clock, config.faults.clock_skew_seconds)
        app = SandboxApp(store, config, clock, layout.root, sleep=time.sleep)
        self.api = ApiServers(app)
        self.endpoints = self.api.start()
        self._start_ssh(store, config)
        write_profile(layout, config, self.endpoints, os.getpid(), self.ssh_ports)
        return self.endpoints

    def _start_ssh(self, store: Store, config: SandboxConfig) -> None:
        layout = self.layout
        keys = ensure_keys(layout.ssh)
        specs = []
        pubkeys: dict[str, str] = {}
        rows = list(store.conn.execute("SELECT id FROM servers WHERE deleted=0"))
        for row in rows:
            sid = row["id"]
            key_path = layout.ssh / "hostkeys" / sid
            key_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            pubkeys[sid] = ensure_host_key(key_path)
            system = store.conn.execute(
                "SELECT id FROM volumes WHERE server_id=? AND bootable=1 AND deleted=0", (sid,)
            ).fetchone()
            root = volume_data_dir(layout.root, system["id"]) if system else layout.root
            root.mkdir(parents=True, exist_ok=True)
            specs.append(
                SshServerSpec(
                    server_id=sid,
                    host_key=key_path,
                    root=root,
                    drop_after_bytes=config.faults.ssh_drop_after_bytes.get(sid),
                    exec_allowed=sid not in config.faults.sftp_only,
                )
            )
        self.fleet = SshFleet(keys)
        self.ssh_ports = self.fleet.start(specs)
        with store.tx() as conn:
            for sid, port in self.ssh_ports.items():
                conn.execute("UPDATE servers SET ssh_port=? WHERE id=?", (port, sid))
        write_known_hosts(
            layout.known_hosts, [(port, pubkeys[sid]) for sid, port in self.ssh_ports.items()]
        )

    def stop(self) -> None:
        if self.fleet is not None:
            self.fleet.stop()
            self.fleet = None
        if self.api is not None:
            self.api.stop()
            self.api = None
        if self.store is not None:
            self.store.close()
            self.store = None

    def __enter__(self) -> Sandbox:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve(root: Path, scenario: str | None, seed_value: int | None, on_ready: Any = None) -> None:
    """Run in the foreground until SIGINT or SIGTERM; write ``ready.json`` once listening."""
    done = threading.Event()

    def finish(_signum: int, _frame: object) -> None:
        done.set()

    signal.signal(signal.SIGTERM, finish)
    signal.signal(signal.SIGINT, finish)
    sandbox = Sandbox(root, scenario=scenario, seed_value=seed_value)
    try:
        endpoints = sandbox.start()
        info = {"pid": os.getpid(), "endpoints": endpoints.as_dict(), "ssh": sandbox.ssh_ports}
        _write_private(sandbox.layout.ready, json.dumps(info))
        if on_ready is not None:
            on_ready(sandbox)
        while not done.wait(0.05):  # a short wait keeps signal handling prompt
            pass
    finally:
        sandbox.stop()
        sandbox.layout.ready.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # An exited process whose parent has not reaped it yet (a zombie) counts as gone.
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def running_pid(layout: Layout) -> int | None:
    """The pid of a detached sandbox that is still alive, else None."""
    try:
        pid = int(layout.pid.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
    return pid if _alive(pid) else None


def start_detached(root: Path, scenario: str | None, seed_value: int | None) -> dict[str, Any]:
    """Start ``teardown sandbox up`` in the background; return its ready info once listening."""
    layout = Layout(root.resolve())
    layout.root.mkdir(parents=True, exist_ok=True, mode=0o700)
    pid = running_pid(layout)
    if pid is not None:
        raise SandboxError(f"a sandbox is already running in {layout.root} (pid {pid})")
    if scenario and not layout.state.exists():
        load_scenario(scenario)  # a bad name or file is the caller's error, before forking
    load_sandbox_config(layout)
    layout.ready.unlink(missing_ok=True)
    args = [sys.executable, "-m", "teardown.cli.main", "sandbox", "up", "--dir", str(layout.root)]
    if scenario:
        args += ["--scenario", scenario]
    if seed_value is not None:
        args += ["--seed", str(seed_value)]
    with open(layout.log, "ab") as log:
        child = subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True
        )
    layout.pid.write_text(f"{child.pid}\n")
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if layout.ready.exists():
            info: dict[str, Any] = json.loads(layout.ready.read_text())
            if info.get("pid") == child.pid:
                return info
        if child.poll() is not None:
            layout.pid.unlink(missing_ok=True)
            tail = layout.log.read_text(errors="replace").strip().splitlines()[-5:]
            raise SandboxError("the sandbox exited while starting: " + " | ".join(tail))
        time.sleep(0.02)
    stop_detached(root)
    raise SandboxError(f"the sandbox did not become ready within {READY_TIMEOUT:.0f} s")


def stop_detached(root: Path, timeout: float = 10.0) -> bool:
    """Stop a detached sandbox (SIGTERM, then SIGKILL); True if one was running."""
    layout = Layout(root.resolve())
    pid = running_pid(layout)
    if pid is None:
        layout.pid.unlink(missing_ok=True)
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and _alive(pid):
        time.sleep(0.02)
    if _alive(pid):
        os.killpg(pid, signal.SIGKILL)
    layout.pid.unlink(missing_ok=True)
    layout.ready.unlink(missing_ok=True)
    return True


def status(root: Path) -> dict[str, Any]:
    """Servers, disks, EIPs, orders and what is still billing, read from the state file."""
    layout = Layout(root.resolve())
    if not layout.state.exists():
        raise SandboxError(f"{layout.root}: no sandbox here (run `teardown sandbox up` first)")
    store = Store(layout.state, (BSS_SCHEMA,))
    try:
        conn = store.conn
        servers = [
            {
                "id": r["id"],
                "name": r["name"],
                "status": r["status"],
                "charging_mode": {"0": "postPaid", "1": "prePaid", "2": "spot"}[r["charging_mode"]],
                "ssh_port": r["ssh_port"],
            }
            for r in conn.execute("SELECT * FROM servers WHERE deleted=0 ORDER BY name")
        ]
        disks = [
            {
                "id": r["id"],
                "name": r["name"],
                "size": r["size"],
                "status": r["status"],
                "server_id": r["server_id"],
                "charging_mode": r["charging_mode"],
                "path": str(volume_data_dir(layout.root, r["id"])),
            }
            for r in conn.execute("SELECT * FROM volumes WHERE deleted=0 ORDER BY name")
        ]
        eips = [
            {
                "id": r["id"],
                "public_ip": r["public_ip"],
                "status": r["status"],
                "server_id": r["server_id"],
                "charging_mode": r["charging_mode"],
            }
            for r in conn.execute("SELECT * FROM eips WHERE deleted=0 ORDER BY public_ip")
        ]
        orders = [
            {k: r[k] for k in r.keys()}  # noqa: SIM118 (sqlite3.Row)
            for r in conn.execute("SELECT * FROM orders ORDER BY create_time")
        ]
        billing = still_billing(conn, SystemClock().now())
        return {
            "dir": str(layout.root),
            "scenario": store.meta("scenario"),
            "running": running_pid(layout) is not None,
            "pid": running_pid(layout),
            "servers": servers,
            "disks": disks,
            "eips": eips,
            "orders": orders,
            "still_billing": billing,
        }
    finally:
        store.close()


def reset(root: Path) -> None:
    """Remove a stopped sandbox's state and data (keeps sandbox.toml and the SSH keys)."""
    layout = Layout(root.resolve())
    if running_pid(layout) is not None:
        raise SandboxError(f"stop the sandbox in {layout.root} first (teardown sandbox down)")
    for name in ("state.db", "state.db-wal", "state.db-shm", "profile.toml", "known_hosts"):
        (layout.root / name).unlink(missing_ok=True)
    for sub in ("disks", "cbr"):
        shutil.rmtree(layout.root / sub, ignore_errors=True)
