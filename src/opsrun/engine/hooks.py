"""The worker's hooks into pyinfra's internals: stop between operations when the controller asks (or now),
know which operations are idempotent (pyinfra 3.10 does not keep that where the results can see it), take a
connection that closed under a command as that host's failure, tell the parent each host's progress, and keep
the host's own words for a command or an upload that failed without output."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

STOP_ASKED = threading.Event()  # set by SIGUSR1 from the controller (worker.main installs the handler)
STOP_NOW = threading.Event()  # set by SIGUSR2: the operator's second Ctrl-C (the clocks end running commands)
SUDO_ARGUMENTS = ("_sudo", "_sudo_user", "_doas", "_doas_user", "_dzdo", "_dzdo_user", "_su_user")
GENERIC = {"", "Failure", "failure"}  # what SFTP says for any error it has no code for (ENOSPC, EIO, EROFS ...)
# paramiko's words when the host kept fewer bytes than were sent: pyinfra's retry of an upload that failed for
# space gets these (the first try's "Failure" left an empty file), so the host is asked why, as for Failure
SHORT_WRITE = "size mismatch in put"


def stop_now(*_args: object) -> None:
    """The SIGUSR2 handler: no further operation, and every command running now is ended (clocks.watch)."""
    STOP_ASKED.set()
    STOP_NOW.set()


def stop_between_operations() -> list[str]:  # pragma: no cover - worker side
    """SIGUSR1 from the controller (its operator pressed Ctrl-C): finish the operation running on every host,
    run no further one. Returns the list that collects the skipped operations' hashes."""
    import importlib

    ops_module: Any = importlib.import_module("pyinfra.api.operations")
    skipped: list[str] = []
    run_single = ops_module._run_single_op

    def guarded(state: Any, op_hash: str) -> None:
        if STOP_ASKED.is_set():
            skipped.append(op_hash)
            return
        run_single(state, op_hash)

    ops_module._run_single_op = guarded
    return skipped


def record_idempotency() -> dict[str, bool]:  # pragma: no cover - worker side
    """Map op hash -> the operation's `is_idempotent` (server.shell, apt.update, ... are not).

    pyinfra (3.10) does not keep the op function in state.op_meta, so the worker wraps the two
    internals that see it during one operation call: `generate_operation_name` (gets the function) and
    `ensure_shared_op_meta` (gets the hash). Nothing yields between them within one call. pyinfra is pinned to 3.10.
    """
    import importlib

    op_module: Any = importlib.import_module("pyinfra.api.operation")  # the module, not the decorator of that name
    seen: dict[str, bool] = {}
    current: list[bool] = [True]
    generate, ensure = op_module.generate_operation_name, op_module.ensure_shared_op_meta

    def generate_operation_name(func: Any, *args: Any, **kwargs: Any) -> Any:
        current[0] = bool(getattr(func, "is_idempotent", True))
        return generate(func, *args, **kwargs)

    def ensure_shared_op_meta(state: Any, op_hash: str, *args: Any, **kwargs: Any) -> Any:
        seen[op_hash] = current[0]
        return ensure(state, op_hash, *args, **kwargs)

    op_module.generate_operation_name = generate_operation_name
    op_module.ensure_shared_op_meta = ensure_shared_op_meta
    return seen


def connection_loss_fails_the_host() -> None:
    """A host's connection that closes while a command opens its channel or its SFTP session (its deadline's
    watchdog closed it, its network went away) makes paramiko raise the transport's EOFError. pyinfra 3.10 takes
    only TimeoutError, OSError and SSHException from a command as that host's failure: the EOFError would end
    the worker and every host's result with it. It becomes an SSHException, so only that host fails."""
    import functools

    from paramiko import SSHException
    from pyinfra.api.host import Host

    def as_ssh_error(method: Any) -> Any:
        @functools.wraps(method)
        def call(self: Any, *args: Any, **kwargs: Any) -> Any:
            try:
                return method(self, *args, **kwargs)
            except EOFError as exc:
                raise SSHException(f"the connection to the host closed ({type(exc).__name__})") from exc

        call.opsrun_wrapped = True  # type: ignore[attr-defined]
        return call

    for name in ("run_shell_command", "put_file", "get_file"):
        method = getattr(Host, name)
        if not getattr(method, "opsrun_wrapped", False):
            setattr(Host, name, as_ssh_error(method))


