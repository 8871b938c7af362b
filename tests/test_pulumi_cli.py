"""`teardown plan|run --stack` against a real Pulumi stack (local file backend).

These need the pulumi CLI on PATH (``scripts/get-pulumi`` builds it with Go, and the YAML
language host beside it; ``scripts/test`` puts them on PATH); they are skipped otherwise.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [
    pytest.mark.pulumi,
    pytest.mark.skipif(shutil.which("pulumi") is None, reason="the pulumi CLI is not on PATH"),
]

TEARDOWN = [sys.executable, "-m", "teardown.cli.main"]


@pytest.mark.skipif(
    shutil.which("pulumi-language-yaml") is None,
    reason="`pulumi up` of a YAML program needs the pulumi-language-yaml host on PATH "
    "(scripts/get-pulumi builds it beside the CLI)",
)
def test_plan_and_run_a_real_stack(tmp_path: Path) -> None:
    project = tmp_path / "proj"
    project.mkdir()
    (project / "Pulumi.yaml").write_text(
        "name: teardown-it\nruntime: yaml\noutputs:\n  hello: world\n"
    )
    env = {
        **os.environ,
        "PULUMI_BACKEND_URL": f"file://{tmp_path / 'backend'}",
        "PULUMI_CONFIG_PASSPHRASE": "test-only",
        "PULUMI_HOME": str(tmp_path / "home"),
    }
    (tmp_path / "backend").mkdir()
    for args in (["stack", "init", "it"], ["up", "--yes", "--skip-preview"]):
        subprocess.run(["pulumi", *args], cwd=project, env=env, check=True, capture_output=True)
    plan = subprocess.run(
        [*TEARDOWN, "plan", "--stack", "it", "--cwd", str(project), "--json"],
        cwd=tmp_path, env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert plan.returncode == 0, plan.stderr
    assert '"resources": []' in plan.stdout


def test_plan_equals_run_for_a_stack_destroyed_through_the_cloud(tmp_path: Path) -> None:
    """The sandbox demo's export imported into a real local-backend stack; `plan --stack
    --destroy-with cloud` shows the plan `run` records, and the run prints how to reconcile."""
    from tests.test_backup_truth_cli import comparable, config_file, recorded_view, sandbox

    project = tmp_path / "proj"
    project.mkdir()
    (project / "Pulumi.yaml").write_text("name: shop-sandbox\nruntime: yaml\n")
    env = {
        **os.environ,
        "PULUMI_BACKEND_URL": f"file://{tmp_path / 'backend'}",
        "PULUMI_CONFIG_PASSPHRASE": "test-only",
        "PULUMI_HOME": str(tmp_path / "home"),
        "PULUMI_SKIP_UPDATE_CHECK": "true",
    }
    (tmp_path / "backend").mkdir()
    export = Path(__file__).resolve().parent.parent / "examples" / "sandbox-demo-stack.json"
    for args in (["stack", "init", "dev"], ["stack", "import", "--file", str(export)]):
        subprocess.run(["pulumi", *args], cwd=project, env=env, check=True, capture_output=True)
    cfg = config_file(tmp_path)
    with sandbox(tmp_path / "sb") as sb:
        common = [
            "--stack", "dev", "--cwd", str(project), "--destroy-with", "cloud",
            "--profile", str(sb.layout.profile), "--config", str(cfg), "--json",
        ]  # fmt: skip
        plan = subprocess.run(
            [*TEARDOWN, "plan", *common], cwd=tmp_path, env=env, capture_output=True, text=True
        )
        assert plan.returncode == 0, plan.stderr
        run = subprocess.run(
            [*TEARDOWN, "run", *common, "--yes", "--quiet"],
            cwd=tmp_path, env=env, capture_output=True, text=True,
        )  # fmt: skip
        assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    assert comparable(json.loads(plan.stdout)) == recorded_view(tmp_path, report["run_id"])
    assert "pulumi refresh --stack dev --yes" in run.stderr
