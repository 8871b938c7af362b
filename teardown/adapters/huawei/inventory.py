"""The Huawei inventory: servers (ECS), their disks (EVS), how they bill (BSS), and unpaid orders.

One run reads: ECS ListServersDetails (by id list or by tags, paged); EVS ListVolumes per server;
EIP ListPublicips per server that has a public (``floating``) address, by the ports of those
addresses; BSS ListPayPerUseCustomerResources once per 50 prepaid ids; ShowCustomerOrderDetails
of each prepaid resource's purchase order; ListCustomerOrders(status=6) and the details of each
pending order, with ListPayPerUseCustomerResources(order_id=) for each (and for its sub-orders:
the resources it touches). Nothing is changed.

An order pending payment touches a resource only through links the API documents: an ECS
server locked by it (``metadata.lockSource`` ORDER, ``lockSourceId`` the order id, e.g.
``lockScene`` TO_PERIOD_LOCK while a pay-per-use server is converted to yearly/monthly), or a
resource ListPayPerUseCustomerResources returns for the order's id. An order line's
``commercial_resource`` is a resource *type* code (``hws.resource.type.vm``) and never names one.

An EIP bound to a server becomes an ADDRESS resource right after the server (and its separately
bought disks), its ``parent`` the server: it bills on its own, by the hour or on its own
yearly/monthly order, until it is released. Every EIP the service returns is checked against
the server itself (bound to one of its ports, with one of its public addresses): a filter the
service ignored never attaches another server's EIP to this one.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from huaweicloudsdkecs.v2 import ListServersDetailsRequest
from huaweicloudsdkeip.v2 import ListPublicipsRequest
from huaweicloudsdkevs.v2 import ListVolumesRequest

from teardown.adapters.huawei._bss import BssReader, discount_coupons
from teardown.adapters.huawei._parse import money, parse_flag, parse_time
from teardown.adapters.huawei.bills import BillReader
from teardown.adapters.huawei.catalog import SERVER_TYPE, VOLUME_TYPE
from teardown.adapters.huawei.clients import Clients
from teardown.adapters.huawei.errors import ApiCaller
from teardown.adapters.huawei.refunds import PROMOTION_DISCOUNT_TYPES
from teardown.adapters.huawei.rules import AUTO_RENEW_POLICY, TO_PAY_PER_USE_POLICY
from teardown.core.billing import Payment, PeriodType, term_months
from teardown.core.model import Address, Billing, BillingMode, Disk, Kind, Resource
from teardown.ports import BillItem, PendingOrder
from teardown.support.retry import RetryPolicy

SERVER_PAGE = 1000
IDS_PER_LIST = 100
"""ListServersDetails ``server_id`` takes a comma-separated list; keep it to about 100 ids."""
PENDING_PAYMENT = 6
EIP_PAGE = 1000
"""ListPublicips page size (``limit``; the next page starts after ``marker``, the last id)."""
EIP_TYPE = "huaweicloud:Vpc/eip:Eip"
"""The Pulumi type token of an EIP (``catalog.TYPE_KINDS``: an ADDRESS)."""

_MODES = {"0": BillingMode.POST_PAID, "1": BillingMode.PRE_PAID, "2": BillingMode.SPOT}
_PERIODS = {2: PeriodType.MONTH, 3: PeriodType.YEAR}


def server_urn(server_id: str) -> str:
    return f"cloud:huawei:ecs:{server_id}"


def volume_urn(volume_id: str) -> str:
    return f"cloud:huawei:evs:{volume_id}"


def eip_urn(eip_id: str) -> str:
    return f"cloud:huawei:eip:{eip_id}"


@dataclass(frozen=True)
class _Sub:
    """What BSS says about one prepaid resource."""

    expires_at: datetime | None
    provisioned_at: datetime | None
    expire_policy: int | None
    is_main: bool
    children: tuple[str, ...]


class HuaweiInventory(ApiCaller):
    """Implements the Inventory port for servers chosen by id or by tags.

    Example::

        inv = HuaweiInventory(Clients(profile))
        resources = inv.resources(tags=[("env", "test")])
    """

    def __init__(
        self,
        clients: Clients,
        *,
        sleep: Callable[[float], None] = time.sleep,
        retry: RetryPolicy | None = None,
    ) -> None:
        super().__init__(clients, sleep=sleep, retry=retry)
        self._bss = BssReader(clients, sleep=sleep, retry=retry)

    # -- servers and disks ---------------------------------------------------------------

    def _servers_page(self, req: Any) -> Any:
        return self._read(
            "ecs.ListServersDetails", lambda: self.clients.ecs.list_servers_details(req)
        )

    def _list_servers(self, **filters: Any) -> list[Any]:
        out: list[Any] = []
        page = 1
        while True:
            req = ListServersDetailsRequest(limit=SERVER_PAGE, offset=page, **filters)
            resp = self._servers_page(req)
            items = list(resp.servers or [])
            out.extend(items)
            if not items or len(out) >= int(resp.count or 0):
                return out
            page += 1

    def _servers(self, server_ids: Sequence[str], tags: Sequence[tuple[str, str]]) -> list[Any]:
        """The servers ECS returns for these selectors, each re-checked here against every
        selector (the id asked for, each tag): a filter the service ignored or widened never
        widens what is selected."""
        wanted_tags = {f"{k}={v}" for k, v in tags}
        if server_ids:
            ids = list(dict.fromkeys(server_ids))
            found: dict[str, Any] = {}
            for i in range(0, len(ids), IDS_PER_LIST):
                for s in self._list_servers(server_id=",".join(ids[i : i + IDS_PER_LIST])):
                    if s.id in ids and s.name is not None:  # a missing id comes back as a stub
                        found[s.id] = s
            servers = [found[i] for i in ids if i in found]
        elif wanted_tags:
            servers = self._list_servers(tags=",".join(sorted(wanted_tags)))
        else:
            servers = self._list_servers()
        return [s for s in servers if wanted_tags <= set(s.tags or [])]

    def _volumes(self, server_id: str) -> dict[str, Any]:
        """The disks EVS reports attached to ``server_id`` (checked on each disk's own
        attachment records, not on the filter)."""
        req = ListVolumesRequest(server_id=server_id, limit=1000)
        resp = self._read("evs.ListVolumes", lambda: self.clients.evs.list_volumes(req))
        return {
            v.id: v
            for v in (resp.volumes or [])
            if any(a.server_id == server_id for a in (v.attachments or []))
        }

    # -- public IPs ----------------------------------------------------------------------

    def _eips_page(self, req: Any) -> Any:
        return self._read("eip.ListPublicips", lambda: self.clients.eip.list_publicips(req))

    def _list_eips(self, **filters: Any) -> list[Any]:
        """Every EIP ListPublicips returns for ``filters``, page by page (``marker`` is the last
        id of the previous page); a page that brings nothing new ends the listing."""
        out: list[Any] = []
        seen: set[str] = set()
        marker: str | None = None
        while True:
            req = ListPublicipsRequest(limit=EIP_PAGE, marker=marker, **filters)
            items = list(self._eips_page(req).publicips or [])
            fresh = [e for e in items if e.id and e.id not in seen]
            out.extend(fresh)
            seen.update(e.id for e in fresh)
            if len(items) < EIP_PAGE or not fresh:
                return out
            marker = items[-1].id

    def _eips(self) -> list[Any]:
        """Every EIP of the account in this region (the SDK's ``PublicipShowResp``), bound or
        not: what :meth:`bills` lists as public IPs."""
        return self._list_eips()

    def _server_eips(self, server: Any) -> list[Any]:
        """The EIPs bound to ``server``: asked for by the ports of its floating addresses (or
        by the address, for one without a port), each checked on its own fields."""
        floating = _floating(server.addresses)
        if not floating:
            return []
        ports = sorted({port for port in floating.values() if port})
        bare = sorted(ip for ip, port in floating.items() if not port)
        found: dict[str, Any] = {}
        if ports:
            found.update((e.id, e) for e in self._list_eips(port_id=ports))
        if bare:
            found.update((e.id, e) for e in self._list_eips(public_ip_address=bare))
        return [e for e in found.values() if _bound_to(e, floating)]

    # -- billing -------------------------------------------------------------------------

    def _subscriptions(self, ids: Sequence[str]) -> dict[str, _Sub]:
        if not ids:
            return {}
        rows = self._bss.resources(ids)
        children: dict[str, list[str]] = {}
        for r in rows:
            if r.parent_resource_id and r.parent_resource_id != r.resource_id:
                children.setdefault(r.parent_resource_id, []).append(r.resource_id)
        return {
            r.resource_id: _Sub(
                expires_at=parse_time(r.expire_time),
                provisioned_at=parse_time(r.effective_time),
                expire_policy=r.expire_policy,
                is_main=r.is_main_resource == 1,
                children=tuple(children.get(r.resource_id, ())),
            )
            for r in rows
        }

    def _payments(self, order_id: str) -> tuple[Payment, ...]:
        info, lines = self._bss.order_details(order_id)
        out: list[Payment] = []
        single = len(lines) == 1
        for line in lines:
            period = _PERIODS.get(line.period_type)
            effective, expires = parse_time(line.effective_time), parse_time(line.expire_time)
            if period is None or not line.period_num or effective is None or expires is None:
                continue  # not a yearly/monthly period: nothing a refund rule applies to
            # One line: the order's amounts are the line's (and carry the discounts).
            src = info if single and info is not None else line
            amounts = src.amount_info
            try:
                out.append(
                    Payment(
                        order_id=order_id,
                        cash=money(src.amount_after_discount),
                        effective=effective,
                        expires=expires,
                        term_months=term_months(period, int(line.period_num)),
                        flexi_coupon=money(amounts and amounts.flexipurchase_coupon_amount),
                        stored_card=money(amounts and amounts.stored_card_amount),
                        cash_coupon=money(amounts and amounts.coupon_amount),
                        discount_coupon=money(
                            sum(
                                (money(d.discount_amount) for d in discount_coupons(amounts)),
                                Decimal(0),
                            )
                        ),
                        promotion=_promotion(amounts),
                    )
                )
            except ValueError:
                continue  # inconsistent dates or amounts: not usable for an estimate
        return tuple(out)

    def pending_orders(self) -> list[PendingOrder]:
        """Every order of the account pending payment (every region: BSS is global), each with
        the resources it touches (see the module docstring) and their regions. The servers of
        the profile's region are read once for their locks; an order that locks one of them is
        in the region, and so is one whose resources are not known (``regions`` empty); an
        order all of whose resources are in other regions is not (``in_region`` False)."""
        # Only what came back counts: an answer that ignored the status filter names its
        # orders' own status.
        orders = [
            o for o in self._bss.orders(status=PENDING_PAYMENT) if o.status == PENDING_PAYMENT
        ]
        if not orders:
            return []
        return self._pending(orders, self._list_servers())

    def _pending(self, orders: Sequence[Any], servers: Sequence[Any]) -> list[PendingOrder]:
        """``orders`` (``CustomerOrderV2``, pending payment) as PendingOrders, their resources
        found through the locks of ``servers`` and ListPayPerUseCustomerResources(order_id=) of
        each order and of its sub-orders (a combined order's ``sub_order_infos``)."""
        locks = _locks(servers)
        here = self.clients.profile.region
        out = []
        for o in orders:
            info, lines = self._bss.order_details(o.order_id)
            own = [str(o.order_id)]
            subs = [str(x.order_id) for x in (o.sub_order_infos or []) if x.order_id]
            own += subs
            lines = [*lines, *(x for sub in subs for x in self._bss.order_details(sub)[1])]
            rows = _rows_of(lines, [r for oid in own for r in self._bss.order_resources(oid)])
            locked = [sid for oid in own for sid in locks.get(oid, ())]
            regions = {str(r.region_code) for r in rows if r.region_code}
            if locked:
                regions.add(here)  # the servers read are the profile's region's
            ids = [*locked, *(str(r.resource_id) for r in rows if r.resource_id)]
            out.append(
                PendingOrder(
                    order_id=o.order_id,
                    amount=money(o.amount_after_discount),
                    resource_ids=tuple(dict.fromkeys(ids)),
                    created=parse_time(o.create_time),
                    pay_by=parse_time(info.pending_payment_end_time if info else None),
                    regions=tuple(sorted(regions)),
                    # No resource to place it (a purchase provisions nothing until paid, and no
                    # order field names a region): it is not known to be another region's.
                    in_region=here in regions or not regions,
                )
            )
        return out

    def bills(self) -> list[BillItem]:
        """Everything that bills in the account and region (:mod:`.bills`), public IPs from
        :meth:`_eips` included."""
        reader = BillReader(self.clients, sleep=self._sleep, retry=self._retry)
        return reader.bills(self._list_servers, eips=self._eips)

    def servers(self, tags: Sequence[tuple[str, str]]) -> list[Resource]:
        """The servers carrying every tag, from the paged ECS listing alone (re-checked against
        each tag): no EVS, EIP or BSS call."""
        account = self.clients.profile.account
        return [
            Resource(
                urn=server_urn(s.id),
                type=SERVER_TYPE,
                kind=Kind.SERVER,
                name=s.name,
                cloud_id=s.id,
                tags=_tags(s.tags),
                account=account,
                created_at=parse_time(s.created),
            )
            for s in self._servers((), tags)
        ]

    # -- the whole inventory -------------------------------------------------------------

    def resources(
        self, server_ids: Sequence[str] = (), tags: Sequence[tuple[str, str]] = ()
    ) -> list[Resource]:
        """The servers with these ids (or all with these tags), each followed by its separately
        bought attached disks as VOLUME resources. Ids that do not exist are left out.

        Raises PermanentError for bad credentials, TransientError when reads keep failing.
        """
        servers = self._servers(server_ids, tags)
        volumes = {s.id: self._volumes(s.id) for s in servers}
        eips = {s.id: self._server_eips(s) for s in servers}
        plans = [_ServerFacts.of(s, volumes[s.id]) for s in servers]
        prepaid = [p.server.id for p in plans if p.mode is BillingMode.PRE_PAID]
        prepaid += [v.id for p in plans for v in p.separate if _order_of(v)]
        prepaid += [e.id for found in eips.values() for e in found if _eip_order(e)]
        orders = self._bss.orders(status=PENDING_PAYMENT)
        pending = self._pending(orders, servers) if orders else []
        facts = _BillingFacts(self._subscriptions(prepaid), pending, self._payments)
        account = self.clients.profile.account
        out: list[Resource] = []
        for p in plans:
            server = _server_resource(p, facts, account)
            out.append(server)
            for v in p.separate:
                out.append(_volume_resource(v, server.urn, facts, account))
            for e in eips[p.server.id]:
                out.append(_eip_resource(e, server.urn, facts, account))
        return out


def _locks(servers: Sequence[Any]) -> dict[str, list[str]]:
    """Order id -> the servers it locks (:func:`server_lock`: a locked server's
    ``metadata.lockSourceId`` when ``lockSource`` is ``ORDER`` or not given)."""
    out: dict[str, list[str]] = {}
    for s in servers:
        _locked, order = server_lock(s)
        if order:
            out.setdefault(order, []).append(str(s.id))
    return out


def _rows_of(lines: Sequence[Any], rows: Sequence[Any]) -> list[Any]:
    """The resource rows that belong to an order whose lines are ``lines``: a row counts when
    the order's own lines name its service and resource type, or when it is a bound child
    (``parent_resource_id``) of one that counts. The rows carry no order id, so an answer that
    ignored the ``order_id`` filter is caught here rather than believed."""
    kinds = {(x.service_type_code, x.commercial_resource) for x in lines}
    mains = [r for r in rows if (r.service_type_code, r.resource_type_code) in kinds]
    ids = {str(r.resource_id) for r in mains}
    children = [
        r
        for r in rows
        if r not in mains and r.parent_resource_id and str(r.parent_resource_id) in ids
    ]
    return [*mains, *children]


def _promotion(amounts: Any) -> bool | None:
    """Whether an order line was bought at a promotional discount (its discount types); None
    when the order does not say (no amount details), so a promotion cannot be ruled out."""
    if amounts is None or amounts.discounts is None:
        return None
    return any(str(d.discount_type) in PROMOTION_DISCOUNT_TYPES for d in amounts.discounts)


@dataclass
class _BillingFacts:
    """What BSS said about the inventory's prepaid resources, turned into each one's Billing
    (the payments of each order are read once, when first needed)."""

    subs: dict[str, _Sub]
    pending: list[PendingOrder]
    read_payments: Callable[[str], tuple[Payment, ...]]
    payments: dict[str, tuple[Payment, ...]] = field(default_factory=dict)

    def billing(
        self,
        cloud_id: str,
        mode: BillingMode,
        order_id: str | None,
        *,
        locked: bool = False,
        lock_order_id: str | None = None,
        frozen: bool = False,
    ) -> Billing:
        sub = self.subs.get(cloud_id)
        if order_id and mode is BillingMode.PRE_PAID and order_id not in self.payments:
            self.payments[order_id] = self.read_payments(order_id)
        family = {cloud_id, *(sub.children if sub else ())}
        return Billing(
            mode=mode,
            order_id=order_id,
            expires_at=sub.expires_at if sub else None,
            auto_renew=bool(sub and sub.expire_policy == AUTO_RENEW_POLICY),
            pending_order_ids=tuple(
                p.order_id for p in self.pending if family & set(p.resource_ids)
            ),
            locked=locked,
            frozen=frozen,
            lock_order_id=lock_order_id if locked else None,
            provisioned_at=sub.provisioned_at if sub else None,
            payments=self.payments.get(order_id or "", ()),
            is_main=sub.is_main if sub else True,
            children=sub.children if sub else (),
            expire_policy=sub.expire_policy if sub else None,
            to_pay_per_use_at_expiry=bool(sub and sub.expire_policy == TO_PAY_PER_USE_POLICY),
        )


def server_lock(server: Any) -> tuple[bool, str | None]:
    """Whether an ECS server is locked, and the order holding the lock. ECS shows an order's
    lock in ``metadata`` (the reference's ServerDetail table 6): ``lockSource`` ``ORDER``,
    ``lockSourceId`` the order id, ``lockScene`` e.g. ``TO_PERIOD_LOCK`` (a pay-per-use server
    being converted to yearly/monthly), ``lockCheckEndpoint``; the keys are there, empty, on a
    server that is not locked. Locked: ``locked`` is true, or ``lockScene``/``lockSourceId`` is
    set. The order: ``lockSourceId`` when ``lockSource`` is ``ORDER`` (or not given, as
    :func:`_locks` reads it); another source's id is not an order's."""
    meta = server.metadata or {}
    source_id = str(meta.get("lockSourceId") or "").strip()
    scene = str(meta.get("lockScene") or "").strip()
    locked = bool(server.locked) or bool(scene or source_id)
    source = str(meta.get("lockSource", "ORDER") or "").strip().upper()
    order = source_id if locked and source_id and source == "ORDER" else None
    return locked, order


def _server_resource(p: _ServerFacts, facts: _BillingFacts, account: str) -> Resource:
    s = p.server
    meta = s.metadata or {}
    locked, lock_order = server_lock(s)
    return Resource(
        urn=server_urn(s.id),
        type=SERVER_TYPE,
        kind=Kind.SERVER,
        name=s.name,
        cloud_id=s.id,
        tags=_tags(s.tags),
        disks=p.disks,
        addresses=_addresses(s.addresses),
        account=account,
        created_at=parse_time(s.created),
        disks_known=p.disks_known,
        billing=facts.billing(
            s.id,
            p.mode,
            meta.get("metering.order_id") or None,
            locked=locked,
            lock_order_id=lock_order,
            frozen=meta.get("EcmResStatus") == "freeze",
        ),
    )


def _volume_resource(v: Any, parent: str, facts: _BillingFacts, account: str) -> Resource:
    """A separately bought disk attached to the server ``parent``."""
    order = _order_of(v)
    return Resource(
        urn=volume_urn(v.id),
        type=VOLUME_TYPE,
        kind=Kind.VOLUME,
        name=v.name or v.id,
        cloud_id=v.id,
        tags=tuple(sorted((str(k), str(x)) for k, x in (v.tags or {}).items())),
        billing=facts.billing(
            v.id, BillingMode.PRE_PAID if order else BillingMode.POST_PAID, order
        ),
        parent=parent,
        account=account,
        created_at=parse_time(v.created_at),
    )


def _eip_resource(e: Any, parent: str, facts: _BillingFacts, account: str) -> Resource:
    """An EIP bound to the server ``parent``: yearly/monthly when it has an order (the API: a
    non-empty ``profile`` means a yearly/monthly EIP), else pay-per-use."""
    order = _eip_order(e)
    address = str(e.public_ip_address or e.public_ipv6_address or e.id)
    return Resource(
        urn=eip_urn(e.id),
        type=EIP_TYPE,
        kind=Kind.ADDRESS,
        name=address,
        cloud_id=e.id,
        addresses=(Address(ip=address, public=True),),
        billing=facts.billing(
            e.id, BillingMode.PRE_PAID if order else BillingMode.POST_PAID, order
        ),
        parent=parent,
        account=account,
        created_at=parse_time(e.create_time),
    )


def _eip_order(eip: Any) -> str | None:
    """A yearly/monthly EIP's order id (``profile.order_id``)."""
    value = eip.profile.order_id if eip.profile is not None else None
    return str(value) if value else None


def _floating(raw: dict[str, Any] | None) -> dict[str, str | None]:
    """A server's public (``floating``) addresses -> the port each is on (None if unsaid)."""
    out: dict[str, str | None] = {}
    for entries in (raw or {}).values():
        for a in entries or []:
            if a.addr and a.os_ext_ip_stype == "floating":
                out[str(a.addr)] = str(a.os_ext_ip_sport_id) if a.os_ext_ip_sport_id else None
    return out


def _bound_to(eip: Any, floating: dict[str, str | None]) -> bool:
    """Whether ``eip`` is bound to the server whose floating addresses are ``floating``: its
    own address is one of them, and it is bound to the port that address is on (any port at
    all when ECS did not name one). Unbound (no ``port_id``) means not bound to this server."""
    ips = [ip for ip in (eip.public_ip_address, eip.public_ipv6_address) if ip in floating]
    if not ips or not eip.port_id:
        return False
    expected = floating[ips[0]]
    return expected is None or str(eip.port_id) == expected


def _order_of(volume: Any) -> str | None:
    """A yearly/monthly disk's order id (only those have ``metadata.orderID``)."""
    value = (volume.metadata or {}).get("orderID")
    return str(value) if value else None


@dataclass(frozen=True)
class _ServerFacts:
    server: Any
    mode: BillingMode
    disks: tuple[Disk, ...]
    separate: tuple[Any, ...]
    """EVS details of attached disks bought separately (their own resources)."""
    disks_known: bool
    """ECS's attachments and EVS's disks attached to the server are the same set, each known."""

    @staticmethod
    def of(server: Any, volumes: dict[str, Any]) -> _ServerFacts:
        meta = server.metadata or {}
        mode = _MODES.get(str(meta.get("charging_mode", "")), BillingMode.UNKNOWN)
        order = meta.get("metering.order_id") or None
        disks: list[Disk] = []
        separate: list[Any] = []
        attached = list(server.os_extended_volumesvolumes_attached or [])
        root = server.os_ext_srv_att_rroot_device_name or None
        ecs_ids = {att.id for att in attached}
        # A disk EVS says is attached but ECS does not list (or the reverse) means one of the
        # two views is incomplete: the union is kept, and no disk is deleted with the server.
        known = bool(attached) and ecs_ids == set(volumes)
        for att in attached:
            v = volumes.get(att.id)
            # ``bootIndex`` "0" is the system disk; an attachment that does not say falls back
            # on EVS's ``bootable`` ("true"/"false", in any case) on the server's root device.
            if att.boot_index is not None:
                system = str(att.boot_index) == "0"
            else:
                system = (
                    v is not None and parse_flag(v.bootable) is True and root in (None, att.device)
                )
            v_order = _order_of(v) if v is not None else None
            bought_alone = not system and (
                (v_order is not None and v_order != order)
                or (v is not None and v_order is None and mode is BillingMode.PRE_PAID)
            )
            disks.append(
                Disk(
                    id=att.id,
                    size_gb=int(v.size) if v is not None and v.size is not None else None,
                    system=system,
                    bound=not bought_alone,
                    device=att.device,
                    delete_on_termination=_flag(att.delete_on_termination),
                )
            )
            if bought_alone:
                separate.append(v)
        for vid in sorted(set(volumes) - ecs_ids):
            # Known only to EVS: a data disk whose binding to the server's order is unproven.
            v = volumes[vid]
            v_order = _order_of(v)
            disks.append(
                Disk(
                    id=vid,
                    size_gb=int(v.size) if v.size is not None else None,
                    bound=False,
                    device=next((a.device for a in v.attachments or [] if a.device), None),
                )
            )
            if v_order is not None and v_order != order:
                separate.append(v)
        disks.sort(key=lambda d: (not d.system, d.device or "", d.id))
        return _ServerFacts(server, mode, tuple(disks), tuple(separate), known)


def _flag(value: Any) -> bool | None:
    """ECS reports ``delete_on_termination`` as the string ``"true"``/``"false"`` (any case)."""
    return parse_flag(value)


def _tags(raw: Sequence[str] | None) -> tuple[tuple[str, str], ...]:
    pairs = []
    for t in raw or []:
        k, sep, v = str(t).partition("=")
        pairs.append((k, v if sep else ""))
    return tuple(sorted(pairs))


def _addresses(raw: dict[str, Any] | None) -> tuple[Address, ...]:
    out: list[Address] = []
    for entries in (raw or {}).values():
        for a in entries or []:
            if a.addr:
                out.append(Address(ip=a.addr, public=a.os_ext_ip_stype == "floating"))
    return tuple(out)


__all__ = ["EIP_TYPE", "SERVER_TYPE", "VOLUME_TYPE", "HuaweiInventory", "PendingOrder"]
