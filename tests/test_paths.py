"""One name check for pulled files: the same hostile names are refused by the pull, the store,
``verify`` and ``restore`` (they used to disagree about empty components)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from teardown.adapters.ssh.connect import SshTarget
from teardown.adapters.ssh.pull import Entry, PullRequest, classify
from teardown.adapters.ssh.restore import restore_backup
from teardown.adapters.store import FileRecord, Manifest, PullDir
from teardown.adapters.store_check import verify_backup
from teardown.core.errors import InputError
from teardown.core.paths import bad_name, excluded, excluded_roots

HOSTILE = [
    ("relative/name", "not an absolute path"),
    ("/srv/data/../../etc/shadow", "'..'"),
    ("/srv/data/./x", "'..'"),
    ("/srv/data//x", "empty component"),
    ("/srv/data/x/", "empty component"),
    ("/srv/data/line\nbreak", "control character"),
    ("/srv/data/esc\x1b[2J", "control character"),
    ("/srv/data/del\x7f", "control character"),
]


@pytest.mark.parametrize(("name", "why"), HOSTILE)
def test_bad_name_refuses_hostile_names(name: str, why: str) -> None:
    assert why in (bad_name(name) or "")


@pytest.mark.parametrize("name", ["/", "/srv/data", "/srv/data/a b", "/srv/data/ünï.txt"])
def test_bad_name_accepts_ordinary_names(name: str) -> None:
    assert bad_name(name) is None


@pytest.mark.parametrize(("name", "why"), HOSTILE)
def test_the_pull_refuses_a_hostile_name(name: str, why: str) -> None:
    req = PullRequest(server="s", paths=("/srv/data",))
    kept, refused = classify([Entry(name, "f", 0o644, 1, 0.0)], req, ("/srv/data",))
    assert kept == []
    assert len(refused) == 1


def _manifest(pd: PullDir, name: str) -> Manifest:
    return Manifest(
        key=pd.key,
        server="s",
        host="h",
        user="u",
        paths=["/srv/data"],
        excludes=[],
        started="",
        finished="",
        verified_with="host:openssl",
        files=[
            {"path": name, "size": 0, "mode": 0o644, "mtime": 0.0, "sha256": "0" * 64, "segment": 1}
        ],
    )


@pytest.mark.parametrize(("name", "why"), HOSTILE)
def test_the_store_refuses_to_record_a_hostile_name(tmp_path: Path, name: str, why: str) -> None:
    pd = PullDir(tmp_path, "k")
    pd.prepare()
    with pytest.raises(ValueError, match="refusing to record"):
        pd.write_manifest(_manifest(pd, name))
    assert not pd.manifest_path.exists()
    # an index line naming it (a damaged or edited index) is never taken as received
    pd.segment_path(1, part=False).write_bytes(b"\0" * 1024)
    pd.add_records([FileRecord(name, 1, 0o644, 0.0, "0" * 64, 1)])
    pd.add_records([FileRecord("/srv/data/ok", 1, 0o644, 0.0, "0" * 64, 1)])
    assert list(pd.received()) == ["/srv/data/ok"]


def _hand_written_backup(tmp_path: Path, name: str) -> Path:
    pd = PullDir(tmp_path, "k")
    pd.prepare()
    body = vars(_manifest(pd, name))
    pd.manifest_path.write_text(json.dumps(body))
    return pd.dir


@pytest.mark.parametrize(("name", "why"), HOSTILE)
def test_verify_and_restore_refuse_a_manifest_naming_a_hostile_path(
    tmp_path: Path, name: str, why: str
) -> None:
    backup = _hand_written_backup(tmp_path, name)
    with pytest.raises(InputError, match=r"manifest\.json names"):
        verify_backup(backup)
    # restore refuses before connecting: the target does not even exist
    with pytest.raises(InputError, match=r"manifest\.json names"):
        restore_backup(backup, SshTarget(host="127.0.0.1", port=1), "/restore")


def test_excludes_match_a_name_or_a_full_path_below_a_root() -> None:
    roots = ("/srv/data",)
    assert excluded("/srv/data/a.log", ["*.log"], roots)
    assert excluded("/srv/data/cache/x", ["/srv/data/cache"], roots)
    assert not excluded("/srv/data", ["*"], roots)  # a requested path itself never is
    assert not excluded("/srv/data/a.txt", ["*.log"], roots)


@pytest.mark.parametrize(
    ("excludes", "empty"),
    [
        (["*"], ["/srv/data"]),
        (["/srv/data/*"], ["/srv/data"]),
        (["?*"], ["/srv/data"]),
        (["*.log"], []),
        (["/srv/data/cache"], []),
    ],
)
def test_excluded_roots_finds_rules_that_leave_nothing(
    excludes: list[str], empty: list[str]
) -> None:
    assert excluded_roots(["/srv/data/"], excludes) == empty
