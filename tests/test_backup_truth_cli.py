"""Backups that truly count, from the command line against sandboxes (official SDK over HTTP, the
sandboxes' real SSH servers, one shared journal and store): a backup of another machine, of other
paths, or one that no longer exists never lets a server go; what ``plan`` shows is what ``run``
does; a CBR vault is needed only when a CBR backup is planned."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from huaweicloudsdkcbr.v1 import DeleteBackupRequest, ListBackupsRequest

from teardown.adapters.huawei.clients import Clients
from teardown.adapters.huawei.inventory import HuaweiInventory
from teardown.adapters.huawei.profile import HuaweiProfile, load_profile
from teardown.app.planfile import without_estimates
from teardown.cli.main import cli
from teardown.core.model import Artifact, Resource
from teardown.core.views import plan_view
from teardown.engine.codec import plan_from_json
from teardown.engine.journal import Journal
from teardown.sandbox.runtime import Sandbox
from teardown.support.clock import SystemClock
from tests.sandbox_rig import demo_unlocked

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "teardown" / "sandbox" / "scenarios" / "demo.toml"
STACK = ROOT / "examples" / "sandbox-demo-stack.json"
WEB_ID = "1a0c5e2a-5b7d-4c1e-9a2b-0d1e2f3a4b01"
FAST = (
    "[durations]\ndelete_server = 0.05\nstop_server = 0.05\nsnapshot = 0.05\n"
    "delete_snapshot = 0.05\ncheckpoint = 0.05\nrelease = 0.05\n"
)


@contextmanager
def sandbox(
    root: Path, scenario: str = "demo", account: HuaweiProfile | None = None
) -> Iterator[Sandbox]:
    root.mkdir(parents=True)
    text = FAST
    if account is not None:  # the same cloud account as another sandbox
        text += f'[account]\nproject_id = "{account.project_id}"\n'
        text += f'domain_id = "{account.domain_id}"\n'
    (root / "sandbox.toml").write_text(text)
    with Sandbox(root, scenario=scenario) as sb:
        yield sb


def profile_of(sb: Sandbox) -> HuaweiProfile:
    return load_profile(sb.layout.profile)


def config_file(tmp: Path, extra: str = "") -> Path:
    """The demo's teardown.toml, with one journal and store for every run of the test."""
    text = (ROOT / "examples" / "sandbox-demo.toml").read_text()
    text = text.replace('path = ".teardown/demo/journal.db"', f'path = "{tmp / "journal.db"}"')
    text = text.replace('path = ".teardown/demo/backups"', f'path = "{tmp / "backups"}"')
    text = text.replace("parallel = 8", "parallel = 8\npoll_interval = 0.05")
    path = tmp / "teardown.toml"
    path.write_text(text + extra)
    return path


def invoke(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), env=env)
    return result.exit_code, result.stdout, result.stderr


def run(sb: Sandbox, cfg: Path, *target: str, quiet: bool = True) -> dict[str, Any]:
    """``teardown run`` with the report's JSON on stdout; the report, whatever the exit code
    (and, under ``"stderr"``, the progress lines when not ``quiet``)."""
    target = target or ("--tag", "app=shop")
    code, out, err = invoke(
        "run", *target, "--profile", str(sb.layout.profile), "--config", str(cfg),
        "--yes", "--json", *(["--quiet"] if quiet else []),
    )  # fmt: skip
    assert code in (0, 1, 4), err
    report: dict[str, Any] = json.loads(out)
    report["exit_code"] = code
    report["stderr"] = err
    return report


def servers(sb: Sandbox) -> dict[str, Resource]:
    found = HuaweiInventory(Clients(profile_of(sb))).resources()
    return {r.name: r for r in found}


def disk_with(sb: Sandbox, name: str, inside: str) -> Path:
    """The local directory of ``name``'s disk that holds ``inside`` (the sandbox advertises its
    disks' paths in the ``sandbox.data`` tag)."""
    paths = (servers(sb)[name].tag("sandbox.data") or "").split(";")
    return next(Path(p) for p in paths if (Path(p) / inside).exists())


def artifacts(tmp: Path, run_id: str) -> dict[str, Artifact]:
    journal = Journal.open(tmp / "journal.db", SystemClock(), create=False)
    try:
        return journal.artifacts(run_id)
    finally:
        journal.close()


def reuse_notes(report: dict[str, Any], name: str) -> list[str]:
    res = next(r for r in report["resources"] if r["name"] == name)
    return [b.get("reuse_note", "") for b in res["backups"]]


def manifest_files(art: Artifact) -> dict[str, str]:
    body = json.loads(Path(art.ref).read_text())
    return {f["path"]: f["sha256"] for f in body["files"]}


# -- identity ------------------------------------------------------------------------------


