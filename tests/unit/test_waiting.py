import itertools

import pytest

from opsrun.errors import WaitTimeout
from opsrun.waiting import poll_until


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
