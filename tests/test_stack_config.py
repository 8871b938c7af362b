"""A Pulumi stack's config as teardown's configuration (docs/pulumi-config.md).

``teardown:`` keys set teardown.toml keys (:func:`apply_stack_config`); the ``huaweicloud:``
provider config gives the credentials and region (:func:`profile_from_pulumi_config`); and
``teardown plan --stack`` uses both, read through the Automation API adapter
(:meth:`PulumiStack.config`). The CLI tests feed the adapter a stack whose ``get_all_config``
returns what the Automation API returns (``ConfigValue``s), through the ``select`` seam the
adapter has for fakes; the last test does the same against a real local-backend stack and runs
only where the ``pulumi`` CLI is on PATH.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from pulumi import automation
from pulumi.automation.errors import create_command_error

from teardown.adapters.huawei.profile import HuaweiProfile, profile_from_pulumi_config
from teardown.adapters.huawei.provider import HuaweiAccount
from teardown.adapters.pulumi.automation import PulumiStack, StackConfigValue, StackRef
from teardown.app import providers, targets
from teardown.app.config import apply_stack_config, parse_config
from teardown.app.services import resolve_stack_profile
from teardown.app.targets import TargetSource, plan_targets
from teardown.cli.main import cli
from teardown.core.config import Config, PrepaidPolicy
from teardown.core.errors import ConfigError, PermanentError
from teardown.core.model import SnapshotKind
from tests.fake_provider import NAME as FAKECLOUD
from tests.fake_provider import FakeAccount, FakeProvider

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "huawei-test-env.json"
IMPORTABLE = ROOT / "examples" / "sandbox-demo-stack.json"
"""An export a local backend imports (EXAMPLE holds ciphertext of another passphrase)."""
SOURCE = "stack dev config"

# -- teardown: keys -> teardown.toml keys ------------------------------------------------------


def test_values_are_read_as_toml_values_else_as_strings() -> None:
    config = apply_stack_config(
        Config(),
        {
            "teardown:backup.retention_days": "7",  # int
            "teardown:billing.cancel_auto_renew": "false",  # bool
            "teardown:scope.refuse_patterns": '["*live*", "*prod*"]',  # list
            "teardown:billing.prepaid": "keep_to_expiry",  # not TOML: the string
            "teardown:backup.reuse_within": "2h",
            "teardown:billing.max_fee": "12.5",  # float -> Decimal, as from a file
        },
        SOURCE,
    )
    assert config.backup.retention_days == 7
    assert config.billing.cancel_auto_renew is False
    assert config.scope.refuse_patterns == ("*live*", "*prod*")
    assert config.billing.prepaid is PrepaidPolicy.KEEP_TO_EXPIRY
    assert config.backup.reuse_within == "2h"
    assert config.billing.max_fee is not None and float(config.billing.max_fee) == 12.5


def test_a_string_setting_takes_the_text_as_it_is() -> None:
    config = apply_stack_config(
        Config(), {"teardown:scope.name": "42", "teardown:ssh.user": "true"}, SOURCE
    )
    assert config.scope.name == "42"  # not the int 42, which a str setting refuses
    assert config.ssh.user == "true"


def test_an_object_set_with_path_is_json_and_merges_into_the_table() -> None:
    """``pulumi config set --path teardown:backup.retention_days 7`` stores ``teardown:backup``
    as a JSON object; it merges with the file's other [backup] keys, and a dotted key wins."""
    base = parse_config('[backup]\nsnapshot = "none"\nretention_days = 10\n', "teardown.toml")
    config = apply_stack_config(
        base,
        {
            "teardown:backup": '{"retention_days": 7, "reuse_within": "0"}',
            "teardown:scope": '{"refuse_patterns": ["*live*"]}',
            "teardown:backup.reuse_within": "3h",  # more specific than the object
        },
        SOURCE,
    )
    assert config.backup.snapshot is SnapshotKind.NONE  # the file's, untouched
    assert config.backup.retention_days == 7
    assert config.backup.reuse_within == "3h"
    assert config.scope.refuse_patterns == ("*live*",)


