"""The provider registry: every cloud teardown can work with, by name.

Huawei Cloud is registered here; another provider (a test's fake cloud, a later cloud) is
registered the same way, through :func:`register`, and is then chosen by a profile file with a
table of its name, or by credentials in the environment that only it recognises.

Example::

    from teardown.app import providers

    providers.register(MyCloud())          # MyCloud implements teardown.ports.provider.Provider
    account = providers.open_account(Path("profile.toml"), os.environ)
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from teardown.adapters.huawei.provider import PROVIDER as HUAWEI
from teardown.core.errors import ConfigError
from teardown.ports.provider import PROVIDER_API, Account, Provider
from teardown.support.toml_file import read_toml

GENERIC_CREDENTIALS = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "PULUMI_ACCESS_TOKEN",
    "PULUMI_CONFIG_PASSPHRASE",
)
"""Credentials of the object store and of the stack, whatever the cloud: never passed."""

_REGISTRY: dict[str, Provider] = {}


def register(provider: Provider, *, replace: bool = False) -> Provider:
    """Make ``provider`` available under its name. A provider of another interface version, or
    a second one under a taken name (unless ``replace``), is refused with a ValueError."""
    if provider.api_version != PROVIDER_API:
        raise ValueError(
            f"provider {provider.name!r} implements interface version {provider.api_version}; "
            f"this teardown speaks version {PROVIDER_API}"
        )
    if provider.name in _REGISTRY and not replace and _REGISTRY[provider.name] is not provider:
        raise ValueError(f"a provider named {provider.name!r} is already registered")
    _REGISTRY[provider.name] = provider
    return provider


def unregister(name: str) -> None:
    """Forget a provider (tests register fakes and remove them)."""
    _REGISTRY.pop(name, None)


def names() -> list[str]:
    return sorted(_REGISTRY)


def get(name: str) -> Provider:
    """The provider registered as ``name``; ConfigError naming the known ones otherwise."""
    try:
        return _REGISTRY[name]
    except KeyError:
        known = ", ".join(names()) or "none"
        raise ConfigError("provider", f"no provider {name!r} (known: {known})") from None


def credential_env() -> tuple[str, ...]:
    """Every variable (``*``: a prefix) that holds credentials of a registered cloud, or of
    the stack: never passed to a host."""
    out = list(GENERIC_CREDENTIALS)
    for p in _REGISTRY.values():
        out.extend(p.credential_env)
    return tuple(dict.fromkeys(out))


def _cloud_table(path: Path) -> str:
    """The provider a profile file is for: the one registered name among its tables."""
    source = str(path)
    data = read_toml(path)
    found = [n for n in names() if n in data]
    if len(found) == 1:
        return found[0]
    if not found:
        tables = " or ".join(f"[{n}]" for n in names())
        raise ConfigError(source, f"{'/'.join(names())}: missing (the {tables} table)")
    raise ConfigError(
        source, f"tables for several clouds ({', '.join(found)}): a profile names one"
    )


def open_account(path: Path | None, env: Mapping[str, str]) -> Account:
    """The account of the profile file given, else of the credentials in the environment (the
    first registered provider that finds some); else a ConfigError saying what to give."""
    if path is not None:
        return get(_cloud_table(path)).open(path, env)
    for name in names():
        account = _REGISTRY[name].from_env(env)
        if account is not None:
            return account
    hints = "; ".join(f"{p.name}: {p.env_help}" for p in _REGISTRY.values())
    raise ConfigError(
        "--profile", f"no profile given and no credentials in the environment ({hints})"
    )


def account_from_pulumi_config(
    stack_config: Mapping[str, str], env: Mapping[str, str]
) -> Account | None:
    """The account of the first registered provider whose Pulumi provider config the stack
    sets (``huaweicloud:region``, ``huaweicloud:accessKey``...), or None."""
    for name in names():
        account = _REGISTRY[name].from_pulumi_config(stack_config, env)
        if account is not None:
            return account
    return None


def provider_of(account: Account) -> Provider:
    return get(account.provider)


register(HUAWEI)
