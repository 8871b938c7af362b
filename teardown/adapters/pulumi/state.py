"""Read Pulumi state: the JSON of ``pulumi stack export`` and checkpoints of the file backend.

Two shapes are accepted, of version 3 or 4 (docs/pulumi-state.md says what each field means):

* an export: ``{"version": 3, "deployment": {"manifest": ..., "resources": [...]}}``
* a checkpoint: ``{"version": 3, "checkpoint": {"stack": "org/proj/dev", "latest": {...}}}``;
  ``latest`` is null or missing for a stack that was never deployed (zero resources).

The engine writes version 4, with ``"features": [...]`` next to ``version``, as soon as one
resource uses a feature older engines cannot read (``"hooks"`` for resource hooks); the
deployment itself has the same shape. A feature not in :data:`KNOWN_FEATURES` is refused, as the
engine refuses it; ``features`` on version 3 is refused too (the engine never writes it).

Each resource becomes a :class:`teardown.core.model.Resource`; its kind comes from a provider's
:class:`teardown.ports.provider.Catalog` (Huawei Cloud's by default), with ``[types] kinds``
over it (:func:`with_kinds`). Properties are read from ``outputs`` (Pulumi schema names,
camelCase), falling back to ``inputs`` when a key is absent; the ones read (``chargingMode``,
``volumeAttacheds``, ``attachments``...) are those of the pulumi-huaweicloud provider, the only
cloud whose resources are read so far. ``resourceHooks`` is kept on each resource.

Not modelled (listed in ``skipped``, with the reason in ``skip_reasons``): the stack, providers,
component resources, external (read-only) resources, and ``pendingReplacement`` entries (the
engine already deleted them in the cloud, delete-before-replace). ``delete: true`` entries, old
copies of a replaced resource that still exist in the cloud, are modelled; when the URN has
other entries too (the live replacement), under the key ``<URN>#pending-delete:<cloud id>``
(:func:`pending_delete_key`).

Secrets (values carrying Pulumi's secret signature) are never decrypted, copied, printed or
stored: a secret field is treated as absent.

Every malformed input raises :class:`StateError` with one line naming the problem; no other
exception escapes for any JSON input. The work is one ``json.loads`` and linear passes over the
resources, so a 10,000-resource state reads in a few tens of milliseconds.
"""

from __future__ import annotations

import gc
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, replace
from datetime import datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any, TypeVar

from teardown.adapters.huawei.catalog import CATALOG as HUAWEI
from teardown.adapters.pulumi.properties import (
    EMPTY,
    PropertyReader,
    parse_time,
    type_name,
)
from teardown.core.errors import ConfigError, StateError
from teardown.core.model import Billing, Disk, Kind, Resource
from teardown.ports.provider import Catalog

SUPPORTED_VERSIONS: tuple[int, ...] = (3, 4)
"""Deployment/checkpoint versions this reader understands: 3, and 4 (the same deployment, with
``features``; ``DeploymentSchemaVersionLatest`` in pkg/resource/stack/deployment.go)."""

KNOWN_FEATURES: frozenset[str] = frozenset(
    {
        "hooks",
        "taint",
        "views",
        "refreshBeforeUpdate",
        "replaceWith",
        "snippets-prototype",
        "extensionParameterization",
        "byteString",
    }
)
"""The engine's deployment features (``supportedFeatures`` in pkg/resource/stack/deployment.go),
each of which adds fields this reader does not need, or special values it reads as absent
(``byteString``). A version-4 document naming another feature is refused."""

STACK_TYPE = "pulumi:pulumi:Stack"
PROVIDER_TYPE_PREFIX = "pulumi:providers:"

PENDING_DELETE_MARK = "#pending-delete:"
"""Between the URN and the cloud id in the key of a ``delete: true`` entry."""

TEARDOWN_HOOK_PREFIXES: tuple[str, ...] = ("teardown-before-delete-", "teardown-after-delete-")
"""How the names of teardown's hooks begin (``teardown.pulumi.teardown_hooks`` with its default
``name``)."""

_FLAGS = ("delete", "custom", "external", "protect", "pendingReplacement", "retainOnDelete")

