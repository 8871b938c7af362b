"""ECS and EVS resource tags: ShowServerTags, BatchCreateServerTags, BatchDeleteServerTags
(``/v1/{project_id}/cloudservers/{server_id}/tags[/action]``) and ShowVolumeTags,
BatchCreateVolumeTags, BatchDeleteVolumeTags (``/v2/{project_id}/cloudvolumes/{volume_id}/tags
[/action]``), as the official SDK calls them.

From the ECS API reference ("Adding Tags to an ECS in a Batch"): ``action`` is ``create`` or
``delete`` in lower case; an ECS holds at most 10 tags; a key has 1 to 36 characters, a value
at most 43, and neither contains ASCII 0-31 or ``=*<>\\,|/``; creating is idempotent, and a key
that exists with another value is overwritten. Assumptions where the reference is silent: the
answer to both actions is 204 with no body; deleting a tag that is not there succeeds; a request
that would leave more than 10 tags is 400 ``Ecs.0005`` / ``EVS.2001`` and changes nothing; the
same limits apply to disks. The tags the sandbox itself shows on a server (``sandbox.ssh_port``,
``sandbox.data``) are listed but are not stored tags and do not count.
"""

from __future__ import annotations

import json
import re
from typing import Any

from teardown.sandbox.http import ApiError, Ctx, Reply, route
from teardown.sandbox.resources import server_row, server_tags, volume_row

MAX_TAGS = 10
MAX_KEY = 36
MAX_VALUE = 43
_FORBIDDEN = re.compile(r"[\x00-\x1f=*<>\\,|/]")
ECS_BAD = "Ecs.0005"
EVS_BAD = "EVS.2001"


def _requested(ctx: Ctx, code: str) -> tuple[str, list[tuple[str, str]]]:
    body = ctx.body()
    action = body.get("action")
    tags = body.get("tags")
    if action not in ("create", "delete"):
        raise ApiError(400, code, "action must be create or delete")
    if not isinstance(tags, list) or not tags:
        raise ApiError(400, code, "tags must be a non-empty list")
    out = []
    for t in tags:
        if not isinstance(t, dict) or not isinstance(t.get("key"), str):
            raise ApiError(400, code, "each tag needs a key")
        key, value = t["key"], t.get("value", "")
        if not isinstance(value, str):
            raise ApiError(400, code, f"tag {key!r}: value must be a string")
        if not 1 <= len(key) <= MAX_KEY or _FORBIDDEN.search(key):
            raise ApiError(400, code, f"tag key {key!r} is invalid")
        if len(value) > MAX_VALUE or _FORBIDDEN.search(value):
            raise ApiError(400, code, f"tag value of {key!r} is invalid")
        out.append((key, value))
    return action, out


def _apply(
    current: dict[str, str], action: str, tags: list[tuple[str, str]], code: str
) -> dict[str, str]:
    updated = dict(current)
    for key, value in tags:
        if action == "create":
            updated[key] = value
        else:
            updated.pop(key, None)
    if len(updated) > MAX_TAGS:
        raise ApiError(400, code, f"a resource holds at most {MAX_TAGS} tags")
    return updated


def _pairs(raw: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for t in raw:
        k, _, v = t.partition("=")
        out[k] = v
    return out


@route("ecs", "GET", "/v1/<project_id>/cloudservers/<server_id>/tags", "ShowServerTags")
def show_server_tags(ctx: Ctx, server_id: str) -> Reply:
    row = server_row(ctx.conn, server_id)
    shown = _pairs(server_tags(ctx.conn, row, ctx.sandbox.data_dir))
    return 200, {"tags": [{"key": k, "value": v} for k, v in shown.items()]}


@route("ecs", "POST", "/v1/<project_id>/cloudservers/<server_id>/tags/action", "BatchServerTags")
def server_tags_action(ctx: Ctx, server_id: str) -> Reply:
    row = server_row(ctx.conn, server_id)
    action, tags = _requested(ctx, ECS_BAD)
    updated = _apply(_pairs(json.loads(row["tags"])), action, tags, ECS_BAD)
    stored = [f"{k}={v}" for k, v in updated.items()]
    ctx.conn.execute("UPDATE servers SET tags=? WHERE id=?", (json.dumps(stored), server_id))
    return 204, None


@route("evs", "GET", "/v2/<project_id>/cloudvolumes/<volume_id>/tags", "ShowVolumeTags")
def show_volume_tags(ctx: Ctx, volume_id: str) -> Reply:
    row = volume_row(ctx.conn, volume_id)
    tags: dict[str, Any] = json.loads(row["tags"])
    return 200, {"tags": [{"key": k, "value": str(v)} for k, v in tags.items()]}


@route("evs", "POST", "/v2/<project_id>/cloudvolumes/<volume_id>/tags/action", "BatchVolumeTags")
def volume_tags_action(ctx: Ctx, volume_id: str) -> Reply:
    row = volume_row(ctx.conn, volume_id)
    action, tags = _requested(ctx, EVS_BAD)
    current = {str(k): str(v) for k, v in json.loads(row["tags"]).items()}
    updated = _apply(current, action, tags, EVS_BAD)
    ctx.conn.execute("UPDATE volumes SET tags=? WHERE id=?", (json.dumps(updated), volume_id))
    return 204, None
