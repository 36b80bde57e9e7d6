"""The one small protocol every load balancer speaks, and the waits built on it.

    check(servers)       every host's server/target exists (before any host is touched)
    drain(server)        stop sending new requests to it; current ones finish
    enable(server)       send requests to it again
    state(server)        what the balancer says now: ServerState

`wait_drained` and `wait_healthy` poll `state` with a deadline; a balancer may override them (ELBv2 has
its own waiters).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

from opsrun.waiting import poll_until

Admin = Literal["ready", "drain", "maint"]


@dataclass(frozen=True)
class ServerState:
    server: str
    admin: Admin  # what we asked for: serving, draining, or out
    healthy: bool  # the balancer's own health check says it can serve
    sessions: int  # connections still open to it

    @property
    def drained(self) -> bool:
        return self.admin != "ready" and self.sessions == 0

    @property
    def in_service(self) -> bool:
        return self.admin == "ready" and self.healthy

    def __str__(self) -> str:
        health = "healthy" if self.healthy else "unhealthy"
        return f"{self.server}: {self.admin}, {health}, {self.sessions} sessions"


class Balancer(Protocol):
    name: str

    def check(self, servers: list[str]) -> None: ...
    def drain(self, server: str) -> None: ...
    def enable(self, server: str) -> None: ...
    def state(self, server: str) -> ServerState: ...


def wait_drained(balancer: Balancer, server: str, timeout: float, interval: float = 0.2) -> ServerState:
    def drained() -> ServerState | None:
        state = balancer.state(server)
        return state if state.drained else None

    return poll_until(
        drained,
        timeout=timeout,
        interval=interval,
        what=f"{balancer.name} to drain {server}",
        describe=lambda _v: balancer.state(server),
    )


def wait_healthy(balancer: Balancer, server: str, timeout: float, interval: float = 0.2) -> ServerState:
    def in_service() -> ServerState | None:
        state = balancer.state(server)
        return state if state.in_service else None

    return poll_until(
        in_service,
        timeout=timeout,
        interval=interval,
        what=f"{balancer.name} to report {server} healthy",
        describe=lambda _v: balancer.state(server),
    )
