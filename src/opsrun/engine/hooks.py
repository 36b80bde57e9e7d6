"""The worker's hooks into pyinfra's internals: stop between operations when the controller asks (or now),
know which operations are idempotent (pyinfra 3.10 does not keep that where the results can see it), take a
connection that closed under a command as that host's failure, and tell the parent each host's progress."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

STOP_ASKED = threading.Event()  # set by SIGUSR1 from the controller (worker.main installs the handler)
STOP_NOW = threading.Event()  # set by SIGUSR2: the operator's second Ctrl-C (the clocks end running commands)


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
    """The state callback that writes each host's progress to `path` as it happens (opsrun.progress reads it
    in the parent): connected or unreachable, each operation as it starts on the host, one that failed."""
    from pyinfra.api.state import BaseStateCallback

    from opsrun import progress

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
