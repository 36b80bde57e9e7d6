"""Each host's progress in the run in flight, told to one listener (the command line's display) as it happens.

The engine's worker writes a line per event to a file beside its result (`EVENTS`: connected, unreachable,
an operation started or failed); the verifier's pytest writes a line per test result. `following` reads
such a file while the child runs and hands each new line on; the engine and the verifier turn them into
`report(host, state, doing)`. A run starts with `begin(hosts)` and each host ends `done` or `failed`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Protocol

from opsrun.support import waiting

EVENTS = "events.tsv"  # in the worker's folder: HOST<TAB>STATE<TAB>WHAT, a line per event
DONE, FAILED, UNREACHABLE, WORKING = "done", "failed", "unreachable", "working"
POLL = 0.2  # seconds between two reads of a file followed


class Listener(Protocol):
    def begin(self, hosts: list[str]) -> None: ...

    def report(self, host: str, state: str, doing: str) -> None: ...


_listener: Listener | None = None


@contextlib.contextmanager
def listening(listener: Listener) -> Iterator[None]:
    """`listener` is told every host's progress while the block runs (one at a time: the command line's)."""
    global _listener
    _listener = listener
    try:
        yield
    finally:
        _listener = None


def begin(hosts: list[str]) -> None:
    if _listener is not None:
        _listener.begin(hosts)


def report(host: str, state: str, doing: str = "") -> None:
    if _listener is not None:
        _listener.report(host, state, doing)


def event_line(host: str, state: str, doing: str = "") -> str:
    """One event as a worker writes it (tabs and newlines in `doing` made spaces)."""
    return "\t".join((host, state, " ".join(doing.split()))) + "\n"


def report_line(line: str) -> None:
    """An event line read back, told to the listener."""
    host, _, rest = line.rstrip("\n").partition("\t")
    state, _, doing = rest.partition("\t")
    if host and state:
        report(host, state, doing)


@contextlib.contextmanager
def following(path: Path, handle: Callable[[str], None]) -> Iterator[None]:
    """While the block runs, each whole line appended to `path` (which may not exist yet) goes to `handle`,
    in a thread; the lines written by the time the block ends are all handed on before it returns."""
    if _listener is None:  # nobody to tell: read nothing
        yield
        return
    position = [0]

    def read() -> None:
        try:
            with path.open(encoding="utf-8", errors="replace") as f:
                f.seek(position[0])
                for line in iter(f.readline, ""):
                    if not line.endswith("\n"):
                        break  # half written: read again next time
                    position[0] = f.tell()
                    handle(line)
        except FileNotFoundError:
            pass

    try:
        with waiting.every(POLL, read, name="progress"):
            yield
    finally:
        read()
