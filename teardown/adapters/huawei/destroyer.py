"""Deleting pay-per-use servers (ECS DeleteServers + ShowJob) and unsubscribing prepaid
resources (BSS CancelResourcesSubscription type 1, then waiting until ECS/EVS no longer list it).

Called only after the engine has checked I1 (every required backup verified).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from huaweicloudsdkecs.v2 import (
    DeleteServersRequest,
    DeleteServersRequestBody,
    ServerId,
    ShowJobRequest,
    ShowServerRequest,
)
from huaweicloudsdkevs.v2 import ShowVolumeRequest

from teardown.adapters.huawei._bss import UNSUBSCRIBE_RELEASE, BssReader, unsubscribe
from teardown.adapters.huawei.clients import Clients
from teardown.adapters.huawei.errors import ApiCaller, NotFound, call
from teardown.core.errors import PermanentError
from teardown.core.model import BillingMode, DestroyAction, Kind, Resource
from teardown.ports import DestroyResult, Presence
from teardown.support.poll import poll
from teardown.support.retry import RetryPolicy

"""``unsubscribe_type`` 1: the resource and its renewals; the resource is released."""
BSS_CLOSED = 3
GONE_STATUSES = frozenset({"DELETED", "deleted"})
GOING_STATUSES = frozenset({"SOFT_DELETED", "deleting", "error_deleting"})


def _missing(e: NotFound) -> bool:
    """A 404 about the resource itself, not about the API or the project (``APIGW.*``)."""
    return not (e.code or "").startswith("APIGW")


class HuaweiDestroyer(ApiCaller):
    """Implements the Destroyer port.

    Example::

        d = HuaweiDestroyer(clients)
        d.destroy(web1, DestroyAction.DELETE, key="run1-destroy-web-1")
    """

    def __init__(
        self,
        clients: Clients,
        *,
        sleep: Callable[[float], None] = time.sleep,
        poll_interval: float = 2.0,
        timeout: float = 1800.0,
        clock: Callable[[], float] = time.monotonic,
        retry: RetryPolicy | None = None,
    ) -> None:
        super().__init__(clients, sleep=sleep, retry=retry)
        self._interval = poll_interval
        self._timeout = timeout
        self._clock = clock
        self._bss = BssReader(clients, sleep=sleep, retry=retry)

    def _poll(self, what: str, probe: Callable[[], Any | None]) -> Any:
        return poll(
            what,
            probe,
            sleep=self._sleep,
            clock=self._clock,
            interval=self._interval,
            timeout=self._timeout,
        )

    # -- destroy ---------------------------------------------------------------------------

    def destroy(
        self, resource: Resource, action: DestroyAction, key: str, *, delete_volumes: bool = False
    ) -> DestroyResult:
        """Delete (pay-per-use server) or unsubscribe (prepaid server or disk); wait until gone.

        ``delete_volumes`` is sent as DeleteServers' ``delete_volume``: the plan sets it only
        when every attached disk is known, bound and backed up (else data disks are detached).

        Raises PermanentError when the cloud refuses (locked, frozen, prepaid delete, a failed
        delete job) or the action is not this adapter's (Pulumi, keep); TransientError when the
        release does not finish within the timeout (the runner then asks :meth:`presence`).
        """
        if not resource.cloud_id:
            raise PermanentError(f"{resource.name} has no cloud id: cannot destroy it")
        if action is DestroyAction.DELETE:
            if resource.kind is not Kind.SERVER:
                raise PermanentError(
                    f"{resource.name}: deleting a {resource.kind.value} on its own is not "
                    "supported yet",
                    hint="delete it with its server, or unsubscribe it if it is prepaid",
                )
            return self._delete_server(resource, resource.cloud_id, delete_volumes)
        if action is DestroyAction.UNSUBSCRIBE:
            if resource.kind not in (Kind.SERVER, Kind.VOLUME):
                raise PermanentError(f"{resource.name}: cannot unsubscribe a {resource.kind.value}")
            return self._unsubscribe(resource, resource.cloud_id)
        raise PermanentError(
            f"{resource.name}: action {action.value!r} is not done by the Huawei destroyer"
        )

    def _delete_server(
        self, resource: Resource, server_id: str, delete_volumes: bool
    ) -> DestroyResult:
        # The plan decided (``Step.delete_volumes``): data disks go with the server only when
        # every one is known, bound to it and held by a surviving backup; never on missing facts.
        body = DeleteServersRequestBody(
            servers=[ServerId(id=server_id)], delete_volume=delete_volumes, delete_publicip=False
        )
        req = DeleteServersRequest(body=body)
        job_id = str(
            call(
                "ecs.DeleteServers",
                lambda: self.clients.ecs.delete_servers(req),
                idempotent=False,
            ).job_id
        )
        job_req = ShowJobRequest(job_id=job_id)

        def probe() -> Any | None:
            job = self._read("ecs.ShowJob", lambda: self.clients.ecs.show_job(job_req))
            return job if job.status in ("SUCCESS", "FAIL") else None

        job = self._poll(f"delete job {job_id} of {resource.name}", probe)
        subs = list((job.entities.sub_jobs if job.entities else None) or [])
        failed = [s for s in subs if s.status == "FAIL"]
        if job.status == "FAIL" or failed:
            reasons = [s.fail_reason or s.error_code or "failed" for s in failed]
            reason = "; ".join(reasons) or job.fail_reason or "failed"
            code = job.error_code or next((s.error_code for s in failed if s.error_code), None)
            raise PermanentError(
                f"deleting {resource.name} failed (job {job_id}): {reason}", code=code
            )
        return DestroyResult(Presence.GONE, job_id=job_id)

    def _unsubscribe(self, resource: Resource, resource_id: str) -> DestroyResult:
        order_ids = unsubscribe(
            self.clients,
            resource_id,
            UNSUBSCRIBE_RELEASE,
            f"unsubscribing {resource.name}",
            "teardown",
        )

        def probe() -> bool | None:
            return True if self._cloud_presence(resource) is Presence.GONE else None

        self._poll(f"release of {resource.name} (orders {', '.join(order_ids)})", probe)
        return DestroyResult(Presence.GONE, order_ids=order_ids)

    # -- presence --------------------------------------------------------------------------

    def _cloud_presence(self, resource: Resource) -> Presence:
        """What ECS/EVS say, without asking BSS."""
        rid = resource.cloud_id
        assert rid is not None
        try:
            if resource.kind is Kind.SERVER:
                s_req = ShowServerRequest(server_id=rid)
                server = self._read(
                    "ecs.ShowServer", lambda: self.clients.ecs.show_server(s_req)
                ).server
                status = str(server.status or "")
                task = str(server.os_ext_st_stask_state or "")
            else:
                v_req = ShowVolumeRequest(volume_id=rid)
                volume = self._read(
                    "evs.ShowVolume", lambda: self.clients.evs.show_volume(v_req)
                ).volume
                status, task = str(volume.status or ""), ""
        except NotFound as e:
            if _missing(e):
                return Presence.GONE
            raise
        if status in GONE_STATUSES:
            return Presence.GONE
        if status in GOING_STATUSES or task == "deleting":
            return Presence.GOING
        return Presence.EXISTS

    def presence(self, resource: Resource) -> Presence:
        """GONE when ECS/EVS no longer know it (404) or report it deleted; GOING while it is
        being deleted, or when a prepaid resource is closed in BSS but not yet released."""
        if not resource.cloud_id or resource.kind not in (Kind.SERVER, Kind.VOLUME):
            raise PermanentError(f"{resource.name}: cannot ask the cloud about this resource")
        seen = self._cloud_presence(resource)
        if seen is not Presence.EXISTS or resource.billing.mode is not BillingMode.PRE_PAID:
            return seen
        for row in self._bss.resources([resource.cloud_id]):
            if row.resource_id == resource.cloud_id and row.status == BSS_CLOSED:
                return Presence.GOING
        return Presence.EXISTS


__all__ = ["HuaweiDestroyer"]
