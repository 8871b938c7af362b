"""The CLI as a user meets it: readable plans, JSON for pipelines, exit codes, bad input."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from teardown import __version__
from teardown.cli.main import cli
from teardown.core.config import Config
from teardown.core.model import BillingMode, DestroyAction
from teardown.core.planner import make_plan
from tests.helpers import make_rig, server

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "huawei-test-env.json"
UNKNOWN = ROOT / "examples" / "unknown-type.json"
EXAMPLE_CONFIG = ROOT / "examples" / "teardown.toml"


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_version_is_printed() -> None:
    code, out, _ = invoke("--version")
    assert code == 0 and __version__ in out


def test_plan_prints_each_resource_with_kind_billing_backups_and_destroy(in_tmp: Path) -> None:
    code, out, _ = invoke("plan", "--state", str(EXAMPLE), "--config", str(EXAMPLE_CONFIG))
    assert code == 0
    assert "web-1  server  billing postPaid" in out
    assert "db-1  server  billing prePaid" in out
    assert "pull 'site' over SSH (tar): /var/www" in out
    assert "destroy   unsubscribe" in out and "destroy   delete" in out
    assert "record refund" in out


def test_plan_json_has_the_documented_shape(in_tmp: Path) -> None:
    code, out, _ = invoke("plan", "--state", str(EXAMPLE), "--json")
    assert code == 0
    doc = json.loads(out)
    assert doc["schema_version"] == 1 and doc["blocked"] is False
    assert doc["resources"]
    for r in doc["resources"]:
        assert {"urn", "type", "kind", "billing", "backups", "destroy", "blockers"} <= r.keys()
        assert r["billing"]["mode"] in {"postPaid", "prePaid", "spot", "free", "unknown"}
        assert r["destroy"]["action"] in {a.value for a in DestroyAction}
    db = next(r for r in doc["resources"] if r["urn"].endswith("::db-1"))
    assert db["billing"]["mode"] == "prePaid" and db["destroy"]["action"] == "unsubscribe"
    assert [b["kind"] for b in db["backups"]] == ["snapshot"]


def test_unknown_type_exits_3_with_one_message_naming_type_and_urn(in_tmp: Path) -> None:
    code, _, err = invoke("plan", "--state", str(UNKNOWN))
    assert code == 3
    lines = err.strip().splitlines()
    assert len(lines) == 1
    assert "huaweicloud:Rds/instance:Instance" in lines[0]
    assert "urn:pulumi:staging::orders::huaweicloud:Rds/instance:Instance::orders-db" in lines[0]


def test_marking_the_unknown_type_stateless_unblocks_the_plan(in_tmp: Path) -> None:
    cfg = in_tmp / "teardown.toml"
    cfg.write_text('[types]\nstateless = ["huaweicloud:Rds/instance:Instance"]\n')
    code, out, _ = invoke("plan", "--state", str(UNKNOWN), "--json")  # ./teardown.toml found
    assert code == 0
    assert json.loads(out)["blocked"] is False


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("this is not json", "not valid JSON"),
        ('{"version": 2, "deployment": {}}', "version"),
        ('{"version": 3}', "deployment"),
        ("[1, 2]", "object"),
    ],
)
def test_malformed_state_exits_2_with_one_line_naming_the_file(
    in_tmp: Path, content: str, problem: str
) -> None:
    bad = in_tmp / "bad.json"
    bad.write_text(content)
    code, out, err = invoke("plan", "--state", str(bad))
    assert code == 2
    assert out == ""
    (line,) = err.strip().splitlines()
    assert str(bad) in line and problem in line
    assert not (in_tmp / ".teardown").exists()


def test_config_with_an_unknown_key_exits_2_naming_file_and_key(in_tmp: Path) -> None:
    cfg = in_tmp / "td.toml"
    cfg.write_text("[scope]\nmax_resorces = 5\n")
    code, _, err = invoke("plan", "--state", str(EXAMPLE), "--config", str(cfg))
    assert code == 2
    (line,) = err.strip().splitlines()
    assert str(cfg) in line and "unknown key 'scope.max_resorces'" in line
    assert not (in_tmp / ".teardown").exists()


def test_missing_state_file_exits_2(in_tmp: Path) -> None:
    code, _, err = invoke("plan", "--state", "nope.json")
    assert code == 2 and "nope.json" in err


def test_prod_scope_is_refused_with_exit_3(in_tmp: Path) -> None:
    cfg = in_tmp / "teardown.toml"
    cfg.write_text('[scope]\nname = "shop-prod"\n')
    code, _, err = invoke("plan", "--state", str(EXAMPLE))
    assert code == 3 and "*prod*" in err


def test_blast_radius_refusal_names_the_numbers(in_tmp: Path) -> None:
    (in_tmp / "teardown.toml").write_text("[scope]\nmax_resources = 2\n")
    code, _, err = invoke("plan", "--state", str(EXAMPLE))
    assert code == 3 and "limit is max_resources = 2" in err


def test_status_without_a_journal_says_so_and_creates_nothing(in_tmp: Path) -> None:
    code, _, err = invoke("status")
    assert code == 2 and "no journal" in err
    assert not (in_tmp / ".teardown").exists()


def test_status_lists_runs_and_shows_one_in_detail(in_tmp: Path) -> None:
    db = server("db", BillingMode.PRE_PAID)
    rig = make_rig(in_tmp / "rig", [db])
    result = rig.runner.start(make_plan([db], Config(), "dev"))
    journal = str(rig.journal.path)
    code, out, _ = invoke("status", "--journal", journal)
    assert code == 0
    header, *rows = [re.split(r"\s{2,}", line.strip()) for line in out.splitlines()]
    assert header == ["RUN", "STATE", "SCOPE", "STARTED", "UPDATED"]
    assert [row[:3] for row in rows] == [[result.run_id, "completed", "dev"]]
    assert invoke("runs", "--journal", journal) == (0, out, "")  # the same table
    code, out, _ = invoke("status", result.run_id, "--journal", journal, "--json")
    assert code == 0
    view = json.loads(out)
    (res,) = view["resources"]
    assert res["phase"] == "done"
    assert res["destroy"] == {
        "action": "unsubscribe",
        "id": res["destroy"]["id"],
        "kind": "destroy",
        "status": "succeeded",
        "attempts": 1,
    }
    assert res["billing"][0]["refund"]["refund"] == "10.00"
    code, _, err = invoke("status", "no-such-run", "--journal", journal)
    assert code == 2 and "no-such-run" in err


def test_console_script_runs_as_a_real_process() -> None:
    exe = Path(sys.executable).parent / "teardown"
    proc = subprocess.run(
        [str(exe), "plan", "--state", str(UNKNOWN)], capture_output=True, text=True, cwd=ROOT
    )
    assert proc.returncode == 3
    assert "orders-db" in proc.stderr
