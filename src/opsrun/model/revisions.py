"""The ops repository's revisions in git: what an apply records as its revision, and a recorded revision
checked out aside for a rollback (into a folder of .opsrun/, never the user's work tree).

An apply records HEAD's commit id when the desired state (the folders of `DESIRED`) is as committed. When
it is not, it records the exact state it applied: a commit of opsrun's own (its parent HEAD) kept alive
under refs/opsrun/applied/TREE, written as "COMMIT+dirty". Outside git it records nothing.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path

from opsrun.errors import ConfigError

DESIRED = ("deploys", "group_data", "apps", "verify", "inventories")  # what an apply's revision records
ASIDE = ("deploys", "group_data", "apps", "verify")  # what a rollback takes from it (the inventory: today's)
APPLIED_REFS = "refs/opsrun/applied/"
DIRTY = "+dirty"
IDENTITY = {  # the snapshots' author: no user configuration needed, and none changed
    "GIT_AUTHOR_NAME": "opsrun",
    "GIT_AUTHOR_EMAIL": "opsrun@localhost",
    "GIT_COMMITTER_NAME": "opsrun",
    "GIT_COMMITTER_EMAIL": "opsrun@localhost",
}


def _git(root: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[bytes]:
    try:
        return subprocess.run(
            ["git", "-C", str(root), *args],
            capture_output=True,
            timeout=120,
            check=False,
            env={**os.environ, **env} if env else None,
        )
    except FileNotFoundError:  # no git on this machine: as good as no repository
        return subprocess.CompletedProcess(["git"], 127, b"", b"git is not installed")


def _out(proc: subprocess.CompletedProcess[bytes]) -> str:
    return proc.stdout.decode().strip()


def commit_of(revision: str) -> str:
    """The commit a recorded revision names ("+dirty" dropped: the snapshot commit itself)."""
    return revision.removesuffix(DIRTY)


def prefix(root: Path) -> str:
    """The project's folder inside its git repository ("" at the top, "ops/" below it); refused outside git."""
    proc = _git(root, "rev-parse", "--show-prefix")
    if proc.returncode != 0 or _git(root, "rev-parse", "--verify", "-q", "HEAD").returncode != 0:
        raise ConfigError(
            root,
            "is not a git repository with a commit: a rollback re-applies a revision that an earlier run "
            "recorded, and runs record one only from git.",
            fix="keep the ops repo in git (git init && git add -A && git commit), apply from it, then roll back",
        )
    return _out(proc)


def record(root: Path) -> str | None:
    """The revision an apply from `root` records: HEAD's id, or the exact uncommitted state as a commit of
    opsrun's own with "+dirty"; None outside git (or when git cannot write the snapshot)."""
    head = _git(root, "rev-parse", "--verify", "-q", "HEAD^{commit}")
    if head.returncode != 0:
        return None
    parent = _out(head)
    tree = _state_tree(root)
    if tree is None:
        return None
    if tree == _out(_git(root, "rev-parse", "HEAD^{tree}")):
        return parent
    ref = APPLIED_REFS + tree
    kept = _git(root, "rev-parse", "--verify", "-q", ref + "^{commit}")
    if kept.returncode == 0:  # this very state was applied before: its snapshot is kept already
        return _out(kept) + DIRTY
    message = f"opsrun: the uncommitted desired state an apply used, on top of {parent[:12]}"
    made = _git(root, "commit-tree", tree, "-p", parent, "-m", message, env=IDENTITY)
    if made.returncode != 0:
        return None
    commit = _out(made)
    if _git(root, "update-ref", ref, commit).returncode != 0:
        return None
    return commit + DIRTY


def _state_tree(root: Path) -> str | None:
    """The tree of HEAD with the desired-state folders as they are on disk (tracked or not; ignored files
    left out), written through an index of its own: the user's index and work tree are not touched."""
    with tempfile.TemporaryDirectory(prefix="opsrun-index-") as tmp:
        env = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
        if _git(root, "read-tree", "HEAD", env=env).returncode != 0:
            return None
        here = _out(_git(root, "rev-parse", "--show-prefix"))
        folders = [f for f in DESIRED if (root / f).exists() or _in_commit(root, "HEAD", here + f)]
        if folders and _git(root, "add", "-A", "--", *folders, env=env).returncode != 0:
            return None
        tree = _git(root, "write-tree", env=env)
    return _out(tree) if tree.returncode == 0 else None


def _in_commit(root: Path, commit: str, path: str) -> bool:
    return _git(root, "cat-file", "-e", f"{commit}:{path}").returncode == 0


def resolve(root: Path, revision: str, *, where: str, field: str) -> str:
    """The full commit id of `revision` (a recorded one, or anything git names); refused when the repository
    no longer has it."""
    proc = _git(root, "rev-parse", "--verify", "-q", commit_of(revision) + "^{commit}")
    if proc.returncode != 0:
        raise ConfigError(
            where,
            f"revision {commit_of(revision)[:12]} no longer exists in the git repository at {root} "
            "(rewritten history, a garbage-collected snapshot, or a run recorded on another machine's clone).",
            field=field,
            fix="fetch it into this clone, or pick another with --to RUN_ID (`opsrun history`) or --revision REV",
        )
    return _out(proc)


def check_deploy(root: Path, commit: str, deploy: str, *, where: str, field: str) -> None:
    """Refused when revision `commit` has no deploys/DEPLOY.py."""
    if not _in_commit(root, commit, f"{prefix(root)}deploys/{deploy}.py"):
        raise ConfigError(
            where,
            f"revision {commit[:12]} has no deploys/{deploy}.py: there is nothing of {deploy} to go back to.",
            field=field,
            fix=f"pick a revision that has deploys/{deploy}.py with --to RUN_ID or --revision REV",
        )


@contextlib.contextmanager
def aside(root: Path, commit: str, state_dir: Path) -> Iterator[Path]:
    """Revision `commit`'s deploys/, group_data/, apps/ and verify/, with today's inventories/, in a folder
    of `state_dir` (removed afterwards): a project to roll back from."""
    here = prefix(root)
    top = Path(_out(_git(root, "rev-parse", "--show-toplevel")))  # paths given to git from here on are the tree's
    listed = _git(top, "ls-tree", "--name-only", f"{commit}:{here}")
    present = [name for name in _out(listed).splitlines() if name in ASIDE]
    (state_dir / "rollback").mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix=f"{commit[:12]}-", dir=state_dir / "rollback"))
    try:
        if present:
            archive = _git(top, "archive", "--format=tar", f"{commit}:{here}", "--", *present)
            if archive.returncode != 0:
                raise ConfigError(
                    root, f"git archive of revision {commit[:12]} failed: {archive.stderr.decode().strip()}."
                )
            with tarfile.open(fileobj=io.BytesIO(archive.stdout), mode="r:") as tar:
                tar.extractall(folder, filter="data")
        if (root / "inventories").is_dir():
            shutil.copytree(root / "inventories", folder / "inventories", ignore=shutil.ignore_patterns("__pycache__"))
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)
