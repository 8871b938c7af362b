"""Loading ``teardown.toml`` into the core Config, with one clear error naming file and key."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter, ValidationError

from teardown.app import providers
from teardown.core.config import ENV_REF, Config
from teardown.core.errors import ConfigError

DEFAULT_CONFIG = Path("teardown.toml")
_ADAPTER = TypeAdapter(Config)


def parse_config(text: str, source: str) -> Config:
    """Parse TOML text; ConfigError(source, problem) naming the first bad key."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(source, f"not valid TOML: {e}") from None
    except (RecursionError, ValueError) as e:  # absurd nesting, or a number too long to read
        raise ConfigError(source, f"not valid TOML: {type(e).__name__}") from None
    return config_from_mapping(data, source)


def holds_credentials(name: str) -> bool:
    """Whether the environment variable ``name`` holds credentials of a registered cloud or of
    the stack (``teardown.app.providers.credential_env``): such a variable is never passed."""
    upper = name.upper()
    return any(
        upper.startswith(n[:-1]) if n.endswith("*") else upper == n
        for n in providers.credential_env()
    )


def _strings(value: object) -> list[str]:
    return [x for x in value if isinstance(x, str)] if isinstance(value, list) else []


def _refuse_credentials(data: dict[str, Any], source: str) -> None:
    """ConfigError when ``[ssh] pass_env`` or a pull rule's command names a variable that
    holds cloud credentials (checked on the raw table, before anything else is said about
    the variable)."""
    ssh = data.get("ssh")
    for name in _strings(ssh.get("pass_env")) if isinstance(ssh, dict) else []:
        if holds_credentials(name):
            raise ConfigError(
                source, f"ssh.pass_env: {name} holds cloud credentials and is never passed"
            )
    backup = data.get("backup")
    rules = backup.get("pull") if isinstance(backup, dict) else None
    for rule in rules if isinstance(rules, list) else []:
        if not isinstance(rule, dict):
            continue
        for command in _strings(rule.get("before")) + _strings(rule.get("after")):
            for name in ENV_REF.findall(command):
                if holds_credentials(name):
                    raise ConfigError(
                        source,
                        f"backup.pull {rule.get('name', 'data')!r}: ${{env:{name}}} holds cloud "
                        "credentials and is never sent to a host",
                    )


def config_from_mapping(data: dict[str, Any], source: str) -> Config:
    """The config a parsed TOML table describes; ConfigError naming the first bad key."""
    _refuse_credentials(data, source)
    try:
        return _ADAPTER.validate_python(data)
    except ValidationError as e:
        err = e.errors()[0]
        loc = ".".join(str(x) for x in err["loc"])
        if err["type"] == "unexpected_keyword_argument":
            problem = f"unknown key {loc!r}"
        elif err["type"] == "missing_argument" or err["type"] == "missing":
            problem = f"missing key {loc!r}"
        else:
            msg = str(err["msg"]).removeprefix("Value error, ")
            problem = f"{loc}: {msg}" if loc else msg
        more = len(e.errors()) - 1
        if more:
            problem += f" (and {more} more problem{'s' if more > 1 else ''})"
        raise ConfigError(source, problem) from None


def _check_auto_loaded(path: Path) -> None:
    """A config found in the working directory is loaded only when it is the user's own and
    nobody else can write it: it decides what is destroyed and what runs on hosts."""
    st = path.stat()
    if st.st_uid != os.getuid():
        raise ConfigError(
            str(path),
            "not loaded: it belongs to another user (give it with --config to use it anyway)",
        )
    if st.st_mode & 0o022:
        raise ConfigError(
            str(path),
            "not loaded: others can write it (chmod go-w, or give it with --config)",
        )


def load_config(path: Path | None) -> Config:
    """Load ``path``; with None, ``./teardown.toml`` if present, else the defaults."""
    if path is None:
        if not DEFAULT_CONFIG.exists():
            return Config()
        path = DEFAULT_CONFIG
        _check_auto_loaded(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(str(path), "no such file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(str(path), f"cannot read: {e}") from None
    return parse_config(text, str(path))
