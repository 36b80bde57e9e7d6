"""Notifications, the pure parts: the retry policy's waits (bounded, with jitter, Retry-After honoured and
capped; a refusal not retried)."""

from __future__ import annotations

import pytest

from opsrun.notify import delivery

# ------------------------------------------------------------------------------------------------ retries


def test_backoff_is_full_jitter_under_a_doubling_ceiling_with_a_cap():
    retry = delivery.Retry(attempts=8, base=1.0, cap=5.0)
    assert [retry.wait(n, None, rand=lambda: 1.0) for n in range(1, 6)] == [1.0, 2.0, 4.0, 5.0, 5.0]
    assert retry.wait(3, None, rand=lambda: 0.25) == 1.0  # a random part of the ceiling


def test_retry_after_is_honoured_up_to_its_cap():
    retry = delivery.Retry(retry_after_cap=60.0)
    assert retry.wait(1, 7.0, rand=lambda: 1.0) == 7.0
    assert retry.wait(1, 3600.0, rand=lambda: 1.0) == 60.0
    assert delivery.retry_after("12") == 12.0
    assert delivery.retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now=lambda: 1445412480.0) == 30.0
    assert delivery.retry_after("soon") is None and delivery.retry_after(None) is None


def test_transient_failures_are_retried_with_bounded_waits_then_given_up():
    waits: list[float] = []
    calls = []

    def attempt():
        calls.append(1)
        raise delivery.Transient("HTTP 503", retry_after=2.0 if len(calls) == 2 else None)

    with pytest.raises(delivery.Undelivered) as err:
        delivery.deliver(attempt, delivery.Retry(attempts=4, base=1.0, cap=30.0), pause=waits.append, rand=lambda: 1.0)
    assert len(calls) == 4 and err.value.attempts == 4 and "gave up after 4 attempts" in str(err.value)
    assert waits == [1.0, 2.0, 4.0]  # no wait after the last attempt; the second honoured Retry-After


def test_a_blip_then_success_lands_once():
    answers = iter([delivery.Transient("cannot connect"), "ok"])
    waits: list[float] = []

    def attempt():
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    assert delivery.deliver(attempt, pause=waits.append, rand=lambda: 0.5) == ("ok", 2)
    assert waits == [0.5]


def test_a_refusal_is_not_retried():
    calls = []

    def attempt():
        calls.append(1)
        raise delivery.Refused("HTTP 400: Event object is invalid")

    with pytest.raises(delivery.Refused):
        delivery.deliver(attempt, pause=lambda s: pytest.fail("waited after a refusal"))
    assert len(calls) == 1
