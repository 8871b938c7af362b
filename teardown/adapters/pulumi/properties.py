"""The properties of one resource in Pulumi state, read and checked one field at a time:
names, tags, billing (``chargingMode``, ``orderId``, ``expiredTime``, ``autoRenew``),
addresses, a server's disks (``volumeAttacheds``), a disk's attachment, and the resource's
hooks (``resourceHooks``).

The property names are those of the pulumi-huaweicloud provider (camelCase schema names),
read from ``outputs`` and falling back to ``inputs``. Secret values are treated as absent.
:class:`PropertyReader` holds the position for error messages; :mod:`.state` walks the
document with it.
"""

from __future__ import annotations

import ipaddress
import json
from datetime import UTC, datetime

from teardown.core.errors import StateError
from teardown.core.model import Address, Billing, BillingMode, Disk, Kind

SECRET_SIG_KEY = "4dabf18193072939515e22adb298388d"
"""The key Pulumi puts in every serialized secret value (with ``ciphertext`` or ``plaintext``),
and in its other special values: assets, archives, resource references, and the byte strings
of the ``byteString`` feature (strings that are not UTF-8). All of them read as absent."""

_DEFAULT_MODE: dict[Kind, BillingMode] = {
    Kind.SERVER: BillingMode.POST_PAID,  # the provider's default chargingMode
    Kind.VOLUME: BillingMode.POST_PAID,
    Kind.ADDRESS: BillingMode.POST_PAID,
    Kind.NETWORK: BillingMode.FREE,
    Kind.UNKNOWN: BillingMode.UNKNOWN,
}

_MODES: dict[str, BillingMode] = {
    "prepaid": BillingMode.PRE_PAID,
    "postpaid": BillingMode.POST_PAID,
    "spot": BillingMode.SPOT,
}

EMPTY: dict[str, object] = {}

HOOKS_KEY = "resourceHooks"
"""Where the engine stores a resource's hooks (``apitype.ResourceV3.ResourceHooks``)."""

HOOK_TYPES: tuple[str, ...] = (
    "BeforeCreate",
    "AfterCreate",
    "BeforeUpdate",
    "AfterUpdate",
    "BeforeDelete",
    "AfterDelete",
    "OnError",
)
"""The engine's hook types (``resource.HookType`` in sdk/go/common/resource/resource_hooks.go),
spelled as they are stored under :data:`HOOKS_KEY`."""


def is_secret(value: object) -> bool:
    return type(value) is dict and SECRET_SIG_KEY in value


