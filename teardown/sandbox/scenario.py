"""Scenarios: data files (TOML) describing the servers, disks, files and billing a sandbox starts
with. Bundled ones live in ``teardown/sandbox/scenarios/``; users can copy and edit them.

Example (abridged)::

    name = "demo"
    [[servers]]
    name = "web-1"
    charging = "postPaid"
    hourly_price = "0.62"
    tags = { role = "web" }
    public_ip = "121.36.87.11"   # an EIP bound to web-1, named "web-1-eip"
    eip_charging = "postPaid"    # or "prePaid"; eip_hourly_price, eip_bandwidth_size
    [servers.system_disk]
    size = 40
    files = { "srv/www/index.html" = "<h1>shop</h1>" }

The ``[[subscriptions]]`` and ``[[orders]]`` tables are the billing side (see
:mod:`teardown.sandbox.billing`). ``[[vaults]]`` lists the CBR vaults backups go to (default:
``vault-sandbox`` for server backups and ``vault-sandbox-disk`` for disk backups), each with its
capacity, ``object_type``, ``auto_bind`` and a storage price that is **sandbox data**
(``price_per_gb_month``, CNY per GB of capacity, default ``"0.10"``)::

    [[vaults]]
    id = "vault-sandbox"
    object_type = "server"
    capacity_gb = 1000
    auto_bind = false        # resources must be added (AddVaultResource) before a checkpoint
"""

from __future__ import annotations

import json
import sqlite3
import tomllib
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter, ValidationError

from teardown.core.errors import ConfigError
from teardown.sandbox.resources import TO_PERIOD_LOCK, server_port, volume_data_dir
from teardown.sandbox.store import new_id, ts

_STRICT = {"extra": "forbid"}
BUNDLED = Path(__file__).parent / "scenarios"


@dataclass(frozen=True)
class DiskSpec:
    """A disk: ``size`` in GB, ``files`` maps relative paths to text content."""

    __pydantic_config__ = _STRICT
    size: int = 40
    type: str = "SSD"
    name: str | None = None
    id: str | None = None
    """A fixed cloud id (default: a new UUID), e.g. to match an exported Pulumi state."""
    bound: bool = True
    """Bought with its server (released with it); false for a separately bought disk."""
    charging: str = "postPaid"
    hourly_price: Decimal = Decimal(0)
    files: dict[str, str] = field(default_factory=dict)
    generated_mb: int = 0
    """Also write a file ``generated.bin`` of this many MiB of pseudo-random bytes."""


@dataclass(frozen=True)
class ServerSpec:
    __pydantic_config__ = _STRICT
    name: str
    id: str | None = None
    """A fixed cloud id (default: a new UUID), e.g. to match an exported Pulumi state."""
    charging: str = "postPaid"
    """``postPaid``, ``prePaid`` or ``spot``."""
    flavor: str = "s6.medium.2"
    hourly_price: Decimal = Decimal(0)
    private_ip: str | None = None
    public_ip: str | None = None
    """An EIP bound to the server's port, named ``<server name>-eip`` in the scenario (its id is
    derived from the server's and the address, so the same scenario gives the same id)."""
    eip_charging: str = "postPaid"
    """The EIP's own billing: ``postPaid`` (by the hour) or ``prePaid`` (yearly/monthly, on its
    own order; ``[[subscriptions]] resource = "<server name>-eip"`` says what was paid)."""
    eip_hourly_price: Decimal = Decimal("0.30")
    """**Sandbox data**, not Huawei's price: what a pay-per-use EIP and its dedicated bandwidth
    cost per hour, in CNY (one figure, bound or not)."""
    eip_bandwidth_size: int = 5
    """Mbit/s of the EIP's dedicated bandwidth."""
    tags: dict[str, str] = field(default_factory=dict)
    provisioned_days_ago: float = 1.0
    locked: bool = False
    """An order holds a lock on the server (ECS ``metadata.lockSource = "ORDER"``). On a
    pay-per-use server: ``lockScene`` ``TO_PERIOD_LOCK``, the server being converted to
    yearly/monthly by an order pending payment whose id is ``lockSourceId`` (see
    :func:`to_period_order_id`). On a yearly/monthly server (an assumption: the reference
    documents no other scene): ``TO_PERIOD_LOCK`` too, held by the server's own order."""
    frozen: bool = False
    system_disk: DiskSpec = field(default_factory=DiskSpec)
    data_disks: tuple[DiskSpec, ...] = ()


