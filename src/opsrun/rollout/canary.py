"""Canary analysis from what users see: once the canary batch is enabled and healthy, it serves for the bake
time while the balancer's own statistics of its requests (balancers.stats: HAProxy's `show stat`, an ALB's
CloudWatch metrics) are read every `interval` seconds, and judged against the thresholds of
`rolling.canary` (settings.rollout_models.CanaryPolicy):

    breach       the error rate (5xx) or the mean response time above its threshold, over at least
                 min_requests requests: the bake ends at once
    no verdict   fewer than min_requests requests when the bake ends (or statistics that could not be
                 read): never a pass
    pass         the bake ended with enough requests and every figure within its threshold
    interrupted  SIGINT/SIGTERM: the bake ends at once; the canary hosts stay in, as done

A breach or no verdict fails the canary hosts at stage "canary", out of the balancer as a failed health gate
leaves its host, and halts the rollout with the verdict's figures as the reason; `on_failure` decides what
follows. The unchanged hosts' figures (the plan's later batches; an ALB has none apart) are shown beside.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, cast

from opsrun.balancers.base import NOT_ANSWERING
from opsrun.balancers.stats import Figures, Source, Window
from opsrun.errors import ConfigError, WaitTimeout
from opsrun.settings.models import CanaryPolicy
from opsrun.support.waiting import poll_until

if TYPE_CHECKING:
    from opsrun.rollout.executor import Rollout

Outcome = Literal["pass", "breach", "no_verdict", "interrupted"]


@dataclass(frozen=True)
class Verdict:
    outcome: Outcome
    reason: str  # what the figures say, e.g. "error rate 20.0 % > 5 % over 143 requests in 30 s"
    canary: Figures | None  # None: the statistics could not be read
    others: Figures | None  # the unchanged hosts' (None: none, or the balancer cannot tell them apart)
    seconds: float  # how long the canary was baked

    @property
    def failed(self) -> bool:
        return self.outcome in ("breach", "no_verdict")

    def to_dict(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome,
            "reason": self.reason,
            "seconds": round(self.seconds, 1),
            "canary": self.canary.to_dict() if self.canary else None,
            "unchanged": self.others.to_dict() if self.others else None,
        }


def _time(seconds: float | None) -> str:
    return "unknown" if seconds is None else f"{seconds:.3f} s"


def _beside(others: Figures | None, limits: CanaryPolicy) -> str:
    """The unchanged hosts' figures, said beside the canary's (and whether they breach too)."""
    if others is None or not others.requests:
        return ""
    rate = others.error_rate or 0.0
    text = f"; unchanged hosts: error rate {rate:.1f} %, response time {_time(others.response_time)}"
    text += f" over {others.requests} requests"
    slow = others.response_time is not None and others.response_time > limits.response_time
    if others.requests >= limits.min_requests and (rate > limits.error_rate or slow):
        text += " (above the threshold too: the fault may not be the change)"
    return text


def judge(
    canary: Figures, others: Figures | None, limits: CanaryPolicy, seconds: float, *, final: bool
) -> Verdict | None:
    """The verdict on the figures read `seconds` into the bake (pure): a breach as soon as at least
    min_requests requests show one; at the end of the bake (`final`) a pass or no verdict; None while the
    bake goes on. Too few requests is never a pass."""
    over = f" over {canary.requests} requests in {seconds:.0f} s"
    if canary.requests < limits.min_requests:
        if not final:
            return None
        why = f"no verdict: {canary.requests} requests in {seconds:.0f} s, fewer than the {limits.min_requests} needed"
        return Verdict("no_verdict", why + _beside(others, limits), canary, others, seconds)
    rate, rt = canary.error_rate or 0.0, canary.response_time
    breaches = [f"error rate {rate:.1f} % > {limits.error_rate:g} %"] if rate > limits.error_rate else []
    if rt is not None and rt > limits.response_time:
        breaches.append(f"response time {rt:.3f} s > {limits.response_time:g} s")
    if breaches:
        return Verdict("breach", " and ".join(breaches) + over + _beside(others, limits), canary, others, seconds)
    if not final:
        return None
    within = f"error rate {rate:.1f} % (at most {limits.error_rate:g} %), response time {_time(rt)}"
    why = f"passed: {within} (at most {limits.response_time:g} s){over}"
    return Verdict("pass", why + _beside(others, limits), canary, others, seconds)


def bake(
    window: Window, limits: CanaryPolicy, stop: threading.Event, clock: Callable[[], float] = time.monotonic
) -> Verdict:
    """Read the window every `interval` seconds until a verdict, or the bake's end; a stop request ends it
    at once. A read the balancer could not answer is asked again at the next interval."""
    started = clock()
    last: list[tuple[Figures, Figures | None, float]] = []

    def decided() -> Verdict | None:
        if stop.is_set():
            seconds = clock() - started
            why = f"interrupted after {seconds:.0f} s of its {limits.bake:g} s bake (no verdict)"
            canary, others = (last[0][0], last[0][1]) if last else (None, None)
            return Verdict("interrupted", why, canary, others, seconds)
        canary, others = window.read()
        seconds = clock() - started
        last[:] = [(canary, others, seconds)]
        return judge(canary, others, limits, seconds, final=seconds >= limits.bake)

    try:
        return poll_until(
            decided,
            timeout=limits.bake,
            interval=limits.interval,
            what=f"the canary's verdict from {window.source}",
            retry_on=NOT_ANSWERING,
            stop=stop,
        )
    except WaitTimeout as exc:
        if not last:
            return Verdict(
                "no_verdict", f"no verdict: {window.source} could not be read ({exc.last})", None, None, limits.bake
            )
        canary, others, seconds = last[0]
        verdict = judge(canary, others, limits, seconds, final=True)
        assert verdict is not None  # final: always one
        return verdict


def check_source(ro: Rollout, hosts: list[str]) -> None:
    """Before any host is touched: the balancer keeps statistics a canary can be judged by, for these hosts."""
    bal = ro.balancer
    if getattr(bal, "stats_window", None) is None:
        raise ConfigError(
            ro.inv.where(hosts[0], ro.policy.key) if hosts else ro.inv.path,
            f"a canary is judged from the balancer's per-server statistics, and {getattr(bal, 'name', 'no balancer')} "
            "keeps none.",
            field=f"{ro.policy.key}.canary",
            fix="remove canary, or put the hosts behind a haproxy or elbv2 balancer",
        )
    check = getattr(bal, "stats_check", None)
    if check is not None:
        check([ro.server(h) for h in hosts])


def run(ro: Rollout, batch: int, hosts: list[str], later: list[str]) -> None:
    """Bake the canary batch's hosts that are done and judge them (the module's docstring); the verdict goes
    in the rollout's result."""
    limits, bal, out = ro.policy.canary, ro.balancer, ro.result.hosts
    done = [h for h in hosts if out[h].outcome == "done"]
    spent = sum(h.outcome == "failed" for h in out.values()) > ro.result.plan.get("max_fail", 0)
    if limits is None or bal is None or not done or ro.stop.is_set() or spent:
        return  # nothing to judge, or the rollout stops here anyway
    with ro._timed("canary", batch, done):
        try:
            source_of = cast(Source, bal)
            window = source_of.stats_window([ro.server(h) for h in done], [ro.server(h) for h in later])
        except NOT_ANSWERING as exc:
            verdict = Verdict("no_verdict", f"no verdict: the statistics could not be read ({exc})", None, None, 0.0)
            source, scope = bal.name, ", ".join(done)
        else:
            verdict, source, scope = bake(window, limits, ro.stop), window.source, window.scope
    ro.result.canary = {"hosts": done, "source": source, "scope": scope, **verdict.to_dict(),
                        "thresholds": limits.model_dump()}  # fmt: skip
    if not verdict.failed:
        for h in done:
            out[h].stage = None
            ro.record(out[h])
        return
    taken_out = ro._each(done, lambda h: bal.drain(ro.server(h)))
    for h in done:
        failed_too = f"; taking it out of {bal.name} failed: {taken_out[h]}" if taken_out[h] else ""
        out[h].fail("canary", f"{verdict.reason}{failed_too}", in_balancer=taken_out[h] is not None)
        ro.record(out[h])
    ro.result.halted = f"canary: {verdict.reason}"