def progress_events(path: Path) -> Any:  # pragma: no cover - worker side
    """The state callback that writes each host's progress to `path` as it happens (opsrun.support.progress reads it
    in the parent): connected or unreachable, each operation as it starts on the host, one that failed."""
    from pyinfra.api.state import BaseStateCallback

    from opsrun.support import progress

    out = path.open("a", encoding="utf-8", buffering=1)  # closed with the worker process

    def names(state: Any, op_hash: str) -> str:
        return ", ".join(sorted(state.get_op_meta(op_hash).names)) or op_hash

    class Events(BaseStateCallback):
        @staticmethod
        def host_connect(state: Any, host: Any) -> None:
            out.write(progress.event_line(host.name, progress.WORKING, "connected"))

        @staticmethod
        def host_connect_error(state: Any, host: Any, error: Any) -> None:
            out.write(progress.event_line(host.name, progress.UNREACHABLE))  # its result says why

        @staticmethod
        def operation_host_start(state: Any, host: Any, op_hash: str) -> None:
            out.write(progress.event_line(host.name, progress.WORKING, names(state, op_hash)))

        @staticmethod
        def operation_host_error(state: Any, host: Any, op_hash: str, *_args: Any, **_kw: Any) -> None:
            out.write(progress.event_line(host.name, progress.FAILED, names(state, op_hash)))

    return Events()


def sudo_never_prompts() -> None:
    """pyinfra asks on the terminal (getpass) when sudo wants a password that was not given, and waits. A
    worker has nobody to answer: the command fails instead, in sudo's own words, and only its host with it."""
    from pyinfra.connectors import util

    def refuse(prompt: str = "", stream: Any = None) -> str:
        raise OSError("sudo: a password is required (and opsrun never prompts for one)")

    util.getpass = refuse  # type: ignore[attr-defined]


Words = dict[tuple[str, str | None], str]  # (host, operation hash) -> why its command or upload failed
_WORDS: Words = {}  # the one such record of this worker (its wrappers are put on pyinfra's Host once)


def keep_failure_words() -> Words:  # pragma: no cover - worker side (the wrapper is tested in the unit tests)
    """Wrap pyinfra's Host.put_file, get_file and run_shell_command: a call that raises (an SFTP error, a
    socket error) or an upload that fails keeps, per host and operation, the host's own words for it. pyinfra
    3.10 only logs them, and the operation's result said "command failed with no output"."""
    from pyinfra.api.host import Host

    _WORDS.clear()
    for name in ("run_shell_command", "put_file", "get_file"):
        method = getattr(Host, name)
        if not getattr(method, "opsrun_words", False):
            setattr(Host, name, wrap_for_words(method, name, _WORDS))
    return _WORDS


def wrap_for_words(method: Any, name: str, words: Words) -> Any:
    """`method` of pyinfra's Host, keeping in `words` why it failed (see keep_failure_words)."""
    import functools

    @functools.wraps(method)
    def call(self: Any, *args: Any, **kwargs: Any) -> Any:
        key = (self.name, getattr(self, "executing_op_hash", None))
        try:
            done = method(self, *args, **kwargs)
        except Exception as exc:
            text = getattr(exc, "strerror", None) or str(exc).strip() or type(exc).__name__
            if name == "put_file" and (text in GENERIC or text.startswith(SHORT_WRITE)):
                text = _probe(self, _sftp_target(self, args, kwargs), _size(args[0]), _no_sudo(kwargs)) or text
            words[key] = f"upload to {args[1]} failed: {text}" if name == "put_file" else text
            raise
        if name == "put_file" and done is False:  # the copy into place (with sudo) failed
            found = _probe(self, args[1], _size(args[0]), kwargs)
            words[key] = f"upload to {args[1]} failed" + (f": {found}" if found else "")
        return done

    call.opsrun_words = True  # type: ignore[attr-defined]
    return call


def _probe(host: Any, path: str, size: int, arguments: dict[str, Any]) -> str | None:
    """The host's own words for writing `size` bytes beside `path` (SFTP says only "Failure" for a full
    disk): a shell writes that many zero bytes there and removes them. Its error's last part, or None."""
    from pyinfra.api.command import QuoteString, StringCommand

    script = 'head -c "$1" /dev/zero > "$2"; rc=$?; rm -f "$2"; exit $rc'
    command = StringCommand("sh", "-c", QuoteString(script), "probe", str(size), QuoteString(f"{path}.opsrun-probe"))
    passed = {k: v for k, v in arguments.items() if k not in ("print_output", "print_input", "remote_temp_filename")}
    try:
        ok, output = host.run_shell_command(command, print_output=False, print_input=False, **passed)
    except Exception:  # noqa: BLE001 - no better words than those of the upload itself
        return None
    lines = [line for line in output.stderr_lines if line.strip()]
    return None if ok or not lines else lines[-1].rsplit(": ", 1)[-1].strip()


def _sftp_target(host: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
    """Where pyinfra's SFTP wrote: the destination, or with sudo its temporary file (it copies it into place)."""
    if any(kwargs.get(k) for k in SUDO_ARGUMENTS):
        return str(kwargs.get("remote_temp_filename") or host.get_temp_filename(args[1]))
    return str(args[1])


def _no_sudo(kwargs: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in kwargs.items() if k not in SUDO_ARGUMENTS}


def _size(src: Any) -> int:
    """The bytes of an upload's source (a path or a file object); 1 when that cannot be told."""
    if isinstance(src, str | os.PathLike) and os.path.isfile(src):
        return max(1, os.path.getsize(src))
    if hasattr(src, "getbuffer"):
        return max(1, int(src.getbuffer().nbytes))
    return 1