@dataclass(frozen=True)
class VolumeSpec:
    """A disk that is not attached to any server."""

    __pydantic_config__ = _STRICT
    name: str
    disk: DiskSpec = field(default_factory=DiskSpec)
    provisioned_days_ago: float = 1.0


@dataclass(frozen=True)
class VaultSpec:
    """A CBR vault (``[[vaults]]``), pay-per-use: it bills by its capacity for every hour it
    exists. ``price_per_gb_month`` is sandbox data (CNY per GB of capacity per month, default
    0.10), not Huawei's price: teardown reads no price from the cloud."""

    __pydantic_config__ = _STRICT
    id: str = "vault-sandbox"
    """The profile of every sandbox names ``vault-sandbox`` as its ``huawei.vault_id``."""
    name: str = "sandbox"
    object_type: str = "server"
    """``server`` (whole-server backups) or ``disk`` (disk backups), as CBR's ``billing``."""
    capacity_gb: int = 10240
    auto_bind: bool = True
    """A checkpoint binds a resource not yet in the vault itself; false: it must be added first
    (AddVaultResource), as on a vault without auto-binding."""
    price_per_gb_month: Decimal = Decimal("0.10")
    resources: tuple[str, ...] = ()
    """Names of servers (server vault) or disks (disk vault) bound to it from the start."""


DEFAULT_VAULTS = (
    VaultSpec(),
    VaultSpec(id="vault-sandbox-disk", name="sandbox-disk", object_type="disk"),
)
"""The vaults of a scenario that lists none: one for server backups, one for disk backups."""


@dataclass(frozen=True)
class Scenario:
    __pydantic_config__ = _STRICT
    name: str
    description: str = ""
    servers: tuple[ServerSpec, ...] = ()
    volumes: tuple[VolumeSpec, ...] = ()
    subscriptions: tuple[dict[str, Any], ...] = ()
    """Billing side, validated by :mod:`teardown.sandbox.billing.entries`."""
    orders: tuple[dict[str, Any], ...] = ()
    five_day_refunds_used: int = 0
    """Five-day full refunds already used this calendar year (quota 10)."""
    vaults: tuple[VaultSpec, ...] = DEFAULT_VAULTS
    """CBR vaults (validated by :mod:`teardown.sandbox.billing.vaults`)."""


_ADAPTER = TypeAdapter(Scenario)

_MODES = {"postPaid": "0", "prePaid": "1", "spot": "2"}
_EIP_MODES = ("postPaid", "prePaid")


def to_period_order_id(server_id: str) -> str:
    """The id of the order converting the pay-per-use server ``server_id`` to yearly/monthly,
    which holds its lock when the scenario says ``locked = true``: what ECS shows as the
    server's ``metadata.lockSourceId`` (``lockScene`` ``TO_PERIOD_LOCK``). Derived from the
    server id, so the same scenario gives the same id; BSS serves it as an order pending
    payment."""
    digest = uuid.uuid5(uuid.NAMESPACE_URL, f"teardown-sandbox:to-period:{server_id}").hex
    return "CS" + digest[:14].upper()


def _lock(spec: ServerSpec, server_id: str, order_id: str | None) -> tuple[str | None, str | None]:
    """``(lock_source_id, lock_scene)`` of a server the scenario says is locked."""
    if not spec.locked:
        return None, None
    return order_id or to_period_order_id(server_id), TO_PERIOD_LOCK


def eip_name(server_name: str) -> str:
    """The scenario name of a server's EIP (a ``[[subscriptions]]`` entry's ``resource``)."""
    return f"{server_name}-eip"


