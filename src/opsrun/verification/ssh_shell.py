"""A testinfra backend that runs each command in one remote shell per host, over one OpenSSH session.

testinfra's `ssh` backend starts, for every command a check runs, a local `/bin/sh -c "ssh ..."`, an ssh
client that joins the shared connection, and on the host a new session (sshd forks, sets it up and runs the
login shell). A nginx suite runs ~17 commands: at 100 hosts that is 3,400 processes here and 1,700 sessions
there, for commands that take a few milliseconds each. This backend starts one `ssh HOST /bin/sh` per host
and writes each command to that shell. The shell makes a private folder (mktemp -d, removed when it ends)
and runs each command in a subshell with stdin from /dev/null and its stdout and stderr in files of its own;
then it writes one header line (the command's number, exit status and the two files' sizes) and exactly
those bytes (_Frame). Nothing a command writes can end it or become another's: the exit status and sizes
are outside its output, and a background process it leaves writes into its files, which nobody reads again.

What stays as it was: the connection is OpenSSH's, made from the same ssh_config (key, known_hosts, strict
host key checking, connect timeout); a command runs under /bin/sh (`eval` of the text testinfra quoted, so a
command with a syntax error fails alone instead of breaking the shell); an exit status of 255 from ssh itself
raises RuntimeError, as testinfra's ssh backend does; a host's deadline kills the forked verification and its
ssh process with it (opsrun.verification.pytest_plugin).

Registered with testinfra as the `opsrun-ssh` connection: `--hosts=opsrun-ssh://web1 --ssh-config=FILE`.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import subprocess
from typing import Any

import testinfra.backend
from testinfra.backend import base
from testinfra.backend.ssh import SshBackend

from opsrun.hosts import sudo
from opsrun.verification.protocol import NAME, SUDO_ENV

# The session's first line: a private folder for the commands' output files, removed when the shell ends (EOF,
# or the signal of a connection lost); the shell ends at once if it cannot make one.
SESSION = (
    "opsrun_d=$(umask 077; mktemp -d) || exit 255; trap 'rm -rf \"$opsrun_d\"' EXIT; "
    "trap 'exit 129' HUP; trap 'exit 141' PIPE; trap 'exit 143' TERM\n"
)


class ShellSshBackend(SshBackend):  # type: ignore[misc]
    """testinfra's `ssh` backend with its commands sent to one remote shell instead of one ssh each."""

    NAME = NAME

    def __init__(self, hostspec: str, *args: Any, **kwargs: Any) -> None:
        super().__init__(hostspec, *args, **kwargs)
        self._shell: subprocess.Popen[bytes] | None = None
        self._owner = 0  # the pid that started the shell: a forked child starts its own
        self._count = 0  # commands sent to this shell

    def run(self, command: str, *args: str, **kwargs: Any) -> base.CommandResult:
        return self.run_ssh(self.get_command(command, *args))

    def run_ssh(self, command: str) -> base.CommandResult:
        shell = self._started()
        self._count += 1
        frame = _Frame(self._count)
        assert shell.stdin is not None
        try:
            shell.stdin.write(self.encode(frame.script(command)))
            shell.stdin.flush()
        except BrokenPipeError:
            pass  # the shell is gone: _read reports why
        rc, out, err = self._read(shell, frame)
        if self._shell is None and (refused := sudo.explain(self.host.name, err.decode(errors="replace"))):
            raise RuntimeError(refused)  # the shell never started: sudo's answer is the host's failure
        result = self.result(rc, self.encode(command), out, err)
        if rc == 255:  # ssh's own failure (or the command's 255): testinfra's ssh backend raises too
            raise RuntimeError(result)
        return result

    def close(self) -> None:
        """End the remote shell (EOF) and its ssh, or kill it if it does not end within 5 s."""
        shell, self._shell = self._shell, None
        if shell is None or self._owner != os.getpid():
            return
        _ended(shell, timeout=5)  # EOF: the shell ends, its EXIT trap removes its folder

    def _started(self) -> subprocess.Popen[bytes]:
        if self._shell is not None and self._owner == os.getpid():
            if self._shell.poll() is None:
                return self._shell
            _ended(self._shell, timeout=0)
        self._shell = subprocess.Popen(
            self._ssh_command(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self._owner = os.getpid()
        self._count = 0
        escalation = _sudo(self.host.name)
        start = SESSION if escalation is None or not escalation.password else f"{escalation.password}\n{SESSION}"
        assert self._shell.stdin is not None  # sudo -S reads the password line, the shell the rest
        with contextlib.suppress(BrokenPipeError):
            self._shell.stdin.write(self.encode(start))
        return self._shell

    def _ssh_command(self) -> list[str]:
        """One session, its own (no shared ControlMaster: nothing else uses the connection)."""
        cmd = ["ssh", "-T", "-o", "ControlMaster=no", "-o", "ControlPath=none"]
        if self.ssh_config:
            cmd += ["-F", self.ssh_config]
        if self.host.user:
            cmd += ["-o", f"User={self.host.user}"]
        if self.host.port:
            cmd += ["-o", f"Port={self.host.port}"]
        if self.ssh_identity_file:
            cmd += ["-i", self.ssh_identity_file]
        if not self.ssh_config:  # opsrun's ssh_config has the inventory's; ssh keeps the first value it is given
            cmd += ["-o", f"ConnectTimeout={self.timeout}"]
        escalation = _sudo(self.host.name)
        shell = "exec /bin/sh" if escalation is None else "exec " + escalation.command("exec /bin/sh")
        cmd += ["--", self.host.name, shell]
        return cmd

    def _read(self, shell: subprocess.Popen[bytes], frame: _Frame) -> tuple[int, bytes, bytes]:
        """The command's header line, then exactly the bytes it announces: exit status, stdout, stderr. If ssh
        ended instead (or the header is not the command's), ssh's exit status (255 if killed) and stderr."""
        assert shell.stdout is not None
        header = shell.stdout.readline()
        found = frame.sizes(header)
        if found is not None:
            rc, out_size, err_size = found
            out, err = shell.stdout.read(out_size), shell.stdout.read(err_size)
            if len(out) == out_size and len(err) == err_size:
                return rc, out, err
        self._shell = None
        rc, err = _ended(shell, timeout=5)
        if header and found is None:  # not a header: the session is out of step, nothing of it can be trusted
            err += b"opsrun-ssh: the remote shell answered %r instead of command %d's header\n" % (
                header[:200],
                frame.number,
            )
        return (rc if rc >= 0 else 255), b"", err


def _sudo(host: str) -> sudo.Sudo | None:
    """The host's escalation, as the controller passed it (SUDO_ENV: host -> {user, password}): the whole
    verification shell runs under sudo, as every operation of a deploy with `_sudo` does."""
    found = json.loads(os.environ.get(SUDO_ENV) or "{}").get(host)
    return None if found is None else sudo.Sudo(found.get("user"), found.get("password"))


class _Frame:
    """One command as the remote shell runs it: its stdout and stderr go to files of its own in the session's
    private folder ($opsrun_d: `N.o`, `N.e`, N the command's number); when it ends, the shell writes one header
    line `N STATUS OUTBYTES ERRBYTES` and then exactly those bytes of the two files, and empties them. The
    sizes are read once (`wc -c`) and exactly that many bytes are copied (`dd`, one read of a regular file),
    so what a background process of the command writes later stays in its files, out of the stream."""

    def __init__(self, number: int):
        self.number = number

    def script(self, command: str) -> str:
        n = self.number
        o, e = f'"$opsrun_d/{n}.o"', f'"$opsrun_d/{n}.e"'
        return (
            f"(exec </dev/null >{o} 2>{e}; eval {shlex.quote(command)}); opsrun_r=$?; set -- 0 x 0; "
            f'if [ -s {o} ] || [ -s {e} ]; then set -- $(cd "$opsrun_d" && exec wc -c {n}.o {n}.e); fi; '
            f"echo {n} $opsrun_r $1 $3; "
            f"[ $1 = 0 ] || dd if={o} bs=$1 count=1 2>/dev/null; [ $3 = 0 ] || dd if={e} bs=$3 count=1 2>/dev/null; "
            f": >{o}; : >{e}; set --\n"
        )

    def sizes(self, header: bytes) -> tuple[int, int, int] | None:
        """The status and the two sizes a header line gives, or None if it is not this command's header."""
        fields = header.split()
        if len(fields) != 4 or not all(f.isdigit() for f in fields) or int(fields[0]) != self.number:
            return None
        return int(fields[1]), int(fields[2]), int(fields[3])


def _ended(shell: subprocess.Popen[bytes], timeout: float) -> tuple[int, bytes]:
    """Wait for the ssh process (killed after `timeout` s), close its pipes: its exit status and what it (or
    the remote shell) wrote on stderr."""
    try:
        err = shell.communicate(timeout=timeout)[1]
    except subprocess.TimeoutExpired:
        shell.kill()
        try:
            err = shell.communicate(timeout=1)[1]
        except subprocess.TimeoutExpired:  # a process it started holds its pipes: let them be
            err = b""
            shell.wait()
    for stream in (shell.stdout, shell.stderr):
        if stream is not None:
            with contextlib.suppress(OSError):
                stream.close()
    return shell.returncode, err or b""


testinfra.backend.BACKENDS.setdefault(NAME, f"{__name__}.ShellSshBackend")
