"""The operator's stop on the command line: SIGINT and SIGTERM set a run's Stop, the first for a stop at the next
safe point, the second for a stop now (opsrun.support.waiting.Stop)."""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator

from opsrun.cli.output import echo
from opsrun.support.waiting import Stop


@contextlib.contextmanager
def stop_on_signals(stop: Stop) -> Iterator[None]:
    """SIGINT/SIGTERM ask the rollout to stop at its next safe point instead of killing it mid-batch; a second
    one (SIGINT or SIGTERM) to stop now: the commands running are ended, the hosts in flight put back or left
    out as what was done to them says."""

    def handler(signum: int, _frame: object) -> None:
        # The event is set before the notice is printed: an operator answering the notice at once sends the
        # second signal while this handler still prints, and its handler runs inside this one.
        name = signal.Signals(signum).name
        if not stop.is_set():
            stop.set()
            echo(
                f"\n{name}: stopping at the next safe point (an apply finishes its current operation or batch; "
                "a dry run or a check stops now). Press Ctrl-C again to stop now.",
                err=True,
            )
        elif not stop.now.is_set():
            stop.now.set()
            echo(
                f"\n{name} again: stopping now (the commands running are ended; hosts in flight are put back in "
                "the balancer when nothing was changed on them, else left out, and the summary says which)",
                err=True,
            )

    old = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, previous in old.items():
            signal.signal(sig, previous)
