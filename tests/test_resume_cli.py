"""A run killed during its backups: status shows where it stopped, resume finishes it, and a
second resume while the first runs is refused."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.sandbox_rig import demo_unlocked

ROOT = Path(__file__).resolve().parent.parent
TEARDOWN = [sys.executable, "-m", "teardown.cli.main"]


def wait_for(path: Path, text: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and text in path.read_text():
            return
        time.sleep(0.05)
    raise AssertionError(f"{text!r} never appeared in {path}")


def test_killed_run_shows_its_state_resumes_and_refuses_a_second_resume(tmp_path: Path) -> None:
    sb = tmp_path / "sb"
    sb.mkdir()
    (sb / "sandbox.toml").write_text(
        "[durations]\ndelete_server = 0.1\nsnapshot = 0.1\ncheckpoint = 3.0\nrelease = 0.1\n"
    )
    cfg = tmp_path / "teardown.toml"
    cfg.write_text(
        (ROOT / "examples" / "sandbox-demo.toml")
        .read_text()
        .replace(".teardown/demo/journal.db", str(tmp_path / "journal.db"))
        .replace(".teardown/demo/backups", str(tmp_path / "backups"))
    )
    common = ["--profile", str(sb / "profile.toml"), "--config", str(cfg)]
    scenario = demo_unlocked(tmp_path)
    up = subprocess.run(
        [*TEARDOWN, "sandbox", "up", "--dir", str(sb), "--scenario", scenario, "--detach"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert up.returncode == 0, up.stderr
    try:
        events = tmp_path / "run-events.jsonl"
        run = subprocess.Popen(
            [*TEARDOWN, "run", "--tag", "app=shop", *common, "--yes", "--events", str(events)],
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for(events, '"phase": "backing_up"')
        run.send_signal(signal.SIGKILL)
        run.wait()

        runs = json.loads(
            subprocess.run(
                [*TEARDOWN, "runs", "--config", str(cfg), "--json"],
                capture_output=True,
                text=True,
                cwd=tmp_path,
            ).stdout
        )
        (last,) = runs
        assert last["phase"] == "running"
        status = json.loads(
            subprocess.run(
                [*TEARDOWN, "status", last["run_id"], "--config", str(cfg), "--json"],
                capture_output=True,
                text=True,
                cwd=tmp_path,
            ).stdout
        )
        assert "backing_up" in {r["phase"] for r in status["resources"]}

        resume_events = tmp_path / "resume-events.jsonl"
        first = subprocess.Popen(
            [*TEARDOWN, "resume", last["run_id"], *common, "--events", str(resume_events)],
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        wait_for(resume_events, '"resumed": true')
        second = subprocess.run(
            [*TEARDOWN, "resume", last["run_id"], *common],
            capture_output=True,
            text=True,
            cwd=tmp_path,
        )
        assert second.returncode == 3
        assert "locked by run" in second.stderr
        out, err = first.communicate(timeout=120)
        assert first.returncode == 0, err
        assert "completed" in out
        lines = [json.loads(x) for x in resume_events.read_text().splitlines()]
        assert {x["event"] for x in lines} >= {"RunStarted", "PhaseChanged", "RunFinished"}
    finally:
        subprocess.run(
            [*TEARDOWN, "sandbox", "down", "--dir", str(sb)], cwd=tmp_path, capture_output=True
        )
