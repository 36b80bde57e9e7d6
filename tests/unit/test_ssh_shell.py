"""opsrun.verification.ssh_shell's framing: commands written to one shell, each answered by a header line (its
number, exit status and output sizes) and exactly those bytes of its own output files.

The shell here is a local /bin/sh standing in for `ssh HOST /bin/sh` (the ssh part is OpenSSH's and is
driven against the lab by tests/lab/test_verify*.py)."""

import os
import signal
import subprocess
import sys
import time

import pytest
import testinfra

from opsrun.verification import ssh_shell


class LocalShell(ssh_shell.ShellSshBackend):
    def _ssh_command(self):
        return ["/bin/sh", "-c", "exec /bin/sh"]


@pytest.fixture
def backend():
    b = LocalShell("web1")
    yield b
    b.close()


def test_is_registered_as_a_testinfra_connection():
    host = testinfra.get_host("opsrun-ssh://web1", ssh_config="/nonexistent")
    assert isinstance(host.backend, ssh_shell.ShellSshBackend)
    assert host.backend.get_pytest_id() == "opsrun-ssh://web1"


def test_output_exit_status_and_stderr_are_those_of_the_command(backend):
    result = backend.run("printf 'a\\nb'; echo oops >&2; exit 3")
    assert (result.rc, result.stdout, result.stderr) == (3, "a\nb", "oops\n")
    assert backend.run("echo %s", "it's").stdout == "it's\n"  # arguments quoted by testinfra


def test_commands_share_one_shell_but_not_its_state(backend):
    first = backend.run("cd /tmp; X=1; echo $$ $PPID")
    again = backend.run("pwd; echo ${X:-unset}")
    assert again.stdout.split() != ["/tmp", "1"]
    assert again.stdout.splitlines()[1] == "unset"
    assert backend._shell is not None
    assert str(backend._shell.pid) in first.stdout.split()  # the subshell's parent is the one shell


def test_a_command_with_a_syntax_error_fails_alone(backend):
    assert backend.run("echo 'unclosed").rc != 0
    assert backend.run("if then fi").rc != 0
    assert backend.run("echo fine").stdout == "fine\n"


def test_commands_read_nothing_from_the_shells_input(backend):
    result = backend.run("cat; echo read-nothing")
    assert result.stdout == "read-nothing\n"
    assert backend.run("echo next").stdout == "next\n"


def test_large_output_on_both_streams_does_not_block(backend):
    result = backend.run("head -c 3000000 /dev/zero | tr '\\0' x; head -c 3000000 /dev/zero | tr '\\0' y >&2")
    assert result.stdout == "x" * 3000000
    assert result.stderr == "y" * 3000000


def test_binary_output_comes_back_as_it_was(backend):
    result = backend.run("printf '\\377\\000\\n\\n'")
    assert result.stdout_bytes == b"\xff\x00\n\n"


def test_output_that_looks_like_a_header_is_output(backend):
    backend.run("true")
    forged = "3 0 4 0\nfake\n2 0 0 0\n"
    result = backend.run("printf %s; echo after", forged)
    assert result.stdout == forged + "after\n"
    assert backend.run("echo next").stdout == "next\n"


def _wait_gone(pid: int) -> None:
    """Wait for a local process to end (a zombie not yet reaped by its new parent counts as ended)."""
    deadline = time.monotonic() + 10
    while True:
        try:
            with open(f"/proc/{pid}/stat") as stat:
                if stat.read().rsplit(")", 1)[1].split()[0] == "Z":
                    return
        except FileNotFoundError:
            return
        assert time.monotonic() < deadline, f"background process {pid} still runs after 10 s"
        time.sleep(0.01)


def test_output_of_a_background_process_after_its_command_is_nobodys(backend):
    first = backend.run("(sleep 0.3; echo late; echo late-err >&2) & echo first $!")
    assert first.stdout.split()[0] == "first" and len(first.stdout.splitlines()) == 1
    _wait_gone(int(first.stdout.split()[1]))  # the background process wrote between the two commands
    second = backend.run("echo second")
    assert (second.stdout, second.stderr) == ("second\n", "")


def test_a_background_writer_never_writes_into_another_commands_output(backend):
    started = backend.run("(while :; do echo bg; echo bg >&2; done) & echo pid=$!").stdout.split()
    writer = int(next(word for word in started if word.startswith("pid="))[4:])  # among the writer's first lines
    try:
        for i in range(50):  # it writes all along: into its own command's (emptied) files, nowhere else
            result = backend.run(f"echo {i}")
            assert (result.rc, result.stdout, result.stderr) == (0, f"{i}\n", "")
    finally:
        os.kill(writer, signal.SIGKILL)