_SKIP_STACK = "the stack itself"
_SKIP_PROVIDER = "a provider"
_SKIP_COMPONENT = "a component resource: nothing in the cloud of its own (its children are read)"
_SKIP_EXTERNAL = "external: read by the stack, not managed by it"
_SKIP_PENDING_REPLACEMENT = (
    "pendingReplacement: the engine already deleted it in the cloud (delete-before-replace); "
    "the entry waits for its replacement"
)
ROUTINE_SKIPS = frozenset({_SKIP_STACK, _SKIP_PROVIDER, _SKIP_COMPONENT})
"""Skip reasons every stack has (not worth a line in a plan)."""
_SKIP_NO_ID = "delete: true without a cloud id: nothing in the cloud to back up or delete"

_T = TypeVar("_T")
_NO_HOST: tuple[str | None, str | None] = (None, None)


@dataclass(frozen=True)
class StackState:
    """What a state file holds, as the model sees it."""

    stack: str | None
    """The stack's name (``dev``), from the checkpoint or from the Stack resource's URN."""
    project: str | None
    resources: tuple[Resource, ...]
    """Resources in state order (without those in ``skipped``); an old copy pending deletion
    (``delete: true``) is one of them, keyed by :func:`pending_delete_key`."""
    skipped: tuple[str, ...]
    """URNs read but not modelled: the stack resource, providers, component resources,
    external (read-only) resources, resources the engine already deleted
    (``pendingReplacement``), and old copies (``delete: true``) with no cloud id or repeating
    another entry's cloud resource."""
    skip_reasons: tuple[tuple[str, str], ...] = ()
    """(URN, why) for each of ``skipped``, in the same order."""
    features: tuple[str, ...] = ()
    """The document's ``features`` (version 4), as written."""


def pending_delete_key(urn: str, cloud_id: str) -> str:
    """The :attr:`Resource.urn` of a ``delete: true`` entry when its URN has other entries (the
    live replacement, which keeps the plain URN, or other copies): the URN, then the cloud id.
    A hook that receives an old copy's URN and id finds the copy's plan entry under this key
    (or, for the only entry of its URN, under the URN)."""
    return f"{urn}{PENDING_DELETE_MARK}{cloud_id}"


def engine_urn(resource: Resource) -> str:
    """The URN the Pulumi engine knows ``resource`` by (for ``--target``, ``pulumi state``):
    :attr:`Resource.urn` without the pending-delete suffix. Targeting that URN also deletes its
    pending-delete copies."""
    if resource.pending_delete and resource.cloud_id:
        suffix = PENDING_DELETE_MARK + resource.cloud_id
        if resource.urn.endswith(suffix):
            return resource.urn[: -len(suffix)]
    return resource.urn


def hook_names(resource: Resource, hook_type: str) -> tuple[str, ...]:
    """The names of ``resource``'s hooks of ``hook_type`` (``BeforeDelete``...), in order."""
    for kind, names in resource.hooks:
        if kind == hook_type:
            return names
    return ()


def has_teardown_hooks(
    resource: Resource, prefixes: tuple[str, ...] = TEARDOWN_HOOK_PREFIXES
) -> bool:
    """Whether one of ``resource``'s hooks is teardown's (its name begins with one of
    ``prefixes``)."""
    return any(n.startswith(prefixes) for _, names in resource.hooks for n in names)


@dataclass(frozen=True)
class KindsOverlay(Catalog):
    """A provider's catalog with ``[types] kinds`` over it (:func:`with_kinds`)."""

    declared: frozenset[str] = frozenset()
    """The type tokens the config gave: their properties are read leniently (the provider's
    property schema may not apply to them)."""


def with_kinds(catalog: Catalog | None, kinds: Mapping[str, Kind | str]) -> Catalog:
    """``catalog`` (None: Huawei Cloud's, the reader's default) with ``kinds`` (type token ->
    kind, from ``[types] kinds``) over it: what a state's or a hook's resource of those types
    is. Without ``kinds``, ``catalog`` itself. An unknown kind name is a ConfigError naming
    the key."""
    base = HUAWEI if catalog is None else catalog
    if not kinds:
        return base
    names = {k.value for k in Kind}
    given: dict[str, Kind] = {}
    for token, kind in kinds.items():
        if not isinstance(kind, str) or kind not in names:
            raise ConfigError(
                "[types] kinds",
                f"{token!r} = {kind!r} is not a kind (one of {', '.join(k.value for k in Kind)})",
            )
        given[token] = Kind(kind)
    declared = frozenset(given)
    if isinstance(base, KindsOverlay):
        declared |= base.declared
    values: dict[str, Any] = {f.name: getattr(base, f.name) for f in fields(Catalog)}
    values["kinds"] = MappingProxyType({**base.kinds, **given})
    return KindsOverlay(**values, declared=declared)


