"""One factory for the official SDK clients, built lazily from a :class:`HuaweiProfile`.

Regional services (ECS, EVS, CBR, EIP) use ``BasicCredentials(ak, sk, project_id)``; BSS is global
and uses ``GlobalCredentials(ak, sk, domain_id)``. Both ids are always passed, so the SDK never
calls IAM to look them up. The SDK does not retry (``retry_times=0``): retries are
:func:`teardown.adapters.huawei.errors.call`'s job.
"""

from __future__ import annotations

import threading
from typing import Any

from huaweicloudsdkbss.v2 import BssClient
from huaweicloudsdkcbr.v1 import CbrClient
from huaweicloudsdkcore.auth.credentials import BasicCredentials, GlobalCredentials
from huaweicloudsdkcore.http.http_config import HttpConfig
from huaweicloudsdkecs.v2 import EcsClient
from huaweicloudsdkeip.v2 import EipClient
from huaweicloudsdkevs.v2 import EvsClient

from teardown.adapters.huawei.profile import HuaweiProfile

DEFAULT_TIMEOUT = (10.0, 60.0)
"""(connect, read) seconds for every HTTP call."""


class Clients:
    """The SDK clients for one profile: ``.ecs``, ``.evs``, ``.cbr``, ``.bss``, ``.eip``.

    Example::

        clients = Clients(load_profile(Path("profile.toml")))
        call("ecs.ShowServer", lambda: clients.ecs.show_server(ShowServerRequest(sid)),
             idempotent=True)
    """

    def __init__(
        self, profile: HuaweiProfile, *, timeout: tuple[float, float] = DEFAULT_TIMEOUT
    ) -> None:
        self.profile = profile
        self._timeout = timeout
        self._built: dict[str, Any] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        p = self.profile
        return f"Clients(region={p.region!r}, project_id={p.project_id!r})"

    def _config(self) -> Any:
        config = HttpConfig.get_default_config()
        config.timeout = self._timeout
        config.retry_times = 0
        return config

    def _client(self, service: str, client_type: Any) -> Any:
        with self._lock:
            if service not in self._built:
                p = self.profile
                creds = (
                    GlobalCredentials(p.ak, p.sk, p.domain_id)
                    if service == "bss"
                    else BasicCredentials(p.ak, p.sk, p.project_id)
                )
                self._built[service] = (
                    client_type.new_builder()
                    .with_http_config(self._config())
                    .with_credentials(creds)
                    .with_endpoints([p.endpoint(service)])
                    .build()
                )
            return self._built[service]

    @property
    def ecs(self) -> Any:
        """An ``EcsClient`` (v2)."""
        return self._client("ecs", EcsClient)

    @property
    def evs(self) -> Any:
        """An ``EvsClient`` (v2)."""
        return self._client("evs", EvsClient)

    @property
    def cbr(self) -> Any:
        """A ``CbrClient`` (v1)."""
        return self._client("cbr", CbrClient)

    @property
    def bss(self) -> Any:
        """A ``BssClient`` (v2, global)."""
        return self._client("bss", BssClient)

    @property
    def eip(self) -> Any:
        """An ``EipClient`` (v2; Huawei serves it on the region's VPC endpoint)."""
        return self._client("eip", EipClient)


__all__ = ["DEFAULT_TIMEOUT", "Clients"]
