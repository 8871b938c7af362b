"""The provider interface: what one cloud gives teardown (version :data:`PROVIDER_API`).

A provider is registered by name (``teardown.app.providers.register``) and chosen by the profile:
the profile file's table of that name (``[huawei]``), or credentials in the environment that
only it recognises. Opening a profile gives an :class:`Account`, which makes the ports the
engine drives (:mod:`teardown.ports`) for that account. Everything a cloud knows that the core
does not (its Pulumi type tokens, its refund rules, where refunds go, which environment
variables hold its credentials) comes through here, so ``teardown.core`` and
``teardown.engine`` name no cloud.

The interface is narrow and versioned, like Velero's volume snapshotter plugins: a provider
states the version it implements and the registry refuses another.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Protocol

from teardown.core.model import Kind, Plan, Resource
from teardown.core.reminders import Reminder
from teardown.core.resource_plan import Estimator
from teardown.ports import Billing, Claims, Destroyer, Inventory, Snapshotter

PROVIDER_API = 4
"""The version of this interface. A change that breaks providers increments it (2: the
estimator and the reminders are asked for one account, whose site may change the rules; 3: an
account from a Pulumi stack's provider config; 4: ``Claims.tag`` writes notices such as
``teardown:sweep-after``, ``Inventory.servers`` lists servers quickly)."""

Sleep = Callable[[float], None]


@dataclass(frozen=True)
class Catalog:
    """A cloud's Pulumi type tokens and what each is (shared by its inventory and the Pulumi
    state reader). A type not listed is :attr:`Kind.UNKNOWN`, which blocks a plan until the
    config says what it is."""

    kinds: Mapping[str, Kind]
    server_type: str
    """The type token of a server (a resource the inventory reads is given it)."""
    volume_type: str
    """The type token of a disk."""

    def kind_of(self, type_token: str) -> Kind:
        return self.kinds.get(type_token, Kind.UNKNOWN)


@dataclass(frozen=True)
class SshDefaults:
    """How the account's servers are reached over SSH when the config does not say (a sandbox
    profile names its key, known_hosts and a local port per server)."""

    user: str | None = None
    identity_file: str | None = None
    known_hosts: str | None = None
    ports: Mapping[str, int] = field(default_factory=dict)
    """Server id -> the port of its SSH server on 127.0.0.1."""


class Account(Protocol):
    """One account of one cloud, opened from a profile: makes the ports for it."""

    @property
    def provider(self) -> str:
        """The registered name of the provider that opened it."""
        ...

    @property
    def where(self) -> str:
        """The account, region and project in words, for messages (``project X (region)``)."""
        ...

    @property
    def ssh(self) -> SshDefaults: ...

    def check_runnable(self, plan: Plan) -> None:
        """ConfigError naming the setting when a run of ``plan`` could not start with this
        account (e.g. cloud backups without a vault)."""
        ...

    def inventory(self, sleep: Sleep) -> Inventory: ...

    def snapshotter(self, sleep: Sleep, poll_interval: float) -> Snapshotter: ...

    def destroyer(self, sleep: Sleep, poll_interval: float) -> Destroyer: ...

    def billing(self) -> Billing: ...

    def claims(self, sleep: Sleep) -> Claims: ...


class Provider(Protocol):
    """One cloud. Implementations are registered by name; Huawei Cloud is the first
    (``teardown/adapters/huawei/provider.py``)."""

    @property
    def api_version(self) -> int:
        """The :data:`PROVIDER_API` version this provider implements."""
        ...

    @property
    def name(self) -> str:
        """The registry name and the profile table's name (``huawei``)."""
        ...

    @property
    def catalog(self) -> Catalog: ...

    @property
    def refund_arrival(self) -> str:
        """Where refunds go and when they arrive, in words, for the report."""
        ...

    @property
    def credential_env(self) -> tuple[str, ...]:
        """Environment variables (a trailing ``*`` matches a prefix) that hold this cloud's
        credentials: never passed to a host."""
        ...

    @property
    def env_help(self) -> str:
        """Which environment variables give credentials, for the error without a profile."""
        ...

    def open(self, path: Path, env: Mapping[str, str]) -> Account:
        """The account a profile file describes (ConfigError naming the file and the key when
        it is wrong); ``env`` may complete it (e.g. a vault id)."""
        ...

    def from_env(self, env: Mapping[str, str]) -> Account | None:
        """The account the environment's credentials give, or None when there are none."""
        ...

    def from_pulumi_config(
        self, stack_config: Mapping[str, str], env: Mapping[str, str]
    ) -> Account | None:
        """The account the cloud's Pulumi provider config in a stack gives (completed by the
        environment), or None when the stack configures no such provider."""
        ...

    def estimator(self, account: Account) -> Estimator:
        """The cloud's refund rules as they apply to ``account`` (its site's fee table, for
        example), for the planner's estimates."""
        ...

    def reminders(
        self,
        account: Account,
        resources: Sequence[Resource],
        *,
        now: datetime,
        window: timedelta,
        quota_used: int,
    ) -> list[Reminder]:
        """A renewal reminder for every prepaid resource of ``account`` with a known expiry,
        soonest first."""
        ...
