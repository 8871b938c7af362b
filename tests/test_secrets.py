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
        + '\n[ssh]\npass_env = ["TD_DB_PASSWORD"]\n'
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


def test_commands_take_secrets_from_the_environment_by_reference(tmp_path: Path) -> None:
    from teardown.adapters.ssh.pull import expand
    from teardown.core.errors import PermanentError

    secret = "it's s3cret\nwith $dollars and `ticks`"
    command = f"printf %s ${{env:DB_PW}} > {tmp_path / 'saw'}"
    text, stdin = expand(command, {"DB_PW": secret})
    assert secret not in text and "s3cret" not in text
    assert stdin is not None and b"s3cret" not in stdin  # base64 on the wire, in stdin only
    subprocess.run(["/bin/sh", "-c", text], input=stdin, check=True)
    assert (tmp_path / "saw").read_text() == secret.rstrip("\n")
    assert expand("echo plain", {}) == ("echo plain", None)
    with pytest.raises(PermanentError, match=r"DB_PW is not set or not in ssh\.pass_env"):
        expand(command, {})


def test_the_host_never_sees_a_secret_in_a_command_and_credentials_are_never_sent(
    tmp_path: Path,
) -> None:
    from teardown.adapters.ssh.fetcher import SshFetcher
    from teardown.adapters.store import LocalStore
    from teardown.app.config import parse_config
    from teardown.core.config import SshConfig
    from teardown.core.errors import ConfigError
    from teardown.core.model import PullSpec
    from tests.helpers import server
    from tests.ssh_hosts import sandbox_host

    data = tmp_path / "srv"
    data.mkdir()
    (data / "orders.csv").write_text("1,2\n")
    fleet, target = sandbox_host(tmp_path / "host", data)
    web = server("web")
    ssh = SshConfig(
        user="root",
        identity_file=target.identity_files[0],
        known_hosts=target.known_hosts,
        use_ssh_config=False,
        pass_env=("DB_PASSWORD",),
    )
    env = {"DB_PASSWORD": SECRETS["password"], "HUAWEICLOUD_SDK_SK": SECRETS["sk"]}
    fetcher = SshFetcher(
        LocalStore(tmp_path / "store"), ssh, env, local_ports={web.cloud_id or "": target.port or 0}
    )
    before = (f"printf %s ${{env:DB_PASSWORD}} > {tmp_path / 'host-saw'}",)
    spec = PullSpec(paths=(str(data),), before=before, name="db")
    try:
        art = fetcher.pull(web, spec, "k", None)
        # a name outside pass_env is not even offered to the command
        refused = fetcher.pull(
            web,
            PullSpec(paths=(str(data),), before=("echo ${env:HUAWEICLOUD_SDK_SK}",)),
            "k2",
            None,
        )
    finally:
        fleet.stop()
    assert art.verified, art.detail
    assert (tmp_path / "host-saw").read_text() == SECRETS["password"]
    seen = [command for _server, command in fleet.exec_requests]
    assert seen and not any(SECRETS["password"] in c or SECRETS["sk"] in c for c in seen)
    assert not refused.verified and "HUAWEICLOUD_SDK_SK is not set or not in ssh.pass_env" in (
        refused.detail
    )
    # ...and a config that asks for cloud credentials is refused before anything runs
    config = '[[backup.pull]]\npaths = ["/srv"]\nbefore = ["dump -p${env:HUAWEICLOUD_SDK_SK}"]\n'
    with pytest.raises(ConfigError, match="holds cloud credentials"):
        parse_config(config, "teardown.toml")


def test_a_config_found_in_the_working_directory_must_be_the_users_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from teardown.app.config import load_config
    from teardown.core.errors import ConfigError

    monkeypatch.chdir(tmp_path)
    (tmp_path / "teardown.toml").write_text('[scope]\nname = "x"\n')
    os.chmod(tmp_path / "teardown.toml", 0o666)
    with pytest.raises(ConfigError, match="others can write it"):
        load_config(None)
    os.chmod(tmp_path / "teardown.toml", 0o644)
    assert load_config(None).scope.name == "x"
    os.chmod(tmp_path / "teardown.toml", 0o666)
    assert load_config(tmp_path / "teardown.toml").scope.name == "x"  # named: the user's call
