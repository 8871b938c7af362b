"""Selectors re-checked on our side: a resource enters a plan only if what the cloud returned
for it matches every selector given (I1b, I3), whatever filter was sent."""

from __future__ import annotations

from collections.abc import Sequence

from teardown.core.model import Kind, Resource


def matches(resource: Resource, ids: Sequence[str], tags: Sequence[tuple[str, str]]) -> bool:
    """True when ``resource`` is one of ``ids`` (if any were given) and carries every tag."""
    if ids and resource.cloud_id not in ids:
        return False
    return all(resource.tag(k) == v for k, v in tags)


def selected(
    resources: Sequence[Resource], ids: Sequence[str], tags: Sequence[tuple[str, str]]
) -> tuple[list[Resource], list[Resource]]:
    """(kept, dropped): servers that match every selector, with the disks attached to a kept
    server (a disk follows its server); everything else is dropped."""
    servers = {r.urn for r in resources if r.kind is Kind.SERVER and matches(r, ids, tags)}
    kept: list[Resource] = []
    dropped: list[Resource] = []
    for r in resources:
        ok = r.urn in servers or (r.kind is not Kind.SERVER and r.parent in servers)
        (kept if ok else dropped).append(r)
    return kept, dropped


__all__ = ["matches", "selected"]