def add_eip(
    conn: sqlite3.Connection, server_id: str, spec: ServerSpec, created: datetime
) -> str | None:
    """Create the EIP of ``spec.public_ip``, bound to the server's port (``ACTIVE``); returns its
    id, or None when the server has no public IP. Ids are derived from the server id and the
    address, so the same scenario always gives the same ids."""
    if not spec.public_ip:
        return None
    if spec.eip_charging not in _EIP_MODES:
        raise ConfigError(spec.name, f"eip_charging must be one of {', '.join(_EIP_MODES)}")
    if not 1 <= spec.eip_bandwidth_size <= 2000 or spec.eip_hourly_price < 0:
        raise ConfigError(spec.name, "eip_bandwidth_size must be 1..2000, eip_hourly_price >= 0")
    seed_text = f"teardown-sandbox:eip:{server_id}:{spec.public_ip}"
    eid = str(uuid.uuid5(uuid.NAMESPACE_URL, seed_text))
    prepaid = spec.eip_charging == "prePaid"
    order_id = "CS" + eid.replace("-", "")[:14].upper() if prepaid else None
    conn.execute(
        "INSERT INTO eips(id, public_ip, alias, status, server_id, port_id, private_ip, "
        "charging_mode, order_id, product_id, bandwidth_id, bandwidth_name, bandwidth_size, "
        "hourly_price, created, updated) VALUES (?,?,?, 'ACTIVE', ?,?,?,?,?,?,?,?,?,?,?,?)",
        (
            eid,
            spec.public_ip,
            eip_name(spec.name),
            server_id,
            server_port(server_id),
            spec.private_ip,
            spec.eip_charging,
            order_id,
            "OFFI" + eid[:8] if prepaid else None,
            str(uuid.uuid5(uuid.NAMESPACE_URL, seed_text + ":bandwidth")),
            "bandwidth-" + eip_name(spec.name),
            spec.eip_bandwidth_size,
            "0" if prepaid else str(spec.eip_hourly_price),
            ts(created),
            ts(created),
        ),
    )
    return eid


def load_scenario(name_or_path: str) -> Scenario:
    """A bundled scenario by name (``demo``), or a TOML file by path."""
    path = Path(name_or_path)
    if not path.suffix:
        path = BUNDLED / f"{name_or_path}.toml"
        if not path.exists():
            known = ", ".join(sorted(p.stem for p in BUNDLED.glob("*.toml")))
            raise ConfigError(name_or_path, f"no such scenario (bundled: {known})")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(str(path), "no such file") from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise ConfigError(str(path), f"cannot read: {e}") from None
    except (RecursionError, ValueError) as e:  # absurd nesting, or a number too long to read
        raise ConfigError(str(path), f"not valid TOML: {type(e).__name__}") from None
    try:
        return _ADAPTER.validate_python(data)
    except ValidationError as e:
        err = e.errors()[0]
        loc = ".".join(str(x) for x in err["loc"])
        raise ConfigError(str(path), f"{loc}: {err['msg']}") from None


def _write_files(root: Path, disk: DiskSpec, seed: str) -> None:
    root.mkdir(parents=True, exist_ok=True)
    for rel, content in disk.files.items():
        target = (root / rel).resolve()
        if root.resolve() not in target.parents:
            raise ConfigError(seed, f"file path {rel!r} escapes the disk")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content)
    if disk.generated_mb:
        import hashlib

        block = hashlib.sha256(seed.encode()).digest() * 32768  # 1 MiB, deterministic
        with open(root / "generated.bin", "wb") as f:
            for _ in range(disk.generated_mb):
                f.write(block)


