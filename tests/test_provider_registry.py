"""A second cloud, registered through the public registry, runs a whole plan and run.

The ``fakecloud`` provider lives in tests/fake_provider.py: nothing in the package knows it.
Registered with ``teardown.app.providers.register``, it is chosen by a profile with a
``[fakecloud]`` table, and ``teardown plan`` / ``teardown run`` back up, destroy and report
through its ports, with its refund rule and its words on where refunds go.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from teardown.app import providers
from teardown.app.config import parse_config
from teardown.cli.main import cli
from teardown.core.errors import ConfigError
from teardown.ports.provider import PROVIDER_API
from tests.fake_cloud import FakeCloud
from tests.fake_provider import ARRIVAL, NAME, FakeProvider, write_inventory


@pytest.fixture
def fakecloud(tmp_path: Path) -> Iterator[Path]:
    providers.register(FakeProvider())
    try:
        root = tmp_path / "cloud"
        write_inventory(
            root,
            [
                {"id": "s-1", "name": "web-1", "tags": {"env": "test"}},
                {"id": "s-2", "name": "db-1", "tags": {"env": "test"}, "prepaid": True},
                {"id": "s-3", "name": "prod-1", "tags": {"env": "prod"}},
            ],
        )
        profile = tmp_path / "profile.toml"
        profile.write_text(f'[{NAME}]\nroot = "{root}"\n')
        (tmp_path / "teardown.toml").write_text(
            '[scope]\nname = "fake-test"\n[backup]\nsnapshot = "cbr"\n'
            f'[journal]\npath = "{tmp_path / "j" / "journal.db"}"\n'
            f'[store]\npath = "{tmp_path / "store"}"\n[run]\nclaim_settle = 0\n'
        )
        yield tmp_path
    finally:
        providers.unregister(NAME)


def invoke(tmp_path: Path, *args: str) -> tuple[int, str, str]:
    common = [
        "--profile",
        str(tmp_path / "profile.toml"),
        "--config",
        str(tmp_path / "teardown.toml"),
    ]
    result = CliRunner().invoke(cli, [*args, *common, "--tag", "env=test"])
    return result.exit_code, result.stdout, result.stderr


def test_a_registered_provider_plans_with_its_own_rules(fakecloud: Path) -> None:
    code, out, err = invoke(fakecloud, "plan", "--json")
    assert code == 0, err
    doc = json.loads(out)
    names = {r["name"]: r for r in doc["resources"]}
    assert set(names) == {"web-1", "db-1"}  # prod-1 is not selected
    estimate = names["db-1"]["billing"]["estimate"]
    assert estimate["fee"] == "1.50" and "fake rule" in estimate["explanation"]
    assert names["web-1"]["billing"]["estimate"] is None  # pay-per-use: nothing to refund


def test_a_registered_provider_runs_a_whole_run_backup_first(fakecloud: Path) -> None:
    code, out, err = invoke(fakecloud, "run", "--yes")
    assert code == 0, err + out
    cloud = FakeCloud(fakecloud / "cloud")
    destroys = {c["urn"]: c for c in cloud.calls("destroy")}
    assert set(destroys) == {"fakecloud:server:s-1", "fakecloud:server:s-2"}
    # Each destroy happened while a surviving backup of that server existed (I1, cloud side).
    assert all(c["backups"] for c in destroys.values())
    assert destroys["fakecloud:server:s-2"]["action"] == "unsubscribe"
    state = cloud.read()["resources"]
    assert state["fakecloud:server:s-3"]["presence"] == "exists"
    # The report carries the provider's words on refunds, not another cloud's.
    (report,) = (fakecloud / "j" / "runs").glob("*/report.json")
    doc = json.loads(report.read_text())
    assert doc["refund_arrival"] == ARRIVAL
    assert {r["name"] for r in doc["resources"]} == {"web-1", "db-1"}
    assert not json.loads((fakecloud / "cloud" / "claims.json").read_text())  # released


def test_the_registry_refuses_another_interface_version_and_a_taken_name() -> None:
    class Old(FakeProvider):
        api_version = PROVIDER_API + 1

    with pytest.raises(ValueError, match="interface version"):
        providers.register(Old())
    assert NAME not in providers.names()
    providers.register(FakeProvider())
    try:
        with pytest.raises(ValueError, match="already registered"):
            providers.register(FakeProvider())
    finally:
        providers.unregister(NAME)


def test_a_profile_names_exactly_one_registered_cloud(tmp_path: Path) -> None:
    providers.register(FakeProvider())
    try:
        both = tmp_path / "both.toml"
        both.write_text('[fakecloud]\nroot = "x"\n[huawei]\nregion = "r"\n')
        with pytest.raises(ConfigError, match="several clouds"):
            providers.open_account(both, {})
        neither = tmp_path / "neither.toml"
        neither.write_text('[ssh]\nuser = "root"\n')
        with pytest.raises(ConfigError, match=r"\[fakecloud\] or \[huawei\]"):
            providers.open_account(neither, {})
    finally:
        providers.unregister(NAME)


def test_a_registered_providers_credentials_are_never_passed_to_a_host() -> None:
    config = '[ssh]\npass_env = ["FAKECLOUD_TOKEN"]\n'
    parse_config(config, "teardown.toml")  # unknown to teardown: an ordinary variable
    providers.register(FakeProvider())
    try:
        with pytest.raises(ConfigError, match="FAKECLOUD_TOKEN holds cloud credentials"):
            parse_config(config, "teardown.toml")
    finally:
        providers.unregister(NAME)
