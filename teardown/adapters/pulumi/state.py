"""Read Pulumi state: the JSON of ``pulumi stack export`` and checkpoints of the file backend.

Two shapes are accepted, both of version 3:

* an export: ``{"version": 3, "deployment": {"manifest": ..., "resources": [...]}}``
* a checkpoint: ``{"version": 3, "checkpoint": {"stack": "org/proj/dev", "latest": {...}}}``;
  ``latest`` is null or missing for a stack that was never deployed (zero resources).

Each resource becomes a :class:`teardown.core.model.Resource`; its kind comes from a provider's
:class:`teardown.ports.provider.Catalog` (Huawei Cloud's by default). Properties are read from
``outputs`` (Pulumi schema names, camelCase), falling back to ``inputs`` when a key is absent; the
ones read (``chargingMode``, ``volumeAttacheds``, ``attachments``...) are those of the
pulumi-huaweicloud provider, the only cloud whose resources are read so far.

Secrets (values carrying Pulumi's secret signature) are never decrypted, copied, printed or
stored: a secret field is treated as absent.

Every malformed input raises :class:`StateError` with one line naming the problem; no other
exception escapes for any JSON input. The work is one ``json.loads`` and linear passes over the
resources, so a 10,000-resource state reads in a few tens of milliseconds.
"""

from __future__ import annotations

import gc
import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from teardown.adapters.huawei.catalog import CATALOG as HUAWEI
from teardown.adapters.pulumi.properties import (
    EMPTY,
    PropertyReader,
    parse_time,
    type_name,
)
from teardown.core.errors import StateError
from teardown.core.model import Disk, Kind, Resource
from teardown.ports.provider import Catalog

SUPPORTED_VERSIONS: tuple[int, ...] = (3,)
"""Deployment/checkpoint versions this reader understands."""

STACK_TYPE = "pulumi:pulumi:Stack"
PROVIDER_TYPE_PREFIX = "pulumi:providers:"

_FLAGS = ("delete", "custom", "external", "protect", "pendingReplacement", "retainOnDelete")


@dataclass(frozen=True)
class StackState:
    """What a state file holds, as the model sees it."""

    stack: str | None
    """The stack's name (``dev``), from the checkpoint or from the Stack resource's URN."""
    project: str | None
    resources: tuple[Resource, ...]
    """Resources in state order (without the stack, providers, components and deleted ones)."""
    skipped: tuple[str, ...]
    """URNs read but not modelled: the stack resource, providers, component resources,
    external (read-only) resources and resources pending deletion."""


def read_state(path: Path, catalog: Catalog = HUAWEI) -> StackState:
    """Read and parse a state file; a missing or unreadable file is a :class:`StateError`."""
    try:
        data = path.read_bytes()
    except OSError as e:
        raise StateError(str(path), f"cannot read the file: {e.strerror or e}") from None
    return parse_state(data, str(path), catalog)


def parse_state(text: str | bytes, source: str, catalog: Catalog = HUAWEI) -> StackState:
    """Parse an export or checkpoint (version 3); ``source`` names the input in errors."""
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
    urn: str
    name: str
    type: str
    kind: Kind
    outputs: dict[str, object]
    inputs: dict[str, object]
    cloud_id: str | None
    dependencies: tuple[str, ...]
    protected: bool
    retain: bool
    deleted_with: str | None
    created: datetime | None


