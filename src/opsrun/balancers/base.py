"""The one small protocol every load balancer speaks, and the waits built on it.

    check(servers)       every host's server/target exists (before any host is touched)
    drain(server)        stop sending new requests to it; current ones finish
    enable(server)       send requests to it again
    state(server)        what the balancer says now: ServerState

`wait_drained` and `wait_healthy` poll `state` with a deadline (waiting.poll_until), for every balancer:
for ELBv2 that is describe_target_health until `draining` has ended. A balancer whose `check` reads a
drain delay it cannot shorten exposes it as `deregistration_delay` (seconds), and the rollout refuses to
start when its drain timeout is shorter (Rollout.check).
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from typing import Literal, Protocol

from opsrun.errors import BalancerError
from opsrun.waiting import poll_until

Admin = Literal["ready", "drain", "maint"]

# A balancer that could not answer this time (its socket, its API, the SSH to its host) has not said "no":
# the wait asks again, and the timeout reports the last of these.
NOT_ANSWERING: tuple[type[BaseException], ...] = (BalancerError, OSError, subprocess.TimeoutExpired)


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


def _wait(balancer: Balancer, server: str, timeout: float, interval: float, want: str) -> ServerState:
    """Poll the balancer's state of `server` until `want` (drained | in_service) holds; one call per poll."""
    last: list[ServerState] = []

    def holds() -> ServerState | None:
        state = balancer.state(server)
        last[:] = [state]
        return state if getattr(state, want) else None

    what = f"{balancer.name} to drain {server}" if want == "drained" else f"{balancer.name} to report {server} healthy"
    return poll_until(
        holds,
        timeout=timeout,
        interval=interval,
        what=what,
        describe=lambda _v: last[0] if last else None,
        retry_on=NOT_ANSWERING,
    )


def wait_drained(balancer: Balancer, server: str, timeout: float, interval: float = 0.2) -> ServerState:
    return _wait(balancer, server, timeout, interval, "drained")


def wait_healthy(balancer: Balancer, server: str, timeout: float, interval: float = 0.2) -> ServerState:
    return _wait(balancer, server, timeout, interval, "in_service")