def test_two_sandboxes_of_one_scenario_sharing_a_journal_never_share_a_backup(
    tmp_path: Path,
) -> None:
    cfg = config_file(tmp_path)
    scenario = demo_unlocked(tmp_path)  # legacy-1's lock lifted: both runs complete (exit 0)
    with sandbox(tmp_path / "one", scenario) as one, sandbox(tmp_path / "two", scenario) as two:
        first = run(one, cfg)
        assert first["exit_code"] == 0
        site = disk_with(two, "web-1", "srv/www")
        added = site / "srv" / "www" / "added-after-the-first-run.html"
        added.write_text("<p>written on the second sandbox only</p>\n")

        second = run(two, cfg)

        assert second["exit_code"] == 0
        account = profile_of(two).account
    mine = artifacts(tmp_path, second["run_id"])
    theirs = artifacts(tmp_path, first["run_id"])
    assert {a.origin.account for a in mine.values()} == {account}
    assert not {a.ref for a in mine.values()} & {a.ref for a in theirs.values()}
    files = {p: h for a in mine.values() if a.kind == "pull" for p, h in manifest_files(a).items()}
    assert str(added) in files and all(a.verified for a in mine.values())
    assert not any(note for r in second["resources"] for note in reuse_notes(second, r["name"]))


def test_a_stack_resource_recreated_under_the_same_urn_is_backed_up_anew(tmp_path: Path) -> None:
    cfg = config_file(tmp_path)
    with sandbox(tmp_path / "one") as one:
        first = run(one, cfg, "--state", str(STACK), "--destroy-with", "cloud")
        assert first["exit_code"] == 0
        account = profile_of(one)
    new_id = "0b0b0b0b-0000-4000-8000-00000000beef"
    recreated = tmp_path / "recreated.toml"
    recreated.write_text(DEMO.read_text().replace(WEB_ID, new_id))
    stack = tmp_path / "stack-after-pulumi-up.json"
    stack.write_text(STACK.read_text().replace(WEB_ID, new_id))  # same URNs, new cloud id
    with sandbox(tmp_path / "two", str(recreated), account=account) as two:
        assert profile_of(two).account == account.account  # the same account, on purpose
        second = run(two, cfg, "--state", str(stack), "--destroy-with", "cloud")
        assert second["exit_code"] == 0
    web = [a for a in artifacts(tmp_path, second["run_id"]).values() if new_id in str(a.origin)]
    assert {a.kind for a in web} == {"cbr", "pull"}  # both made for the new machine
    assert all(a.origin.resource_id == new_id for a in web)
    assert reuse_notes(second, "web-1") == ["", ""]


def locked_db(tmp: Path) -> str:
    """The demo with db-1 locked by an order: backed up, but not released (exit 4)."""
    text = DEMO.read_text().replace(
        'discount_coupon = "480.00"', 'discount_coupon = "480.00"\nblockers = ["locked"]'
    )
    path = tmp / "locked.toml"
    path.write_text(text)
    return str(path)


def orders_rule(paths: list[Path]) -> str:
    listed = ", ".join(f'"{p}"' for p in paths)
    return f'\n[[backup.pull]]\nname = "orders"\nmatch = "db-1"\npaths = [{listed}]\n'


def test_changed_rule_paths_are_pulled_and_unchanged_backups_reused(tmp_path: Path) -> None:
    with sandbox(tmp_path / "sb", locked_db(tmp_path)) as sb:
        data = disk_with(sb, "db-1", "mysql/shop")
        first = run(sb, config_file(tmp_path, orders_rule([data / "mysql"])), "--server",
                    servers(sb)["db-1"].cloud_id or "")  # fmt: skip
        assert first["exit_code"] == 1  # locked: backed up, nothing destroyed
        wider = config_file(tmp_path, orders_rule([data / "mysql", data / "backups"]))
        db_id = servers(sb)["db-1"].cloud_id or ""
        code, shown, _ = invoke(
            "plan", "--server", db_id, "--profile", str(sb.layout.profile), "--config", str(wider)
        )
        assert code == 0 and f"reused from run {first['run_id']}" in shown
        second = run(sb, wider, "--server", db_id, quiet=False)
        assert second["exit_code"] == 1
        assert f"reused from run {first['run_id']}" in second["stderr"]  # the progress lines
        code, status, _ = invoke("status", second["run_id"], "--config", str(wider))
        assert code == 0 and f"reused from run {first['run_id']}" in status
    db = next(r for r in second["resources"] if r["name"] == "db-1")
    by_rule = {b.get("rule", b["kind"]): b for b in db["backups"]}
    assert "reuse_note" not in by_rule["orders"]  # its paths changed: pulled again
    orders = next(
        a for a in artifacts(tmp_path, second["run_id"]).values()
        if a.kind == "pull" and str(data / "backups" / "README") in manifest_files(a)
    )  # fmt: skip
    assert orders.verified
    for unchanged in ("snapshot", "site-and-data", "database-dump"):
        note = by_rule[unchanged]["reuse_note"]
        assert note.startswith(f"reused from run {first['run_id']} (made at ")
    markdown = (tmp_path / "runs" / second["run_id"] / "report.md").read_text()
    assert f"reused from run {first['run_id']}" in markdown


