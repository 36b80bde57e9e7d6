"""A sudo password configured for a host whose sudo does not ask for one (NOPASSWD, or root, as on this
loopback sshd): the line sudo never reads must reach neither the command's stdin nor a shell. Real sshd and
sudo on loopback (tests/ssh/conftest.py); the password is a shell command that leaves a mark if it runs."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
import testinfra

from opsrun.hosts.remote import Remote
from opsrun.verification import ssh_shell  # noqa: F401 - registers testinfra's opsrun-ssh connection
from opsrun.verification.protocol import SUDO_ENV
from tests.ssh.conftest import Sshd, host_data, inventory, write_config


@pytest.fixture
def mark(tmp_path: Path) -> Path:
    return tmp_path / f"password-ran-{uuid.uuid4().hex[:8]}"


def test_the_verification_shell_never_runs_the_password_as_a_command(tmp_path: Path, sshd: Sshd, mark, monkeypatch):
    config = write_config(tmp_path, sshd, [sshd])
    monkeypatch.setenv(SUDO_ENV, json.dumps({"web1": {"user": "nobody", "password": f"touch {mark}"}}))
    host = testinfra.get_host("opsrun-ssh://web1", ssh_config=str(config))
    try:
        ran = host.run("id -un")
        assert (ran.stdout, ran.stderr) == ("nobody\n", "")
    finally:
        host.backend.close()
    assert not mark.exists()
    assert f"touch {mark}" not in "".join(sshd.sent)  # and it never went on a command line


def test_a_file_written_under_sudo_holds_the_text_and_not_the_password(tmp_path: Path, sshd: Sshd, mark):
    data = host_data(tmp_path, sshd, [sshd], _sudo=True, _sudo_password=f"touch {mark}")
    target = tmp_path / "written.conf"
    Remote(inventory(**data), "web1").put(str(target), "line one\nline two\n")
    assert target.read_text() == "line one\nline two\n"
    assert not mark.exists()
