"""What a balancer saw of the requests it passed over a window of time: the figures a canary is judged by
(opsrun.rollout.canary). A balancer that keeps such statistics offers

    stats_check(servers)            they can be read for these servers (before any host is touched;
                                    a ConfigError naming the setting and the fix)
    stats_window(canary, others)    a Window opened now: each read() gives the figures since then

HAProxy reads `show stat` (per server: 5xx, requests, response time); ELBv2 reads CloudWatch's target-group
metrics (per target group: an ALB publishes no figure per target). nginx keeps none (refused by the
rolling policy's check).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True)
class Figures:
    """Requests over a window: how many, how many failed (5xx, or a response that never came), and the mean
    response time in seconds (None: no response was timed)."""

    requests: int
    errors: int
    response_time: float | None = None

    @property
    def error_rate(self) -> float | None:
        """The failed share in percent; None without requests."""
        return 100.0 * self.errors / self.requests if self.requests else None

    def to_dict(self) -> dict[str, Any]:
        rate, rt = self.error_rate, self.response_time
        return {
            "requests": self.requests,
            "errors": self.errors,
            "error_rate": round(rate, 3) if rate is not None else None,
            "response_time": round(rt, 4) if rt is not None else None,
        }


def combine(figures: Iterable[Figures]) -> Figures:
    """Several servers' figures as one: counts summed, response times weighted by each one's requests."""
    parts = list(figures)
    timed = [f for f in parts if f.response_time is not None and f.requests]
    weight = sum(f.requests for f in timed)
    mean = sum(f.requests * (f.response_time or 0.0) for f in timed) / weight if weight else None
    return Figures(sum(f.requests for f in parts), sum(f.errors for f in parts), mean)


class Window(Protocol):
    """The statistics since a window opened: the canary's figures, and the unchanged hosts' (None: the
    balancer cannot tell them apart, or there are none)."""

    source: str  # where the figures come from, e.g. "haproxy show stat (backend web)"
    scope: str  # what the canary's figures cover, e.g. "servers web1" or "target group web (every target)"

    def read(self) -> tuple[Figures, Figures | None]: ...


class Source(Protocol):
    """A balancer that keeps statistics of its requests (HAProxy, ELBv2)."""

    name: str

    def stats_window(self, canary: list[str], others: list[str]) -> Window: ...