def test_a_background_process_holding_the_output_does_not_hold_the_command(backend):
    start = time.monotonic()
    result = backend.run("sleep 30 & echo started")
    assert result.stdout == "started\n" and time.monotonic() - start < 10


def test_each_commands_files_are_emptied_and_the_folder_goes_with_the_shell(backend):
    folder = backend.run("echo $opsrun_d").stdout.strip()
    backend.run("printf data; echo err >&2")
    backend.run("true")  # the shell empties a command's files after sending them: by the next one, surely
    assert sorted(os.listdir(folder)) == ["1.e", "1.o", "2.e", "2.o", "3.e", "3.o"]
    assert all(os.path.getsize(os.path.join(folder, f)) == 0 for f in os.listdir(folder))
    assert os.stat(folder).st_mode & 0o777 == 0o700
    backend.close()
    assert not os.path.exists(folder)


def test_a_header_that_is_not_the_commands_is_not_taken():
    frame = ssh_shell._Frame(7)
    assert frame.sizes(b"7 3 10 0\n") == (3, 10, 0)
    assert frame.sizes(b"6 3 10 0\n") is None
    assert frame.sizes(b"7 3 10\n") is None
    assert frame.sizes(b"garbage") is None


class ByteAtATime(ssh_shell.ShellSshBackend):
    """A transport that hands the remote shell's stdout over one byte per read, as ssh may at a packet's edge."""

    def _ssh_command(self):
        relay = (
            "import os, subprocess, time\n"
            "p = subprocess.Popen(['/bin/sh'], stdout=subprocess.PIPE)\n"
            "while (b := os.read(p.stdout.fileno(), 1)):\n"
            "    os.write(1, b)\n"
            "    time.sleep(0.002)\n"
        )
        return [sys.executable, "-c", relay]


def test_a_transport_that_splits_every_line_still_ends_each_command():
    def hung(_signum, _frame):
        raise TimeoutError("the command's end was not seen: run() still waits after 10 s")

    backend = ByteAtATime("web1")
    signal.signal(signal.SIGALRM, hung)
    signal.alarm(10)
    try:
        for status in (0, 3, 127):
            result = backend.run(f"echo hi; exit {status}")
            assert (result.rc, result.stdout) == (status, "hi\n")
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, signal.SIG_DFL)
        backend.close()


def test_a_shell_that_dies_is_an_ssh_failure_and_the_next_command_starts_a_new_one(backend):
    backend.run("true")
    pid = backend._shell.pid
    with pytest.raises(RuntimeError) as raised:  # as ssh exits 255 when the remote shell is killed
        backend.run("kill -9 $$")
    assert raised.value.args[0].rc == 255
    assert backend.run("echo again").stdout == "again\n"
    assert backend._shell.pid != pid


def test_exit_255_raises_as_testinfras_ssh_backend_does(backend):
    with pytest.raises(RuntimeError) as raised:
        backend.run("exit 255")
    assert raised.value.args[0].rc == 255


def test_close_ends_the_shell(backend):
    backend.run("true")
    shell = backend._shell
    backend.close()
    assert shell.returncode == 0
    assert backend._shell is None


def test_a_forked_child_starts_its_own_shell(backend):
    backend.run("true")
    parent_shell = backend._shell.pid
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            out = backend.run("echo $$").stdout.strip()
            backend.close()
            os.write(write, out.encode())
        finally:
            os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    child_shell = os.read(read, 100).decode()
    os.close(read)
    assert child_shell and child_shell != str(parent_shell)
    assert backend.run("echo $$").stdout.strip() == str(parent_shell)  # the parent's is untouched


def test_the_ssh_command_takes_the_run_config_and_no_shared_master():
    cmd = ssh_shell.ShellSshBackend("web1", ssh_config="/tmp/x/ssh_config", timeout=7)._ssh_command()
    assert cmd[:2] == ["ssh", "-T"]
    assert ["-F", "/tmp/x/ssh_config"] == cmd[cmd.index("-F") : cmd.index("-F") + 2]
    assert "ControlPath=none" in cmd
    assert not any("ConnectTimeout" in arg for arg in cmd)  # the ssh_config's (the inventory's deadline) applies
    assert "ConnectTimeout=7" in ssh_shell.ShellSshBackend("web1", timeout=7)._ssh_command()
    assert cmd[-3:] == ["--", "web1", "exec /bin/sh"]
    assert subprocess.list2cmdline(cmd)  # plain argv: no local shell in between
