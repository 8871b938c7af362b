"""Wrong input never looks like success and never crashes: a server id that does not exist,
absurd numbers, an oversized tag, a pull path outside the tree, a dependency cycle, and Ctrl-C
during a run each get one clear line and a documented exit code."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner

from teardown.app.config import parse_config
from teardown.cli.main import cli
from teardown.core.config import BackupConfig, Config, PullRule
from teardown.core.errors import ConfigError
from teardown.core.planner import make_plan
from teardown.sandbox.runtime import Sandbox
from tests.helpers import server

ROOT = Path(__file__).resolve().parent.parent


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


def one_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    assert len(lines) <= 3, text  # click's usage lines plus one error line at most
    return lines[-1]


def unreachable_profile(tmp_path: Path) -> Path:
    """A profile whose endpoints refuse connections: any request would fail with exit 1."""
    path = tmp_path / "profile.toml"
    path.write_text(
        '[huawei]\nregion = "cn-north-4"\nproject_id = "p"\ndomain_id = "d"\nak = "a"\n'
        'sk = "s"\n[huawei.endpoints]\necs = "http://127.0.0.1:9"\nevs = "http://127.0.0.1:9"\n'
        'cbr = "http://127.0.0.1:9"\nbss = "http://127.0.0.1:9"\n'
    )
    return path


def test_a_server_id_that_does_not_exist_is_exit_2_naming_it(tmp_path: Path) -> None:
    (tmp_path / "sb").mkdir()
    with Sandbox(tmp_path / "sb", scenario="demo") as sb:
        code, out, err = invoke(
            "plan", "--profile", str(sb.layout.profile), "--server", "9e9e9e9e-no-such-server"
        )
    assert code == 2
    assert "9e9e9e9e-no-such-server" in one_line(err) and "no server" in err
    assert "ready" not in out


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["orders", "--expiring", "1000000000d"], "longest window"),
        (["plan", "--tag", "env=" + "x" * 100_000], "too long"),
        (["plan", "--server", "../../etc"], "not a server id"),
        (["plan", *[x for i in range(30) for x in ("--tag", f"k{i}=v")]], "at most 10"),
    ],
)
def test_absurd_input_is_refused_before_any_request(
    tmp_path: Path, args: list[str], says: str
) -> None:
    code, _, err = invoke(*args, "--profile", str(unreachable_profile(tmp_path)))
    assert code == 2, err
    assert says in one_line(err)
    assert "Traceback" not in err and "<html" not in err.lower()


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ('[[backup.pull]]\npaths = ["../../etc"]\n', "not an absolute path"),
        ('[[backup.pull]]\npaths = ["/srv/../etc"]\n', "'..'"),
        ("[run]\nparallel = 100000\n", "parallel must be 1 to 64"),
        ('[backup]\nreuse_within = "99999999999d"\n', "not a duration"),
        ("[scope]\nmax_resources = 10000000\n", "max_resources must be 1 to 100000"),
    ],
)
def test_bad_numbers_and_paths_in_the_config_are_exit_2(text: str, says: str) -> None:
    with pytest.raises(ConfigError, match=None) as info:
        parse_config(text, "teardown.toml")
    assert says in str(info.value)


def test_a_pull_path_from_a_tag_outside_the_tree_blocks_the_plan() -> None:
    web = replace(server("web"), tags=(("backup.paths", "/srv/www;../../etc"),))
    rule = PullRule(paths_from_tag="backup.paths", name="tagged")
    plan = make_plan([web], Config(backup=BackupConfig(pull=(rule,))), "dev")
    assert [b.code for b in plan.blockers] == ["bad_pull_path"]
    assert "'../../etc'" in plan.blockers[0].message


def test_a_dependency_cycle_is_named_in_the_plan() -> None:
    a, b = server("a"), server("b")
    a = replace(a, dependencies=(b.urn,))
    b = replace(b, dependencies=(a.urn,))
    plan = make_plan([a, b], Config(), "dev")
    assert plan.blocked
    messages = {x.message for x in plan.blockers}
    assert any("cycle: a -> b -> a" in m or "cycle: b -> a -> b" in m for m in messages)


def test_ctrl_c_during_a_run_prints_the_resume_command(tmp_path: Path) -> None:
    sb_dir = tmp_path / "sb"
    sb_dir.mkdir()
    (sb_dir / "sandbox.toml").write_text("[durations]\ncheckpoint = 3.0\n")
    cfg = tmp_path / "teardown.toml"
    cfg.write_text(
        (ROOT / "examples" / "sandbox-demo.toml")
        .read_text()
        .replace(".teardown/demo/journal.db", str(tmp_path / "journal.db"))
        .replace(".teardown/demo/backups", str(tmp_path / "backups"))
        .replace("parallel = 8", "parallel = 8\npoll_interval = 0.2")
    )
    with Sandbox(sb_dir, scenario="demo"):
        args = ["run", "--tag", "app=shop", "--yes", "--quiet", "--config", str(cfg)]
        proc = subprocess.Popen(
            [sys.executable, "-m", "teardown.cli.main", *args,
             "--profile", str(sb_dir / "profile.toml")],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )  # fmt: skip
        deadline = time.monotonic() + 30
        while not (tmp_path / "journal.db").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(1.0)  # the CBR backups are under way (they take 3 s)
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted: run" in err and "teardown resume" in err and str(cfg) in err
    assert "Traceback" not in err and "Aborted!" not in err
