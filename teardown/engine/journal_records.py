"""What the journal stores, as records: its schema, and the rows of runs, steps, artifacts,
billing and events read back as typed values (:mod:`.journal` reads and writes them)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from teardown.core.model import Artifact, Origin, StepKind
from teardown.core.phases import RunPhase, StepStatus
from teardown.ports import RefundRecord

SCHEMA_VERSION = 2
"""2: artifacts record what they are a copy of (``meta``: origin, host key, disks, files)."""

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY, scope TEXT NOT NULL, phase TEXT NOT NULL,
    plan_json TEXT NOT NULL, plan_digest TEXT NOT NULL,
    created_at TEXT NOT NULL, updated_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS resources (
    run_id TEXT NOT NULL REFERENCES runs(id), urn TEXT NOT NULL, phase TEXT NOT NULL,
    detail TEXT NOT NULL DEFAULT '', updated_at TEXT NOT NULL, PRIMARY KEY (run_id, urn));
CREATE TABLE IF NOT EXISTS steps (
    run_id TEXT NOT NULL REFERENCES runs(id), step_id TEXT NOT NULL, urn TEXT NOT NULL,
    kind TEXT NOT NULL, status TEXT NOT NULL, attempt INTEGER NOT NULL,
    idem_key TEXT NOT NULL, intent_at TEXT, outcome_at TEXT, error TEXT,
    result TEXT NOT NULL DEFAULT '{}', PRIMARY KEY (run_id, step_id));
CREATE TABLE IF NOT EXISTS artifacts (
    run_id TEXT NOT NULL, step_id TEXT NOT NULL, urn TEXT NOT NULL, kind TEXT NOT NULL,
    ref TEXT NOT NULL, verified INTEGER NOT NULL, survives INTEGER NOT NULL,
    size INTEGER NOT NULL, sha256 TEXT, detail TEXT NOT NULL, created_at TEXT NOT NULL,
    meta TEXT NOT NULL DEFAULT '{}', PRIMARY KEY (run_id, step_id));
CREATE TABLE IF NOT EXISTS billing (
    run_id TEXT NOT NULL, step_id TEXT NOT NULL, urn TEXT NOT NULL, order_ids TEXT NOT NULL,
    refund TEXT NOT NULL, consumed TEXT NOT NULL, fee TEXT NOT NULL, currency TEXT NOT NULL,
    created_at TEXT NOT NULL, PRIMARY KEY (run_id, step_id));
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT, run_id TEXT NOT NULL, at TEXT NOT NULL,
    type TEXT NOT NULL, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS locks (
    scope TEXT PRIMARY KEY, run_id TEXT NOT NULL, pid INTEGER NOT NULL, host TEXT NOT NULL,
    acquired_at TEXT NOT NULL, heartbeat_at TEXT NOT NULL);
"""


@dataclass(frozen=True)
class RunRecord:
    id: str
    scope: str
    phase: RunPhase
    plan_json: str
    plan_digest: str
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class StepRecord:
    run_id: str
    step_id: str
    urn: str
    kind: StepKind
    status: StepStatus
    attempt: int
    idem_key: str
    intent_at: datetime | None
    outcome_at: datetime | None
    error: str | None
    result: dict[str, Any]


@dataclass(frozen=True)
class EarlierArtifact:
    """A verified artifact found in the journal, with the run that made it and when."""

    artifact: Artifact
    run_id: str
    made_at: datetime


@dataclass(frozen=True)
class BillingRecord:
    step_id: str
    urn: str
    refund: RefundRecord


@dataclass(frozen=True)
class EventRecord:
    id: int
    run_id: str
    at: datetime
    type: str
    data: dict[str, Any]


def ts(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def artifact_meta(art: Artifact) -> str:
    o = art.origin
    return json.dumps(
        {
            "origin": {
                "account": o.account,
                "resource_id": o.resource_id,
                "created_at": o.created_at,
                "spec": o.spec,
            },
            "host_key": art.host_key,
            "covers": list(art.covers),
            "files": art.files,
            "refused": list(art.refused),
        },
        sort_keys=True,
    )


def artifact_of(row: tuple[Any, ...]) -> Artifact:
    """An artifact from ``kind, ref, verified, survives, size, sha256, detail, meta``."""
    try:
        meta = json.loads(row[7] or "{}")
        o = meta.get("origin") or {}
        origin = Origin(
            account=str(o.get("account", "")),
            resource_id=str(o.get("resource_id", "")),
            created_at=str(o.get("created_at", "")),
            spec=str(o.get("spec", "")),
        )
    except (ValueError, AttributeError):
        meta, origin = {}, Origin()  # unreadable: an unknown origin never matches a plan
    files = meta.get("files")
    return Artifact(
        row[0],
        row[1],
        bool(row[2]),
        bool(row[3]),
        row[4],
        row[5],
        row[6],
        origin=origin,
        host_key=str(meta.get("host_key", "")),
        covers=tuple(str(x) for x in meta.get("covers", ())),
        files=files if isinstance(files, int) else None,
        refused=tuple(str(x) for x in meta.get("refused", ())),
    )


ARTIFACT_COLUMNS = "kind, ref, verified, survives, size, sha256, detail, meta"
