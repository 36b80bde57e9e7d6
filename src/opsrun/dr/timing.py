"""Timing in the DR test: seconds until a condition holds (a marker readable on a replica, a new primary
accepting writes), polled with a deadline, and the RPO probe's check built from them."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from opsrun.dr.model import FAIL, PASS, Check, DRRun
from opsrun.errors import WaitTimeout
from opsrun.support.waiting import poll_until

WAIT = 60.0  # seconds any one probe or drill step may take


class NeverArrives(Exception):
    """Raised by an RPO probe's `found` when the marker cannot arrive (the replica's replay is paused): the
    check fails at once, with the reason, not at the end of WAIT."""


def seconds_until(found: Callable[[], Any], start: float, what: str, timeout: float = WAIT) -> float:
    """Seconds from `start` until `found` holds; WaitTimeout once `timeout` has passed since `start`. An
    exception from `found` is not "not yet": it reaches the caller (the check's FAIL, or the drill's)."""
    poll_until(found, timeout=max(0.0, start + timeout - time.monotonic()), interval=0.01, what=what)
    return time.monotonic() - start


def rpo_check(system: str, where: str, found: Callable[[], Any], start: float, run: DRRun, source: str) -> Check:
    """The RPO probe's result: the time from the marker's write until `found` sees it on `where`."""
    try:
        seconds = seconds_until(found, start, f"the {system} marker on {where}")
    except WaitTimeout:
        return Check(system, "RPO probe", FAIL, [f"marker not readable on {where} after {WAIT:.0f} s"], source)
    except NeverArrives as why:
        return Check(system, "RPO probe", FAIL, [f"marker not readable on {where}: {why}"], source)
    run.step(f"{system}: marker readable on {where} after {seconds:.3f} s")
    evidence = [f"marker visible on {where} {seconds:.3f} s after the write"]
    return Check(system, "RPO probe", PASS, evidence, source, {"rpo_seconds": round(seconds, 3)})