class _Reader(PropertyReader):
    """One parse: walks the document; the fields of each resource are read by the base."""

    def __init__(self, source: str, catalog: Catalog) -> None:
        super().__init__(source)
        self.catalog = catalog

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
                return StackState(stack=stack, project=project, resources=(), skipped=())
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
        return self.resources(raw, stack, project)

    # -- resources ---------------------------------------------------------------------------

    def resources(self, raw: list[object], stack: str | None, project: str | None) -> StackState:
        # Pass 1: validate identity, classify, index servers and volumes by cloud id.
        entries: list[_Entry] = []
        skipped: list[str] = []
        seen: set[str] = set()
        stack_urn: str | None = None
        first_urn: str | None = None
        for i, item in enumerate(raw):
            self.index, self.urn = i, None
            urn, rtype = self.identity(item)
            assert isinstance(item, dict)
            first_urn = first_urn or urn
            if item.get("delete") is True:
                skipped.append(urn)
                continue
            if urn in seen:
                raise self.fail("the same URN appears twice")
            seen.add(urn)
            if rtype == STACK_TYPE:
                stack_urn = stack_urn or urn
                skipped.append(urn)
                continue
            if (
                rtype.startswith(PROVIDER_TYPE_PREFIX)
                or item.get("custom") is False
                or item.get("external") is True
            ):
                skipped.append(urn)
                continue
            entries.append(self.entry(i, item, urn, rtype))
        out = self.build_all(entries)
        if stack is None or project is None:
            parts = _urn_parts(stack_urn or first_urn or "")
            if parts is not None:
                stack = stack or parts[0]
                project = project or parts[1]
        return StackState(
            stack=stack, project=project, resources=tuple(out), skipped=tuple(skipped)
        )

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

    def entry(self, index: int, item: dict[str, object], urn: str, rtype: str) -> _Entry:
        """A modelled resource's fields, checked (dependencies, deletedWith, creation time,
        property maps, cloud id), and its kind from the catalog."""
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
        return _Entry(
            index=index,
            urn=urn,
            name=parts[2],
            type=rtype,
            kind=self.catalog.kind_of(rtype),
            outputs=outputs,
            inputs=inputs,
            cloud_id=cloud_id,
            dependencies=tuple(deps),
            protected=item.get("protect") is True,
            retain=item.get("retainOnDelete") is True,
            deleted_with=deleted_with or None,
            created=parse_time(created) if created else None,
        )

    def build_all(self, entries: list[_Entry]) -> list[Resource]:
        """Pass 2: one Resource per entry, servers with their disks and volumes with the
        server they are attached to; pass 3: volumes whose server lists them."""
        server_by_id: dict[str, str] = {}
        volume_by_id: dict[str, str] = {}
        for e in entries:
            if e.cloud_id is not None and e.kind is Kind.SERVER:
                server_by_id.setdefault(e.cloud_id, e.urn)
            elif e.cloud_id is not None and e.kind is Kind.VOLUME:
                volume_by_id.setdefault(e.cloud_id, e.urn)
        out: list[Resource] = []
        orphan_volumes: list[int] = []
        attached_to: dict[str, str] = {}  # volume URN -> server URN, from the servers' disks
        for e in entries:
            self.index, self.urn = e.index, e.urn
            disks: tuple[Disk, ...] = ()
            parent: str | None = None
            if e.kind is Kind.SERVER:
                disks = self.server_disks(e.outputs, e.inputs, volume_by_id)
                for disk in disks:
                    if not disk.bound:
                        attached_to.setdefault(volume_by_id[disk.id], e.urn)
            elif e.kind is Kind.VOLUME:
                parent, device = self.volume_attachment(e.outputs, e.inputs, server_by_id)
                size = self.opt_size(self.get(e.outputs, e.inputs, "size"), "size")
                if e.cloud_id is not None:
                    disks = (Disk(id=e.cloud_id, size_gb=size, bound=False, device=device),)
                if parent is None:
                    orphan_volumes.append(len(out))
            out.append(self.build(e, disks, parent))
        for n in orphan_volumes:
            server_urn = attached_to.get(out[n].urn)
            if server_urn is not None:
                out[n] = replace(out[n], parent=server_urn)
        return out

    def build(self, e: _Entry, disks: tuple[Disk, ...], parent: str | None) -> Resource:
        strict = e.kind is not Kind.UNKNOWN
        return Resource(
            urn=e.urn,
            type=e.type,
            kind=e.kind,
            name=self.opt_str(e.outputs, e.inputs, "name", strict=strict) or e.name,
            cloud_id=e.cloud_id,
            tags=self.tags(e.outputs, e.inputs, strict=strict),
            disks=disks,
            addresses=self.addresses(e.kind, e.outputs, e.inputs),
            billing=self.billing(e.kind, e.outputs, e.inputs),
            parent=parent,
            dependencies=e.dependencies,
            protected=e.protected,
            retain=e.retain,
            deleted_with=e.deleted_with,
            created_at=e.created,
        )


def resource_from_outputs(
    urn: str,
    type_: str,
    outputs: Mapping[str, Any] | None,
    inputs: Mapping[str, Any] | None = None,
) -> Resource:
    """One resource as the state reader maps it, from what a Pulumi resource hook receives
    (``ResourceHookArgs``: urn, type, old outputs/inputs). Secrets stay unread."""
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
    state = parse_state(json.dumps(doc, default=str), f"resource {urn}")
    return state.resources[0]
