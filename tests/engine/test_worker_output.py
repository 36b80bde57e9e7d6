"""The real pyinfra worker, without the lab: pyinfra's `@local` connector for the diffs of a dry run and of a
real apply (files in a temporary folder of this machine), and the real CLI against a loopback port where
nothing listens for the log lines a person sees when a host cannot be reached."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from opsrun import engine
from opsrun.model import inventory
from opsrun.model.project import Project
from opsrun.support import progress
from tests.conftest import opsrun

DEPLOY = """
from io import StringIO
from pyinfra.operations import files

files.put(name="Write the greeting", src=StringIO("hello\\nfrom opsrun\\n"), dest="{dest}")
"""


@pytest.fixture
def local_project(tmp_path: Path) -> tuple[Project, Path]:
    """A project whose one host is pyinfra's @local, and a deploy that writes `dest` (now "hello\\nworld")."""
    for folder in ("inventories", "deploys", "group_data"):
        (tmp_path / folder).mkdir()
    (tmp_path / "inventories" / "here.py").write_text('local = ["@local"]\n')
    dest = tmp_path / "greeting.txt"
    dest.write_text("hello\nworld\n")
    (tmp_path / "deploys" / "greet.py").write_text(DEPLOY.format(dest=dest))
    return Project(tmp_path), dest


def test_a_dry_run_and_an_apply_with_diff_report_the_files_unified_diff(local_project):
    project, dest = local_project
    inv = inventory.load(project, "here")
    planned = engine.run_deploy(project, inv, "greet", ["@local"], dry_run=True)
    [op] = planned.hosts[0].operations
    assert op.changed and op.diff[0] == f"Will modify {dest}"
    assert "- world" in op.diff and "+ from opsrun" in op.diff
    assert dest.read_text() == "hello\nworld\n"  # a dry run changes nothing

    told: list[tuple[str, str, str]] = []

    class Recorder:
        def begin(self, hosts):
            pass

        def report(self, host, state, doing):
            told.append((host, state, doing))

    with progress.listening(Recorder()):
        quiet = engine.run_deploy(project, inv, "greet", ["@local"])
    assert told == [  # each host's progress as it happened (read from the worker's file while it ran)
        ("@local", "working", "connected"),
        ("@local", "working", "Write the greeting"),
        ("@local", "done", "1 changed"),
    ]
    assert quiet.hosts[0].operations[0].changed and quiet.hosts[0].operations[0].diff == []
    dest.write_text("hello\nworld\n")
    applied = engine.run_deploy(project, inv, "greet", ["@local"], diff=True)
    [op] = applied.hosts[0].operations
    assert op.changed and op.success and op.diff[0] == f"Will modify {dest}" and "+ from opsrun" in op.diff
    assert dest.read_text() == "hello\nfrom opsrun\n"


@pytest.fixture
def closed_port():
    """A loopback port bound but not listening: a connection to it is refused at once."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    try:
        yield sock.getsockname()[1]
    finally:
        sock.close()


def test_an_unreachable_host_is_one_line_and_pyinfras_own_lines_only_at_vv(tmp_path, closed_port, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # no ~/.ssh/known_hosts: paramiko would say so
    (tmp_path / "home").mkdir()
    project = tmp_path / "ops"
    for folder in ("inventories", "deploys", "group_data"):
        (project / folder).mkdir(parents=True)
    (project / "inventories" / "t.py").write_text(
        f'web = [("web1", {{"ssh_hostname": "127.0.0.1", "ssh_port": {closed_port}, "ssh_user": "root"}})]\n'
    )
    (project / "deploys" / "probe.py").write_text(DEPLOY.format(dest=tmp_path / "never.txt"))

    plain = opsrun("apply", "t", "probe", "--dry-run", project=project)
    assert plain.returncode == 1, plain.stderr
    said = [line for line in (plain.stdout + plain.stderr).splitlines() if "connect" in line.lower()]
    assert len(said) == 1 and said[0].startswith(f"web1: could not connect to web1 (127.0.0.1:{closed_port}): ")
    assert "Failed to load host keys" not in plain.stderr and "Could not connect" not in plain.stderr
    log = (project / ".opsrun" / "debug.log").read_text()
    assert "Failed to load host keys" in log and "[web1] Could not connect" in log

    loud = opsrun("apply", "t", "probe", "--dry-run", "-vv", project=project)
    assert "Failed to load host keys" in loud.stderr and "[web1] Could not connect" in loud.stderr
