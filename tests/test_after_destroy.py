"""After a destroy, nothing crashes the run: an events file on a full disk, a reader that closes
the pipe (`| head -1`), a report directory that cannot be written; the destroys complete, the
exit code says what happened in the cloud, and the report is there. A journal that can no longer
be written stops the run before its next step with one line and the resume command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from teardown.sandbox.runtime import Sandbox
from tests.sandbox_rig import demo_unlocked
from tests.test_crash_matrix import prepare
from tests.test_faults_extra import tmpfs

ROOT = Path(__file__).resolve().parent.parent
TEARDOWN = [sys.executable, "-m", "teardown.cli.main"]


def run_args(sb: Path, cfg: Path) -> list[str]:
    return [
        *TEARDOWN, "run", "--tag", "app=shop", "--yes",
        "--profile", str(sb / "profile.toml"), "--config", str(cfg),
    ]  # fmt: skip


def servers_left(sandbox: Sandbox) -> int:
    assert sandbox.store is not None
    return int(
        sandbox.store.conn.execute("SELECT count(*) FROM servers WHERE deleted=0").fetchone()[0]
    )


def reports(root: Path) -> list[Path]:
    return sorted((root / "runs").glob("*/report.json"))


def test_an_events_file_on_a_full_disk_does_not_stop_the_run(tmp_path: Path) -> None:
    sb, cfg = prepare(tmp_path)
    with Sandbox(sb, scenario=demo_unlocked(tmp_path)) as sandbox:
        done = subprocess.run(
            [*run_args(sb, cfg), "--quiet", "--events", "/dev/full"],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert servers_left(sandbox) == 0
    assert done.returncode == 0, done.stderr
    assert "stopped delivering events to the events file /dev/full" in done.stderr
    assert "Traceback" not in done.stderr
    assert reports(tmp_path)


def test_a_reader_that_closes_the_pipe_does_not_change_the_exit_code(tmp_path: Path) -> None:
    sb, cfg = prepare(tmp_path)
    with Sandbox(sb, scenario=demo_unlocked(tmp_path)) as sandbox:
        proc = subprocess.Popen(
            [*run_args(sb, cfg), "--quiet"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert proc.stdout is not None and proc.stderr is not None
        first = proc.stdout.readline()  # `| head -1`
        proc.stdout.close()
        err = proc.stderr.read()
        proc.wait(timeout=120)
        assert servers_left(sandbox) == 0
    assert first  # the plan's first line
    assert proc.returncode == 0, err
    assert "Traceback" not in err and "BrokenPipe" not in err
    assert reports(tmp_path)


def test_a_report_that_cannot_be_written_is_a_warning_not_a_failure(tmp_path: Path) -> None:
    sb, cfg = prepare(tmp_path)
    (tmp_path / "runs").write_text("a file where the reports' directory would go")
    with Sandbox(sb, scenario=demo_unlocked(tmp_path)) as sandbox:
        done = subprocess.run(
            [*run_args(sb, cfg), "--quiet", "--json"], capture_output=True, text=True, timeout=120
        )
        assert servers_left(sandbox) == 0
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["phase"] == "completed"  # the report, printed
    assert "the report files could not be written" in done.stderr


def test_a_journal_that_cannot_be_written_stops_the_run_with_the_resume_command(
    tmp_path: Path,
) -> None:
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    sb, cfg = prepare(tmp_path)
    with tmpfs(tmp_path / "small", "160k") as small:
        cfg.write_text(cfg.read_text().replace(str(tmp_path / "journal.db"), str(small / "j.db")))
        with Sandbox(sb, scenario=demo_unlocked(tmp_path)):
            done = subprocess.run(
                [*run_args(sb, cfg), "--quiet"], capture_output=True, text=True, timeout=120
            )
    assert done.returncode in (1, 4), done.stderr
    assert "the journal could not be written" in done.stderr
    assert "teardown resume" in done.stderr
    assert "Traceback" not in done.stderr