def test_reserved_keys_and_other_namespaces_are_not_toml_keys() -> None:
    stack = {
        "teardown:profile": "sb/profile.toml",
        "teardown:config": "teardown.toml",
        "teardown:journal": ".teardown/j.db",
        "huaweicloud:region": "cn-north-4",
        "shop-test:size": "large",
    }
    assert apply_stack_config(Config(), stack, SOURCE) == Config()
    # ...while ``journal.path`` (with a dot) is the teardown.toml key
    config = apply_stack_config(Config(), {"teardown:journal.path": "x/j.db"}, SOURCE)
    assert config.journal.path == "x/j.db"


def test_precedence_stack_config_over_the_file_over_the_defaults() -> None:
    file_text = "[backup]\nretention_days = 10\n[scope]\nmax_resources = 5\n"
    stack = {"teardown:backup.retention_days": "30"}
    for base in (
        parse_config(file_text, "teardown.toml"),
        {"backup": {"retention_days": 10}, "scope": {"max_resources": 5}},
    ):
        config = apply_stack_config(base, stack, SOURCE)
        assert config.backup.retention_days == 30  # the stack config wins over the file
        assert config.scope.max_resources == 5  # the file's, where the stack says nothing
        assert config.run.parallel == Config().run.parallel  # the default, where neither does


def test_a_bad_base_table_is_named_by_its_own_source() -> None:
    with pytest.raises(ConfigError, match=r"^my\.toml: unknown key 'run\.nope'"):
        apply_stack_config({"run": {"nope": 1}}, {}, SOURCE, base_source="my.toml")


@pytest.mark.parametrize(
    ("stack", "expected"),
    [
        ({"teardown:backup.nope": "1"}, "teardown:backup.nope: unknown key 'backup.nope'"),
        ({"teardown:nope": "1"}, "teardown:nope: unknown key 'nope'"),
        (
            {"teardown:backup.retention_days": "-1"},
            "teardown:backup.retention_days: retention_days must be 0",
        ),
        ({"teardown:run.parallel": "many"}, "teardown:run.parallel: Input should be a valid"),
        (
            {"teardown:backup": '{"retention_days": "x"}'},
            "teardown:backup: backup.retention_days: Input should be a valid integer",
        ),
        (
            {"teardown:scope.max_resources.x": "1"},
            "teardown:scope.max_resources.x: scope.max_resources is not a table",
        ),
        ({"teardown:": "1"}, "teardown:: not a key path"),
    ],
)
def test_a_bad_key_or_value_is_one_error_naming_the_stack_key(
    stack: dict[str, str], expected: str
) -> None:
    good = {"teardown:store.path": "backups", "teardown:scope.name": "ok"}
    with pytest.raises(ConfigError) as err:
        apply_stack_config(Config(), {**good, **stack}, SOURCE)
    message = str(err.value)
    assert message.startswith(f"{SOURCE}: {expected}")
    assert "\n" not in message
    assert "teardown:scope.name" not in message  # only the key at fault is named
    assert "teardown:store.path" not in message


def test_keys_wrong_only_together_are_named_together() -> None:
    """A pull command's ``${env:TOKEN}`` needs ``ssh.pass_env``: each key alone is fine over a
    file that has the other; here the file has neither, so the rule alone is wrong."""
    rule = '[{"paths": ["/srv"], "before": ["dump --token ${env:TOKEN}"]}]'
    ok = apply_stack_config(
        Config(), {"teardown:backup.pull": rule, "teardown:ssh.pass_env": '["TOKEN"]'}, SOURCE
    )
    assert ok.backup.pull[0].before == ("dump --token ${env:TOKEN}",)
    with pytest.raises(ConfigError, match=r"teardown:backup\.pull: .*TOKEN.* not in ssh\.pass_env"):
        apply_stack_config(Config(), {"teardown:backup.pull": rule}, SOURCE)


@pytest.mark.parametrize(
    ("stack", "key"),
    [
        ({"teardown:ssh.pass_env": '["HW_SECRET_KEY"]'}, "teardown:ssh.pass_env"),
        ({"teardown:ssh": '{"pass_env": ["HUAWEICLOUD_SDK_AK"]}'}, "teardown:ssh"),
        (
            {"teardown:backup.pull": '[{"paths": ["/x"], "after": ["x ${env:HW_ACCESS_KEY}"]}]'},
            "teardown:backup.pull",
        ),
    ],
)
def test_credentials_are_refused_in_stack_config_as_in_the_file(
    stack: dict[str, str], key: str
) -> None:
    with pytest.raises(ConfigError) as err:
        apply_stack_config(Config(), stack, SOURCE)
    assert str(err.value).startswith(f"{SOURCE}: {key}: ")
    assert "holds cloud credentials" in str(err.value)


