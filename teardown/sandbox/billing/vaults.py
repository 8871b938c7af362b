"""CBR vaults as the ledger sees them: what each one is (``billing`` as CBR's ShowVault reports
it), what it holds, what it costs, and the resources bound to it; and seeding them from a
scenario's ``[[vaults]]``.

Units as CBR's ``Billing`` model has them (docs/huawei-api.md, "CBR"): ``size`` (the capacity)
and ``allocated`` in GB, ``used`` in **MB**. A pay-per-use vault bills by its capacity for every
hour it exists, backups or not; the price per GB-month is sandbox data (the scenario's
``price_per_gb_month``), not Huawei's.

Assumptions (docs/huawei-api.md): a backup occupies the full size of the disks it holds (the
sandbox's disks have no blocks to count), from the moment it is made until it is gone, unless it
ended in ``error``; a month is 730 hours when a monthly price is turned into an hourly one.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal

from teardown.core.errors import ConfigError
from teardown.sandbox.scenario import Scenario
from teardown.sandbox.store import ts

SERVER_TYPE = "OS::Nova::Server"
VOLUME_TYPE = "OS::Cinder::Volume"
OBJECT_TYPES = {"server": SERVER_TYPE, "disk": VOLUME_TYPE}
"""A vault's ``object_type`` -> the one resource type it backs up."""
SPEC_CODES = {"server": "vault.backup.server.normal", "disk": "vault.backup.volume.normal"}
"""``billing.spec_code`` by ``object_type`` (the SDK's ``Billing`` docstring)."""
MAX_SIZE_GB = 10485760
"""The largest vault capacity (``billing.size`` maximum in the API reference)."""
HOURS_PER_MONTH = Decimal(730)
MB_PER_GB = 1024
CENT = Decimal("0.01")


@dataclass(frozen=True)
class Vault:
    """One vault with its billing side (defaults for a vault without a ``vault_billing`` row)."""

    id: str
    name: str
    object_type: str
    size_gb: int
    charging_mode: str
    status: str
    auto_bind: bool
    price_per_gb_month: Decimal
    created: str | None

    @property
    def resource_type(self) -> str:
        return OBJECT_TYPES.get(self.object_type, SERVER_TYPE)

    @property
    def monthly_cost(self) -> Decimal:
        """What one month of the vault's capacity costs at the sandbox's price."""
        return (self.price_per_gb_month * self.size_gb).quantize(CENT, ROUND_HALF_UP)

    @property
    def hourly_cost(self) -> Decimal:
        return (self.price_per_gb_month * self.size_gb / HOURS_PER_MONTH).quantize(
            Decimal("0.0001"), ROUND_HALF_UP
        )


_SELECT = (
    "SELECT v.id, v.name, COALESCE(b.object_type, 'server') AS object_type, "
    "COALESCE(b.size_gb, 10240) AS size_gb, COALESCE(b.charging_mode, 'post_paid') AS "
    "charging_mode, COALESCE(b.status, 'available') AS status, COALESCE(b.auto_bind, 1) AS "
    "auto_bind, COALESCE(b.price_per_gb_month, '0.10') AS price, b.created AS created "
    "FROM vaults v LEFT JOIN vault_billing b ON b.vault_id = v.id"
)


def _vault(row: sqlite3.Row) -> Vault:
    return Vault(
        id=row["id"],
        name=row["name"],
        object_type=row["object_type"],
        size_gb=int(row["size_gb"]),
        charging_mode=row["charging_mode"],
        status=row["status"],
        auto_bind=bool(row["auto_bind"]),
        price_per_gb_month=Decimal(str(row["price"])),
        created=row["created"],
    )


def all_vaults(conn: sqlite3.Connection) -> list[Vault]:
    """Every vault, in the order they were made."""
    return [_vault(r) for r in conn.execute(_SELECT + " ORDER BY v.rowid")]


def vault(conn: sqlite3.Connection, vault_id: str) -> Vault | None:
    row = conn.execute(_SELECT + " WHERE v.id=?", (vault_id,)).fetchone()
    return None if row is None else _vault(row)


def used_gb(conn: sqlite3.Connection, vault_id: str) -> int:
    """GB the vault's backups occupy: every top-level backup not in ``error``, at the full size
    of what it holds (an assumption, see the module docstring)."""
    row = conn.execute(
        "SELECT COALESCE(SUM(resource_size), 0) FROM backups "
        "WHERE vault_id=? AND parent_id IS NULL AND status != 'error'",
        (vault_id,),
    ).fetchone()
    return int(row[0])


def backup_count(conn: sqlite3.Connection, vault_id: str) -> int:
    row = conn.execute(
        "SELECT COUNT(*) FROM backups WHERE vault_id=? AND parent_id IS NULL", (vault_id,)
    ).fetchone()
    return int(row[0])


