"""What an apply records as its revision, and a revision checked out aside, on real git repositories in
temp folders (opsrun.model.revisions)."""

from __future__ import annotations

from pathlib import Path

import pytest

from opsrun.errors import ConfigError
from opsrun.model import revisions
from tests.conftest import git


def write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)


def commit(root: Path, files: dict[str, str], message: str = "change") -> str:
    write(root, files)
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", message)
    return git(root, "rev-parse", "HEAD")


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "ops"
    root.mkdir()
    git(root, "init", "-q")
    commit(
        root,
        {
            "deploys/app.py": "VERSION = 1\n",
            "group_data/web.py": "x = 1\n",
            "inventories/prod.py": "web = ['web1']\n",
            "README.md": "ops\n",
        },
    )
    return root


def test_a_clean_tree_records_head(repo):
    assert revisions.record(repo) == git(repo, "rev-parse", "HEAD")


def test_a_change_outside_the_desired_state_is_still_head(repo):
    write(repo, {"README.md": "edited\n", "notes.txt": "new\n"})
    assert revisions.record(repo) == git(repo, "rev-parse", "HEAD")


def test_uncommitted_changes_are_recorded_as_they_were_applied(repo):
    head = git(repo, "rev-parse", "HEAD")
    write(repo, {"deploys/app.py": "VERSION = 2\n", "deploys/new.py": "NEW = True\n"})
    git(repo, "add", "deploys/app.py")  # staged, and then edited again: the file on disk is what is applied
    write(repo, {"deploys/app.py": "VERSION = 3\n"})
    status_before = git(repo, "status", "--porcelain")

    recorded = revisions.record(repo)

    assert recorded is not None and recorded.endswith("+dirty")
    snapshot = revisions.commit_of(recorded)
    assert git(repo, "show", f"{snapshot}:deploys/app.py") == "VERSION = 3"
    assert git(repo, "show", f"{snapshot}:deploys/new.py") == "NEW = True"
    assert git(repo, "rev-parse", f"{snapshot}^") == head
    assert git(repo, "status", "--porcelain") == status_before, "the user's index or work tree changed"
    assert git(repo, "show", ":deploys/app.py") == "VERSION = 2", "the user's staged content changed"
    assert git(repo, "rev-parse", "HEAD") == head
    # kept alive under opsrun's own ref: gc cannot take it, and the same state is not kept twice
    tree = git(repo, "rev-parse", f"{snapshot}^{{tree}}")
    assert git(repo, "for-each-ref", "--format=%(refname) %(objectname)", "refs/opsrun/") == (
        f"refs/opsrun/applied/{tree} {snapshot}"
    )
    assert revisions.record(repo) == recorded


def test_a_deleted_desired_state_file_is_part_of_the_snapshot(repo):
    (repo / "group_data" / "web.py").unlink()
    snapshot = revisions.commit_of(revisions.record(repo) or "")
    listed = git(repo, "ls-tree", "-r", "--name-only", snapshot)
    assert "group_data/web.py" not in listed and "deploys/app.py" in listed


def test_outside_git_nothing_is_recorded_and_a_rollback_is_refused(tmp_path):
    assert revisions.record(tmp_path) is None
    with pytest.raises(ConfigError) as caught:
        revisions.prefix(tmp_path)
    assert caught.value.exit_code == 2
    assert "is not a git repository" in str(caught.value) and "Fix: keep the ops repo in git" in str(caught.value)


def test_a_revision_that_no_longer_exists_is_refused(repo):
    with pytest.raises(ConfigError) as caught:
        revisions.resolve(repo, "0123456789abcdef0123456789abcdef01234567", where="run 3", field="revision")
    assert "revision 0123456789ab no longer exists" in str(caught.value)
    assert "--to RUN_ID" in str(caught.value)


def test_a_revision_without_the_deploy_is_refused(repo):
    old = git(repo, "rev-parse", "HEAD")
    commit(repo, {"deploys/other.py": "pass\n"})
    revisions.check_deploy(repo, git(repo, "rev-parse", "HEAD"), "other", where="x", field="revision")
    with pytest.raises(ConfigError) as caught:
        revisions.check_deploy(repo, old, "other", where="x", field="revision")
    assert f"revision {old[:12]} has no deploys/other.py" in str(caught.value)


def test_a_revision_is_checked_out_aside_with_todays_inventory(repo):
    old = git(repo, "rev-parse", "HEAD")
    commit(repo, {"deploys/app.py": "VERSION = 2\n", "inventories/prod.py": "web = ['web1', 'web2']\n"})
    state = repo / ".opsrun"
    with revisions.aside(repo, old, state) as folder:
        assert folder.parent == state / "rollback"
        assert (folder / "deploys" / "app.py").read_text() == "VERSION = 1\n"
        assert (folder / "group_data" / "web.py").read_text() == "x = 1\n"
        assert (folder / "inventories" / "prod.py").read_text() == "web = ['web1', 'web2']\n"
        assert not (folder / "README.md").exists()
    assert not folder.exists()
    assert (repo / "deploys" / "app.py").read_text() == "VERSION = 2\n", "the work tree was touched"


def test_a_project_below_the_top_of_its_repository(tmp_path):
    top = tmp_path / "top"
    top.mkdir()
    git(top, "init", "-q")
    first = commit(top, {"ops/deploys/app.py": "VERSION = 1\n", "ops/inventories/prod.py": "web = []\n"})
    commit(top, {"ops/deploys/app.py": "VERSION = 2\n"})
    ops = top / "ops"
    assert revisions.prefix(ops) == "ops/"
    revisions.check_deploy(ops, first, "app", where="x", field="revision")
    with revisions.aside(ops, first, tmp_path / "state") as folder:
        assert (folder / "deploys" / "app.py").read_text() == "VERSION = 1\n"
    write(ops, {"deploys/app.py": "VERSION = 3\n"})
    snapshot = revisions.commit_of(revisions.record(ops) or "")
    assert git(top, "show", f"{snapshot}:ops/deploys/app.py") == "VERSION = 3"
