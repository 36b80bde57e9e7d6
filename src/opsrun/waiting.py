"""Waiting for a condition: `poll_until`, the polling loop with a deadline that every wait in opsrun uses.

A *wait* asks "does X hold yet?" again and again until it does or its deadline passes (a host back from its
reboot, a server drained, a gate passing, a replica that can read a marker). Those all go through
`poll_until`. Two loops elsewhere are not waits but *watchdogs*, and keep their own loops on purpose: they
watch work that runs elsewhere and stop it at its deadline (`engine.clocks.HostClocks.watch` and `engine`'s wait
on its pyinfra worker, `verify`'s wait on its pytest, `pytest_plugin`'s select loop over its children), or
they pace work rather than wait for a state (`lab.loadgen`). Nor is the pause between two attempts to deliver
a notification (`notify.delivery.backoff`): a bounded backoff, with no state to poll.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from opsrun.errors import WaitTimeout

T = TypeVar("T")


def poll_until(
    check: Callable[[], T | None],
    *,
    timeout: float,
    interval: float = 0.2,
    what: str,
    describe: Callable[[T | None], object] | None = None,
    retry_on: tuple[type[BaseException], ...] = (),
    pause: Callable[[], float] | None = None,
) -> T:
    """Call `check` until it returns something truthy and return that; raise WaitTimeout at the deadline.

    `retry_on` names the exceptions that mean "not yet" (a host still booting: `OSError`; a cluster node
    not answering: `redis.ConnectionError`); the last one is reported in the timeout so the operator sees
    why the condition never held. Any other exception is a fault, not a state, and is raised at once.
    `pause`, when given, says how long to wait before the next call instead of `interval` (a jittered
    interval, a backoff that grows while an API throttles); the deadline still caps it.
    """
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        try:
            value = check()
        except retry_on as exc:
            last = f"{type(exc).__name__}: {exc}"
        else:
            if value:
                return value
            last = describe(value) if describe else value
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise WaitTimeout(what, timeout, last)
        time.sleep(min(pause() if pause else interval, remaining))
