"""opsrun.verification.ssh_shell, testinfra's `opsrun-ssh` connection, against a real sshd on loopback through the
ssh_config opsrun writes (tests/ssh/conftest.py): what a check sees, what goes over the wire (the host's
sshd records each session's command line), the bastion, host keys, sudo."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import testinfra

from opsrun.verification import ssh_shell
from opsrun.verification.protocol import SUDO_ENV
from tests.ssh.conftest import Sshd, write_config


@pytest.fixture
def config(tmp_path: Path, sshd: Sshd) -> Path:
    return write_config(tmp_path, sshd, [sshd])


@pytest.fixture
def host(config: Path, monkeypatch):
    monkeypatch.delenv(SUDO_ENV, raising=False)
    found = testinfra.get_host("opsrun-ssh://web1", ssh_config=str(config))
    yield found
    found.backend.close()


def logins(server: Sshd) -> int:
    return len(re.findall("Accepted publickey for root", server.log))


def test_commands_of_a_host_go_to_one_shell_of_one_session(host, sshd: Sshd):
    before = logins(sshd)
    assert isinstance(host.backend, ssh_shell.ShellSshBackend)
    result = host.run("printf 'a\\nb'; echo oops >&2; exit 3")
    assert (result.rc, result.stdout, result.stderr) == (3, "a\nb", "oops\n")
    assert host.run("echo %s", "it's").stdout == "it's\n"  # arguments quoted by testinfra
    assert host.file("/etc/hostname").exists and host.check_output("echo ok") == "ok"
    assert sshd.sent[-1] == "exec /bin/sh" and logins(sshd) - before == 1


def test_output_is_the_bytes_written_whatever_they_look_like(host):
    assert host.run("printf '\\377\\000\\n\\n'").stdout_bytes == b"\xff\x00\n\n"
    forged = "9 0 3 0\nabc\n"  # a header of a command to come
    assert host.run("printf %s; exit 4", forged).stdout == forged
    result = host.run("head -c 3000000 /dev/zero | tr '\\0' x; head -c 3000000 /dev/zero | tr '\\0' y >&2")
    assert (result.stdout_bytes, result.stderr_bytes) == (b"x" * 3000000, b"y" * 3000000)


def test_a_background_writer_stays_in_its_command_and_state_does_not_carry(host):
    host.run("cd /tmp; X=1; (while :; do echo bg; echo bg >&2; done) & echo $! > /tmp/opsrun-test-writer")
    try:
        for i in range(20):
            assert (host.run(f"pwd; echo ${{X:-unset}} {i}").stdout, host.run("true").stderr) != ("/tmp\n1\n", "")
            result = host.run(f"echo ${{X:-unset}} {i}")
            assert (result.stdout, result.stderr) == (f"unset {i}\n", "")
    finally:
        host.run("kill $(cat /tmp/opsrun-test-writer); rm -f /tmp/opsrun-test-writer")


def test_exit_255_raises_as_testinfras_ssh_backend_does(host):
    with pytest.raises(RuntimeError) as raised:
        host.run("exit 255")
    assert raised.value.args[0].rc == 255


def test_an_unknown_host_key_is_refused(tmp_path: Path, sshd: Sshd):
    backend = ssh_shell.ShellSshBackend("web1", ssh_config=str(write_config(tmp_path, sshd, [])))
    with pytest.raises(RuntimeError) as raised:
        backend.run("true")
    result = raised.value.args[0]
    assert result.rc == 255 and "Host key verification failed" in result.stderr


def test_proxyjump_goes_through_the_bastion(tmp_path: Path, sshd: Sshd, bastion: Sshd):
    config = write_config(tmp_path, sshd, [sshd, bastion], ssh_jump=f"root@{bastion.address}:{bastion.port}")
    backend = ssh_shell.ShellSshBackend("web1", ssh_config=str(config))
    try:
        assert backend.run("echo through").stdout == "through\n"
    finally:
        backend.close()
    assert f"target {sshd.address} port {sshd.port}" in bastion.log  # sshd's words for the forward it made


def test_under_sudo_the_shell_runs_as_the_sudo_user(host, sshd: Sshd, monkeypatch):
    monkeypatch.setenv(SUDO_ENV, json.dumps({"web1": {"user": "nobody", "password": None}}))
    assert host.run("id -un").stdout == "nobody\n"
    assert sshd.sent[-1] == "exec sudo -H -n -u nobody -- /bin/sh -c 'exec /bin/sh'"
    assert host.run("cat; echo end").stdout == "end\n"


def test_the_remote_folder_goes_when_the_session_ends(host):
    folder = host.run("echo $opsrun_d").stdout.strip()
    assert host.run("test -d %s", folder).rc == 0
    host.backend.close()
    assert host.run("test -e %s", folder).rc == 1  # (a new session)
