import itertools
import threading
from collections.abc import Callable

import pytest

from opsrun.errors import Interrupted, WaitTimeout
from opsrun.support.waiting import Stop, abandon_when, every, now_of, poll_until


def test_returns_the_first_truthy_value():
    values = iter([None, 0, "drained"])
    assert poll_until(lambda: next(values), timeout=5, interval=0.001, what="x") == "drained"


def test_the_exceptions_named_in_retry_on_count_as_not_yet():
    calls = itertools.count()

    def check():
        if next(calls) < 2:
            raise ConnectionRefusedError("not up")
        return True

    assert poll_until(check, timeout=5, interval=0.001, what="ssh", retry_on=(OSError,)) is True
    assert next(calls) == 3


@pytest.mark.parametrize("retry_on", [(), (OSError,)], ids=["nothing named", "OSError named"])
def test_an_exception_not_named_surfaces_at_once_without_waiting_for_the_deadline(retry_on):
    calls = itertools.count()

    def check():
        next(calls)
        return {}["typo"]  # a programming error, not a state

    with pytest.raises(KeyError, match="typo"):
        poll_until(check, timeout=60, interval=0.001, what="x", retry_on=retry_on)
    assert next(calls) == 1


def test_a_named_exception_that_never_stops_is_the_last_state_of_the_timeout():
    def check():
        raise ConnectionRefusedError("not up")

    with pytest.raises(WaitTimeout) as err:
        poll_until(check, timeout=0.05, interval=0.01, what="sshd", retry_on=(OSError,))
    assert str(err.value) == "timed out after 0.05s waiting for sshd; last seen: ConnectionRefusedError: not up"


def test_timeout_says_what_how_long_and_the_last_state():
    with pytest.raises(WaitTimeout) as err:
        poll_until(
            lambda: [],
            timeout=0.05,
            interval=0.01,
            what="web1 to be healthy",
            describe=lambda v: f"{len(v)} of 1 targets healthy",
        )
    assert str(err.value) == "timed out after 0.05s waiting for web1 to be healthy; last seen: 0 of 1 targets healthy"
    assert err.value.exit_code == 1


def test_every_wait_is_ended_by_the_stop_now_it_is_told_about():
    """The second Ctrl-C ends a wait that would run a minute (a gate, a drain) at its next look, in
    whatever thread it runs; a wait started without `abandon_when` is not concerned."""
    stop = Stop()
    raised: list[BaseException] = []

    def wait() -> None:
        try:
            poll_until(lambda: None, timeout=60, interval=5, what="web1 to drain")
        except Interrupted as exc:
            raised.append(exc)

    with abandon_when(stop.now):
        waiter = threading.Thread(target=wait)
        waiter.start()
        stop.set()  # the first Ctrl-C: waits go on
        assert waiter.is_alive()
        stop.now.set()
        waiter.join(10)
    assert not waiter.is_alive() and [str(e) for e in raised] == [
        "interrupted: stopped now while waiting for web1 to drain"
    ]
    assert raised[0].exit_code == 130
    with pytest.raises(WaitTimeout):  # outside the block the same event ends nothing
        poll_until(lambda: None, timeout=0.05, interval=0.01, what="x")
    assert now_of(stop) is stop.now and now_of(threading.Event()) is None


def test_a_wait_given_a_stop_event_inside_abandon_when_is_ended_by_either():
    """A wait told of both (the canary's bake: `stop=` the first Ctrl-C, inside `abandon_when` of the second):
    the first ends its pause and `check` is called at once; the second raises Interrupted though its pause
    also watches a stop event that is not set."""
    stop, other = Stop(), threading.Event()
    looks: list[bool] = []
    ended: list[object] = []

    def baked() -> str | None:
        looks.append(stop.is_set())
        return "ended" if stop.is_set() else None

    def wait(event: threading.Event, check: Callable[[], object]) -> None:
        try:
            ended.append(poll_until(check, timeout=60, interval=30, what="the canary's bake", stop=event))
        except Interrupted as exc:
            ended.append(str(exc))

    with abandon_when(stop.now):
        for event, check, signal in ((stop, baked, stop.set), (other, lambda: looks.append(True), stop.now.set)):
            seen = len(looks)
            waiter = threading.Thread(target=wait, args=(event, check))
            waiter.start()
            poll_until(lambda n=seen: len(looks) > n, timeout=10, interval=0.01, what="the wait's first look")
            signal()
            waiter.join(10)
            assert not waiter.is_alive()
    assert looks == [False, True, True]
    assert ended == ["ended", "interrupted: stopped now while waiting for the canary's bake"]


def test_every_repeats_its_work_while_the_block_runs_and_not_after():
    calls: list[str] = []
    with every(0.01, lambda: calls.append(threading.current_thread().name), name="pacer"):
        poll_until(lambda: len(calls) >= 3, timeout=5, interval=0.01, what="three calls")
    assert set(calls) == {"pacer"}
    assert not any(t.name == "pacer" for t in threading.enumerate())  # stopped and joined when the block ended
