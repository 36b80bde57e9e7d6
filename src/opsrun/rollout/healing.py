"""Healing what a dead run left: its hosts still drained go back through the health gate into the balancer,
before the new run touches anything. A host that fails its gate, or does not serve, is taken out again and
stays out, saying why."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

from opsrun.balancers.base import wait_healthy
from opsrun.rollout.stages import parallel
from opsrun.support import waiting

if TYPE_CHECKING:
    from opsrun.rollout.executor import Rollout


def heal(ro: Rollout, hosts: list[str]) -> dict[str, str]:
    """Hosts a dead run left drained: back through the health gate into the balancer, before anything
    else. Per host what happened (a host that fails the gate stays out, and says why)."""
    if ro.balancer is None or not hosts:
        return {}
    bal, gate = ro.balancer, ro.policy.health

    def back(h: str) -> None:
        if gate is not None:
            gate.wait(h, ro.address(h))
        bal.enable(ro.server(h))
        wait_healthy(bal, ro.server(h), ro.policy.healthy_timeout)

    outcome = {}
    with waiting.abandon_when(ro.now):
        ended = parallel(hosts, back)
    for h, exc in ended.items():
        if exc is None:
            outcome[h] = "back in the balancer: it passed its health gate"
        else:
            with contextlib.suppress(Exception):
                bal.drain(ro.server(h))
            outcome[h] = f"still out of the balancer: {exc}"
    return outcome
