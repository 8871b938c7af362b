"""What still costs money in a Huawei Cloud account and region: the Inventory port's ``bills``.

One call reads (nothing is changed):

- BSS ListPayPerUseCustomerResources with ``status_list`` 2 (in use) and 5 (expired: the grace
  period), main resources listed as ``prepaid`` items with their expiry, what happens at expiry
  (``expire_policy``, R28) and, with auto-renew on, when the renewal would be charged (R25); bound
  children are billed with their main resource and not listed;
- ECS ListServersDetails: servers whose ``metadata.charging_mode`` is 0 (pay-per-use) or 2
  (spot), as ``hourly`` items;
- EVS ListVolumes: disks with no ``metadata.orderID`` (only yearly/monthly disks have one) that
  BSS does not list either, as ``hourly`` items;
- CBR ListVaults: every vault, as a ``storage`` item with the GB in use (``billing.used`` is in
  MB); a pay-per-use vault bills by its capacity for every hour it exists, backups or not
  (docs/huawei-api.md, "CBR");
- BSS ListCustomerOrders with status 6: orders pending payment, as ``order`` items;
- EIP ListPublicips (through the inventory's ``_eips``): pay-per-use public IPs, as ``hourly``
  items (:func:`eip_items`; yearly/monthly ones are among the subscriptions).

Prices are not in these APIs: ``hourly_price`` and ``monthly_price`` stay None here.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from huaweicloudsdkcbr.v1 import ListVaultRequest
from huaweicloudsdkevs.v2 import ListVolumesRequest

from teardown.adapters.huawei._bss import BssReader
from teardown.adapters.huawei._parse import parse_time
from teardown.adapters.huawei.clients import Clients
from teardown.adapters.huawei.errors import ApiCaller
from teardown.adapters.huawei.rules import AUTO_RENEW_POLICY, BillingRules, auto_renew_charge_at
from teardown.ports import BillItem
from teardown.support.retry import RetryPolicy

IN_USE, EXPIRED = 2, 5
"""BSS subscription statuses that still bill: in use, and expired (the grace period, R26)."""
PENDING_PAYMENT = 6
PAY_PER_USE_MODES = frozenset({"0", "2"})
"""ECS ``metadata.charging_mode``: 0 pay-per-use, 2 spot (1 is prepaid)."""
PAGE = 1000
MB_PER_GB = 1024

EXPIRY_OUTCOMES: dict[int, str] = {
    0: "release",
    1: "to_pay_per_use",
    2: "release",
    3: "auto_renew",
    4: "release",
    5: "release",
}
"""BSS ``expire_policy`` (R28: 0 grace period, 1 switch to pay-per-use, 2 delete, 3 auto-renew,
4 freeze, 5 delete from retention) -> what a bill says happens at expiry: ``release`` (it stops
billing, after the grace and retention periods for 0, 4 and 5), ``to_pay_per_use`` (it goes on
billing by the hour) or ``auto_renew`` (it is charged for another period)."""

KINDS: dict[str, str] = {
    "hws.resource.type.vm": "server",
    "hws.resource.type.volume": "volume",
    "hws.resource.type.ip": "eip",
    "hws.resource.type.bandwidth": "bandwidth",
}
"""BSS ``resource_type_code`` -> a bill's ``kind`` (others: the code without its prefix)."""
TYPE_PREFIX = "hws.resource.type."


def expiry_outcome(policy: int | None) -> str | None:
    """What happens at expiry under BSS ``expire_policy`` ``policy`` (None: unknown)."""
    return None if policy is None else EXPIRY_OUTCOMES.get(int(policy))


