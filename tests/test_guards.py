"""Guards on what is targeted, not only on names: production tags refuse a plan whatever the
scope is called, look-alike spellings do not slip past, resources of another scope block, and a
tag added between plan and apply is drift."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner

from teardown.adapters.confusables import fold
from teardown.cli.main import cli
from teardown.core.config import Config, ScopeConfig
from teardown.core.errors import ResourceRefused, ScopeRefused
from teardown.core.model import BillingMode
from teardown.core.planner import make_plan
from teardown.sandbox.runtime import Sandbox
from tests.helpers import server, volume

ROOT = Path(__file__).resolve().parent.parent
CYRILLIC_PROD = "\u0440rod"  # Cyrillic er, then "rod"
FULLWIDTH_PROD = "\uff50\uff52\uff4f\uff44"  # full-width p r o d
ZERO_WIDTH_PROD = "pr\u200bod"


@pytest.mark.parametrize("value", ["prod", "production", CYRILLIC_PROD, FULLWIDTH_PROD, "PROD"])
def test_a_production_tag_refuses_the_plan_whatever_the_scope_is_called(value: str) -> None:
    web = replace(server("web"), tags=(("env", value),))
    with pytest.raises(ResourceRefused, match=r"scope\.refuse_tags"):
        make_plan([web], Config(), "shop-test", fold=fold)


@pytest.mark.parametrize(
    "scope", [f"shop-{CYRILLIC_PROD}", f"shop-{FULLWIDTH_PROD}", ZERO_WIDTH_PROD]
)
def test_look_alike_scope_names_are_refused(scope: str) -> None:
    with pytest.raises(ScopeRefused):
        make_plan([server("web")], Config(), scope, fold=fold)


def test_refuse_tags_can_be_set_and_other_tags_pass() -> None:
    web = replace(server("web"), tags=(("env", "test"), ("tier", "gold")))
    make_plan([web], Config(), "shop-test", fold=fold)  # not refused
    config = Config(scope=ScopeConfig(refuse_tags=("tier=gold",)))
    with pytest.raises(ResourceRefused, match="tier=gold"):
        make_plan([web], config, "shop-test", fold=fold)


def test_a_disk_of_another_scope_attached_to_a_server_in_scope_blocks_the_plan() -> None:
    web = replace(server("web"), tags=(("env", "test"),))
    other = replace(
        volume("orders", BillingMode.PRE_PAID, parent=web.urn), tags=(("env", "staging"),)
    )
    named = replace(
        volume("logs", BillingMode.PRE_PAID, parent=web.urn),
        tags=(("teardown:scope", "billing-team"),),
    )
    plan = make_plan([web, other, named], Config(), "shop-test", selectors=[("env", "test")])
    codes = {b.urn: b.code for b in plan.blockers}
    assert codes == {other.urn: "foreign", named.urn: "foreign"}
    assert "env=staging" in next(b.message for b in plan.blockers if b.urn == other.urn)
    taken = make_plan(
        [web, other, named], Config(), "shop-test", selectors=[("env", "test")],
        include_foreign=True,
    )  # fmt: skip
    assert not taken.blocked
    assert {w.code for rp in taken.resources for w in rp.warnings} == {"foreign"}


def fast_sandbox(root: Path, scenario: Path) -> Sandbox:
    root.mkdir()
    (root / "sandbox.toml").write_text("[durations]\ncheckpoint = 0.05\ndelete_server = 0.05\n")
    return Sandbox(root, scenario=str(scenario))


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_plan_by_a_production_tag_is_refused_from_the_command_line(tmp_path: Path) -> None:
    scenario = tmp_path / "prod.toml"
    text = (ROOT / "teardown" / "sandbox" / "scenarios" / "demo.toml").read_text()
    web_tags = 'tags = { role = "web", env = "test", app = "shop" }'
    text = text.replace(web_tags, web_tags.replace('"test"', f'"{CYRILLIC_PROD}"'))
    scenario.write_text(text)
    config = tmp_path / "teardown.toml"
    config.write_text('[scope]\nname = "shop-test"\n')
    with fast_sandbox(tmp_path / "sb", scenario) as sb:
        profile = str(sb.layout.profile)
        for selector in (f"env={CYRILLIC_PROD}", "app=shop"):
            code, _, err = invoke("plan", "--profile", profile, "--config", str(config),
                                  "--tag", selector)  # fmt: skip
            assert code == 3, err
            assert "web-1 is tagged" in err and "scope.refuse_tags" in err


def test_a_tag_added_between_plan_and_apply_is_drift(tmp_path: Path) -> None:
    config = tmp_path / "teardown.toml"
    config.write_text(f'[journal]\npath = "{tmp_path / "journal.db"}"\n')
    plan_file = tmp_path / "plan.json"
    demo = ROOT / "teardown" / "sandbox" / "scenarios" / "demo.toml"
    with fast_sandbox(tmp_path / "sb", demo) as sb:
        profile = str(sb.layout.profile)
        code, _, err = invoke("plan", "--profile", profile, "--config", str(config),
                              "--tag", "role=web", "--out", str(plan_file))  # fmt: skip
        assert code == 0, err
        assert sb.store is not None
        with sb.store.tx() as conn:
            row = conn.execute("SELECT id, tags FROM servers WHERE name='web-1'").fetchone()
            tags = [*json.loads(row["tags"]), "owner=payments"]
            conn.execute("UPDATE servers SET tags=? WHERE id=?", (json.dumps(tags), row["id"]))
        code, _, err = invoke("apply", str(plan_file), "--profile", profile, "--yes")
        assert code == 3
        assert "web-1: tags was" in err and "owner=payments" in err
