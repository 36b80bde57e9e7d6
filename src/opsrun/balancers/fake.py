"""An in-memory balancer for rollout unit tests (never a feature's proof): scripted states, a call log."""

from __future__ import annotations

from opsrun.balancers.base import ServerState
from opsrun.errors import BalancerError


class FakeBalancer:
    name = "fake balancer"

    def __init__(self, servers: list[str], *, never_drains: set[str] | None = None):
        self.admin = {s: "ready" for s in servers}
        self.healthy = {s: True for s in servers}
        self.never_drains = never_drains or set()
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
