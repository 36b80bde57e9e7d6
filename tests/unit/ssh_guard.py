"""The unit tests' guard against reaching a real host: every way opsrun reaches one is refused and counted.

opsrun reaches hosts by: the pyinfra worker (`python -m opsrun.engine`, which connects with paramiko), the
`ssh` binary (the verification's testinfra backend, opsrun.hosts.remote, reboot checks), pytest running a verify
suite with `--hosts=ssh://...`, sockets to port 22 or to the lab's bridge (10.231.7.0/24), and the lab HAProxy's admin
socket. Each attempt raises `HostReached` (loudly, even where a caller would turn an exception into a host
failure) and is counted in `attempts`, so a test can assert that a refused input reached nothing.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

LAB_NET = ipaddress.ip_network("10.231.7.0/24")
LAB_DIR = "/var/lib/opsrun/lab"
SSH_BINARIES = {"ssh", "scp", "sftp"}

attempts: list[str] = []


class HostReached(AssertionError):
    """A unit test tried to reach a real host."""


def _refuse(what: str) -> None:
    attempts.append(what)
    raise HostReached(f"a unit test tried to reach a host: {what}")


def _argv(args: Any) -> list[str]:
    if isinstance(args, str | bytes | os.PathLike):
        return [os.fsdecode(args)]
    return [os.fsdecode(a) if isinstance(a, str | bytes | os.PathLike) else str(a) for a in args]


def reaches_host(argv: Sequence[str]) -> str | None:
    """What in this command line would reach a host, or None."""
    if not argv:
        return None
    if os.path.basename(argv[0]) in SSH_BINARIES:
        return f"runs {argv[0]}"
    if "opsrun.engine" in argv:
        return "starts the pyinfra worker (python -m opsrun.engine)"
    if any(("://" in a and a.startswith("--hosts=")) or a.startswith("--ssh-config") for a in argv):
        return "runs a testinfra suite over SSH"
    return None


def _address_reaches_host(family: int, address: Any) -> str | None:
    if family == socket.AF_UNIX:
        path = os.fsdecode(address) if isinstance(address, str | bytes) else ""
        return f"connects to {path}" if path.startswith(LAB_DIR) else None
    if family in (socket.AF_INET, socket.AF_INET6) and isinstance(address, tuple):
        host, port = address[0], address[1]
        if port == 22:
            return f"connects to {host}:22"
        try:
            if ipaddress.ip_address(host) in LAB_NET:
                return f"connects to {host}:{port} (the lab)"
        except ValueError:
            return None
    return None


@contextmanager
def installed() -> Iterator[list[str]]:
    """Install the guard for the duration; yields the list of attempts (cleared first)."""
    attempts.clear()
    real_popen_init = subprocess.Popen.__init__
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex

    def popen_init(self: subprocess.Popen[Any], args: Any, *rest: Any, **kwargs: Any) -> None:
        what = reaches_host(_argv(args))
        if what:
            _refuse(what)
        real_popen_init(self, args, *rest, **kwargs)

    def connect(self: socket.socket, address: Any) -> None:
        what = _address_reaches_host(self.family, address)
        if what:
            self.close()  # create_connection leaves it open when the error is not an OSError
            _refuse(what)
        real_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> int:
        what = _address_reaches_host(self.family, address)
        if what:
            self.close()
            _refuse(what)
        return real_connect_ex(self, address)

    subprocess.Popen.__init__ = popen_init  # type: ignore[method-assign]
    socket.socket.connect = connect  # type: ignore[method-assign]
    socket.socket.connect_ex = connect_ex  # type: ignore[method-assign]
    try:
        yield attempts
    finally:
        subprocess.Popen.__init__ = real_popen_init  # type: ignore[method-assign]
        socket.socket.connect = real_connect  # type: ignore[method-assign]
        socket.socket.connect_ex = real_connect_ex  # type: ignore[method-assign]
