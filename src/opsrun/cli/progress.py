"""The live per-host display of a run on hosts (apply, a dry run, verify, drift) on stderr: on a terminal a
table that redraws (hosts done of N, failed, what each host in flight is doing), otherwise one plain line per
host and step, for logs and CI. A rollout has its own (reports.as_text.RolloutProgress)."""

from __future__ import annotations

import threading
import time
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.table import Table

from opsrun.support import progress

IN_FLIGHT_SHOWN = 20  # rows of hosts still working on the terminal table
ENDED = (progress.DONE, progress.FAILED, progress.UNREACHABLE)


class HostsDisplay:
    """An opsrun.support.progress listener. Dormant until a run begins (a rollout never does: its own display runs)."""

    def __init__(self, console: Console, *, quiet: bool = False):
        self.console, self.quiet = console, quiet
        self.hosts: dict[str, tuple[str, str, float]] = {}  # host -> (state, doing, since)
        self.started = time.monotonic()
        self.live: Live | None = None
        self.lock = threading.Lock()  # reports come from the threads that follow the workers' files

    def __enter__(self) -> HostsDisplay:
        self._listening = progress.listening(self)
        self._listening.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._listening.__exit__(*exc)
        with self.lock:
            if self.live is not None:
                self.live.stop()
                self.live = None

    def begin(self, hosts: list[str]) -> None:
        with self.lock:
            now = time.monotonic()
            self.hosts.update({h: ("waiting", "", now) for h in hosts})
            if self.live is None and self.console.is_terminal and not self.quiet:
                self.live = Live(self._table(), console=self.console, refresh_per_second=4, transient=True)
                self.live.start()

    def report(self, host: str, state: str, doing: str) -> None:
        with self.lock:
            if host not in self.hosts or self.quiet:
                return  # a host of no run begun here (a rollout's stages)
            before = self.hosts[host]
            now = time.monotonic()
            self.hosts[host] = (state, doing, before[2] if (state, doing) == before[:2] else now)
            if self.live is not None:
                self.live.update(self._table())
            elif (state, doing) != before[:2]:
                what = f"{state}: {doing}" if state in ENDED and doing else state if state in ENDED else doing
                self.console.print(f"[{now - self.started:7.1f}s] {host}: {what}", markup=False, highlight=False)

    def _table(self) -> Table:
        states = [s for s, _d, _t in self.hosts.values()]
        done = states.count(progress.DONE)
        failed = sum(s in (progress.FAILED, progress.UNREACHABLE) for s in states)
        title = f"{done} of {len(states)} hosts done, {failed} failed ({time.monotonic() - self.started:.0f}s)"
        table = Table(title=title, title_justify="left", min_width=len(title) + 2)
        for col in ("host", "doing", "for"):
            table.add_column(col)
        now = time.monotonic()
        flying = [(h, d, t) for h, (s, d, t) in self.hosts.items() if s not in ENDED]
        for host, doing, since in flying[:IN_FLIGHT_SHOWN]:
            table.add_row(host, doing or "waiting", f"{now - since:.0f}s")
        if len(flying) > IN_FLIGHT_SHOWN:
            table.add_row(f"... {len(flying) - IN_FLIGHT_SHOWN} more", "", "")
        return table
