"""The one small protocol every load balancer speaks, and the waits built on it.

    check(servers)       every host's server/target exists (before any host is touched)
    drain(server)        stop sending new requests to it; current ones finish
    enable(server)       send requests to it again
    state(server)        what the balancer says now: ServerState
    states(servers)      (optional) the same for several servers in one read

`wait_all` polls the states of a batch's servers together with a deadline (waiting.poll_until), one read
per poll (`states` where the balancer has it, else `state` per server), every `poll_interval` seconds
(jittered; 0.2 s unless the balancer says otherwise); `wait_drained` and `wait_healthy` are its one-server
forms. For ELBv2 that is one describe_target_health per poll until `draining` has ended.
A balancer whose `check` reads a drain delay it cannot shorten exposes it as `deregistration_delay`
(seconds), and the rollout refuses to start when its drain timeout is shorter (Rollout.check).
"""

from __future__ import annotations

import logging
import random
import subprocess
from dataclasses import dataclass
from typing import Literal, Protocol

from opsrun.errors import BalancerError, Interrupted, Throttled, WaitTimeout
from opsrun.support.waiting import poll_until

log = logging.getLogger("opsrun.balancers")

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


class Pace:
    """The pauses of one wait: the balancer's `poll_interval` (0.2 s unless it says otherwise; ELBv2: seconds)
    with its `poll_jitter` (a fraction, so waits started together do not call together), doubled after each
    throttled answer up to MAX_BACKOFF and back to the interval after an answer."""

    MAX_BACKOFF = 60.0

    def __init__(self, balancer: Balancer, interval: float | None = None):
        self.interval = float(interval if interval is not None else getattr(balancer, "poll_interval", 0.2))
        self.jitter = float(getattr(balancer, "poll_jitter", 0.0))
        self.throttled = 0  # throttled answers in a row

    def base(self) -> float:
        return float(min(self.interval * 2**self.throttled, max(self.MAX_BACKOFF, self.interval)))

    def __call__(self) -> float:
        pause = self.base()
        return pause * random.uniform(1 - self.jitter, 1 + self.jitter) if self.jitter else pause  # noqa: S311 - spread


def read_states(balancer: Balancer, servers: list[str]) -> dict[str, ServerState | BaseException]:
    """What the balancer says of `servers` now: one read for all of them where it offers one (`states`:
    ELBv2's one DescribeTargetHealth per target group), else one `state` per server. A server the balancer
    could not answer for is its error (NOT_ANSWERING); a throttled API is raised for the whole read."""
    many = getattr(balancer, "states", None)
    if many is not None:
        return dict(many(servers))
    seen: dict[str, ServerState | BaseException] = {}
    for server in servers:
        try:
            seen[server] = balancer.state(server)
        except Throttled:
            raise
        except NOT_ANSWERING as exc:
            seen[server] = exc
    return seen


def wait_all(
    balancer: Balancer, servers: list[str], timeout: float, want: str, interval: float | None = None
) -> dict[str, ServerState | Exception]:
    """Poll the states of `servers` together until `want` (drained | in_service) holds for each, one read
    per poll for those still waiting; per server its state, or the WaitTimeout of a server it never held for.

    A throttled read is logged and asked again after a growing, jittered pause until the deadline: the
    servers then time out waiting, no server fails for being throttled before it. The operator's stop now
    ends the wait: each server still waited for is then its Interrupted."""
    pending, pace = list(dict.fromkeys(servers)), Pace(balancer, interval)
    ended: dict[str, ServerState | Exception] = {}
    last: dict[str, object] = {}

    def holds() -> bool:
        try:
            seen = read_states(balancer, pending)
        except Throttled as exc:
            pace.throttled += 1
            log.warning("%s: throttled (%s); asking again in about %.1fs", balancer.name, exc, pace.base())
            last.update(dict.fromkeys(pending, f"throttled: {exc}"))
            return False
        except NOT_ANSWERING as exc:  # not an answer about any server: ask again at the interval
            seen = dict.fromkeys(pending, exc)
        pace.throttled = 0
        for server in list(pending):
            state = seen.get(server)
            if isinstance(state, ServerState) and getattr(state, want):
                ended[server] = state
                pending.remove(server)
            elif state is not None:
                last[server] = state if isinstance(state, ServerState) else f"{type(state).__name__}: {state}"
        return not pending

    try:
        poll_until(holds, timeout=timeout, what=_what(balancer, ", ".join(pending), want), pause=pace)
    except WaitTimeout:
        for server in pending:
            ended[server] = WaitTimeout(_what(balancer, server, want), timeout, last.get(server))
    except Interrupted as exc:  # the operator's stop now: each server still waited for says so
        ended.update(dict.fromkeys(pending, exc))
    return ended


def _what(balancer: Balancer, server: str, want: str) -> str:
    return f"{balancer.name} to drain {server}" if want == "drained" else f"{balancer.name} to report {server} healthy"


def _one(balancer: Balancer, server: str, timeout: float, interval: float | None, want: str) -> ServerState:
    state = wait_all(balancer, [server], timeout, want, interval)[server]
    if isinstance(state, Exception):
        raise state
    return state


def wait_drained(balancer: Balancer, server: str, timeout: float, interval: float | None = None) -> ServerState:
    return _one(balancer, server, timeout, interval, "drained")


def wait_healthy(balancer: Balancer, server: str, timeout: float, interval: float | None = None) -> ServerState:
    return _one(balancer, server, timeout, interval, "in_service")
