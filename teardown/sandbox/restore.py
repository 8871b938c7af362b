"""Restore a sandbox CBR backup: copy its disk files (``DIR/cbr/<disk backup id>``) to a local
directory and compare every copy's sha256 with the backup's. A disk backup is restored into
``dest`` itself; a server backup puts each disk under ``dest/<volume id>/``. Existing files are
never overwritten: any path that already exists refuses the restore before copying. A sandbox
feature (``teardown sandbox restore``): it reads the sandbox's own state, never a cloud's.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import sqlite3
import stat
from pathlib import Path

from teardown.adapters.stored_pull import Problem, RestoreReport
from teardown.core.errors import InputError
from teardown.sandbox.services.cbr import SERVER_TYPE, backup_dir

READ = 4 << 20
_BACKUP_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def _cbr_sources(data_root: Path, backup_id: str) -> list[tuple[str, Path]]:
    """(disk backup id, sub-directory of dest) for each disk of the backup."""
    source = f"{data_root}:{backup_id}"
    if not _BACKUP_ID.fullmatch(backup_id):
        raise InputError(backup_id, "not a backup id")
    db = data_root / "state.db"
    if not db.is_file():
        raise InputError(str(data_root), "not a sandbox directory (no state.db)")
    try:
        conn = sqlite3.connect(db.resolve().as_uri() + "?mode=ro", uri=True)
    except sqlite3.Error as e:
        raise InputError(str(db), f"cannot open the sandbox state: {e}") from None
    try:
        conn.row_factory = sqlite3.Row
        row = conn.execute("SELECT * FROM backups WHERE id=?", (backup_id,)).fetchone()
        if row is None:
            raise InputError(source, "no such CBR backup")
        children = list(
            conn.execute(
                "SELECT * FROM backups WHERE parent_id=? ORDER BY system_disk DESC, id",
                (backup_id,),
            )
        )
    except sqlite3.Error as e:
        raise InputError(str(db), f"cannot read the sandbox state: {e}") from None
    finally:
        conn.close()
    for r in [row, *children]:
        if r["status"] not in ("available", "protecting"):
            raise InputError(source, f"backup {r['id']} is {r['status']}, not available")
    if row["resource_type"] == SERVER_TYPE or children:
        out = [(str(c["id"]), Path(str(c["resource_id"]))) for c in children]
    else:
        out = [(backup_id, Path("."))]
    for bid, _sub in out:
        if not backup_dir(data_root, bid).is_dir():
            raise InputError(source, f"the files of disk backup {bid} are missing")
    return out


def _walk(root: Path) -> list[tuple[Path, str]]:
    """(relative path, kind d/f/l) of everything under ``root``, parents first."""
    out: list[tuple[Path, str]] = []
    for base, dirnames, filenames in os.walk(root):
        rel = Path(base).relative_to(root)
        for name in sorted(dirnames):
            p = Path(base) / name
            out.append((rel / name, "l" if p.is_symlink() else "d"))
        for name in sorted(filenames):
            p = Path(base) / name
            mode = os.lstat(p).st_mode
            kind = "l" if stat.S_ISLNK(mode) else "f" if stat.S_ISREG(mode) else "o"
            out.append((rel / name, kind))
        dirnames[:] = sorted(d for d in dirnames if not (Path(base) / d).is_symlink())
    return out


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(READ):
            h.update(chunk)
    return h.hexdigest()


def restore_cbr(data_root: Path, backup_id: str, dest: Path) -> RestoreReport:
    """Copy a sandbox CBR backup's disk files to ``dest`` and compare checksums (see above)."""
    sources = _cbr_sources(data_root, backup_id)
    if dest.exists() and not dest.is_dir():
        raise InputError(str(dest), "exists and is not a directory")
    plan: list[tuple[Path, Path, str]] = []  # (source, target, kind)
    for bid, sub in sources:
        src_root = backup_dir(data_root, bid)
        plan += [(src_root / rel, dest / sub / rel, kind) for rel, kind in _walk(src_root)]
    clash = [str(t) for _s, t, kind in plan if kind != "d" and os.path.lexists(t)]
    clash += [
        str(t)
        for _s, t, kind in plan
        if kind == "d" and (t.is_symlink() or (t.exists() and not t.is_dir()))
    ]
    if clash:
        more = f" (and {len(clash) - 3} more)" if len(clash) > 3 else ""
        raise InputError(
            str(dest),
            f"{len(clash)} paths already exist: "
            + ", ".join(clash[:3])
            + more
            + "; existing files are never overwritten",
        )
    problems: list[Problem] = []
    good = total = dirs = links = expected = 0
    for _bid, sub in sources:
        (dest / sub).mkdir(parents=True, exist_ok=True)
    for src, target, kind in plan:
        if kind == "d":
            target.mkdir(parents=True, exist_ok=True)
            dirs += 1
        elif kind == "l":
            os.symlink(os.readlink(src), target)
            links += 1
        elif kind == "f":
            expected += 1
            with open(src, "rb") as fin, open(target, "xb") as fout:
                shutil.copyfileobj(fin, fout, READ)
            shutil.copystat(src, target)
            want, got = _sha256(src), _sha256(target)
            if want != got:
                problems.append(
                    Problem(str(target), f"sha256 {got[:12]} differs from the backup's {want[:12]}")
                )
            else:
                good += 1
                total += target.stat().st_size
        else:
            problems.append(Problem(str(src), "special file in the backup, not restored"))
    return RestoreReport(
        source=f"cbr:{backup_id}",
        destination=str(dest),
        ok=not problems,
        files=good,
        expected=expected,
        total_bytes=total,
        verified_with="local:sha256",
        dirs=dirs,
        symlinks=links,
        problems=problems,
    )
