"""Claims on cloud resources (I6 beyond one journal): before a run acts on a server or a disk it
tags it ``teardown:run=<run id>`` and ``teardown:beat=<UTC time>@<host>``, refreshes the beat
while it works, and removes both when it is done with the resource. Another run, from any
machine and any journal, that finds a live claim of a run other than itself refuses. The claim is
visible in the console, where people look.

Tags are the ECS and EVS tag APIs (``/v1/{project_id}/cloudservers/{id}/tags[/action]``,
``/v2/{project_id}/cloudvolumes/{id}/tags[/action]``); keys and values fit their documented
limits (36 and 43 characters).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from functools import partial

from huaweicloudsdkecs.v2 import (
    BatchCreateServerTagsRequest,
    BatchCreateServerTagsRequestBody,
    BatchDeleteServerTagsRequest,
    BatchDeleteServerTagsRequestBody,
    ServerTag,
    ShowServerTagsRequest,
)
from huaweicloudsdkevs.v2 import (
    BatchCreateVolumeTagsRequest,
    BatchCreateVolumeTagsRequestBody,
    BatchDeleteVolumeTagsRequest,
    BatchDeleteVolumeTagsRequestBody,
    DeleteTagsOption,
    ShowVolumeTagsRequest,
    Tag,
)

from teardown.adapters.huawei.errors import ApiCaller, NotFound
from teardown.core.model import Kind, Resource
from teardown.ports import Claim

RUN_KEY = "teardown:run"
BEAT_KEY = "teardown:beat"
BEAT_FORMAT = "%Y%m%dT%H%M%SZ"
VALUE_LIMIT = 43


def beat_value(at: datetime, host: str) -> str:
    """``20261129T220000Z@host`` within the 43 characters a tag value may hold."""
    return f"{at.astimezone(UTC).strftime(BEAT_FORMAT)}@{host}"[:VALUE_LIMIT]


def parse_claim(tags: dict[str, str]) -> Claim | None:
    run_id = tags.get(RUN_KEY)
    if not run_id:
        return None
    beat, _, host = tags.get(BEAT_KEY, "").partition("@")
    try:
        at = datetime.strptime(beat, BEAT_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        at = None
    return Claim(run_id=run_id, host=host, beat=at)


class HuaweiClaims(ApiCaller):
    """Implements the Claims port with ECS server tags and EVS disk tags.

    Example::

        claims = HuaweiClaims(clients)
        claims.claim([web], "20261129T220000Z-a1b2c3", "runner-7", now)
    """

    @staticmethod
    def _taggable(r: Resource) -> bool:
        return r.kind in (Kind.SERVER, Kind.VOLUME) and bool(r.cloud_id)

    def _tags(self, r: Resource) -> dict[str, str] | None:
        """The resource's tags now; None when it no longer exists."""
        try:
            if r.kind is Kind.SERVER:
                resp = self._call(
                    "ecs.ShowServerTags",
                    partial(self.clients.ecs.show_server_tags, ShowServerTagsRequest(r.cloud_id)),
                )
            else:
                resp = self._call(
                    "evs.ShowVolumeTags",
                    partial(self.clients.evs.show_volume_tags, ShowVolumeTagsRequest(r.cloud_id)),
                )
        except NotFound:
            return None
        return {str(t.key): str(t.value or "") for t in (resp.tags or [])}

    def _write(self, r: Resource, action: str, tags: Sequence[tuple[str, str]]) -> None:
        """Create or delete tags on the resource; a resource gone already is nothing to do."""
        try:
            if r.kind is Kind.SERVER:
                server_tags = [ServerTag(key=k, value=v) for k, v in tags]
                if action == "create":
                    self._call(
                        "ecs.BatchCreateServerTags",
                        partial(
                            self.clients.ecs.batch_create_server_tags,
                            BatchCreateServerTagsRequest(
                                r.cloud_id, BatchCreateServerTagsRequestBody(action, server_tags)
                            ),
                        ),
                    )
                else:
                    self._call(
                        "ecs.BatchDeleteServerTags",
                        partial(
                            self.clients.ecs.batch_delete_server_tags,
                            BatchDeleteServerTagsRequest(
                                r.cloud_id, BatchDeleteServerTagsRequestBody(action, server_tags)
                            ),
                        ),
                    )
            elif action == "create":
                self._call(
                    "evs.BatchCreateVolumeTags",
                    partial(
                        self.clients.evs.batch_create_volume_tags,
                        BatchCreateVolumeTagsRequest(
                            r.cloud_id,
                            BatchCreateVolumeTagsRequestBody(
                                action, [Tag(key=k, value=v) for k, v in tags]
                            ),
                        ),
                    ),
                )
            else:
                self._call(
                    "evs.BatchDeleteVolumeTags",
                    partial(
                        self.clients.evs.batch_delete_volume_tags,
                        BatchDeleteVolumeTagsRequest(
                            r.cloud_id,
                            BatchDeleteVolumeTagsRequestBody(
                                action, [DeleteTagsOption(key=k) for k, _v in tags]
                            ),
                        ),
                    ),
                )
        except NotFound:
            return

    def holders(self, resources: Sequence[Resource]) -> dict[str, Claim]:
        """URN -> the claim each resource carries now (resources without one are left out)."""
        out: dict[str, Claim] = {}
        for r in resources:
            if not self._taggable(r):
                continue
            tags = self._tags(r)
            claim = parse_claim(tags) if tags is not None else None
            if claim is not None:
                out[r.urn] = claim
        return out

    def claim(self, resources: Sequence[Resource], run_id: str, host: str, now: datetime) -> None:
        """Write (or refresh) this run's claim on each resource that still exists."""
        tags = [(RUN_KEY, run_id), (BEAT_KEY, beat_value(now, host))]
        for r in resources:
            if self._taggable(r):
                self._write(r, "create", tags)

    def release(self, resources: Sequence[Resource], run_id: str) -> None:
        """Remove this run's claim from each resource that still carries it."""
        for r in resources:
            if not self._taggable(r):
                continue
            tags = self._tags(r)
            if tags is not None and tags.get(RUN_KEY) == run_id:
                self._write(r, "delete", [(RUN_KEY, run_id), (BEAT_KEY, tags.get(BEAT_KEY, ""))])

    def tag(self, resources: Sequence[Resource], tags: Sequence[tuple[str, str]]) -> None:
        """Write ``tags`` on each server or disk that still exists (ECS/EVS tag APIs)."""
        for r in resources:
            if self._taggable(r):
                self._write(r, "create", tags)


__all__ = ["BEAT_KEY", "RUN_KEY", "HuaweiClaims"]