def test_a_secret_value_never_shows_in_the_error() -> None:
    secret = automation.ConfigValue("not-a-duration-s3cr3t", secret=True)
    with pytest.raises(ConfigError) as err:
        apply_stack_config(Config(), {"teardown:backup.reuse_within": secret}, SOURCE)
    assert "teardown:backup.reuse_within" in str(err.value)
    assert "s3cr3t" not in str(err.value)
    plain = automation.ConfigValue("not-a-duration-s3cr3t", secret=False)
    with pytest.raises(ConfigError, match="s3cr3t"):  # a plain value is shown, to help
        apply_stack_config(Config(), {"teardown:backup.reuse_within": plain}, SOURCE)


def test_the_file_errors_read_as_before() -> None:
    """The credential check now also serves stack config; the file's messages are unchanged."""
    cases = {
        '[ssh]\npass_env = ["HW_SECRET_KEY"]': (
            "f.toml: ssh.pass_env: HW_SECRET_KEY holds cloud credentials and is never passed"
        ),
        '[[backup.pull]]\nname = "site"\npaths = ["/x"]\nbefore = ["${env:HW_SECRET_KEY}"]': (
            "f.toml: backup.pull 'site': ${env:HW_SECRET_KEY} holds cloud credentials and is "
            "never sent to a host"
        ),
        "[run]\nparallel = 0": "f.toml: run: parallel must be 1 to 64",
    }
    for text, message in cases.items():
        with pytest.raises(ConfigError) as err:
            parse_config(text, "f.toml")
        assert str(err.value) == message


# -- huaweicloud: provider config -> profile ----------------------------------------------------

STACK_CREDS = {
    "huaweicloud:region": "cn-north-4",
    "huaweicloud:accessKey": "AK-STACK",
    "huaweicloud:secretKey": "SK-STACK-s3cr3t",
    "huaweicloud:projectId": "proj-stack",
}
ENV_CREDS = {
    "HW_ACCESS_KEY": "AK-ENV",
    "HW_SECRET_KEY": "SK-ENV-s3cr3t",
    "HW_REGION_NAME": "cn-north-4",
    "HW_PROJECT_ID": "proj-env",
    "HW_DOMAIN_ID": "domain-env",
}


def test_stack_provider_config_wins_and_the_environment_fills_the_rest() -> None:
    profile = profile_from_pulumi_config(STACK_CREDS, ENV_CREDS)
    assert profile == HuaweiProfile(
        region="cn-north-4",
        project_id="proj-stack",
        domain_id="domain-env",  # not in the stack: from the environment (e.g. ESC)
        ak="AK-STACK",
        sk="SK-STACK-s3cr3t",
    )
    assert "s3cr3t" not in repr(profile)


def test_region_from_the_stack_with_the_rest_from_the_environment() -> None:
    profile = profile_from_pulumi_config({"huaweicloud:region": "cn-north-4"}, ENV_CREDS)
    assert profile is not None and (profile.ak, profile.project_id) == ("AK-ENV", "proj-env")


def test_no_access_key_anywhere_is_none_and_the_environment_alone_is_enough() -> None:
    assert profile_from_pulumi_config({"huaweicloud:region": "cn-north-4"}, {}) is None
    profile = profile_from_pulumi_config({}, ENV_CREDS)
    assert profile is not None and profile.ak == "AK-ENV"


@pytest.mark.parametrize(
    ("stack", "env", "fragment"),
    [
        (
            {"huaweicloud:accessKey": "AK-STACK"},
            ENV_CREDS,
            "huaweicloud:secretKey: missing (huaweicloud:accessKey is set in the stack",
        ),
        (STACK_CREDS, {}, "huaweicloud:domainId or HUAWEICLOUD_SDK_DOMAIN_ID or HW_DOMAIN_ID"),
        (
            {"huaweicloud:region": "ap-southeast-1"},
            ENV_CREDS,
            "huaweicloud:projectId: missing (the stack sets region ap-southeast-1",
        ),
        (
            {**STACK_CREDS, "huaweicloud:securityToken": "tok-s3cr3t"},
            ENV_CREDS,
            "temporary credentials are not supported",
        ),
    ],
)
def test_incomplete_or_mixed_provider_config_is_refused_without_values(
    stack: dict[str, str], env: dict[str, str], fragment: str
) -> None:
    with pytest.raises(ConfigError) as err:
        profile_from_pulumi_config(stack, env, source=SOURCE)
    assert str(err.value).startswith(f"{SOURCE}: ")
    assert fragment in str(err.value)
    assert "s3cr3t" not in str(err.value)


