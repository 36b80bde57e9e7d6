"""An in-memory balancer for rollout unit tests (never a feature's proof): scripted states, a call log, and
scripted statistics (`served`: a server's requests so far, asked at each read of a canary's window)."""

from __future__ import annotations

from collections.abc import Callable

from opsrun.balancers.base import ServerState
from opsrun.balancers.stats import Figures, combine
from opsrun.errors import BalancerError


class FakeBalancer:
    name = "fake balancer"

    def __init__(
        self,
        servers: list[str],
        *,
        never_drains: set[str] | None = None,
        served: Callable[[str], Figures] | None = None,
    ):
        self.admin = {s: "ready" for s in servers}
        self.healthy = {s: True for s in servers}
        self.never_drains = never_drains or set()
        self.served = served or (lambda _s: Figures(0, 0))
        self.calls: list[tuple[str, str]] = []

    def check(self, servers: list[str]) -> None:
        missing = [s for s in servers if s not in self.admin]
        if missing:
            raise BalancerError(f"{self.name} has no server {', '.join(missing)}")

    def drain(self, server: str) -> None:
        self.calls.append(("drain", server))
        self.admin[server] = "drain"

    def enable(self, server: str) -> None:
        self.calls.append(("enable", server))
        self.admin[server] = "ready"

    def state(self, server: str) -> ServerState:
        sessions = 1 if server in self.never_drains else 0
        return ServerState(server, self.admin[server], self.healthy[server], sessions)  # type: ignore[arg-type]

    def stats_window(self, canary: list[str], others: list[str]) -> FakeWindow:
        self.calls.append(("stats", ",".join(canary)))
        return FakeWindow(self, canary, others)


class FakeWindow:
    """Each read: the servers' `served` figures less those when it opened (response time: the latest)."""

    source = "fake statistics"

    def __init__(self, bal: FakeBalancer, canary: list[str], others: list[str]):
        self.bal, self.canary, self.others = bal, canary, others
        self.scope = ", ".join(canary)
        self.start = {s: bal.served(s) for s in [*canary, *others]}

    def _since(self, servers: list[str]) -> Figures:
        now = {s: self.bal.served(s) for s in servers}
        return combine(
            Figures(
                now[s].requests - self.start[s].requests, now[s].errors - self.start[s].errors, now[s].response_time
            )
            for s in servers
        )

    def read(self) -> tuple[Figures, Figures | None]:
        return self._since(self.canary), self._since(self.others) if self.others else None
