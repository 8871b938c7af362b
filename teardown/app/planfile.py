"""Plan files: the reviewed plan, the settings and the inventory facts it relied on, sealed with a
digest. ``teardown apply`` never takes the file's plan on trust: it plans again from the live
inventory and the settings recorded in the file, refuses when the inventory drifted (I5) or when
the result is not the file's plan (a forged or hand-edited plan, even with a recomputed digest),
and runs only a plan equal to the one reviewed. The digest is an integrity check, not authority.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from teardown.core.errors import InputError, PlanChanged
from teardown.core.model import Plan, Resource
from teardown.engine.codec import plan_from_json, plan_to_json

PLAN_FILE_SCHEMA = 1
KIND = "teardown-plan"


def facts(resource: Resource) -> dict[str, Any]:
    """What must not change between review and apply: identity, kind, billing mode and order,
    pending orders, locks, disks, tags (a tag added since, say ``env=prod``, is drift)."""
    b = resource.billing
    return {
        "urn": resource.urn,
        "name": resource.name,
        "kind": resource.kind.value,
        "billing_mode": b.mode.value,
        "order_id": b.order_id,
        "pending_orders": sorted(b.pending_order_ids),
        "locked": b.locked,
        "frozen": b.frozen,
        "disks": sorted(d.id for d in resource.disks),
        "tags": sorted(f"{k}={v}" for k, v in resource.tags),
    }


def plan_facts(plan: Plan) -> dict[str, dict[str, Any]]:
    out = {rp.resource.urn: facts(rp.resource) for rp in plan.resources}
    out |= {s.urn: {"urn": s.urn, "pending_order": s.order_id} for s in plan.pre}
    return out


@dataclass(frozen=True)
class PlanFile:
    """A reviewed plan and how to reproduce its inventory."""

    plan: Plan
    targets: dict[str, Any]
    """How the inventory was read: ``{"servers": [...], "tags": [[k, v], ...]}`` or
    ``{"state": PATH}``."""
    config_text: str
    """The teardown.toml used for the plan (empty: the defaults)."""
    facts: dict[str, dict[str, Any]]
    created_at: str
    digest: str


def write_plan_file(
    path: Path, plan: Plan, targets: dict[str, Any], config_text: str, now: datetime
) -> str:
    """Write the plan file (owner-only); return its digest."""
    plan_json = plan_to_json(plan)
    body = {
        "schema_version": PLAN_FILE_SCHEMA,
        "kind": KIND,
        "created_at": now.isoformat(),
        "targets": targets,
        "config": config_text,
        "facts": plan_facts(plan),
        "plan": json.loads(plan_json),
    }
    digest = _digest(body)
    body["digest"] = digest
    fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(body, f, indent=1, sort_keys=True)
    return digest


def _digest(body: dict[str, Any]) -> str:
    unsealed = {k: v for k, v in body.items() if k != "digest"}
    return hashlib.sha256(json.dumps(unsealed, sort_keys=True).encode()).hexdigest()


def read_plan_file(path: Path) -> PlanFile:
    """Read and check a plan file; InputError naming the file and the problem otherwise."""
    source = str(path)
    try:
        body = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(source, "no such file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(source, f"cannot read: {e}") from None
    except json.JSONDecodeError as e:
        raise InputError(source, f"not valid JSON (line {e.lineno}, column {e.colno})") from None
    except (RecursionError, ValueError) as e:  # absurd nesting, or a number too long to read
        raise InputError(source, f"not valid JSON ({type(e).__name__})") from None
    if not isinstance(body, dict) or body.get("kind") != KIND:
        raise InputError(source, "not a teardown plan file (write one with `teardown plan --out`)")
    if body.get("schema_version") != PLAN_FILE_SCHEMA:
        raise InputError(
            source,
            f"plan file schema {body.get('schema_version')!r}, this teardown reads "
            f"{PLAN_FILE_SCHEMA}",
        )
    if body.get("digest") != _digest(body):
        raise InputError(source, "digest mismatch: the plan file was changed after it was written")
    for key, kind in (("targets", dict), ("facts", dict), ("config", str), ("plan", dict)):
        if not isinstance(body.get(key), kind):
            raise InputError(source, f"{key!r} is missing or has the wrong type")
    plan = plan_from_json(json.dumps(body["plan"]), source)
    return PlanFile(
        plan=plan,
        targets=body["targets"],
        config_text=body["config"],
        facts=body["facts"],
        created_at=str(body.get("created_at", "")),
        digest=str(body["digest"]),
    )


def without_estimates(plan: Plan) -> Plan:
    """``plan`` without its refund estimates: they move with the clock (consumption by the hour)
    and inform, they do not decide (a refusal they cause is a blocker, which is compared)."""
    return replace(plan, resources=tuple(replace(rp, estimate=None) for rp in plan.resources))


def plan_differences(reviewed: Plan, live: Plan) -> list[str]:
    """What differs between the reviewed plan and the one planned now, field by field, named
    by resource (estimates aside). Empty: the same plan."""
    a = json.loads(plan_to_json(without_estimates(reviewed)))
    b = json.loads(plan_to_json(without_estimates(live)))
    lines: list[str] = []
    for key in sorted((a.keys() | b.keys()) - {"resources"}):
        if a.get(key) != b.get(key):
            lines.append(f"~ plan: {key} was {_short(a.get(key))}, now {_short(b.get(key))}")
    mine = {r["resource"]["urn"]: r for r in a.get("resources", [])}
    theirs = {r["resource"]["urn"]: r for r in b.get("resources", [])}
    for urn in sorted(mine.keys() - theirs.keys()):
        lines.append(f"- {mine[urn]['resource']['name']}: in the file, not planned now ({urn})")
    for urn in sorted(theirs.keys() - mine.keys()):
        lines.append(f"+ {theirs[urn]['resource']['name']}: planned now, not in the file ({urn})")
    for urn in sorted(mine.keys() & theirs.keys()):
        old, new = mine[urn], theirs[urn]
        name = new["resource"]["name"]
        for key in sorted(old.keys() | new.keys()):
            if old.get(key) != new.get(key):
                lines.append(
                    f"~ {name}: {key} was {_short(old.get(key))}, now {_short(new.get(key))}"
                )
    return lines


def _short(value: Any, limit: int = 160) -> str:
    text = value if isinstance(value, str | bool | int) else json.dumps(value, sort_keys=True)
    text = str(text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def drift(reviewed: dict[str, dict[str, Any]], live: dict[str, dict[str, Any]]) -> list[str]:
    """Human-readable differences between the reviewed facts and the live ones (I5)."""
    lines: list[str] = []
    for urn in sorted(reviewed.keys() - live.keys()):
        lines.append(f"- {reviewed[urn].get('name', urn)}: gone since the plan ({urn})")
    for urn in sorted(live.keys() - reviewed.keys()):
        lines.append(f"+ {live[urn].get('name', urn)}: new since the plan ({urn})")
    for urn in sorted(reviewed.keys() & live.keys()):
        before, after = reviewed[urn], live[urn]
        for key in sorted(before.keys() | after.keys()):
            if before.get(key) != after.get(key):
                lines.append(
                    f"~ {before.get('name', urn)}: {key} was {before.get(key)!r}, "
                    f"now {after.get(key)!r}"
                )
    return lines


def check_still_valid(reviewed: PlanFile, live: Plan, source: str) -> None:
    """PlanChanged (nothing is changed) when the live inventory moved since the plan was
    reviewed (I5), or the plan in ``source`` is not what its settings give on today's
    inventory: the file's plan is never trusted."""
    changes = drift(reviewed.facts, plan_facts(live))
    if changes:
        raise PlanChanged("the live inventory changed since the plan (I5)", changes)
    forged = plan_differences(reviewed.plan, live)
    if forged:
        raise PlanChanged(
            f"the plan in {source} is not the plan the live inventory and its settings give "
            "(edited after `teardown plan --out`?)",
            forged,
        )