def _profile_file(path: Path, region: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        f'[huawei]\nregion = "{region}"\nproject_id = "p-file"\ndomain_id = "d"\n'
        'ak = "AK-FILE"\nsk = "SK-FILE"\n'
    )
    return path


def test_the_account_precedence_profile_flag_then_teardown_profile_then_provider_config(
    tmp_path: Path,
) -> None:
    flag = _profile_file(tmp_path / "flag.toml", "flag-region")
    _profile_file(tmp_path / "proj" / "sb" / "profile.toml", "named-region")
    stack = {**STACK_CREDS, "huaweicloud:domainId": "d", "teardown:profile": "sb/profile.toml"}
    env = {**ENV_CREDS, "HUAWEICLOUD_VAULT_ID": "vault-env"}
    proj = tmp_path / "proj"

    def region(path: Path | None, config: Mapping[str, str], env: Mapping[str, str]) -> str:
        account = resolve_stack_profile(path, config, env, project_dir=proj)
        assert isinstance(account, HuaweiAccount)
        assert account.profile.vault_id == "vault-env"
        return f"{account.profile.region}/{account.profile.ak}"

    assert region(flag, stack, env) == "flag-region/AK-FILE"  # --profile FILE
    assert region(None, stack, env) == "named-region/AK-FILE"  # teardown:profile
    without_named = {k: v for k, v in stack.items() if k != "teardown:profile"}
    assert region(None, without_named, env) == "cn-north-4/AK-STACK"  # provider config
    assert region(None, {"aws:region": "x"}, env) == "cn-north-4/AK-ENV"  # the environment
    with pytest.raises(ConfigError, match="no profile given"):
        resolve_stack_profile(None, {}, {}, project_dir=proj)


# -- the Automation API adapter ----------------------------------------------------------------


class ConfiguredStack:
    """``pulumi.automation.Stack`` as the ``--stack`` path uses it: its state and its config,
    as ``export_stack`` and ``get_all_config`` return them. Nothing may be destroyed."""

    def __init__(
        self, config: Mapping[str, automation.ConfigValue], deployment: dict[str, Any]
    ) -> None:
        self.config = dict(config)
        self.deployment = deployment
        self.config_reads = 0
        self.fail: Exception | None = None

    def export_stack(self) -> automation.Deployment:
        return automation.Deployment(version=3, deployment=copy.deepcopy(self.deployment))

    def get_all_config(self) -> dict[str, automation.ConfigValue]:
        self.config_reads += 1
        if self.fail is not None:
            raise self.fail
        return dict(self.config)

    def destroy(self, **kwargs: Any) -> None:
        raise AssertionError("a plan destroys nothing")

    def refresh(self, **kwargs: Any) -> None:
        raise AssertionError("a plan refreshes nothing")


def example_deployment() -> dict[str, Any]:
    deployment = json.loads(EXAMPLE.read_text())["deployment"]
    assert isinstance(deployment, dict)
    return deployment


def adapter(stack: ConfiguredStack, name: str = "dev", work: Path = Path(".")) -> PulumiStack:
    return PulumiStack(StackRef(name, work), select=lambda *a, **k: stack)


def test_stack_config_is_read_through_the_adapter_with_secrets_flagged() -> None:
    fake = ConfiguredStack(
        {
            "teardown:backup.retention_days": automation.ConfigValue("7"),
            "huaweicloud:secretKey": automation.ConfigValue("s3cr3t", secret=True),
        },
        example_deployment(),
    )
    config = adapter(fake).config()
    assert config == {
        "teardown:backup.retention_days": StackConfigValue("7"),
        "huaweicloud:secretKey": StackConfigValue("s3cr3t", secret=True),
    }
    assert "s3cr3t" not in repr(config)