def add_volume(
    conn: sqlite3.Connection,
    data_root: Path,
    created: datetime,
    disk: DiskSpec,
    *,
    name: str,
    server_id: str | None = None,
    bootable: bool = False,
    device: str | None = None,
    order_id: str | None = None,
) -> str:
    """Create a disk (row and files). Returns its id."""
    vid = disk.id or new_id()
    charging = "prePaid" if order_id else disk.charging
    if charging == "prePaid" and order_id is None:  # bought on its own order
        order_id = "CS" + vid.replace("-", "")[:14].upper()
    conn.execute(
        "INSERT INTO volumes(id, name, status, size, volume_type, bootable, server_id, device, "
        "bound, charging_mode, order_id, az, created, updated, tags, hourly_price) "
        "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
        (
            vid,
            name,
            "in-use" if server_id else "available",
            disk.size,
            disk.type,
            int(bootable),
            server_id,
            device,
            int(disk.bound),
            charging,
            order_id,
            "cn-north-4a",
            ts(created),
            ts(created),
            json.dumps({}),
            str(disk.hourly_price),
        ),
    )
    _write_files(volume_data_dir(data_root, vid), disk, f"{name}:{vid}")
    return vid


def add_server(
    conn: sqlite3.Connection, data_root: Path, now: datetime, spec: ServerSpec, ssh_port: int = 0
) -> str:
    """Create a server with its system disk and data disks. Returns its id."""
    if spec.charging not in _MODES:
        raise ConfigError(spec.name, f"charging must be one of {', '.join(_MODES)}")
    sid = spec.id or new_id()
    created = now - timedelta(days=spec.provisioned_days_ago)
    prepaid = spec.charging == "prePaid"
    order_id = "CS" + sid.replace("-", "")[:14].upper() if prepaid else None
    lock_source_id, lock_scene = _lock(spec, sid, order_id)
    conn.execute(
        "INSERT INTO servers(id, name, status, created, updated, flavor, az, image_id, "
        "charging_mode, order_id, product_id, locked, lock_source_id, lock_scene, frozen, tags, "
        "private_ip, public_ip, ssh_port, hourly_price) "
        "VALUES (?,?, 'ACTIVE', ?,?,?, 'cn-north-4a', 'img-ubuntu-22.04', ?,?,?,?,?,?,?,?,?,?,?,?)",
        (
            sid,
            spec.name,
            ts(created),
            ts(created),
            spec.flavor,
            _MODES[spec.charging],
            order_id,
            "OFFI" + sid[:8] if prepaid else None,
            int(spec.locked),
            lock_source_id,
            lock_scene,
            int(spec.frozen),
            json.dumps([f"{k}={v}" for k, v in sorted(spec.tags.items())]),
            spec.private_ip,
            spec.public_ip,
            ssh_port,
            str(spec.hourly_price),
        ),
    )
    add_volume(
        conn,
        data_root,
        created,
        spec.system_disk,
        name=f"{spec.name}-sys",
        server_id=sid,
        bootable=True,
        device="/dev/vda",
        order_id=order_id if spec.system_disk.bound else None,
    )
    for i, disk in enumerate(spec.data_disks):
        add_volume(
            conn,
            data_root,
            created,
            disk,
            name=disk.name or f"{spec.name}-data{i + 1}",
            server_id=sid,
            device=f"/dev/vd{chr(ord('b') + i)}",
            order_id=order_id if disk.bound and prepaid else None,
        )
    add_eip(conn, sid, spec, created)
    return sid


def seed(
    conn: sqlite3.Connection, data_root: Path, scenario: Scenario, now: datetime
) -> dict[str, str]:
    """Create everything the scenario describes; return resource name -> cloud id."""
    for vault in scenario.vaults:
        conn.execute("INSERT OR IGNORE INTO vaults(id, name) VALUES (?, ?)", (vault.id, vault.name))
    ids: dict[str, str] = {}
    for spec in scenario.servers:
        if spec.name in ids:
            raise ConfigError(scenario.name, f"two resources are named {spec.name!r}")
        ids[spec.name] = add_server(conn, data_root, now, spec)
        for v in conn.execute("SELECT id, name FROM volumes WHERE server_id=?", (ids[spec.name],)):
            ids.setdefault(v["name"], v["id"])
        for e in conn.execute("SELECT id, alias FROM eips WHERE server_id=?", (ids[spec.name],)):
            ids.setdefault(e["alias"], e["id"])
    for vol in scenario.volumes:
        created = now - timedelta(days=vol.provisioned_days_ago)
        ids[vol.name] = add_volume(conn, data_root, created, vol.disk, name=vol.name)
    return ids