def resource_size_gb(conn: sqlite3.Connection, resource_id: str) -> int | None:
    """The allocated size of a live server (its disks) or disk; None when it is not live."""
    server = conn.execute("SELECT 1 FROM servers WHERE id=? AND deleted=0", (resource_id,))
    if server.fetchone() is not None:
        row = conn.execute(
            "SELECT COALESCE(SUM(size), 0) FROM volumes WHERE server_id=? AND deleted=0",
            (resource_id,),
        ).fetchone()
        return int(row[0])
    vol = conn.execute("SELECT size FROM volumes WHERE id=? AND deleted=0", (resource_id,))
    found = vol.fetchone()
    return None if found is None else int(found[0])


def bound(conn: sqlite3.Connection, vault_id: str) -> list[sqlite3.Row]:
    """The resources bound to the vault, in the order they were added."""
    return list(
        conn.execute(
            "SELECT * FROM vault_resources WHERE vault_id=? ORDER BY added, resource_id",
            (vault_id,),
        )
    )


def vault_holding(conn: sqlite3.Connection, resource_id: str) -> str | None:
    """The vault the resource is bound to, if any."""
    row = conn.execute(
        "SELECT vault_id FROM vault_resources WHERE resource_id=?", (resource_id,)
    ).fetchone()
    return None if row is None else str(row[0])


def bind(
    conn: sqlite3.Connection, vault_id: str, resource_id: str, resource_type: str, now: datetime
) -> None:
    conn.execute(
        "INSERT INTO vault_resources(vault_id, resource_id, resource_type, added) VALUES (?,?,?,?)",
        (vault_id, resource_id, resource_type, ts(now)),
    )


def retention_days(conn: sqlite3.Connection, vault_id: str) -> int | None:
    """The longest ``retention_duration_days`` of the vault's live backups; None when any of
    them is kept until deleted (or the vault holds none)."""
    rows = conn.execute(
        "SELECT c.retention_days FROM checkpoints c WHERE c.vault_id=? AND EXISTS "
        "(SELECT 1 FROM backups b WHERE b.checkpoint_id=c.id AND b.parent_id IS NULL)",
        (vault_id,),
    ).fetchall()
    days = [r[0] for r in rows]
    if not days or any(d is None for d in days):
        return None
    return max(int(d) for d in days)


# -- seeding ---------------------------------------------------------------------------------


def seed_vaults(
    conn: sqlite3.Connection, scenario: Scenario, ids: dict[str, str], now: datetime
) -> None:
    """The billing side and bindings of the scenario's vaults (their ``vaults`` rows were
    written by :func:`teardown.sandbox.scenario.seed`). Raises ConfigError naming
    ``vaults[i].key``."""
    seen: set[str] = set()
    for i, spec in enumerate(scenario.vaults):
        where = f"vaults[{i}]"
        if spec.id in seen:
            raise ConfigError(scenario.name, f"{where}.id: vault {spec.id!r} is listed twice")
        seen.add(spec.id)
        if spec.object_type not in OBJECT_TYPES:
            raise ConfigError(
                scenario.name, f"{where}.object_type: must be one of {', '.join(OBJECT_TYPES)}"
            )
        if not 1 <= spec.capacity_gb <= MAX_SIZE_GB:
            raise ConfigError(scenario.name, f"{where}.capacity_gb: must be 1..{MAX_SIZE_GB}")
        if spec.price_per_gb_month < 0:
            raise ConfigError(scenario.name, f"{where}.price_per_gb_month: must not be negative")
        conn.execute(
            "INSERT OR REPLACE INTO vault_billing(vault_id, object_type, size_gb, "
            "charging_mode, status, auto_bind, price_per_gb_month, created) "
            "VALUES (?,?,?, 'post_paid', 'available', ?,?,?)",
            (
                spec.id,
                spec.object_type,
                spec.capacity_gb,
                int(spec.auto_bind),
                str(spec.price_per_gb_month),
                ts(now),
            ),
        )
        for name in spec.resources:
            _seed_binding(
                conn, scenario, f"{where}.resources", spec.id, spec.object_type, name, ids
            )
            bind(conn, spec.id, ids[name], OBJECT_TYPES[spec.object_type], now)


def _seed_binding(
    conn: sqlite3.Connection,
    scenario: Scenario,
    where: str,
    vault_id: str,
    object_type: str,
    name: str,
    ids: dict[str, str],
) -> None:
    rid = ids.get(name)
    if rid is None:
        raise ConfigError(scenario.name, f"{where}: no server or disk named {name!r}")
    is_server = conn.execute("SELECT 1 FROM servers WHERE id=?", (rid,)).fetchone() is not None
    if (object_type == "server") != is_server:
        raise ConfigError(
            scenario.name, f"{where}: {name!r} cannot be bound to a {object_type} vault"
        )
    other = vault_holding(conn, rid)
    if other is not None:
        raise ConfigError(scenario.name, f"{where}: {name!r} is already bound to vault {other}")