def test_a_failed_config_read_never_repeats_its_output() -> None:
    """``pulumi config --show-secrets --json`` prints values on stdout: an error keeps none."""
    fake = ConfiguredStack({}, example_deployment())
    fake.fail = create_command_error(
        automation.CommandResult(stdout='{"x:k": {"value": "s3cr3t"}}', stderr="", code=1)
    )
    with pytest.raises(PermanentError) as err:
        adapter(fake).config()
    assert "s3cr3t" not in str(err.value)
    assert "pulumi failed on stack dev" in str(err.value)


# -- acceptance: `teardown plan --stack dev` shows the stack's settings -------------------------


@pytest.fixture
def stack_seam(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[ConfiguredStack]:
    """``--stack`` planned over a ConfiguredStack, through the real PulumiStack adapter."""
    fake = ConfiguredStack({}, example_deployment())
    monkeypatch.setattr(targets, "PulumiStack", lambda ref: adapter(fake, ref.name, ref.work_dir))
    monkeypatch.chdir(tmp_path)
    for name in ("HW_ACCESS_KEY", "HW_SECRET_KEY", "HUAWEICLOUD_SDK_AK", "HUAWEICLOUD_SDK_SK"):
        monkeypatch.delenv(name, raising=False)
    yield fake


def plan_json(*extra: str) -> tuple[int, dict[str, Any] | None, str]:
    result = CliRunner().invoke(cli, ["plan", "--stack", "dev", "--json", *extra])
    doc = json.loads(result.stdout) if result.exit_code == 0 else None
    return result.exit_code, doc, result.stderr


def retention(doc: dict[str, Any] | None) -> set[int]:
    assert doc is not None
    return {b["retention_days"] for r in doc["resources"] for b in r["backups"]}


def test_teardown_stack_config_is_in_the_plan(stack_seam: ConfiguredStack) -> None:
    """ACCEPTANCE: ``teardown:backup.retention_days`` in the stack's config sets the retention
    every backup of ``teardown plan --stack dev`` is planned with."""
    code, doc, err = plan_json()
    assert code == 0, err
    assert retention(doc) == {30}  # the default

    stack_seam.config["teardown:backup.retention_days"] = automation.ConfigValue("7")
    stack_seam.config["teardown:scope.name"] = automation.ConfigValue("dev-teardown")
    code, doc, err = plan_json()
    assert code == 0, err
    assert retention(doc) == {7}
    assert doc is not None and doc["scope"] == "dev-teardown"
    assert stack_seam.config_reads == 2


def test_stack_config_wins_over_the_config_file(
    stack_seam: ConfiguredStack, tmp_path: Path
) -> None:
    (tmp_path / "td.toml").write_text("[backup]\nretention_days = 10\n")
    code, doc, err = plan_json("--config", str(tmp_path / "td.toml"))
    assert code == 0, err
    assert retention(doc) == {10}
    stack_seam.config["teardown:backup.retention_days"] = automation.ConfigValue("14")
    code, doc, err = plan_json("--config", str(tmp_path / "td.toml"))
    assert code == 0, err
    assert retention(doc) == {14}


def test_stack_max_resources_limits_the_plan(stack_seam: ConfiguredStack) -> None:
    stack_seam.config["teardown:scope.max_resources"] = automation.ConfigValue("2")
    code, _, err = plan_json()
    assert code != 0
    assert "max_resources = 2" in err


def test_a_bad_stack_key_stops_the_plan_with_one_line(stack_seam: ConfiguredStack) -> None:
    stack_seam.config["teardown:backup.nope"] = automation.ConfigValue("1")
    code, _, err = plan_json()
    assert code == 2, err
    assert "stack dev config: teardown:backup.nope: unknown key 'backup.nope'" in err


def test_a_profile_named_in_the_stack_config_is_used_like_profile(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """``teardown:profile`` (relative to the project directory) counts as ``--profile``."""
    providers.register(FakeProvider())
    try:
        (tmp_path / "proj").mkdir()
        (tmp_path / "proj" / "p.toml").write_text(f'[{FAKECLOUD}]\nroot = "{tmp_path}"\n')
        fake = ConfiguredStack(
            {"teardown:profile": automation.ConfigValue("p.toml")},
            {"manifest": {}, "resources": []},
        )
        monkeypatch.setattr(
            targets, "PulumiStack", lambda ref: adapter(fake, ref.name, ref.work_dir)
        )
        source = TargetSource(stack="dev", work_dir=tmp_path / "proj")
        planned = plan_targets(source, Config(), profile_path=None, env={})
        assert isinstance(planned.profile, FakeAccount)
        assert planned.profile.root == tmp_path
        fake.config = {}
        assert plan_targets(source, Config(), profile_path=None, env={}).profile is None
    finally:
        providers.unregister(FAKECLOUD)


def test_the_planned_config_carries_the_stack_keys(stack_seam: ConfiguredStack) -> None:
    stack_seam.config["teardown:run.parallel"] = automation.ConfigValue("2")
    source = TargetSource(stack="dev")
    planned = plan_targets(source, Config(), profile_path=None, env={})
    assert planned.config is not None and planned.config.run.parallel == 2


# -- the real engine ---------------------------------------------------------------------------


@pytest.mark.pulumi
@pytest.mark.skipif(
    shutil.which("pulumi") is None,
    reason="the pulumi CLI is not on PATH (put one there to run against a local-backend stack)",
)
def test_real_stack_config_reaches_the_plan(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = tmp_path / "proj"
    project.mkdir()
    (project / "Pulumi.yaml").write_text("name: shop-sandbox\nruntime: yaml\n")
    (tmp_path / "backend").mkdir()
    pulumi_env = {
        "PULUMI_BACKEND_URL": f"file://{tmp_path / 'backend'}",
        "PULUMI_CONFIG_PASSPHRASE": "test-only",
        "PULUMI_HOME": str(tmp_path / "home"),
        "PULUMI_SKIP_UPDATE_CHECK": "true",
    }
    env = {**os.environ, **pulumi_env}
    for args in (
        ["stack", "init", "dev"],
        ["stack", "import", "--file", str(IMPORTABLE)],
        ["config", "set", "teardown:backup.retention_days", "7"],
        ["config", "set", "--path", "teardown:scope.refuse_patterns[0]", "*live*"],
        ["config", "set", "huaweicloud:accessKey", "AK-STACK"],
        ["config", "set", "--secret", "huaweicloud:secretKey", "s3cr3t-sk"],
        ["config", "set", "huaweicloud:region", "cn-north-4"],
    ):
        subprocess.run(["pulumi", *args], cwd=project, env=env, check=True, capture_output=True)
    for name, value in pulumi_env.items():
        monkeypatch.setenv(name, value)

    settings = PulumiStack(StackRef("dev", project)).config()
    assert settings["huaweicloud:secretKey"] == StackConfigValue("s3cr3t-sk", secret=True)
    assert settings["teardown:backup.retention_days"] == StackConfigValue("7")
    config = apply_stack_config(Config(), settings, "stack dev config")
    assert config.scope.refuse_patterns == ("*live*",)  # `--path` stored an object, as JSON
    profile = profile_from_pulumi_config(
        {k: v.value for k, v in settings.items()},
        {"HW_PROJECT_ID": "p", "HW_DOMAIN_ID": "d"},  # the rest from the environment
    )
    assert profile is not None
    assert (profile.ak, profile.sk, profile.region) == ("AK-STACK", "s3cr3t-sk", "cn-north-4")

    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["plan", "--stack", "dev", "--cwd", str(project), "--json"])
    assert result.exit_code == 0, result.stderr
    assert retention(json.loads(result.stdout)) == {7}


def test_a_config_file_named_by_the_stack_is_used_unless_config_is_given(
    stack_seam: ConfiguredStack, tmp_path: Path
) -> None:
    """``teardown:config`` names the teardown.toml (relative to the project, ``--cwd``) when no
    ``--config`` is given; ``--config`` wins; the stack's ``teardown:`` keys go over either."""
    (tmp_path / "stack-teardown.toml").write_text("[backup]\nretention_days = 12\n")
    (tmp_path / "given.toml").write_text("[backup]\nretention_days = 5\n")
    stack_seam.config["teardown:config"] = automation.ConfigValue("stack-teardown.toml")
    code, doc, err = plan_json()
    assert code == 0, err
    assert retention(doc) == {12}
    code, doc, err = plan_json("--config", str(tmp_path / "given.toml"))
    assert code == 0, err
    assert retention(doc) == {5}
    stack_seam.config["teardown:backup.retention_days"] = automation.ConfigValue("9")
    code, doc, err = plan_json()
    assert code == 0, err
    assert retention(doc) == {9}