def type_name(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return "an object"


def parse_time(text: str) -> datetime | None:
    """ISO 8601 or ``YYYY-MM-DD HH:MM:SS`` -> aware UTC; naive times are taken as UTC."""
    try:
        t = datetime.fromisoformat(text.strip())
        if t.tzinfo is None:
            return t.replace(tzinfo=UTC)
        return t.astimezone(UTC)
    except (ValueError, OverflowError):
        return None


class PropertyReader:
    """Reads one resource's fields; every problem is a StateError naming the position."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.where = ""
        """The part of the document being read (``deployment``, ``checkpoint.latest``...)."""
        self.index: int | None = None
        """The index of the resource being read, if any (positions are formatted on failure)."""
        self.urn: str | None = None

    def fail(self, problem: str) -> StateError:
        where = self.where
        if self.index is not None:
            where = f"{where}.resources[{self.index}]"
            if self.urn is not None:
                where = f"{where} ({self.urn})"
        prefix = f"{where}: " if where else ""
        return StateError(self.source, prefix + problem)

    # -- per-resource fields -----------------------------------------------------------------

    def hooks(self, item: dict[str, object]) -> tuple[tuple[str, tuple[str, ...]], ...]:
        """``resourceHooks`` (the engine's ``map[HookType][]string``): an object of lists of hook
        names, checked; (hook type, names) pairs sorted by type, empty lists left out. Hook types
        teardown does not know (the engine may add some) are kept as they are."""
        value = item.get(HOOKS_KEY)
        if value is None:
            return ()
        if not isinstance(value, dict):
            raise self.fail(
                f"'{HOOKS_KEY}' is {type_name(value)}, expected an object of hook type -> "
                "hook names"
            )
        out: list[tuple[str, tuple[str, ...]]] = []
        for hook_type, names in value.items():
            if names is None:
                continue
            if not isinstance(names, list):
                raise self.fail(
                    f"'{HOOKS_KEY}.{hook_type}' is {type_name(names)}, "
                    "expected a list of hook names"
                )
            for j, name in enumerate(names):
                if not isinstance(name, str):
                    raise self.fail(
                        f"'{HOOKS_KEY}.{hook_type}[{j}]' is {type_name(name)}, expected a hook name"
                    )
            if names:
                out.append((hook_type, tuple(names)))
        out.sort()
        return tuple(out)

    def props(self, item: dict[str, object], key: str) -> dict[str, object]:
        value = item.get(key)
        if value is None or is_secret(value):
            return EMPTY
        if not isinstance(value, dict):
            raise self.fail(f"'{key}' is {type_name(value)}, expected an object")
        return value

    def get(self, outputs: dict[str, object], inputs: dict[str, object], key: str) -> object:
        """The property from outputs, else inputs; a secret (or null) is absent (None)."""
        value = outputs.get(key)
        if value is None:
            value = inputs.get(key)
        if type(value) is dict and SECRET_SIG_KEY in value:
            return None
        return value

    def opt_str(
        self,
        outputs: dict[str, object],
        inputs: dict[str, object],
        key: str,
        *,
        strict: bool = True,
    ) -> str | None:
        value = self.get(outputs, inputs, key)
        if value is None or value == "":
            return None
        if isinstance(value, str):
            return value
        if strict:
            raise self.fail(f"'{key}' is {type_name(value)}, expected a string")
        return None

    def opt_size(self, value: object, what: str) -> int | None:
        if value is None or is_secret(value):
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(f"'{what}' is {type_name(value)}, expected a size in GB")
        if isinstance(value, float):
            if not value.is_integer():
                raise self.fail(f"'{what}' is {value!r}, expected a whole number of GB")
            value = int(value)
        if value < 0:
            raise self.fail(f"'{what}' is negative ({value})")
        return value

    def tags(
        self, outputs: dict[str, object], inputs: dict[str, object], *, strict: bool
    ) -> tuple[tuple[str, str], ...]:
        value = self.get(outputs, inputs, "tags")
        if value is None:
            return ()
        if not isinstance(value, dict):
            if strict:
                raise self.fail(f"'tags' is {type_name(value)}, expected an object")
            return ()
        pairs: list[tuple[str, str]] = []
        for k, v in value.items():
            if v is None or is_secret(v):
                continue
            if not isinstance(v, str):
                if strict:
                    raise self.fail(f"tag {k!r} is {type_name(v)}, expected a string")
                continue
            pairs.append((k, v))
        pairs.sort()
        return tuple(pairs)

    def billing(self, kind: Kind, outputs: dict[str, object], inputs: dict[str, object]) -> Billing:
        if kind is Kind.NETWORK:
            return Billing(mode=BillingMode.FREE)
        strict = kind is not Kind.UNKNOWN
        mode = _DEFAULT_MODE.get(kind, BillingMode.UNKNOWN)
        text = self.opt_str(outputs, inputs, "chargingMode", strict=strict)
        if text is not None:
            found = _MODES.get(text.lower())
            if found is not None:
                mode = found
            elif strict:
                raise self.fail(
                    f"'chargingMode' is {text!r}, expected one of prePaid, postPaid, spot"
                )
        if not strict and mode is BillingMode.UNKNOWN:
            return Billing()
        order_id = self.opt_str(outputs, inputs, "orderId", strict=strict)
        expires_at: datetime | None = None
        expired = self.opt_str(outputs, inputs, "expiredTime", strict=strict)
        if expired is not None:
            expires_at = parse_time(expired)
            if expires_at is None and strict:
                raise self.fail(f"'expiredTime' {expired!r} is not a date and time")
        return Billing(
            mode=mode,
            order_id=order_id,
            expires_at=expires_at,
            auto_renew=self.auto_renew(outputs, inputs, strict=strict),
        )

    def auto_renew(
        self, outputs: dict[str, object], inputs: dict[str, object], *, strict: bool
    ) -> bool:
        value = self.get(outputs, inputs, "autoRenew")
        if value is None or value == "":
            return False
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        if strict:
            raise self.fail(f'\'autoRenew\' is {json.dumps(value)}, expected "true" or "false"')
        return False

    def addresses(
        self, kind: Kind, outputs: dict[str, object], inputs: dict[str, object]
    ) -> tuple[Address, ...]:
        if kind is Kind.ADDRESS:
            ip = self.opt_str(outputs, inputs, "address") or self.opt_str(
                outputs, inputs, "publicIp"
            )
            return (Address(ip, public=True),) if ip else ()
        if kind is not Kind.SERVER:
            return ()
        found: dict[str, bool] = {}
        public_ip = self.opt_str(outputs, inputs, "publicIp")
        access = self.opt_str(outputs, inputs, "accessIpV4")
        if access is not None:
            found[access] = access == public_ip or _is_global(access)
        if public_ip is not None:
            found[public_ip] = True
        for key in ("networks", "network"):
            nets = self.get(outputs, inputs, key)
            if nets is None:
                continue
            if not isinstance(nets, list):
                raise self.fail(f"'{key}' is {type_name(nets)}, expected a list")
            for net in nets:
                if not isinstance(net, dict):
                    continue
                fixed = net.get("fixedIpV4")
                if isinstance(fixed, str) and fixed and fixed not in found:
                    found[fixed] = _is_global(fixed)
        return tuple(Address(ip, public) for ip, public in found.items())

    def server_disks(
        self,
        outputs: dict[str, object],
        inputs: dict[str, object],
        volume_by_id: dict[str, str],
    ) -> tuple[Disk, ...]:
        disks: dict[str, Disk] = {}
        system_id = self.opt_str(outputs, inputs, "systemDiskId")
        if system_id is not None:
            size = self.opt_size(self.get(outputs, inputs, "systemDiskSize"), "systemDiskSize")
            disks[system_id] = Disk(id=system_id, size_gb=size, system=True, bound=True)
        attached = self.get(outputs, inputs, "volumeAttacheds")
        if attached is None:
            return tuple(disks.values())
        if not isinstance(attached, list):
            raise self.fail(f"'volumeAttacheds' is {type_name(attached)}, expected a list")
        for j, entry in enumerate(attached):
            if is_secret(entry):
                continue
            if not isinstance(entry, dict):
                raise self.fail(f"'volumeAttacheds[{j}]' is {type_name(entry)}, expected an object")
            vid = entry.get("volumeId")
            if is_secret(vid):
                continue
            if not isinstance(vid, str) or not vid:
                raise self.fail(f"'volumeAttacheds[{j}]' has no 'volumeId'")
            size = self.opt_size(entry.get("size"), f"volumeAttacheds[{j}].size")
            system = entry.get("isSysVolume")
            if system is not None and not isinstance(system, bool):
                raise self.fail(
                    f"'volumeAttacheds[{j}].isSysVolume' is {type_name(system)}, "
                    "expected true or false"
                )
            if system or vid == system_id:
                known = disks.get(vid)
                disks[vid] = Disk(
                    id=vid,
                    size_gb=size if size is not None else (known.size_gb if known else None),
                    system=True,
                    bound=True,
                )
            elif vid not in disks:
                disks[vid] = Disk(id=vid, size_gb=size, bound=vid not in volume_by_id)
        return tuple(disks.values())

    def volume_attachment(
        self,
        outputs: dict[str, object],
        inputs: dict[str, object],
        server_by_id: dict[str, str],
    ) -> tuple[str | None, str | None]:
        """(URN of the server in state it is attached to, device name), each None if unknown."""
        attachments = self.get(outputs, inputs, "attachments")
        if attachments is None:
            return None, None
        if not isinstance(attachments, list):
            raise self.fail(f"'attachments' is {type_name(attachments)}, expected a list")
        first_device: str | None = None
        for entry in attachments:
            if not isinstance(entry, dict):
                continue
            device = entry.get("device")
            device = device if isinstance(device, str) and device else None
            first_device = first_device or device
            for key in ("instanceId", "serverId"):
                sid = entry.get(key)
                if isinstance(sid, str) and sid in server_by_id:
                    return server_by_id[sid], device
        return None, first_device


_PRIVATE_PREFIXES = ("10.", "192.168.", "127.")


def _is_global(ip: str) -> bool:
    """Whether ``ip`` is a globally routable address (common private prefixes short-cut)."""
    if ip.startswith(_PRIVATE_PREFIXES):
        return False
    try:
        return ipaddress.ip_address(ip).is_global
    except ValueError:
        return False