def next_renewal_charge(
    expires: datetime, now: datetime, rules: BillingRules | None = None
) -> datetime:
    """When auto-renew next charges (R25), in UTC: the deduction date, or once it has passed
    without success, the next daily retry at the same hour."""
    charge = auto_renew_charge_at(expires, rules or BillingRules()).astimezone(UTC)
    if charge < now:
        charge += timedelta(days=-((charge - now) // timedelta(days=1)))
    return charge


def kind_of(resource_type_code: str | None) -> str:
    code = str(resource_type_code or "")
    return KINDS.get(code, code.removeprefix(TYPE_PREFIX) or "unknown")


def _utcnow() -> datetime:
    return datetime.now(UTC)


class BillReader(ApiCaller):
    """Reads everything that bills in the profile's account and region.

    Example::

        inv = HuaweiInventory(Clients(profile))
        items = BillReader(Clients(profile)).bills(inv._list_servers, inv._eips)
        hourly = [b for b in items if b.charging == "hourly"]
    """

    def __init__(
        self,
        clients: Clients,
        *,
        sleep: Callable[[float], None] = time.sleep,
        retry: RetryPolicy | None = None,
        clock: Callable[[], datetime] = _utcnow,
        rules: BillingRules | None = None,
    ) -> None:
        super().__init__(clients, sleep=sleep, retry=retry)
        self._bss = BssReader(clients, sleep=sleep, retry=retry)
        self._clock = clock
        self._rules = rules or BillingRules()

    def bills(
        self,
        servers: Callable[[], Iterable[Any]],
        eips: Callable[[], Iterable[Any]] | None = None,
    ) -> list[BillItem]:
        """Prepaid subscriptions in force, pay-per-use servers (``servers`` reads them all: the
        inventory's paged ECS listing) and disks, public IPs (when ``eips`` reads them), vaults
        and orders pending payment, in that order."""
        subs = [r for r in self._bss.subscriptions([IN_USE, EXPIRED]) if self._in_region(r)]
        billed_by_bss = {str(r.resource_id) for r in subs}
        vaults = self._vaults()
        vault_ids = {str(v.id) for v in vaults}
        mains = [r for r in subs if r.is_main_resource == 1]
        prepaid = [self._prepaid(r) for r in mains if str(r.resource_id) not in vault_ids]
        by_vault = {str(r.resource_id): r for r in mains if str(r.resource_id) in vault_ids}
        return [
            *prepaid,
            *self._servers(servers()),
            *self._volumes(billed_by_bss),
            # EIPS: the one place public IPs join the bill (see eip_items).
            *(eip_items(eips(), billed_by_bss) if eips is not None else []),
            *(self._vault(v, by_vault.get(str(v.id))) for v in vaults),
            *self._orders(),
        ]

    def _page(self, operation: str, method: Callable[[Any], Any], req: Any) -> Any:
        """One page of a paged read (retried: it only reads)."""
        return self._read(operation, lambda: method(req))

    # -- prepaid ---------------------------------------------------------------------------

    def _in_region(self, row: Any) -> bool:
        region = getattr(row, "region_code", None)
        return not region or region == self.clients.profile.region

    def _prepaid(self, row: Any) -> BillItem:
        policy = None if row.expire_policy is None else int(row.expire_policy)
        expires = parse_time(row.expire_time)
        renew = policy == AUTO_RENEW_POLICY
        return BillItem(
            resource_id=str(row.resource_id),
            kind=kind_of(row.resource_type_code),
            name=str(row.resource_name or row.resource_id),
            charging="prepaid",
            expires_at=expires,
            auto_renew=renew,
            expire_policy=expiry_outcome(policy),
            next_charge=(
                next_renewal_charge(expires, self._clock(), self._rules)
                if renew and expires is not None
                else None
            ),
        )

    # -- pay-per-use -----------------------------------------------------------------------

    @staticmethod
    def _servers(servers: Iterable[Any]) -> list[BillItem]:
        """The pay-per-use (and spot) servers among ``servers`` (ECS ``ServerDetail``)."""
        return [
            BillItem(str(s.id), "server", str(s.name), charging="hourly")
            for s in servers
            if str((s.metadata or {}).get("charging_mode", "")) in PAY_PER_USE_MODES
        ]

    def _volumes(self, billed_by_bss: set[str]) -> list[BillItem]:
        out: list[BillItem] = []
        offset = 0
        while True:
            resp = self._page(
                "evs.ListVolumes",
                self.clients.evs.list_volumes,
                ListVolumesRequest(limit=PAGE, offset=offset),
            )
            volumes = list(resp.volumes or [])
            offset += len(volumes)
            for v in volumes:
                if (v.metadata or {}).get("orderID") or str(v.id) in billed_by_bss:
                    continue  # yearly/monthly: billed by its order
                server = next((a.server_id for a in v.attachments or [] if a.server_id), None)
                out.append(
                    BillItem(
                        resource_id=str(v.id),
                        kind="volume",
                        name=str(v.name or v.id),
                        charging="hourly",
                        size_gb=float(v.size) if v.size is not None else None,
                        parent_id=str(server) if server else None,
                    )
                )
            if not volumes or offset >= int(resp.count or 0):
                return out

    # -- vaults ----------------------------------------------------------------------------

    def _vaults(self) -> list[Any]:
        out: list[Any] = []
        offset = 0
        while True:
            resp = self._page(
                "cbr.ListVault",
                self.clients.cbr.list_vault,
                ListVaultRequest(limit=PAGE, offset=offset),
            )
            vaults = list(resp.vaults or [])
            out.extend(vaults)
            offset += len(vaults)
            if not vaults or offset >= int(resp.count or 0):
                return out

    def _vault(self, vault: Any, sub: Any | None) -> BillItem:
        """A vault, with its subscription when it is prepaid (BSS lists it under its id)."""
        billing = vault.billing
        used_mb = (billing.used if billing is not None else None) or 0
        prepaid = self._prepaid(sub) if sub is not None else None
        return BillItem(
            resource_id=str(vault.id),
            kind="vault",
            name=str(vault.name or vault.id),
            charging="storage",
            size_gb=round(float(used_mb) / MB_PER_GB, 3),
            capacity_gb=float(billing.size) if billing is not None and billing.size else None,
            expires_at=prepaid.expires_at if prepaid else None,
            auto_renew=prepaid.auto_renew if prepaid else False,
            expire_policy=prepaid.expire_policy if prepaid else None,
            next_charge=prepaid.next_charge if prepaid else None,
        )

    # -- orders ----------------------------------------------------------------------------

    def _orders(self) -> list[BillItem]:
        out: list[BillItem] = []
        for o in self._bss.orders(status=PENDING_PAYMENT):
            info, _lines = self._bss.order_details(o.order_id)
            out.append(
                BillItem(
                    resource_id=str(o.order_id),
                    kind="order",
                    name=f"order {o.order_id} ({o.service_type_name or o.service_type_code})",
                    charging="order",
                    expires_at=parse_time(info.pending_payment_end_time if info else None),
                )
            )
        return out


def eip_items(eips: Iterable[Any], billed_by_bss: set[str]) -> list[BillItem]:
    """Pay-per-use public IPs as ``hourly`` items (those BSS lists are prepaid and already
    billed as subscriptions). Reads the EIP SDK's v3 ``PublicipSingleShowResp`` or v2
    ``PublicipShowResp``: an EIP with ``billing_info`` (v3) or an order in ``profile`` (v2) is
    yearly/monthly."""
    out: list[BillItem] = []
    for e in eips:
        eid = str(getattr(e, "id", "") or "")
        if not eid or eid in billed_by_bss or getattr(e, "billing_info", None):
            continue
        profile = getattr(e, "profile", None)
        if profile is not None and getattr(profile, "order_id", None):
            continue
        parent = getattr(e, "associate_instance_id", None) or None
        out.append(
            BillItem(
                resource_id=eid,
                kind="eip",
                name=str(getattr(e, "public_ip_address", None) or getattr(e, "alias", None) or eid),
                charging="hourly",
                parent_id=str(parent) if parent else None,
            )
        )
    return out


__all__ = [
    "EXPIRY_OUTCOMES",
    "BillReader",
    "eip_items",
    "expiry_outcome",
    "kind_of",
    "next_renewal_charge",
]
