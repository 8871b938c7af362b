"""teardown.toml: defaults, validation errors that name the key, and the example files."""

from __future__ import annotations

from pathlib import Path

import pytest

from teardown.app.config import load_config, parse_config
from teardown.core.config import Config, PrepaidPolicy
from teardown.core.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent


def test_no_file_means_safe_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    config = load_config(None)
    assert config == Config()
    assert config.scope.refuse_patterns == ("*prod*",)
    assert config.ssh.auto_add_host_keys is False


@pytest.mark.parametrize("name", ["teardown.toml", "sandbox-demo.toml"])
def test_the_example_configs_are_valid(name: str) -> None:
    config = load_config(ROOT / "examples" / name)
    assert config.billing.prepaid is PrepaidPolicy.UNSUBSCRIBE


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("[scope]\nmax_resourcez = 3", "unknown key 'scope.max_resourcez'"),
        ("[billing]\nmax_fee = 'a lot'", "billing.max_fee"),
        ("[billing]\nattached_disks = 'sell'", "attached_disks must be unsubscribe or keep"),
        ("[backup]\nsnapshot = 'tape'", "backup.snapshot"),
        ("[[backup.pull]]\nname = 'x'", "give paths, or paths_from_tag"),
        ("[run]\nparallel = 0", "parallel must be 1 to 64"),
        ("[ssh]\nverify_with = 'md5'", "verify_with must be"),
        ("scope = [", "not valid TOML"),
    ],
)
def test_bad_config_names_file_and_key(text: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(text, "my.toml")
    assert str(err.value).startswith("my.toml: ")
    assert fragment in str(err.value)
    assert "\n" not in str(err.value)
