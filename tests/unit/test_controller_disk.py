"""The controller's own disk: a full or read-only .opsrun (results, the SQLite store) or --out folder is found
by a dry write before any host is touched (exit 2, the folder and the fix); one that fills during a run
leaves the run to end with its summary, which says what could not be kept (exit 4). Real small tmpfs
mounts; the SSH guard (tests/unit/conftest.py) proves no host was reached."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from opsrun.cli import cli
from opsrun.cli.output import show
from opsrun.model.project import Project
from opsrun.model.results import DeployRun, HostRun, OperationResult
from opsrun.reports import as_text
from opsrun.runs.saving import save_or_say
from tests.conftest import fill


def run(project: Path, *args: str):
    return CliRunner().invoke(cli, ["--project", str(project), *args])


@pytest.mark.parametrize(
    "command",
    [["apply", "lab", "nginx", "--limit", "web1"], ["drift", "lab", "nginx"], ["verify", "lab", "nginx"]],
    ids=["apply", "drift", "verify"],
)
def test_a_full_state_folder_is_refused_before_any_host(project_copy, small_disk, command):
    state = fill(small_disk(project_copy / ".opsrun")).parent
    result = run(project_copy, *command)
    assert result.exit_code == 2, (result.output, result.exception)
    assert result.stderr == (
        f"error: {state}: opsrun keeps its results, run history and debug log here and cannot: No space left on "
        f"device. Fix: make {state} a folder this user can write to (move a file of that name away; chmod u+rwx) "
        f"with 1 MiB free on its filesystem (df -h {state}; is it mounted read-only?)\n"
    )


def test_a_read_only_state_folder_is_refused_before_any_host(project_copy, small_disk):
    small_disk(project_copy / ".opsrun", read_only=True)
    result = run(project_copy, "apply", "lab", "nginx", "--limit", "web1")
    assert result.exit_code == 2 and "debug log here and cannot: Read-only file system" in result.stderr


def test_a_state_folder_nearly_full_is_refused_too(project_copy, small_disk):
    """An empty file still fits on a disk with a few kB free; a run's documents do not."""
    small_disk(project_copy / ".opsrun", size="256k")
    result = run(project_copy, "apply", "lab", "nginx", "--limit", "web1")
    assert result.exit_code == 2 and "No space left on device" in result.stderr


def test_a_full_out_folder_is_refused_before_any_host(project_copy, small_disk, tmp_path):
    out = small_disk(tmp_path / "reports")
    fill(out)
    result = run(project_copy, "apply", "lab", "nginx", "--limit", "web1", "--out", str(out))
    assert result.exit_code == 2 and f"error: {out}: --out: cannot write reports here: No space left" in result.stderr


def finished() -> DeployRun:
    return DeployRun("lab", "nginx", False, [HostRun("web1", [OperationResult("config", True, True)])], seconds=1.0)


def test_a_disk_that_fills_during_a_run_leaves_its_summary_saying_so(tmp_path, small_disk, capsys):
    project = Project(tmp_path)
    fill(small_disk(project.state_dir))
    notices: list[str] = []
    kept, saved = save_or_say(project, "apply-lab-nginx", finished(), notices.append)
    assert saved is None and kept.exit_code == 4
    why = f"the result document could not be written to {project.state_dir / 'results'} (No space left on device)"
    assert kept.record_error == f"{why}: the summary is its record" and notices == [kept.record_error]
    with pytest.raises(SystemExit) as ended:
        show(kept, saved, "text", as_text.deploy_run)
    out = capsys.readouterr().out
    assert ended.value.code == 4 and "result: not written (see above)" in out
    assert f"record: {why}" in out and "success: 1 host, 1 operation changed" in out
    with pytest.raises(SystemExit):
        show(kept, saved, "json", as_text.deploy_run)
    assert json.loads(capsys.readouterr().out)["record_error"] == kept.record_error


def test_reports_the_disk_will_not_take_are_said_after_the_summary(tmp_path, small_disk, capsys):
    out = small_disk(tmp_path / "reports")
    fill(out)
    with pytest.raises(SystemExit) as ended:
        show(finished(), tmp_path / "result.json", "text", as_text.deploy_run, out)
    seen = capsys.readouterr()
    assert ended.value.code == 4 and "success: 1 host" in seen.out
    assert f"error: the reports could not be written to {out} (No space left on device)" in seen.err
