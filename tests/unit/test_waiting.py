import itertools

import pytest

from opsrun.errors import WaitTimeout
from opsrun.waiting import poll_until


def test_returns_the_first_truthy_value():
    values = iter([None, 0, "drained"])
    assert poll_until(lambda: next(values), timeout=5, interval=0.001, what="x") == "drained"


def test_exceptions_count_as_not_yet():
    calls = itertools.count()

    def check():
        if next(calls) < 2:
            raise ConnectionRefusedError("not up")
        return True

    assert poll_until(check, timeout=5, interval=0.001, what="ssh") is True


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
