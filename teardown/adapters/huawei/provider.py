"""Huawei Cloud as a teardown provider: profiles, the ports for an account, the type catalog and
the published billing rules (refund estimates, renewal reminders, where refunds go).

Registered under the name ``huawei`` (``teardown.app.providers``); a profile file with a
``[huawei]`` table, or Huawei credentials in the environment, selects it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path

from teardown.adapters.huawei import refunds, reminders
from teardown.adapters.huawei.billing import HuaweiBilling
from teardown.adapters.huawei.catalog import CATALOG
from teardown.adapters.huawei.claims import HuaweiClaims
from teardown.adapters.huawei.clients import Clients
from teardown.adapters.huawei.destroyer import HuaweiDestroyer
from teardown.adapters.huawei.inventory import HuaweiInventory
from teardown.adapters.huawei.profile import (
    PULUMI_CONFIG,
    HuaweiProfile,
    load_profile,
    profile_from_env,
    profile_from_pulumi_config,
)
from teardown.adapters.huawei.rules import BillingRules
from teardown.adapters.huawei.snapshots import CbrSnapshotter
from teardown.core.errors import ConfigError
from teardown.core.model import Plan, Resource, SnapshotKind, StepKind
from teardown.core.reminders import Reminder
from teardown.core.resource_plan import Estimator
from teardown.ports import Billing, Claims, Destroyer, Inventory, Snapshotter
from teardown.ports.provider import PROVIDER_API, Account, Catalog, Sleep, SshDefaults

VAULT_ENV = "HUAWEICLOUD_VAULT_ID"
"""Where the CBR vault id may come from when the profile does not name one."""

REFUND_ARRIVAL = (
    "Refunds go to the Huawei Cloud account balance (also for orders paid by card or third-party "
    "payment, where they take about 1 working day); refunds above CNY 50,000 are reviewed first. "
    "Withdrawing to a bank account is a separate request."
)
"""Where refunds go (Huawei Cloud's "Unsubscription Rules"; see docs/huawei-api.md)."""


@dataclass(frozen=True)
class HuaweiAccount:
    """One project of one region, with the credentials of a profile."""

    profile: HuaweiProfile
    provider: str = "huawei"

    @property
    def where(self) -> str:
        return f"project {self.profile.project_id} ({self.profile.region})"

    @property
    def ssh(self) -> SshDefaults:
        p = self.profile
        return SshDefaults(p.ssh_user, p.identity_file, p.known_hosts, dict(p.ssh_ports))

    def check_runnable(self, plan: Plan) -> None:
        kinds = {s.snapshot for s in plan.steps if s.kind is StepKind.SNAPSHOT}
        if SnapshotKind.IMAGE in kinds:
            raise ConfigError(
                "backup.snapshot",
                'image backups are not made by the Huawei adapter (yet): use "cbr" (a CBR '
                "server backup survives the destroy too)",
            )
        cbr = SnapshotKind.CBR in kinds
        if cbr and self.profile.vault_id is None:
            raise ConfigError(
                "huawei.vault_id",
                "the plan makes CBR backups, which need a vault: set huawei.vault_id in the "
                f'profile or {VAULT_ENV} in the environment (or backup.snapshot = "none" with '
                "SSH pulls)",
            )

    def inventory(self, sleep: Sleep) -> Inventory:
        return HuaweiInventory(Clients(self.profile), sleep=sleep)

    def snapshotter(self, sleep: Sleep, poll_interval: float) -> Snapshotter:
        return CbrSnapshotter(
            Clients(self.profile),
            self.profile.vault_id or "",
            sleep=sleep,
            poll_interval=poll_interval,
        )

    def destroyer(self, sleep: Sleep, poll_interval: float) -> Destroyer:
        return HuaweiDestroyer(Clients(self.profile), sleep=sleep, poll_interval=poll_interval)

    def billing(self) -> Billing:
        return HuaweiBilling(Clients(self.profile))

    def claims(self, sleep: Sleep) -> Claims:
        return HuaweiClaims(Clients(self.profile), sleep=sleep)


def _with_vault(profile: HuaweiProfile, env: Mapping[str, str]) -> HuaweiAccount:
    vault = env.get(VAULT_ENV, "").strip()
    if profile.vault_id is None and vault:
        profile = replace(profile, vault_id=vault)
    return HuaweiAccount(profile)


class HuaweiProvider:
    """The ``huawei`` provider."""

    api_version = PROVIDER_API
    name = "huawei"
    catalog: Catalog = CATALOG
    refund_arrival = REFUND_ARRIVAL
    credential_env = (
        "HW_ACCESS_KEY",
        "HW_SECRET_KEY",
        "HUAWEICLOUD_SDK_*",
    )
    env_help = (
        "HUAWEICLOUD_SDK_AK/_SK/_PROJECT_ID/_DOMAIN_ID or "
        "HW_ACCESS_KEY/HW_SECRET_KEY/HW_REGION_NAME/HW_PROJECT_ID"
    )

    def open(self, path: Path, env: Mapping[str, str]) -> HuaweiAccount:
        return _with_vault(load_profile(path), env)

    def from_env(self, env: Mapping[str, str]) -> HuaweiAccount | None:
        profile = profile_from_env(env)
        return None if profile is None else _with_vault(profile, env)

    def from_pulumi_config(
        self, stack_config: Mapping[str, str], env: Mapping[str, str]
    ) -> HuaweiAccount | None:
        if not any(key in stack_config for key in PULUMI_CONFIG.values()):
            return None
        profile = profile_from_pulumi_config(stack_config, env)
        return None if profile is None else _with_vault(profile, env)

    def estimator(self, account: Account) -> Estimator:
        return partial(refunds.estimate, rules=rules_of(account))

    def reminders(
        self,
        account: Account,
        resources: Sequence[Resource],
        *,
        now: datetime,
        window: timedelta,
        quota_used: int,
    ) -> list[Reminder]:
        return reminders.reminders(
            resources, now=now, window=window, quota_used=quota_used, rules=rules_of(account)
        )


def rules_of(account: Account) -> BillingRules:
    """The published rules with the handling-fee table of ``account``'s site (``huawei.site``;
    the documented defaults for an account of another provider)."""
    if isinstance(account, HuaweiAccount):
        return BillingRules.for_site(account.profile.site)
    return BillingRules()


PROVIDER = HuaweiProvider()
