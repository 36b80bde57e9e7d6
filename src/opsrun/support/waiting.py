"""Waiting for a condition: `poll_until`, the polling loop with a deadline that every wait in opsrun uses.

A *wait* asks "does X hold yet?" again and again until it does or its deadline passes (a host back from its
reboot, a server drained, a gate passing, a replica that can read a marker). Those all go through
`poll_until`. Two loops elsewhere are not waits but *watchdogs*, and keep their own loops on purpose: they
watch work that runs elsewhere and stop it at its deadline (`engine.clocks.HostClocks.watch` and `engine`'s wait
on its pyinfra worker, `verification.verify`'s wait on its pytest, `verification.pytest_plugin`'s select loop
over its children), or they pace work rather than wait for a state (`lab.loadgen`, and `every`: work repeated
in a thread while a block runs, such as renewing leases or following a file). Nor is the pause between two
attempts to deliver a notification (`notify.delivery.backoff`): a bounded backoff, with no state to poll.

The operator's stop (`Stop`): the first SIGINT/SIGTERM asks for a stop at the next safe point, the second
(`Stop.now`) for a stop now. While `abandon_when(stop.now)` holds, every wait in this process (any thread)
raises `Interrupted` within one interval of the second signal, instead of running to its deadline.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from typing import TypeVar

from opsrun.errors import Interrupted, WaitTimeout

T = TypeVar("T")
_abandon: list[threading.Event] = []  # the events that end every wait (abandon_when)


class Stop(threading.Event):
    """The operator's stop request: set by the first SIGINT/SIGTERM (stop at the next safe point); `now` is
    set by the second (stop now: running commands are ended, waits abandoned)."""

    def __init__(self) -> None:
        super().__init__()
        self.now = threading.Event()


def now_of(stop: threading.Event | None) -> threading.Event | None:
    """The "stop now" half of an operator's stop (None for a plain event: it has no second step)."""
    return stop.now if isinstance(stop, Stop) else None


@contextlib.contextmanager
def abandon_when(event: threading.Event | None) -> Iterator[None]:
    """For the block: once `event` is set, every `poll_until` raises Interrupted at its next look."""
    if event is None:
        yield
        return
    _abandon.append(event)
    try:
        yield
    finally:
        _abandon.remove(event)


@contextlib.contextmanager
def every(seconds: float, work: Callable[[], None], *, name: str) -> Iterator[None]:
    """While the block runs, `work` called every `seconds` in a daemon thread called `name`; when the block
    ends, the thread is stopped and joined (a call under way finishes first)."""
    ended = threading.Event()

    def loop() -> None:
        while not ended.wait(seconds):
            work()

    thread = threading.Thread(target=loop, name=name, daemon=True)
    thread.start()
    try:
        yield
    finally:
        ended.set()
        thread.join()


def poll_until(
    check: Callable[[], T | None],
    *,
    timeout: float,
    interval: float = 0.2,
    what: str,
    describe: Callable[[T | None], object] | None = None,
    retry_on: tuple[type[BaseException], ...] = (),
    pause: Callable[[], float] | None = None,
    stop: threading.Event | None = None,
) -> T:
    """Call `check` until it returns something truthy and return that; raise WaitTimeout at the deadline.

    `retry_on` names the exceptions that mean "not yet" (a host still booting: `OSError`; a cluster node
    not answering: `redis.ConnectionError`); the last one is reported in the timeout so the operator sees
    why the condition never held. Any other exception is a fault, not a state, and is raised at once.
    `pause`, when given, says how long to wait before the next call instead of `interval` (a jittered
    interval, a backoff that grows while an API throttles); the deadline still caps it. `stop`, when given,
    ends a pause as soon as it is set (a stop request): `check` is called at once, and must then return.
    A wait abandoned by the operator's stop now (`abandon_when`) raises Interrupted.
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
        _pause(min(pause() if pause else interval, remaining), what, stop)


def _pause(seconds: float, what: str, stop: threading.Event | None = None) -> None:
    """Sleep between two looks. Ended at once by `stop` (the caller's next look follows); woken at once, and
    Interrupted, by the operator's stop now (`abandon_when`)."""
    abandon = list(_abandon)
    watched = abandon + ([stop] if stop is not None else [])
    end = time.monotonic() + seconds
    while True:
        if any(e.is_set() for e in abandon):
            raise Interrupted(f"interrupted: stopped now while waiting for {what}")
        left = end - time.monotonic()
        if (stop is not None and stop.is_set()) or left <= 0:
            return
        if not watched:
            time.sleep(left)  # ok: the pause between two looks of poll_until, with nothing to watch
        else:  # one event: wait on it; more: look at each in short slices (threading has no wait for any)
            watched[0].wait(left if len(watched) == 1 else min(left, 0.05))
