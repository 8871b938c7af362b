"""Pulumi dynamic providers for the sandbox: the stand-in for pulumi-huaweicloud in the tests
that run the real Pulumi engine (``test_pulumi_engine.py``).

The sandbox has no API that creates a server (its servers come from a scenario), so ``create``
adopts the sandbox server of that name, as ``pulumi import`` would, and returns the outputs
pulumi-huaweicloud's ``Ecs/instance`` has (``id``, ``name``, ``accessIpV4``, ``chargingMode``,
``tags``). ``delete`` does what the real provider does: a pay-per-use server is deleted
(ECS ``DeleteServers``, then ``ShowJob`` until it ends), a yearly/monthly one is unsubscribed
(BSS ``CancelResourcesSubscription``). Every call goes to the sandbox's HTTP API through the
official SDK clients.

The provider object is pickled into the stack's state at ``up`` and unpickled by the provider
process (``pulumi-resource-pulumi-python``) at each later operation, so it holds no settings:
the sandbox profile's path is read from ``TEARDOWN_SANDBOX_PROFILE`` at call time.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from pulumi import ResourceOptions
from pulumi.dynamic import CreateResult, ReadResult, Resource, ResourceProvider

PROFILE_ENV = "TEARDOWN_SANDBOX_PROFILE"

SERVER_TYPE = "pulumi-python:dynamic/sandbox:Server"
"""The type token of :class:`SandboxServer` (``dynamic/<module>:<name>``)."""


def _clients() -> Any:
    from teardown.adapters.huawei.clients import Clients
    from teardown.adapters.huawei.profile import load_profile

    return Clients(load_profile(Path(os.environ[PROFILE_ENV])))


def _server_outputs(name: str) -> dict[str, Any]:
    from huaweicloudsdkecs.v2 import ListServersDetailsRequest

    found = _clients().ecs.list_servers_details(ListServersDetailsRequest(name=name))
    servers = [s for s in found.servers or [] if s.name == name]
    if len(servers) != 1:
        raise ValueError(f"the sandbox has {len(servers)} servers named {name!r}")
    s = servers[0]
    addresses = [a.addr for net in (s.addresses or {}).values() for a in net]
    meta = s.metadata or {}
    charging = "prePaid" if meta.get("charging_mode") == "1" else "postPaid"
    tags = {}
    for tag in s.tags or []:
        key, _, value = tag.partition("=")
        tags[key] = value
    return {
        "name": s.name,
        "accessIpV4": addresses[0] if addresses else "",
        "chargingMode": charging,
        "tags": tags,
    }


class ServerProvider(ResourceProvider):
    def create(self, props: dict[str, Any]) -> CreateResult:
        from huaweicloudsdkecs.v2 import ListServersDetailsRequest

        name = props["name"]
        found = _clients().ecs.list_servers_details(ListServersDetailsRequest(name=name))
        (server,) = [s for s in found.servers or [] if s.name == name]
        return CreateResult(server.id, {**_server_outputs(name), "id": server.id})

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        return ReadResult(id_, {**_server_outputs(props["name"]), "id": id_})

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        if props.get("chargingMode") == "prePaid":
            _unsubscribe(id_)
        else:
            _delete_server(id_)


def _delete_server(server_id: str) -> None:
    from huaweicloudsdkecs.v2 import (
        DeleteServersRequest,
        DeleteServersRequestBody,
        ServerId,
        ShowJobRequest,
    )

    ecs = _clients().ecs
    body = DeleteServersRequestBody(
        servers=[ServerId(id=server_id)], delete_volume=True, delete_publicip=False
    )
    job = ecs.delete_servers(DeleteServersRequest(body=body)).job_id
    for _ in range(600):
        status = ecs.show_job(ShowJobRequest(job_id=job)).status
        if status == "SUCCESS":
            return
        if status == "FAIL":
            raise RuntimeError(f"deleting {server_id} failed (job {job})")
        time.sleep(0.05)
    raise TimeoutError(f"deleting {server_id}: job {job} did not end")


def _unsubscribe(resource_id: str) -> None:
    from huaweicloudsdkbss.v2 import (
        CancelResourcesSubscriptionRequest,
        UnsubscribeResourcesReq,
    )

    body = UnsubscribeResourcesReq(resource_ids=[resource_id], unsubscribe_type=1)
    answer = _clients().bss.cancel_resources_subscription(
        CancelResourcesSubscriptionRequest(body=body)
    )
    if answer.fail_resource_infos:
        raise RuntimeError(f"unsubscribing {resource_id} failed: {answer.fail_resource_infos}")


class SandboxServer(Resource, module="sandbox", name="Server"):
    """A sandbox server under Pulumi (type :data:`SERVER_TYPE`)."""

    def __init__(
        self, name: str, opts: ResourceOptions | None = None, tags: dict[str, str] | None = None
    ) -> None:
        # ``tags`` are inputs only (what a policy sees); the outputs are the sandbox's.
        super().__init__(
            ServerProvider(),
            name,
            {
                "name": name,
                "id": None,
                "accessIpV4": None,
                "chargingMode": None,
                "tags": tags,
            },
            opts,
        )
