"""A testinfra backend that runs each command in one remote shell per host, over one OpenSSH session.

testinfra's `ssh` backend starts, for every command a check runs, a local `/bin/sh -c "ssh ..."`, an ssh
client that joins the shared connection, and on the host a new session (sshd forks, sets it up and runs the
login shell). A nginx suite runs ~17 commands: at 100 hosts that is 3,400 processes here and 1,700 sessions
there, for commands that take a few milliseconds each. This backend starts one `ssh HOST /bin/sh` per host
and writes each command to that shell; the shell runs it in a subshell with stdin from /dev/null, between
marker lines on stdout and stderr (a start line before it, an end line after it; stdout's carries the exit
status), so a command's output is what lies between its own markers.

What stays as it was: the connection is OpenSSH's, made from the same ssh_config (key, known_hosts, strict
host key checking, connect timeout); a command runs under /bin/sh (`eval` of the text testinfra quoted, so a
command with a syntax error fails alone instead of breaking the shell); an exit status of 255 from ssh itself
raises RuntimeError, as testinfra's ssh backend does; a host's deadline kills the forked verification and its
ssh process with it (opsrun.pytest_plugin).

Registered with testinfra as the `opsrun-ssh` connection: `--hosts=opsrun-ssh://web1 --ssh-config=FILE`.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import selectors
import shlex
import subprocess
from typing import Any

import testinfra.backend
from testinfra.backend import base
from testinfra.backend.ssh import SshBackend

from opsrun import sudo
from opsrun.transport import NAME, SUDO_ENV


class ShellSshBackend(SshBackend):  # type: ignore[misc]
    """testinfra's `ssh` backend with its commands sent to one remote shell instead of one ssh each."""

    NAME = NAME

    def __init__(self, hostspec: str, *args: Any, **kwargs: Any) -> None:
        super().__init__(hostspec, *args, **kwargs)
        self._shell: subprocess.Popen[bytes] | None = None
        self._owner = 0  # the pid that started the shell: a forked child starts its own
        self._marker = b""
        self._count = 0

    def run(self, command: str, *args: str, **kwargs: Any) -> base.CommandResult:
        return self.run_ssh(self.get_command(command, *args))

    def run_ssh(self, command: str) -> base.CommandResult:
        shell = self._started()
        self._count += 1
        frame = _Frame(b"%s-%d" % (self._marker, self._count))
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
        with contextlib.suppress(OSError):
            assert shell.stdin is not None
            shell.stdin.close()
        _ended(shell, timeout=5)

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
        self._marker = b"opsrun-end-" + secrets.token_hex(8).encode()
        escalation = _sudo(self.host.name)
        if escalation is not None and escalation.password:  # sudo -S reads this one line, the shell the rest
            assert self._shell.stdin is not None
            with contextlib.suppress(BrokenPipeError):
                self._shell.stdin.write(self.encode(escalation.password + "\n"))
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
        """Read stdout and stderr together until both end markers came (or ssh ended): exit status, output."""
        assert shell.stdout is not None and shell.stderr is not None
        streams = {shell.stdout.fileno(): frame.out, shell.stderr.fileno(): frame.err}
        with selectors.DefaultSelector() as sel:
            for fd in streams:
                sel.register(fd, selectors.EVENT_READ)
            while sel.get_map():
                for key, _ in sel.select():
                    chunk = os.read(key.fd, 65536)
                    if not chunk or streams[key.fd].feed(chunk):  # ssh ended, or this stream's end marker
                        sel.unregister(key.fd)
        if frame.status is None or not frame.err.ended:  # ssh ended: its status (255 if killed)
            self._shell = None
            rc = _ended(shell, timeout=5)
            return (rc if rc >= 0 else 255), frame.out.text(), frame.err.text()
        return frame.status, frame.out.text(), frame.err.text()


def _sudo(host: str) -> sudo.Sudo | None:
    """The host's escalation, as the controller passed it (SUDO_ENV: host -> {user, password}): the whole
    verification shell runs under sudo, as every operation of a deploy with `_sudo` does."""
    found = json.loads(os.environ.get(SUDO_ENV) or "{}").get(host)
    return None if found is None else sudo.Sudo(found.get("user"), found.get("password"))


class _Stream:
    """One stream of one command: what comes between its start marker line and its end marker. Output of
    an earlier command's background process (before the start marker) or after the end marker is not
    this command's and is dropped."""

    def __init__(self, start: bytes, end: bytes):
        self.start, self.end = start, end
        self.data = bytearray()
        self.begin: int | None = None  # where the command's output begins in `data`
        self.stop: int | None = None  # where it ends (the end marker)
        self.tail = b""  # what follows the end marker on its line (the exit status, on stdout)
        self._line_end: int | None = None  # that line's newline

    def feed(self, chunk: bytes) -> bool:
        """Take a chunk; whether the end marker and the rest of its line have come (each may come in pieces,
        split anywhere between reads)."""
        seen = len(self.data)
        self.data += chunk
        if self.begin is None:
            at = self.data.find(self.start, max(0, seen - len(self.start)))
            if at < 0:
                return False
            self.begin = seen = at + len(self.start)
        if self.stop is None:
            at = self.data.find(self.end, max(self.begin, seen - len(self.end)))
            if at < 0:
                return False
            self.stop = seen = at
        if self._line_end is None:
            line_end = self.data.find(b"\n", max(self.stop + len(self.end), seen))
            if line_end < 0:
                return False
            self._line_end, self.tail = line_end, bytes(self.data[self.stop + len(self.end) : line_end])
        return True

    @property
    def ended(self) -> bool:
        return self._line_end is not None

    def text(self) -> bytes:
        return bytes(self.data[self.begin or 0 : self.stop])


class _Frame:
    """The markers around one command: a line "MARK<" before it on stdout and on stderr, "MARK> STATUS" and
    "MARK>" lines after it, each after a newline of its own (MARK: a random token per shell, the command's
    number)."""

    def __init__(self, mark: bytes):
        self.mark = mark.decode()
        self.out = _Stream(mark + b"<\n", b"\n" + mark + b"> ")
        self.err = _Stream(mark + b"<\n", b"\n" + mark + b">")

    def script(self, command: str) -> str:
        m = self.mark
        return (
            f"printf '%s<\\n' {m}; printf '%s<\\n' {m} >&2; "
            f"(eval {shlex.quote(command)}) </dev/null; "
            f"printf '\\n%s> %s\\n' {m} $?; printf '\\n%s>\\n' {m} >&2\n"
        )

    @property
    def status(self) -> int | None:
        """The command's exit status, once its end marker came on stdout."""
        tail = self.out.tail
        return int(tail) if self.out.ended and tail.isdigit() else None


def _ended(shell: subprocess.Popen[bytes], timeout: float) -> int:
    """Wait for the ssh process (killed after `timeout` s), close its pipes: its exit status."""
    try:
        shell.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        shell.kill()
        shell.wait()
    for stream in (shell.stdin, shell.stdout, shell.stderr):
        if stream is not None:
            with contextlib.suppress(OSError):
                stream.close()
    return shell.returncode


testinfra.backend.BACKENDS.setdefault(NAME, f"{__name__}.ShellSshBackend")
