"""The one polling loop: wait until a condition holds, with a deadline. No fixed sleeps elsewhere."""

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
) -> T:
    """Call `check` until it returns something truthy and return that; raise WaitTimeout at the deadline.

    An exception from `check` counts as "not yet" (the host may still be booting); the last one is
    reported in the timeout so the operator sees why it never held.
    """
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        try:
            value = check()
        except Exception as exc:  # noqa: BLE001 - any failure of the probe means "not yet"
            last = f"{type(exc).__name__}: {exc}"
        else:
            if value:
                return value
            last = describe(value) if describe else value
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise WaitTimeout(what, timeout, last)
        time.sleep(min(interval, remaining))