def read_state(path: Path, catalog: Catalog = HUAWEI) -> StackState:
    """Read and parse a state file; a missing or unreadable file is a :class:`StateError`."""
    try:
        data = path.read_bytes()
    except OSError as e:
        raise StateError(str(path), f"cannot read the file: {e.strerror or e}") from None
    return parse_state(data, str(path), catalog)


def parse_state(text: str | bytes, source: str, catalog: Catalog = HUAWEI) -> StackState:
    """Parse an export or checkpoint (version 3 or 4); ``source`` names the input in errors."""
    # JSON data holds no reference cycles, so the cyclic collector finds nothing to free while
    # a large state is parsed; pausing it saves about a third of the time at 10,000 resources.
    paused = gc.isenabled()
    gc.disable()
    try:
        return _parse(text, source, catalog)
    finally:
        if paused:
            gc.enable()


def _parse(text: str | bytes, source: str, catalog: Catalog) -> StackState:
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        raise StateError(
            source, f"not valid JSON: {e.msg} at line {e.lineno} column {e.colno}"
        ) from None
    except UnicodeDecodeError as e:
        raise StateError(source, f"not valid JSON: not UTF-8 text ({e.reason})") from None
    except RecursionError:
        raise StateError(source, "not valid JSON: nested too deeply") from None
    except ValueError as e:
        raise StateError(source, f"not valid JSON: {e}") from None
    return _Reader(source, catalog).document(doc)


def _urn_parts(urn: str) -> tuple[str, str, str] | None:
    """(stack, project, name) of ``urn:pulumi:<stack>::<project>::<type>::<name>``, or None."""
    if not urn.startswith("urn:pulumi:"):
        return None
    parts = urn[len("urn:pulumi:") :].split("::", 3)
    if len(parts) != 4 or not all(parts):
        return None
    return parts[0], parts[1], parts[3]


@dataclass(frozen=True, slots=True)
class _Entry:
    """A resource that passed the first pass; refers to (does not copy) its property maps."""

    index: int
    key: str
    """The Resource's ``urn``: the URN, or :func:`pending_delete_key` for a ``delete: true``
    entry."""
    urn: str
    name: str
    type: str
    kind: Kind
    strict: bool
    """Whether the provider's property schema applies (a type from its catalog): a field of the
    wrong shape is then an error; otherwise it counts as absent."""
    outputs: dict[str, object]
    inputs: dict[str, object]
    cloud_id: str | None
    dependencies: tuple[str, ...]
    protected: bool
    retain: bool
    deleted_with: str | None
    created: datetime | None
    hooks: tuple[tuple[str, tuple[str, ...]], ...]
    pending_delete: bool


