"""Where the Huawei adapter connects and with which credentials: a profile file or the environment.

A profile is the TOML file ``teardown sandbox up`` writes (``profile.toml``); the same shape points
teardown at the real cloud::

    [huawei]
    region = "cn-north-4"
    project_id = "0a1b..."
    domain_id = "9f8e..."
    ak = "..."
    sk = "..."
    vault_id = "..."          # optional: the CBR vault server backups go to
    site = "cn"               # optional: "cn" (default, the Chinese site) or "intl"

    [huawei.endpoints]        # optional: none for the real endpoints of the region, or
    ecs = "http://127.0.0.1:8001"   # ecs, evs, cbr and bss, and eip (the EIP API: asked for
    evs = "http://127.0.0.1:8002"   # only when a server has a public IP)
    cbr = "http://127.0.0.1:8003"
    bss = "http://127.0.0.1:8004"
    eip = "http://127.0.0.1:8005"

    [ssh]                     # optional
    user = "root"
    identity_file = "/path/to/key"
    known_hosts = "/path/to/known_hosts"

    [sandbox]                 # present when the profile points at a sandbox
    dir = "/path/to/sandbox"

The secret key never appears in a repr or an error message.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from teardown.core.errors import ConfigError
from teardown.support.toml_file import read_toml

SERVICES = ("ecs", "evs", "cbr", "bss", "eip")
"""The services the adapter calls, and the keys of ``[huawei.endpoints]``."""
REQUIRED_ENDPOINTS = ("ecs", "evs", "cbr", "bss")
"""The endpoints a ``[huawei.endpoints]`` table must give; ``eip`` may be left out (a profile
written before teardown spoke to the EIP API), and is then asked for only when it is used."""
REGIONAL_HOSTS = {"eip": "vpc"}
"""Services whose regional endpoint is another service's host: the EIP API is served on the
VPC endpoint (the SDK's ``EipRegion``: ``https://vpc.{region}.myhuaweicloud.com``)."""

SITES = ("cn", "intl")
"""Huawei Cloud sites a profile may name (``huawei.site``): the Chinese site and the
international one. Each has its own global BSS endpoint and its own handling-fee table
(:func:`teardown.adapters.huawei.rules.fee_table_for`)."""
BSS_ENDPOINTS = {
    "cn": "https://bss.myhuaweicloud.com",
    "intl": "https://bss-intl.myhuaweicloud.com",
}
"""BSS is global: one endpoint per site for every region. ``cn``: the SDK's
``huaweicloudsdkbss/v2/region/bss_region.py`` (``cn-north-1``); ``intl``: the international SDK's
``huaweicloudsdkbssintl/v2/region/bssintl_region.py`` (``ap-southeast-1``), the host the
international API reference's examples use with the same ``/v2/orders/...`` paths (e.g.
``api_order_00017``)."""
BSS_ENDPOINT = BSS_ENDPOINTS["cn"]
"""The Chinese site's BSS endpoint (the default site)."""

SANDBOX_VAULT_ID = "vault-sandbox"
"""The CBR vault every sandbox has (its profile names it as ``huawei.vault_id``)."""


def account_id(region: str, project_id: str) -> str:
    """``huawei:<region>:<project id>``: the account, region and project a resource lives in."""
    return f"huawei:{region}:{project_id}"


@dataclass(frozen=True)
class HuaweiProfile:
    """Account, region and endpoints for the official SDK clients.

    ``endpoints`` is empty for the real cloud (derived from ``region``, see :meth:`endpoint`) or
    holds ECS, EVS, CBR, BSS and usually EIP (a sandbox, or private endpoints).
    """

    region: str
    project_id: str
    domain_id: str
    ak: str
    sk: str = field(repr=False)
    endpoints: dict[str, str] = field(default_factory=dict)
    vault_id: str | None = None
    known_hosts: str | None = None
    identity_file: str | None = None
    ssh_user: str | None = None
    ssh_ports: dict[str, int] = field(default_factory=dict)
    """A sandbox profile only: server id -> the port of its SSH server on 127.0.0.1."""
    site: str = "cn"
    """``cn`` or ``intl`` (:data:`SITES`): which BSS endpoint and handling-fee table apply."""

    def __post_init__(self) -> None:
        if self.site not in SITES:
            raise ConfigError("profile", f"huawei.site: must be one of {', '.join(SITES)}")

    @property
    def account(self) -> str:
        """This profile's account as backups record it: ``huawei:<region>:<project id>``."""
        return account_id(self.region, self.project_id)

    def endpoint(self, service: str) -> str:
        """The base URL of ``service`` (``ecs``, ``evs``, ``cbr``, ``bss`` or ``eip``).

        Raises :class:`ConfigError` for ``eip`` when the profile names its own endpoints but
        not this one: the real cloud's would be the wrong place to send a sandbox's (or a
        private endpoint's) requests.
        """
        if service not in SERVICES:
            raise ValueError(f"unknown service {service!r}; expected one of {', '.join(SERVICES)}")
        if service in self.endpoints:
            return self.endpoints[service]
        if self.endpoints:
            raise ConfigError(
                "profile",
                f"huawei.endpoints.{service}: missing (the profile names its own endpoints; "
                "a sandbox writes this one when it starts: restart it)",
            )
        if service == "bss":
            return BSS_ENDPOINTS[self.site]
        return f"https://{REGIONAL_HOSTS.get(service, service)}.{self.region}.myhuaweicloud.com"


def _table(source: str, data: Mapping[str, Any], key: str, where: str) -> Mapping[str, Any]:
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise ConfigError(source, f"{where}: must be a table")
    return value


def _string(
    source: str, table: Mapping[str, Any], key: str, where: str, *, required: bool
) -> str | None:
    value = table.get(key)
    if value is None:
        if required:
            raise ConfigError(source, f"{where}: missing")
        return None
    if not isinstance(value, str) or (required and not value.strip()):
        raise ConfigError(source, f"{where}: must be a non-empty string")
    return value


def load_profile(path: Path) -> HuaweiProfile:
    """Read a profile file; raises :class:`ConfigError` naming the file and the bad key.

    Example::

        profile = load_profile(Path("/tmp/sb/profile.toml"))
        profile.endpoint("ecs")   # 'http://127.0.0.1:41234'
    """
    source = str(path)
    data = read_toml(path)
    if "huawei" not in data:
        raise ConfigError(source, "huawei: missing (the [huawei] table)")
    hw = _table(source, data, "huawei", "huawei")
    known = {"region", "project_id", "domain_id", "ak", "sk", "vault_id", "endpoints", "site"}
    for key in hw:
        if key not in known:
            raise ConfigError(source, f"huawei.{key}: unknown key")

    def req(key: str) -> str:
        value = _string(source, hw, key, f"huawei.{key}", required=True)
        assert value is not None
        return value

    region, project_id, domain_id, ak, sk = (
        req(k) for k in ("region", "project_id", "domain_id", "ak", "sk")
    )
    endpoints: dict[str, str] = {}
    raw = _table(source, hw, "endpoints", "huawei.endpoints")
    for key in raw:
        if key not in SERVICES:
            raise ConfigError(
                source, f"huawei.endpoints.{key}: unknown service (expected {', '.join(SERVICES)})"
            )
    if raw:
        for service in SERVICES:
            where = f"huawei.endpoints.{service}"
            if service not in raw:
                if service not in REQUIRED_ENDPOINTS:
                    continue
                raise ConfigError(
                    source,
                    f"{where}: missing (give ecs, evs, cbr and bss, or none for the real ones)",
                )
            url = _string(source, raw, service, where, required=True)
            assert url is not None
            if not url.startswith(("http://", "https://")):
                raise ConfigError(source, f"{where}: must be an http:// or https:// URL")
            endpoints[service] = url.rstrip("/")
    vault_id = _string(source, hw, "vault_id", "huawei.vault_id", required=False)
    site = _string(source, hw, "site", "huawei.site", required=False) or "cn"
    if site not in SITES:
        raise ConfigError(source, f"huawei.site: must be one of {', '.join(SITES)}, got {site!r}")
    ssh = _table(source, data, "ssh", "ssh")
    ssh_values = {
        key: _string(source, ssh, key, f"ssh.{key}", required=False)
        for key in ("user", "identity_file", "known_hosts")
    }
    ssh_ports: dict[str, int] = {}
    if "sandbox" in data:
        sandbox = _table(source, data, "sandbox", "sandbox")
        for sid, port in _table(source, sandbox, "ssh_ports", "sandbox.ssh_ports").items():
            if type(port) is not int or not 0 < port < 65536:
                raise ConfigError(source, f"sandbox.ssh_ports.{sid}: must be a port number")
            ssh_ports[str(sid)] = port
    return HuaweiProfile(
        region=region,
        project_id=project_id,
        domain_id=domain_id,
        ak=ak,
        sk=sk,
        endpoints=endpoints,
        vault_id=vault_id,
        known_hosts=ssh_values["known_hosts"],
        identity_file=ssh_values["identity_file"],
        ssh_user=ssh_values["user"],
        ssh_ports=ssh_ports,
        site=site,
    )


_ENV = {
    "ak": ("HUAWEICLOUD_SDK_AK", "HW_ACCESS_KEY"),
    "sk": ("HUAWEICLOUD_SDK_SK", "HW_SECRET_KEY"),
    "project_id": ("HUAWEICLOUD_SDK_PROJECT_ID", "HW_PROJECT_ID"),
    "domain_id": ("HUAWEICLOUD_SDK_DOMAIN_ID", "HW_DOMAIN_ID"),
    "region": ("HW_REGION_NAME",),
}
"""Profile field -> environment variables, first found wins (the SDK's names, then the Pulumi
provider's)."""


def _env_value(env: Mapping[str, str], key: str) -> str | None:
    """The first non-empty environment variable of :data:`_ENV` for the profile field ``key``."""
    for name in _ENV[key]:
        value = env.get(name, "").strip()
        if value:
            return value
    return None


def profile_from_env(env: Mapping[str, str]) -> HuaweiProfile | None:
    """A profile from environment variables, or None when no access key is set.

    The caller passes the mapping (``os.environ`` in the CLI); library code never reads the
    environment itself. Raises :class:`ConfigError` (source ``environment``) naming the missing
    variable when an access key is set but something else the adapter needs is not: the project
    and domain ids are required so the SDK never has to ask IAM.

    Example::

        profile_from_env({"HW_ACCESS_KEY": "...", "HW_SECRET_KEY": "...",
                          "HW_REGION_NAME": "cn-north-4", "HW_PROJECT_ID": "...",
                          "HW_DOMAIN_ID": "..."})
    """

    def get(key: str) -> str | None:
        return _env_value(env, key)

    if get("ak") is None and get("sk") is None:
        return None
    values: dict[str, str] = {}
    for key in ("ak", "sk", "region", "project_id", "domain_id"):
        value = get(key)
        if value is None:
            raise ConfigError("environment", f"{' or '.join(_ENV[key])}: missing")
        values[key] = value
    return HuaweiProfile(
        region=values["region"],
        project_id=values["project_id"],
        domain_id=values["domain_id"],
        ak=values["ak"],
        sk=values["sk"],
    )


PULUMI_CONFIG = {
    "ak": "huaweicloud:accessKey",
    "sk": "huaweicloud:secretKey",
    "region": "huaweicloud:region",
    "project_id": "huaweicloud:projectId",
    "domain_id": "huaweicloud:domainId",
}
"""Profile field -> the ``huaweicloud`` provider's stack config key (the names
``pulumi_huaweicloud.config`` reads; the provider falls back to ``HW_ACCESS_KEY``,
``HW_SECRET_KEY``, ``HW_REGION_NAME``, ``HW_PROJECT_ID`` and ``HW_DOMAIN_ID``, as
:data:`_ENV` does)."""

PULUMI_TEMPORARY = "huaweicloud:securityToken"
"""Temporary credentials' token: the adapter signs with a permanent AK/SK only."""


def profile_from_pulumi_config(
    stack_config: Mapping[str, str], env: Mapping[str, str], *, source: str = "stack config"
) -> HuaweiProfile | None:
    """A profile from a Pulumi stack's ``huaweicloud:`` provider config, completed by the
    environment (e.g. variables a Pulumi ESC environment exports); None when neither gives an
    access key or a secret key.

    Each field comes from the stack config (:data:`PULUMI_CONFIG`) when set there, else from
    the environment (:data:`_ENV`, as :func:`profile_from_env`). The key pair comes from one
    place: an access key in the stack with the secret key only in the environment (or the other
    way round) is a ConfigError, as is a project id from the environment when the stack sets
    another region than ``HW_REGION_NAME`` (project ids are per region). ``stack_config`` holds
    values as the Automation API's ``get_all_config`` returns them, secrets decrypted: no value
    is ever put in an error message. ConfigError(``source``) names the missing key otherwise.

    Example::

        profile_from_pulumi_config(
            {"huaweicloud:region": "cn-north-4", "huaweicloud:accessKey": "...",
             "huaweicloud:secretKey": "...", "huaweicloud:projectId": "...",
             "huaweicloud:domainId": "..."},
            os.environ,
        )
    """

    def stacked(key: str) -> str | None:
        value = stack_config.get(PULUMI_CONFIG[key])
        return (value.strip() or None) if isinstance(value, str) else None

    def environ(key: str) -> str | None:
        return _env_value(env, key)

    if stack_config.get(PULUMI_TEMPORARY):
        raise ConfigError(
            source,
            f"{PULUMI_TEMPORARY}: temporary credentials are not supported; give a permanent "
            f"{PULUMI_CONFIG['ak']}/{PULUMI_CONFIG['sk']} pair, or --profile FILE",
        )
    pair = {key: (stacked(key), environ(key)) for key in ("ak", "sk")}
    in_stack = [key for key in pair if pair[key][0] is not None]
    if not in_stack and all(from_env is None for _, from_env in pair.values()):
        return None
    if len(in_stack) == 1:
        other = "sk" if in_stack == ["ak"] else "ak"
        raise ConfigError(
            source,
            f"{PULUMI_CONFIG[other]}: missing ({PULUMI_CONFIG[in_stack[0]]} is set in the stack: "
            "an access key and its secret key come from the same place)",
        )
    values: dict[str, str] = {}
    for key in ("ak", "sk", "region", "project_id", "domain_id"):
        value = stacked(key) or environ(key)
        if value is None:
            names = " or ".join((PULUMI_CONFIG[key], *_ENV[key]))
            raise ConfigError(source, f"{names}: missing")
        values[key] = value
    env_region = environ("region")
    if (
        stacked("region") is not None
        and stacked("project_id") is None
        and env_region is not None
        and env_region != values["region"]
    ):
        raise ConfigError(
            source,
            f"{PULUMI_CONFIG['project_id']}: missing (the stack sets region {values['region']}; "
            f"the project id in the environment is for HW_REGION_NAME={env_region})",
        )
    return HuaweiProfile(
        region=values["region"],
        project_id=values["project_id"],
        domain_id=values["domain_id"],
        ak=values["ak"],
        sk=values["sk"],
    )


__all__ = [
    "BSS_ENDPOINT",
    "BSS_ENDPOINTS",
    "PULUMI_CONFIG",
    "REQUIRED_ENDPOINTS",
    "SANDBOX_VAULT_ID",
    "SERVICES",
    "SITES",
    "HuaweiProfile",
    "load_profile",
    "profile_from_env",
    "profile_from_pulumi_config",
]
