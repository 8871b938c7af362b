"""Reading a TOML file with one clear error naming the file, shared by every reader of profiles."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from teardown.core.errors import ConfigError


def read_toml(path: Path) -> dict[str, Any]:
    """The parsed table of ``path``; ConfigError naming the file and the problem otherwise.

    Example::

        data = read_toml(Path("profile.toml"))   # {'huawei': {...}}
    """
    source = str(path)
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(source, "no such file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(source, f"cannot read: {type(e).__name__}") from None
    except tomllib.TOMLDecodeError as e:
        # The decoder's message names a line and column, never the value.
        raise ConfigError(source, f"not valid TOML: {e}") from None
