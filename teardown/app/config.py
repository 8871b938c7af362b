"""Loading ``teardown.toml`` into the core Config, with one clear error naming file and key;
and the ``teardown:`` keys of a Pulumi stack's config applied over it (:func:`apply_stack_config`).
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import json
import os
import tomllib
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
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
    return [x for x in value if isinstance(x, str)] if isinstance(value, list | tuple) else []


_Problem = tuple[tuple[str, ...], str]
"""Where a problem is (the key path; empty: the whole config) and what it is."""


def _credential_problem(data: Mapping[str, Any]) -> _Problem | None:
    """``[ssh] pass_env`` or a pull rule's command naming a variable that holds cloud
    credentials (checked on the raw table, before anything else is said about the variable)."""
    ssh = data.get("ssh")
    for name in _strings(ssh.get("pass_env")) if isinstance(ssh, Mapping) else []:
        if holds_credentials(name):
            return ("ssh", "pass_env"), f"{name} holds cloud credentials and is never passed"
    backup = data.get("backup")
    rules = backup.get("pull") if isinstance(backup, Mapping) else None
    for rule in rules if isinstance(rules, list | tuple) else []:
        if not isinstance(rule, Mapping):
            continue
        for command in _strings(rule.get("before")) + _strings(rule.get("after")):
            for name in ENV_REF.findall(command):
                if holds_credentials(name):
                    return ("backup", "pull"), (
                        f"{rule.get('name', 'data')!r}: ${{env:{name}}} holds cloud "
                        "credentials and is never sent to a host"
                    )
    return None


def _validation_problem(e: ValidationError) -> _Problem:
    """The first problem pydantic found, in the words the config errors use."""
    err = e.errors()[0]
    path = tuple(str(x) for x in err["loc"])
    loc = ".".join(path)
    if err["type"] == "unexpected_keyword_argument":
        problem = f"unknown key {loc!r}"
    elif err["type"] == "missing_argument" or err["type"] == "missing":
        problem = f"missing key {loc!r}"
    else:
        problem = str(err["msg"]).removeprefix("Value error, ")
    more = len(e.errors()) - 1
    if more:
        problem += f" (and {more} more problem{'s' if more > 1 else ''})"
    return path, problem


def _said(problem: _Problem) -> str:
    """``loc: problem``, without the location when the problem names its key already."""
    path, text = problem
    if not path or text.startswith(("unknown key ", "missing key ")):
        return text
    sep = " " if path == ("backup", "pull") else ": "  # "backup.pull 'site': ..."
    return ".".join(path) + sep + text


def _check(data: Mapping[str, Any]) -> Config | _Problem:
    """The config ``data`` describes, or its first problem."""
    problem = _credential_problem(data)
    if problem is not None:
        return problem
    try:
        return _ADAPTER.validate_python(data)
    except ValidationError as e:
        return _validation_problem(e)


def config_from_mapping(data: dict[str, Any], source: str) -> Config:
    """The config a parsed TOML table describes; ConfigError naming the first bad key."""
    result = _check(data)
    if isinstance(result, Config):
        return result
    raise ConfigError(source, _said(result))


# -- the ``teardown:`` keys of a Pulumi stack's config ---------------------------------------

STACK_NAMESPACE = "teardown"
"""The Pulumi config namespace whose keys are teardown settings
(``teardown:backup.retention_days``)."""

RESERVED_STACK_KEYS = frozenset({"profile", "config", "journal"})
"""``teardown:`` keys that are not teardown.toml keys: the cloud profile file, the teardown.toml
file and the journal path, read by the Pulumi hooks (``teardown.pulumi``) and, for ``profile``,
by ``--stack`` (:func:`teardown.app.services.resolve_stack_profile`). ``teardown:journal.path``
(with a dot) is the teardown.toml key."""


@dataclass(frozen=True)
class _StackKey:
    name: str
    """As the stack config spells it: ``teardown:backup.retention_days``."""
    path: tuple[str, ...]
    raw: object = dataclasses.field(repr=False)
    secret: bool = False

    def value(self) -> object:
        """The raw value as teardown.toml would hold it (see :func:`stack_value`)."""
        return (
            stack_value(self.raw, _wants_text(self.path)) if isinstance(self.raw, str) else self.raw
        )


def stack_value(text: str, as_text: bool = False) -> object:
    """A stack config value (Pulumi stores them all as strings) as the TOML value it spells:
    ``30`` -> 30, ``true`` -> True, ``["a"]`` -> ["a"], ``{"retention_days": 7}`` (JSON, as
    ``pulumi config set --path`` stores objects) -> a table; anything else (``cbr``, ``2h``) is
    the string itself. ``as_text``: the key is a string setting, so the text is taken as it is
    (``teardown:scope.name: "42"`` is the name ``42``)."""
    if as_text:
        return text
    try:
        doc = tomllib.loads(f"v = {text}")
    except (tomllib.TOMLDecodeError, RecursionError, ValueError):
        doc = {}
    if set(doc) == {"v"}:
        return doc["v"]
    if text.lstrip().startswith(("{", "[")):
        try:
            return json.loads(text)
        except (ValueError, RecursionError):
            pass
    return text


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _wants_text(path: Sequence[str]) -> bool:
    """Whether ``path`` names a string setting of the Config tree (``scope.name``, ``ssh.user``)."""
    hint: Any = Config
    for name in path:
        if not (isinstance(hint, type) and dataclasses.is_dataclass(hint)):
            return False
        hint = _hints(hint).get(name)
        if hint is None:
            return False
    if hint is str:
        return True
    args = set(typing.get_args(hint))
    is_union = typing.get_origin(hint) in (typing.Union, types.UnionType)
    return is_union and str in args and args <= {str, type(None)}


def _secret_of(value: object) -> tuple[object, bool]:
    """(value, secret) of a plain value or of a ``ConfigValue``-like (``.value``, ``.secret``)."""
    if hasattr(value, "value") and hasattr(value, "secret"):
        return getattr(value, "value"), bool(getattr(value, "secret"))  # noqa: B009
    return value, False


def _stack_keys(stack_config: Mapping[str, object], source: str) -> list[_StackKey]:
    """The teardown.toml keys a stack config sets, least specific first (``teardown:backup``
    before ``teardown:backup.retention_days``, so the dotted key wins). Keys of other namespaces
    and :data:`RESERVED_STACK_KEYS` are left out; ConfigError for ``teardown:`` with no path."""
    out: list[_StackKey] = []
    for name, given in stack_config.items():
        namespace, colon, key = str(name).partition(":")
        if namespace != STACK_NAMESPACE or not colon or key in RESERVED_STACK_KEYS:
            continue
        path = tuple(key.split("."))
        if not all(part.strip() for part in path):
            raise ConfigError(
                source, f"{name}: not a key path (like teardown:backup.retention_days)"
            )
        raw, secret = _secret_of(given)
        out.append(_StackKey(str(name), path, raw, secret))
    return sorted(out, key=lambda k: (len(k.path), k.path))


def _merge(into: dict[str, Any], value: Mapping[str, Any]) -> None:
    for k, v in value.items():
        if isinstance(v, Mapping) and isinstance(into.get(k), dict):
            _merge(into[k], v)
        else:
            into[k] = copy.deepcopy(v)


def _overlay(base: Mapping[str, Any], keys: Sequence[_StackKey], source: str) -> dict[str, Any]:
    """``base`` with each key's value set at its path (tables merged key by key)."""
    data = copy.deepcopy(dict(base))
    for key in keys:
        node = data
        for i, part in enumerate(key.path[:-1]):
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                where = ".".join(key.path[: i + 1])
                raise ConfigError(source, f"{key.name}: {where} is not a table")
            node = child
        last, value = key.path[-1], key.value()
        if isinstance(value, Mapping) and isinstance(node.get(last), dict):
            _merge(node[last], value)
        else:
            node[last] = copy.deepcopy(value)
    return data