class _Reader(PropertyReader):
    """One parse: walks the document; the fields of each resource are read by the base."""

    def __init__(self, source: str, catalog: Catalog) -> None:
        super().__init__(source)
        self.catalog = catalog
        self.declared: frozenset[str] = (
            catalog.declared if isinstance(catalog, KindsOverlay) else frozenset()
        )

    # -- document level ----------------------------------------------------------------------

    def document(self, doc: object) -> StackState:
        if not isinstance(doc, dict):
            raise self.fail(f"top level is {type_name(doc)}, expected a JSON object")
        supported = ", ".join(str(v) for v in SUPPORTED_VERSIONS)
        if "version" not in doc:
            raise self.fail(
                "no 'version' field; expected the output of 'pulumi stack export' "
                f"(supported versions: {supported})"
            )
        version = doc["version"]
        if type(version) is not int or version not in SUPPORTED_VERSIONS:
            shown = type_name(version) if isinstance(version, dict | list) else json.dumps(version)
            if len(shown) > 40:
                shown = shown[:37] + "..."
            raise self.fail(f"unsupported version {shown} (supported versions: {supported})")
        features = self.features(doc, version)

        stack: str | None = None
        project: str | None = None
        if "deployment" in doc:
            self.where = "deployment"
            snapshot = doc["deployment"]
            if not isinstance(snapshot, dict):
                raise self.fail(f"is {type_name(snapshot)}, expected an object")
            base = "deployment"
        elif "checkpoint" in doc:
            self.where = "checkpoint"
            checkpoint = doc["checkpoint"]
            if not isinstance(checkpoint, dict):
                raise self.fail(f"is {type_name(checkpoint)}, expected an object")
            name = checkpoint.get("stack")
            if name is not None:
                if not isinstance(name, str) or not name:
                    raise self.fail(f"'stack' is {type_name(name)}, expected a stack name")
                segments = name.split("/")
                stack = segments[-1] or None
                if len(segments) == 3 and segments[1]:
                    project = segments[1]
            snapshot = checkpoint.get("latest")
            if snapshot is None:
                return StackState(
                    stack=stack, project=project, resources=(), skipped=(), features=features
                )
            self.where = "checkpoint.latest"
            if not isinstance(snapshot, dict):
                raise self.fail(f"is {type_name(snapshot)}, expected an object")
            base = "checkpoint.latest"
        else:
            raise self.fail(
                "neither 'deployment' (a 'pulumi stack export') nor 'checkpoint' "
                "(a file-backend checkpoint) is present"
            )

        raw = snapshot.get("resources")
        if raw is None:
            raw = []
        self.where = base
        if not isinstance(raw, list):
            raise self.fail(f"'resources' is {type_name(raw)}, expected a list")
        return replace(self.resources(raw, stack, project), features=features)

    def features(self, doc: dict[str, Any], version: int) -> tuple[str, ...]:
        """The top-level ``features``: only on version 4 (the engine writes version 4 exactly
        when there are features), a list of names, each one teardown knows."""
        if "features" not in doc:
            return ()
        raw = doc["features"]
        if version < 4:
            raise self.fail(
                f"'features' on a version {version} document: the engine writes features only "
                "with version 4"
            )
        if raw is None:
            return ()
        if type(raw) is not list or not all(type(f) is str for f in raw):
            raise self.fail(f"'features' is {type_name(raw)}, expected a list of feature names")
        unknown = [f for f in dict.fromkeys(raw) if f not in KNOWN_FEATURES]
        if unknown:
            shown = [json.dumps(f if len(f) <= 40 else f[:37] + "...") for f in unknown[:5]]
            more = f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
            known = ", ".join(sorted(KNOWN_FEATURES, key=str.lower))
            raise self.fail(
                f"uses deployment feature{'s' if len(unknown) > 1 else ''} teardown does not "
                f"know: {', '.join(shown)}{more} (known: {known}); a newer Pulumi wrote it"
            )
        return tuple(raw)

    # -- resources ---------------------------------------------------------------------------

    def resources(self, raw: list[object], stack: str | None, project: str | None) -> StackState:
        # Pass 1: validate identity, classify, index servers and volumes by cloud id.
        entries: list[_Entry] = []
        skipped: list[tuple[int, str, str]] = []
        seen: set[str] = set()
        count: dict[str, int] = {}  # entries of each URN, skipped ones included
        live_ids: dict[str, str | None] = {}
        stack_urn: str | None = None
        first_urn: str | None = None
        for i, item in enumerate(raw):
            self.index, self.urn = i, None
            urn, rtype = self.identity(item)
            assert isinstance(item, dict)
            hooks = self.hooks(item)  # checked on every entry, skipped ones too
            first_urn = first_urn or urn
            count[urn] = count.get(urn, 0) + 1
            pending_delete = item.get("delete") is True
            if not pending_delete:
                # As the engine: one live entry per URN; old copies (delete: true) may repeat it.
                if urn in seen:
                    raise self.fail("the same URN appears twice")
                seen.add(urn)
            why = self.skip_reason(item, rtype)
            if why is not None:
                if rtype == STACK_TYPE and not pending_delete:
                    stack_urn = stack_urn or urn
                skipped.append((i, urn, why))
                continue
            entry = self.entry(i, item, urn, rtype, pending_delete, hooks)
            if not pending_delete:
                live_ids[urn] = entry.cloud_id
            elif entry.cloud_id is None:
                skipped.append((i, urn, _SKIP_NO_ID))
                continue
            entries.append(entry)
        entries = self.key_copies(entries, count, live_ids, skipped)
        out = self.build_all(entries)
        if stack is None or project is None:
            parts = _urn_parts(stack_urn or first_urn or "")
            if parts is not None:
                stack = stack or parts[0]
                project = project or parts[1]
        skipped.sort(key=lambda s: s[0])
        return StackState(
            stack=stack,
            project=project,
            resources=tuple(out),
            skipped=tuple(u for _, u, _ in skipped),
            skip_reasons=tuple((u, w) for _, u, w in skipped),
        )

    @staticmethod
    def skip_reason(item: dict[str, object], rtype: str) -> str | None:
        """Why an entry is not modelled, or None when it is."""
        if rtype == STACK_TYPE:
            return _SKIP_STACK
        if rtype.startswith(PROVIDER_TYPE_PREFIX):
            return _SKIP_PROVIDER
        if item.get("custom") is False:
            return _SKIP_COMPONENT
        if item.get("external") is True:
            return _SKIP_EXTERNAL
        if item.get("pendingReplacement") is True:
            return _SKIP_PENDING_REPLACEMENT
        return None

    @staticmethod
    def key_copies(
        entries: list[_Entry],
        count: dict[str, int],
        live_ids: dict[str, str | None],
        skipped: list[tuple[int, str, str]],
    ) -> list[_Entry]:
        """The key of each old copy (``delete: true``): its URN when it is the only entry of
        that URN (what the engine then holds under it), else :func:`pending_delete_key`. A copy
        that is the same cloud resource as the live entry of its URN, or as an earlier copy, is
        skipped: each cloud resource is modelled once."""
        keys: set[str] = set()
        out: list[_Entry] = []
        for e in entries:
            if e.pending_delete and count[e.urn] > 1 and e.cloud_id is not None:
                e = replace(e, key=pending_delete_key(e.urn, e.cloud_id))
                if e.cloud_id == live_ids.get(e.urn):
                    skipped.append((e.index, e.urn, f"the same cloud resource as {e.urn}"))
                    continue
                if e.key in keys:
                    skipped.append((e.index, e.urn, f"the same cloud resource as {e.key}"))
                    continue
                keys.add(e.key)
            out.append(e)
        return out

    def identity(self, item: object) -> tuple[str, str]:
        """The resource's URN and type token, each checked, and its flags' types."""
        if not isinstance(item, dict):
            raise self.fail(f"is {type_name(item)}, expected an object")
        urn = item.get("urn")
        if urn is None:
            raise self.fail("has no 'urn'")
        if not isinstance(urn, str):
            raise self.fail(f"'urn' is {type_name(urn)}, expected a string")
        if _urn_parts(urn) is None:
            raise self.fail(f"'urn' {urn!r} is not a Pulumi URN")
        self.urn = urn
        rtype = item.get("type")
        if rtype is None:
            raise self.fail("has no 'type'")
        if not isinstance(rtype, str) or not rtype:
            raise self.fail(f"'type' is {type_name(rtype)}, expected a type token")
        for flag in _FLAGS:
            value = item.get(flag)
            if value is not None and not isinstance(value, bool):
                raise self.fail(f"'{flag}' is {type_name(value)}, expected true or false")
        return urn, rtype

    def entry(
        self,
        index: int,
        item: dict[str, object],
        urn: str,
        rtype: str,
        pending_delete: bool,
        hooks: tuple[tuple[str, tuple[str, ...]], ...],
    ) -> _Entry:
        """A modelled resource's fields, checked (dependencies, deletedWith, creation time,
        property maps, cloud id, hooks), and its kind from the catalog."""
        deps = item.get("dependencies")
        if deps is None:
            deps = []
        if type(deps) is not list or not all(type(d) is str for d in deps):
            raise self.fail("'dependencies' must be a list of URNs")
        deleted_with = item.get("deletedWith")
        if deleted_with is not None and (
            not isinstance(deleted_with, str) or _urn_parts(deleted_with) is None
        ):
            raise self.fail("'deletedWith' must be the URN of another resource")
        created = item.get("created")
        if created is not None and not isinstance(created, str):
            raise self.fail(f"'created' is {type_name(created)}, expected a time")
        outputs = self.props(item, "outputs")
        inputs = self.props(item, "inputs")
        cloud_id = self.opt_str(outputs, EMPTY, "id")
        if cloud_id is None:
            top = item.get("id")
            if top is not None and not isinstance(top, str):
                raise self.fail(f"'id' is {type_name(top)}, expected a string")
            cloud_id = top or None
        parts = _urn_parts(urn)
        assert parts is not None
        kind = self.catalog.kind_of(rtype)
        return _Entry(
            index=index,
            key=urn,  # an old copy's is set by key_copies
            urn=urn,
            name=parts[2],
            type=rtype,
            kind=kind,
            strict=kind is not Kind.UNKNOWN and rtype not in self.declared,
            outputs=outputs,
            inputs=inputs,
            cloud_id=cloud_id,
            dependencies=tuple(deps),
            protected=item.get("protect") is True,
            retain=item.get("retainOnDelete") is True,
            deleted_with=deleted_with or None,
            created=parse_time(created) if created else None,
            hooks=hooks,
            pending_delete=pending_delete,
        )

    def soft(self, e: _Entry, read: Callable[[_Entry], _T], default: _T) -> _T:
        """``read(e)``; for a resource read leniently (not ``e.strict``), ``default`` where it
        finds a field of the wrong shape."""
        if e.strict:
            return read(e)
        try:
            return read(e)
        except StateError:
            return default

    def build_all(self, entries: list[_Entry]) -> list[Resource]:
        """Pass 2: one Resource per entry, servers with their disks and volumes with the
        server they are attached to; pass 3: volumes whose server lists them."""
        server_by_id: dict[str, str] = {}
        volume_by_id: dict[str, str] = {}
        for e in entries:
            if e.cloud_id is not None and e.kind is Kind.SERVER:
                server_by_id.setdefault(e.cloud_id, e.key)
            elif e.cloud_id is not None and e.kind is Kind.VOLUME:
                volume_by_id.setdefault(e.cloud_id, e.key)
        out: list[Resource] = []
        orphan_volumes: list[int] = []
        attached_to: dict[str, str] = {}  # volume key -> server key, from the servers' disks
        for e in entries:
            self.index, self.urn = e.index, e.urn
            disks: tuple[Disk, ...] = ()
            parent: str | None = None
            if e.kind is Kind.SERVER:
                disks = (
                    self.server_disks(e.outputs, e.inputs, volume_by_id)
                    if e.strict
                    else self.soft(
                        e, lambda x: self.server_disks(x.outputs, x.inputs, volume_by_id), ()
                    )
                )
                for disk in disks:
                    if not disk.bound:
                        attached_to.setdefault(volume_by_id[disk.id], e.key)
            elif e.kind is Kind.VOLUME:
                parent, device = self.soft(
                    e, lambda x: self.volume_attachment(x.outputs, x.inputs, server_by_id), _NO_HOST
                )
                size = self.soft(
                    e, lambda x: self.opt_size(self.get(x.outputs, x.inputs, "size"), "size"), None
                )
                if e.cloud_id is not None:
                    disks = (Disk(id=e.cloud_id, size_gb=size, bound=False, device=device),)
                if parent is None:
                    orphan_volumes.append(len(out))
            out.append(self.build(e, disks, parent))
        for n in orphan_volumes:
            server_key = attached_to.get(out[n].urn)
            if server_key is not None:
                out[n] = replace(out[n], parent=server_key)
        return out

    def build(self, e: _Entry, disks: tuple[Disk, ...], parent: str | None) -> Resource:
        strict = e.strict
        # A type the config declared bills as its outputs say, else unknown: the provider's
        # default charging mode is for its own types.
        money = e.kind if strict or e.kind is Kind.NETWORK else Kind.UNKNOWN
        if strict:
            addresses = self.addresses(e.kind, e.outputs, e.inputs)
            billing = self.billing(money, e.outputs, e.inputs)
        else:
            addresses = self.soft(e, lambda x: self.addresses(x.kind, x.outputs, x.inputs), ())
            billing = self.soft(e, lambda x: self.billing(money, x.outputs, x.inputs), Billing())
        return Resource(
            urn=e.key,
            type=e.type,
            kind=e.kind,
            name=self.opt_str(e.outputs, e.inputs, "name", strict=strict) or e.name,
            cloud_id=e.cloud_id,
            tags=self.tags(e.outputs, e.inputs, strict=strict),
            disks=disks,
            addresses=addresses,
            billing=billing,
            parent=parent,
            dependencies=e.dependencies,
            protected=e.protected,
            retain=e.retain,
            deleted_with=e.deleted_with,
            created_at=e.created,
            hooks=e.hooks,
            pending_delete=e.pending_delete,
        )


def resource_from_outputs(
    urn: str,
    type_: str,
    outputs: Mapping[str, Any] | None,
    inputs: Mapping[str, Any] | None = None,
    catalog: Catalog = HUAWEI,
) -> Resource:
    """One resource as the state reader maps it, from what a Pulumi resource hook receives
    (``ResourceHookArgs``: urn, type, old outputs/inputs). Secrets stay unread. ``catalog``
    gives its kind: pass ``with_kinds(catalog, config.types.kinds)`` so that ``[types] kinds``
    applies as it does to a state file."""
    doc = {
        "version": 3,
        "deployment": {
            "resources": [
                {
                    "urn": urn,
                    "type": type_,
                    "custom": True,
                    "outputs": dict(outputs or {}),
                    "inputs": dict(inputs or {}),
                }
            ]
        },
    }
    state = parse_state(json.dumps(doc, default=str), f"resource {urn}", catalog)
    return state.resources[0]
