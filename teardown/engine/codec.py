"""Plan <-> JSON for the journal (and, later, plan files), validated on the way back in."""

from __future__ import annotations

import hashlib
import json

from pydantic import TypeAdapter, ValidationError

from teardown.core.errors import InputError
from teardown.core.model import Plan

_PLAN = TypeAdapter(Plan)


def plan_to_json(plan: Plan) -> str:
    """Canonical JSON (sorted keys, no spaces) so equal plans have equal digests."""
    return json.dumps(_PLAN.dump_python(plan, mode="json"), sort_keys=True, separators=(",", ":"))


def plan_digest(plan_json: str) -> str:
    return hashlib.sha256(plan_json.encode()).hexdigest()


def plan_from_json(text: str, source: str) -> Plan:
    """Parse a plan written by ``plan_to_json``; InputError naming ``source`` otherwise."""
    try:
        return _PLAN.validate_json(text)
    except ValidationError as e:
        first = e.errors()[0]
        loc = ".".join(str(x) for x in first["loc"]) or "(top level)"
        raise InputError(source, f"invalid plan at {loc}: {first['msg']}") from None
