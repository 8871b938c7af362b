"""`teardown plan|run --stack` against a real Pulumi stack (local file backend).

These need the pulumi CLI, which this workplace cannot install (its installer downloads from the
internet): they are skipped with that reason here and run wherever the CLI is on PATH.
"""

from __future__ import annotations

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