def _blame(source: str, keys: Sequence[_StackKey], problem: _Problem) -> ConfigError:
    """One ConfigError naming the stack key(s) at fault; a secret key's value never shows."""
    path, _ = problem
    names = ", ".join(k.name for k in keys)
    if any(k.secret for k in keys) and not problem[1].startswith("unknown key "):
        return ConfigError(source, f"{names}: not a valid value here (a secret: not shown)")
    if len(keys) == 1 and keys[0].path[: len(path)] == path:
        # the key itself, or a check of the table holding it ("retention_days must be ...")
        return ConfigError(source, f"{names}: {problem[1]}")
    return ConfigError(source, f"{names}: {_said(problem)}")


def apply_stack_config(
    base: Config | Mapping[str, Any],
    stack_config: Mapping[str, object],
    source: str,
    *,
    base_source: str = "teardown.toml",
) -> Config:
    """``base`` (the teardown.toml Config, or its parsed table) with the ``teardown:`` keys of
    a Pulumi stack's config applied: ``teardown:backup.retention_days: "30"`` sets
    ``[backup] retention_days = 30``.

    ``stack_config`` maps full keys (``teardown:scope.max_resources``) to their values: strings
    as Pulumi stores them, or ``ConfigValue``-likes (``.value``, ``.secret``) as the Automation
    API's ``get_all_config`` returns them (secrets decrypted). Each value is read as a TOML value
    when it parses as one (``30``, ``true``, ``["a"]``), as JSON for an object or list that does
    not (``pulumi config set --path`` stores those as JSON), else as the string itself; string
    settings (``scope.name``) always take the text as it is (:func:`stack_value`). Keys of other
    namespaces, and ``teardown:profile``, ``teardown:config`` and ``teardown:journal``
    (:data:`RESERVED_STACK_KEYS`), are not teardown.toml keys and are left alone.

    Precedence, most specific first: command-line flags > the stack config's ``teardown:`` keys
    > the teardown.toml file > the defaults. (The flags are applied by the caller after this.)

    The result goes through the same validation as a teardown.toml, credentials refusal
    included; the first problem is ONE ConfigError(``source``, ...) naming the stack key
    (``teardown:backup.nope: unknown key 'backup.nope'``). A base given as a table is validated
    first, its errors naming ``base_source``.
    """
    if not isinstance(base, Config):
        base = config_from_mapping(dict(base), base_source)
    keys = _stack_keys(stack_config, source)
    if not keys:
        return base
    table = _ADAPTER.dump_python(base)
    result = _check(_overlay(table, keys, source))
    if isinstance(result, Config):
        return result
    for key in keys:  # the first key that is wrong on its own...
        alone = _check(_overlay(table, [key], source))
        if not isinstance(alone, Config):
            raise _blame(source, [key], alone)
    path = result[0]  # ...else the keys that are wrong together
    touching = [k for k in keys if k.path[: len(path)] == path or path[: len(k.path)] == k.path]
    raise _blame(source, touching or keys, result)


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