def test_backups_deleted_between_runs_are_made_again_not_reused(tmp_path: Path) -> None:
    with sandbox(tmp_path / "sb", locked_db(tmp_path)) as sb:
        cfg = config_file(tmp_path)
        db_id = servers(sb)["db-1"].cloud_id or ""
        first = run(sb, cfg, "--server", db_id)
        assert first["exit_code"] == 1
        # Vault retention (or a person in the console) deleted the CBR backup, and the runner's
        # disk with the local store was thrown away.
        cbr = Clients(profile_of(sb)).cbr
        for b in cbr.list_backups(ListBackupsRequest(resource_id=db_id)).backups:
            cbr.delete_backup(DeleteBackupRequest(backup_id=b.id))
        shutil.rmtree(tmp_path / "backups")

        second = run(sb, cfg, "--server", db_id)

        assert second["exit_code"] == 1
    assert not any(reuse_notes(second, "db-1"))  # made again, both
    assert all(reuse_notes(second, "db-data"))  # still there and intact: reused
    old = artifacts(tmp_path, first["run_id"])
    new = artifacts(tmp_path, second["run_id"])
    assert all(a.verified for a in new.values())

    def db_cbr(arts: dict[str, Artifact]) -> set[str]:
        return {a.ref for a in arts.values() if a.kind == "cbr" and a.origin.resource_id == db_id}

    assert db_cbr(old) and db_cbr(new) and not db_cbr(old) & db_cbr(new)
    assert all(Path(a.ref).exists() for a in new.values() if a.kind == "pull")


# -- plan = run ----------------------------------------------------------------------------


SHOWN_ONLY = ("reusable_backups", "backup_storage")
"""What ``plan`` shows beside the plan, read when it is shown (earlier runs' backups; the vaults'
storage): not part of the plan a run records."""


def comparable(view: dict[str, Any]) -> dict[str, Any]:
    view = {k: v for k, v in view.items() if k not in SHOWN_ONLY}
    view["totals"] = None  # the sums of the estimates below
    for r in view["resources"]:
        r["billing"]["estimate"] = None  # moves with the clock; informs, does not decide
    return view


def recorded_view(tmp: Path, run_id: str) -> dict[str, Any]:
    journal = Journal.open(tmp / "journal.db", SystemClock(), create=False)
    try:
        plan = plan_from_json(journal.run(run_id).plan_json, run_id)
    finally:
        journal.close()
    return comparable(plan_view(without_estimates(plan)))


@pytest.mark.parametrize(
    ("source", "plan_args", "run_args"),
    [
        ("server", ("--server", "web-1"), ("--server", "web-1")),
        ("tag", ("--tag", "role=cache"), ("--tag", "role=cache")),
        (
            "state, cloud by default",
            ("--state", "db"),
            ("--state", "db", "--destroy-with", "cloud"),
        ),
        ("state, cloud", ("--state", "db", "--destroy-with", "cloud"), ("--state", "db")),
    ],
)
def test_plan_json_is_the_plan_the_run_records(
    tmp_path: Path, source: str, plan_args: tuple[str, ...], run_args: tuple[str, ...]
) -> None:
    cfg = config_file(tmp_path)
    with sandbox(tmp_path / "sb") as sb:
        ids = {n: r.cloud_id or "" for n, r in servers(sb).items()}
        only_db = tmp_path / "db-only.json"
        doc = json.loads(STACK.read_text())
        keep = ("db-1", "db-data", "Stack", "providers")
        doc["deployment"]["resources"] = [
            r for r in doc["deployment"]["resources"] if any(k in r["urn"] for k in keep)
        ]
        only_db.write_text(json.dumps(doc))

        def resolve(args: tuple[str, ...]) -> list[str]:
            out = list(args)
            if out[0] == "--server":
                out[1] = ids[out[1]]
            if out[0] == "--state":
                out[1] = str(only_db)
            return out

        common = ["--profile", str(sb.layout.profile), "--config", str(cfg)]
        code, out, err = invoke("plan", *resolve(plan_args), *common, "--json")
        assert code == 0, err
        shown = json.loads(out)
        planned = comparable(shown)
        report = run(sb, cfg, *resolve(run_args))
    recorded = recorded_view(tmp_path, report["run_id"])
    assert planned == recorded, source
    assert set(shown) - set(recorded) <= set(SHOWN_ONLY)  # nothing else is left out
    assert "backup_storage" in shown and "totals" in shown, source
    assert planned["resources"]


