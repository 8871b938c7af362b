"""Deleting pay-per-use servers (ECS DeleteServers + ShowJob), disks (EVS DeleteVolume + ShowJob)
and EIPs (EIP DeletePublicip), and unsubscribing prepaid resources (BSS
CancelResourcesSubscription type 1); each time waiting until ECS, EVS or EIP no longer know it.

DeleteServers is always sent with ``delete_publicip = false``, so a server's EIPs are only
unbound with it (they then keep billing, unbound). An EIP is a resource of its own in the plan
(an ADDRESS whose parent is the server) and is released by its own step, after its server is
gone (DeletePublicip refuses a bound EIP, ``VPC.0517``), and only when the plan says so. With
``true``, DeleteServers would also release an EIP the config keeps (``billing.public_ips =
"keep"``) or one the inventory never saw, with no step, journal entry or report line of its own.

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
from huaweicloudsdkeip.v2 import DeletePublicipRequest, ShowPublicipRequest
from huaweicloudsdkevs.v2 import DeleteVolumeRequest, ShowVolumeRequest
from huaweicloudsdkevs.v2 import ShowJobRequest as ShowVolumeJobRequest

from teardown.adapters.huawei._bss import UNSUBSCRIBE_RELEASE, BssReader, unsubscribe
from teardown.adapters.huawei.clients import Clients
from teardown.adapters.huawei.errors import HINTS, ApiCaller, NotFound, call
from teardown.adapters.huawei.inventory import EIP_TYPE
from teardown.core.errors import PermanentError
from teardown.core.model import BillingMode, DestroyAction, Kind, Resource
from teardown.ports import DestroyResult, Presence
from teardown.support.poll import poll
from teardown.support.retry import RetryPolicy

"""``unsubscribe_type`` 1: the resource and its renewals; the resource is released."""
BSS_CLOSED = 3
JOB_DONE = frozenset({"SUCCESS", "FAIL"})
"""ShowJob's terminal statuses; ``INIT`` and ``RUNNING`` (and anything else) mean it still runs
(ECS: ``SUCCESS``, ``RUNNING``, ``FAIL``, ``INIT``; EVS the same)."""
GONE_STATUSES = frozenset({"DELETED", "deleted"})
GOING_STATUSES = frozenset(
    {"SOFT_DELETED", "deleting", "error_deleting", "PENDING_DELETE", "NOTIFY_DELETE"}
)
"""ECS, EVS and EIP statuses of a resource being deleted (EIP: 释放中, PENDING_DELETE and
NOTIFY_DELETE, in ``PublicipShowResp.status``)."""


def _is_eip(resource: Resource) -> bool:
    """An EIP itself: of the ADDRESS types (bandwidths, EIP associations...), only this one's
    cloud id is an EIP id."""
    return resource.kind is Kind.ADDRESS and resource.type == EIP_TYPE


def _ours(resource: Resource) -> bool:
    """What this destroyer deletes, unsubscribes and asks the cloud about."""
    return resource.kind in (Kind.SERVER, Kind.VOLUME) or _is_eip(resource)


_HINTS = {
    "VPC.0517": "the EIP is still bound: it is released after its server is gone (or unbound)",
    "VPC.0525": "a yearly/monthly EIP cannot be deleted: unsubscribe it instead",
    "EVS.1046": "the disk is attached or busy: it can be deleted once detached (or its server "
    "deleted)",
    "EVS.1035": "a yearly/monthly disk cannot be deleted: unsubscribe it instead",
}
"""Next steps for the EIP and EVS refusals of a delete (docs/huawei-api.md)."""


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
        """Delete (pay-per-use server, disk or EIP) or unsubscribe (prepaid server, disk or
        EIP); wait until gone.

        ``delete_volumes`` is sent as DeleteServers' ``delete_volume``: the plan sets it only
        when every attached disk is known, bound and backed up (else data disks are detached).
        A disk is deleted on its own only once detached, an EIP only once unbound: the plan
        deletes them after their server.

        Raises PermanentError when the cloud refuses (locked: ``Ecs.0605``, frozen, prepaid
        delete: ``Ecs.0513``, still attached or bound, a failed delete job) or the action is
        not this adapter's (Pulumi, keep); TransientError when the release does not finish
        within the timeout (the runner then asks :meth:`presence`).
        """
        if not resource.cloud_id:
            raise PermanentError(f"{resource.name} has no cloud id: cannot destroy it")
        if action is DestroyAction.DELETE:
            if resource.kind is Kind.SERVER:
                return self._delete_server(resource, resource.cloud_id, delete_volumes)
            if resource.kind is Kind.VOLUME:
                return self._delete_volume(resource, resource.cloud_id)
            if _is_eip(resource):
                return self._delete_eip(resource, resource.cloud_id)
            raise PermanentError(
                f"{resource.name}: deleting a {resource.kind.value} is not done by the Huawei "
                "destroyer"
            )
        if action is DestroyAction.UNSUBSCRIBE:
            if not _ours(resource):
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
            return job if job.status in JOB_DONE else None

        job = self._poll(f"delete job {job_id} of {resource.name}", probe)
        subs = list((job.entities.sub_jobs if job.entities else None) or [])
        failed = [s for s in subs if s.status == "FAIL"]
        if job.status == "FAIL" or failed:
            reasons = [s.fail_reason or s.error_code or "failed" for s in failed]
            reason = "; ".join(reasons) or job.fail_reason or "failed"
            code = job.error_code or next((s.error_code for s in failed if s.error_code), None)
            raise PermanentError(
                f"deleting {resource.name} failed (job {job_id}): {reason}",
                code=code,
                hint=HINTS.get(code or ""),
            )
        return DestroyResult(Presence.GONE, job_id=job_id)

    def _refusable(self, operation: str, fn: Callable[[], Any]) -> Any:
        """A mutating call (never retried here), its refusal given the next step to take."""
        try:
            return call(operation, fn, idempotent=False)
        except PermanentError as e:
            hint = _HINTS.get(e.code or "")
            if hint is None or e.hint is not None:
                raise
            raise PermanentError(str(e), code=e.code, hint=hint) from None

    def _delete_volume(self, resource: Resource, volume_id: str) -> DestroyResult:
        """EVS DeleteVolume (a pay-per-use disk, detached), its job, then until EVS says 404."""
        req = DeleteVolumeRequest(volume_id=volume_id)
        job_id = str(
            self._refusable("evs.DeleteVolume", lambda: self.clients.evs.delete_volume(req)).job_id
        )
        job_req = ShowVolumeJobRequest(job_id=job_id)

        def probe() -> Any | None:
            job = self._read("evs.ShowJob", lambda: self.clients.evs.show_job(job_req))
            return job if job.status in JOB_DONE else None

        job = self._poll(f"delete job {job_id} of {resource.name}", probe)
        if job.status == "FAIL":
            reason = job.fail_reason or job.error_code or "failed"
            raise PermanentError(
                f"deleting {resource.name} failed (job {job_id}): {reason}", code=job.error_code
            )
        self._wait_gone(resource, f"deletion of {resource.name} (job {job_id})")
        return DestroyResult(Presence.GONE, job_id=job_id)

    def _delete_eip(self, resource: Resource, eip_id: str) -> DestroyResult:
        """EIP DeletePublicip (a pay-per-use EIP, unbound: 204), then until ShowPublicip is
        404."""
        req = DeletePublicipRequest(publicip_id=eip_id)
        self._refusable("eip.DeletePublicip", lambda: self.clients.eip.delete_publicip(req))
        self._wait_gone(resource, f"release of {resource.name}")
        return DestroyResult(Presence.GONE)

    def _wait_gone(self, resource: Resource, what: str) -> None:
        def probe() -> bool | None:
            return True if self._cloud_presence(resource) is Presence.GONE else None

        self._poll(what, probe)

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
        """What ECS, EVS or EIP say, without asking BSS."""
        rid = resource.cloud_id
        assert rid is not None
        try:
            if resource.kind is Kind.ADDRESS:
                e_req = ShowPublicipRequest(publicip_id=rid)
                eip = self._read(
                    "eip.ShowPublicip", lambda: self.clients.eip.show_publicip(e_req)
                ).publicip
                status, task = str(eip.status or ""), ""
            elif resource.kind is Kind.SERVER:
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
        """GONE when ECS, EVS or EIP no longer know it (404) or report it deleted; GOING while
        it is being deleted, or when a prepaid resource is closed in BSS but not yet released."""
        if not resource.cloud_id or not _ours(resource):
            raise PermanentError(f"{resource.name}: cannot ask the cloud about this resource")
        seen = self._cloud_presence(resource)
        if seen is not Presence.EXISTS or resource.billing.mode is not BillingMode.PRE_PAID:
            return seen
        for row in self._bss.resources([resource.cloud_id]):
            if row.resource_id == resource.cloud_id and row.status == BSS_CLOSED:
                return Presence.GOING
        return Presence.EXISTS


__all__ = ["HuaweiDestroyer"]
