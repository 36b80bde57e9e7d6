"""Each host's own clock in the worker: time spent loading its deploy and running its operations, checked
against its deadline; a host past it is expired (its connection closed) while the others go on. The operator's
stop now expires, the same way, every host whose clock runs (it is in the middle of an operation)."""

from __future__ import annotations

import contextlib
import threading
import time
from typing import Any

from opsrun.settings.deadlines import stopped_now, timed_out


class HostClocks:
    """Each host's own time in the stage: while its deploy loads (facts) and while its operations run, not
    while it waits for slower hosts between operations (pyinfra runs an operation on every host, then the
    next). A host whose own time passes its deadline is expired; the others go on."""

    TICK = 0.25  # seconds between looks at the clocks

    def __init__(self, deadlines: dict[str, float]):
        self.deadlines = deadlines
        self.spent = dict.fromkeys(deadlines, 0.0)
        self.since: dict[str, float] = {}
        self.expired: dict[str, str] = {}  # host -> "timed out after N s in stage S"

    def start(self, host: str) -> None:
        self.since[host] = time.monotonic()

    def stop(self, host: str) -> None:
        started = self.since.pop(host, None)
        if started is not None:
            self.spent[host] += time.monotonic() - started

    def used(self, host: str) -> float:
        started = self.since.get(host)
        return self.spent[host] + (time.monotonic() - started if started is not None else 0.0)

    def callbacks(self) -> Any:  # pragma: no cover - worker side
        from pyinfra.api.state import BaseStateCallback

        clock = self

        class Clock(BaseStateCallback):
            @staticmethod
            def operation_host_start(state: Any, host: Any, op_hash: Any) -> None:
                clock.start(host.name)

            @staticmethod
            def operation_host_success(state: Any, host: Any, op_hash: Any, *args: Any) -> None:
                clock.stop(host.name)

            @staticmethod
            def operation_host_error(state: Any, host: Any, op_hash: Any, *args: Any) -> None:
                clock.stop(host.name)

        return Clock()

    def due(self, stage: str, now: threading.Event | None = None) -> dict[str, str]:
        """The hosts to expire now, and why: past their deadline, or at work when `now` (stop now) is set."""
        due = {}
        for name in self.deadlines:
            if name in self.expired:
                continue
            if self.used(name) > self.deadlines[name]:
                due[name] = timed_out(self.deadlines[name], stage)
            elif now is not None and now.is_set() and name in self.since:
                due[name] = stopped_now(stage)
        return due

    def watch(
        self, hosts: list[Any], stage: str, host_errors: dict[str, str], now: threading.Event | None = None
    ) -> None:  # pragma: no cover - worker side
        import gevent

        left = {h.name: h for h in hosts}
        while left:
            for name, why in self.due(stage, now).items():
                if name in left:
                    self.expired[name] = why
                    _expire(left.pop(name), why, host_errors)
            gevent.sleep(self.TICK)  # ok: a watchdog over clocks that only run while a host works; no event to wait on


def _expire(host: Any, message: str, host_errors: dict[str, str]) -> None:  # pragma: no cover - worker side
    """A host's deadline passed: record why and close its connection, so what it waits for fails at once."""
    host_errors[host.name] = message
    client = getattr(host.connector, "client", None)
    with contextlib.suppress(Exception):  # the transport, not the client: later commands fail as SSHException
        if client is not None and client.get_transport() is not None:
            client.get_transport().close()
