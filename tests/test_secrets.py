"""A run with secrets in every place they can be given leaves none of them in any artefact."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from teardown.sandbox.runtime import Sandbox

ROOT = Path(__file__).resolve().parent.parent
TEARDOWN = [sys.executable, "-m", "teardown.cli.main"]
SIG = "4dabf18193072939515e22adb298388d"
SECRETS = {
    "sk": "SK-SECRET-7f3a9c2e51d84b06a1",
    "ciphertext": "CIPHERTEXT-SECRET-0b9e77aa41",
    "plaintext": "PLAINTEXT-SECRET-5d2c19e0f3",
    "password": "PASSWORD-SECRET-c4e8a1b7",
}


def secret_state(path: Path) -> None:
    doc = json.loads((ROOT / "examples" / "sandbox-demo-stack.json").read_text())
    for r in doc["deployment"]["resources"]:
        if r["urn"].endswith("::db-1"):
            r["outputs"]["adminPass"] = {SIG: "1b47061264138c4ac30d75fd1eb44270",
                                         "ciphertext": SECRETS["ciphertext"]}  # fmt: skip
        if r["urn"].endswith("::web-1"):
            secret = {SIG: "1b47061264138c4ac30d75fd1eb44270"}
            secret["plaintext"] = json.dumps(SECRETS["plaintext"])
            r["outputs"]["tags"]["token"] = secret
    path.write_text(json.dumps(doc))


@pytest.mark.slow
def test_no_secret_reaches_any_artefact_of_a_run(tmp_path: Path) -> None:
    sb = tmp_path / "sb"
    sb.mkdir()
    (sb / "sandbox.toml").write_text(
        f'[account]\nsk = "{SECRETS["sk"]}"\n'
        "[durations]\ndelete_server = 0.05\nsnapshot = 0.05\ncheckpoint = 0.05\nrelease = 0.05\n"
    )
    work = tmp_path / "work"
    work.mkdir()
    cfg = work / "teardown.toml"
    cfg.write_text(
        (ROOT / "examples" / "sandbox-demo.toml")
        .read_text()
        .replace(".teardown/demo/journal.db", str(work / "journal.db"))
        .replace(".teardown/demo/backups", str(work / "backups"))
        .replace(
            'before = ["mkdir -p dumps',
            f'before = ["printf %s ${{env:TD_DB_PASSWORD}} > {tmp_path / "host-saw"}", '
            '"mkdir -p dumps',
        )
        .replace("parallel = 8", "parallel = 8\npoll_interval = 0.05")
    )
    state = tmp_path / "state.json"
    secret_state(state)
    with Sandbox(sb, scenario="demo"):
        common = ["--profile", str(sb / "profile.toml"), "--config", str(cfg)]
        plan = subprocess.run(
            [*TEARDOWN, "plan", "--state", str(state), *common, "--json"],
            capture_output=True, text=True, cwd=work,
        )  # fmt: skip
        run = subprocess.run(
            [*TEARDOWN, "run", "--state", str(state), "--destroy-with", "cloud", *common,
             "--yes", "--events", str(work / "events.jsonl")],
            capture_output=True, text=True, cwd=work,
            env={**os.environ, "TD_DB_PASSWORD": SECRETS["password"]},
        )  # fmt: skip
    assert plan.returncode == 0, plan.stderr
    assert run.returncode == 0, run.stderr
    # The password reached the command on the host, through the environment only.
    assert (tmp_path / "host-saw").read_text() == SECRETS["password"]
    outputs = {"plan stdout": plan.stdout + plan.stderr, "run output": run.stdout + run.stderr}
    files = [p for p in work.rglob("*") if p.is_file() and p != cfg]
    assert any(p.name == "report.html" for p in files) and (work / "events.jsonl").exists()
    assert any(p.name == "manifest.json" for p in files)
    leaks = []
    for name, secret in SECRETS.items():
        for where, text in outputs.items():
            if secret in text:
                leaks.append(f"{name} in {where}")
        for path in files:
            if secret.encode() in path.read_bytes():
                leaks.append(f"{name} in {path.relative_to(work)}")
    assert leaks == []
    # Journal, store, reports and events are the owner's only.
    for path in files:
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode & 0o077 == 0, f"{path.relative_to(work)} is {oct(mode)}"


def test_commands_take_secrets_from_the_environment_by_reference() -> None:
    from teardown.adapters.ssh.pull import expand
    from teardown.core.errors import PermanentError

    command = "mysqldump -p${env:DB_PW} shop > /tmp/d.sql"
    assert expand(command, {"DB_PW": "it's s3cret"}) == (
        "mysqldump -p'it'\"'\"'s s3cret' shop > /tmp/d.sql"
    )
    with pytest.raises(PermanentError, match="DB_PW is not set"):
        expand(command, {})