# -- the vault -----------------------------------------------------------------------------


def without_vault(sb: Sandbox, tmp: Path) -> Path:
    """The sandbox's profile as a real account's would be: no vault named."""
    text = sb.layout.profile.read_text()
    text = "\n".join(line for line in text.splitlines() if not line.startswith("vault_id"))
    path = tmp / "no-vault.toml"
    path.write_text(text)
    return path


def test_the_vault_is_needed_only_for_cbr_backups_and_plan_says_so_as_run_would(
    tmp_path: Path,
) -> None:
    with sandbox(tmp_path / "sb") as sb:
        profile = without_vault(sb, tmp_path)
        cbr = config_file(tmp_path)
        base = ["--profile", str(profile), "--config", str(cbr), "--tag", "role=web"]
        for command in (["plan"], ["run", "--yes"]):
            code, _, err = invoke(*command, *base)
            assert code == 2 and "huawei.vault_id" in err and "HUAWEICLOUD_VAULT_ID" in err
        assert "web-1" in servers(sb)  # nothing changed

        code, _, err = invoke("plan", *base, env={"HUAWEICLOUD_VAULT_ID": "vault-sandbox"})
        assert code == 0, err

        pulls_only = config_file(tmp_path, "")
        text = pulls_only.read_text().replace('snapshot = "cbr"', 'snapshot = "none"')
        pulls_only.write_text(text)
        base = ["--profile", str(profile), "--config", str(pulls_only), "--tag", "role=web"]
        code, _, err = invoke("plan", *base)
        assert code == 0, err
        code, _, err = invoke("run", *base, "--yes", "--json", "--quiet")
        assert code == 0, err
        assert "web-1" not in servers(sb)


# -- what the report says about pulls ------------------------------------------------------


def socket_rules(site: Path, accept: bool) -> str:
    accepted = f'accept_refused = ["{site}/run/*.sock"]\n' if accept else ""
    return (
        f'\n[[backup.pull]]\nname = "runtime"\nmatch = "web-1"\npaths = ["{site}/run"]\n'
        + accepted
        + f'\n[[backup.pull]]\nname = "spool"\nmatch = "web-1"\npaths = ["{site}/spool"]\n'
        + "allow_empty = true\n"
    )


def test_reports_list_refused_entries_and_empty_rules_and_unaccepted_ones_fail(
    tmp_path: Path,
) -> None:
    import os

    with sandbox(tmp_path / "sb") as sb:
        # beside the demo's disks, so only these two rules see them (the sandbox's SSH servers
        # run commands on this machine)
        site = tmp_path / "web-1-extra"
        (site / "run").mkdir(parents=True)
        (site / "run" / "app.pid").write_text("4242\n")
        os.mkfifo(site / "run" / "app.sock")
        (site / "spool").mkdir()
        strict = run(sb, config_file(tmp_path, socket_rules(site, False)), "--tag", "role=web")
        assert strict["exit_code"] == 1  # the socket was not accepted: nothing destroyed
        assert "web-1" in servers(sb)
        md = (tmp_path / "runs" / strict["run_id"] / "report.md").read_text()
        assert "## Pulls: refused entries and empty rules" in md
        assert f"{site}/run/app.sock (special file" in md and "failed" in md

        ok = run(sb, config_file(tmp_path, socket_rules(site, True)), "--tag", "role=web")
        assert ok["exit_code"] == 0, json.dumps(ok["resources"], indent=1)[:3000]
    md = (tmp_path / "runs" / ok["run_id"] / "report.md").read_text()
    html = (tmp_path / "runs" / ok["run_id"] / "report.html").read_text()
    for page in (md, html):
        assert f"{site}/run/app.sock: special file" in page
        assert (
            "rule &#39;spool&#39;: copied no file" in page or "rule 'spool': copied no file" in page
        )
    assert 'id="pull-notes"' in html


def test_image_backups_are_refused_at_plan_time_not_at_run_time(tmp_path: Path) -> None:
    # The Huawei adapter makes CBR backups only: a plan naming image backups would fail in the
    # middle of a run ("not supported yet"); the plan refuses it up front, naming the key.
    with sandbox(tmp_path / "sb") as sb:
        text = config_file(tmp_path).read_text().replace('snapshot = "cbr"', 'snapshot = "image"')
        image = tmp_path / "image.toml"
        image.write_text(text)
        base = ["--profile", str(sb.layout.profile), "--config", str(image), "--tag", "role=web"]
        for command in (["plan"], ["run", "--yes"]):
            code, _, err = invoke(*command, *base)
            assert code == 2 and "backup.snapshot" in err and "cbr" in err, err
        assert "web-1" in servers(sb)  # nothing changed
