"""Sandbox settings: account, durations of asynchronous work, and fault injection.

Read from ``DIR/sandbox.toml`` (written by ``teardown sandbox up`` and editable) with the same
validator as ``teardown.toml``: unknown keys are errors naming the key.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

_STRICT = {"extra": "forbid"}


@dataclass(frozen=True)
class Account:
    """``[account]``: the credentials and ids the sandbox accepts (SDK-HMAC-SHA256)."""

    __pydantic_config__ = _STRICT
    ak: str = "SANDBOXAKEXAMPLE0000"
    sk: str = "sandbox-secret-key-example-0000000000000"
    project_id: str = "0a1b2c3d4e5f60718293a4b5c6d7e8f9"
    domain_id: str = "9f8e7d6c5b4a30291807f6e5d4c3b2a1"
    region: str = "cn-north-4"
    customer_id: str = "cust-sandbox-0001"


@dataclass(frozen=True)
class Durations:
    """``[durations]``: seconds until asynchronous work completes (on the sandbox's clock)."""

    __pydantic_config__ = _STRICT
    delete_server: float = 2.0
    stop_server: float = 1.0
    snapshot: float = 1.0
    delete_snapshot: float = 0.5
    checkpoint: float = 2.0
    release: float = 2.0
    """Unsubscribed prepaid resources are released this long after the order."""
    delete_volume: float = 1.0
    """EVS DeleteVolume: the disk shows ``deleting`` and its job ``RUNNING`` this long."""
    delete_eip: float = 0.5
    """EIP DeletePublicip: the EIP shows ``PENDING_DELETE`` this long, then is gone."""


@dataclass(frozen=True)
class Faults:
    """``[faults]``: deterministic fault injection. The same seed gives the same faults in the
    same order: each decision is a hash of (seed, operation, that operation's call number).

    Example::

        [faults]
        seed = 7
        throttle = { "bss.CancelResourcesSubscription" = 0.3 }
        server_error = { "*" = 0.05 }
        latency = { "ecs.ListServersDetails" = 0.2 }
        failing_jobs = ["<server id>"]
        snapshot_error = ["<volume or server id>"]
        ssh_drop_after_bytes = { "<server id>" = 1000000 }
    """

    __pydantic_config__ = _STRICT
    seed: int = 0
    latency: dict[str, float] = field(default_factory=dict)
    """Seconds added to each call of an operation (``service.Operation`` or ``*``)."""
    throttle: dict[str, float] = field(default_factory=dict)
    """Probability of an HTTP 429 per call."""
    server_error: dict[str, float] = field(default_factory=dict)
    """Probability of an HTTP 500 per call."""
    failing_jobs: tuple[str, ...] = ()
    """Server ids whose delete/stop sub-jobs end in FAIL."""
    snapshot_error: tuple[str, ...] = ()
    """Volume or server ids whose EVS snapshots and CBR backups end in ``error``."""
    ssh_drop_after_bytes: dict[str, int] = field(default_factory=dict)
    """Server id -> the SSH server drops the connection after sending this many bytes."""
    sftp_only: tuple[str, ...] = ()
    """Server ids whose SSH server refuses exec (an SFTP-only account)."""
    clock_skew_seconds: float = 0.0
    """The sandbox's clock runs this far ahead of (or, negative, behind) the machine's."""
    ignore_filters: tuple[str, ...] = ()
    """Operations (``service.Operation``, e.g. ``eip.ListPublicips``) that answer as if no
    filter had been sent (paging still applies): a test-only knob standing for a service that
    ignores or widens a filter, so tests can show that the adapter re-checks every answer."""


def _rate(table: dict[str, float], operation: str) -> float:
    return table.get(operation, table.get(operation.split(".", 1)[0] + ".*", table.get("*", 0.0)))


def decide(seed: int, operation: str, n: int, rate: float) -> bool:
    """A deterministic coin with probability ``rate`` for call ``n`` of ``operation``."""
    if rate <= 0:
        return False
    digest = hashlib.sha256(f"{seed}:{operation}:{n}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < rate


@dataclass(frozen=True)
class SandboxConfig:
    """The whole ``sandbox.toml``."""

    __pydantic_config__ = _STRICT
    account: Account = field(default_factory=Account)
    durations: Durations = field(default_factory=Durations)
    faults: Faults = field(default_factory=Faults)
    max_request_skew_seconds: float | None = 900.0
    """Requests whose X-Sdk-Date is further than this from the sandbox's clock are refused
    (401), as the real API gateway refuses stale or future-dated signatures (None: not checked,
    e.g. under a test's fake clock)."""

    def latency(self, operation: str) -> float:
        return _rate(self.faults.latency, operation)

    def throttle_rate(self, operation: str) -> float:
        return _rate(self.faults.throttle, operation)

    def error_rate(self, operation: str) -> float:
        return _rate(self.faults.server_error, operation)
