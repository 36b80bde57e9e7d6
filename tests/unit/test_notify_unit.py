"""Notifications, the pure parts: the retry policy's waits (bounded, with jitter, Retry-After honoured and
capped; a refusal not retried), and the Slack blocks."""

from __future__ import annotations

import pytest

from opsrun.notify import delivery, messages

FINDING = {
    "host": "web2",
    "deploy": "nginx",
    "operation": "nginx configuration",
    "verdict": "will_change",
    "status": "new",
    "fingerprint": "abc",
}
DRIFT = {
    "kind": "drift",
    "inventory": "production",
    "status": "drift",
    "run_id": 7,
    "summary": {"hosts": 3, "checked": 3, "errors": 0, "drift": 1, "new": 1},
    "findings": [FINDING],
    "unreachable": {},
}


def dr_doc(*severities: str, degraded: list[str] | None = None) -> dict:
    checks = [{"system": "backups", "name": f"b{i}", "status": "FAIL"} for i, _ in enumerate(severities)]
    return {
        "kind": "dr-test",
        "inventory": "production",
        "status": "failed",
        "issues": [{"severity": s, "issue": f"backups: b{i}: old"} for i, s in enumerate(severities)],
        "checks": checks,
        "degraded": degraded or [],
        "summary": {"issues": len(severities)},
    }


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


# ------------------------------------------------------------------------------------------------ slack


def test_slack_blocks_carry_status_counts_top_findings_and_the_report():
    many = [{**FINDING, "host": f"web{i}", "operation": "<b>&conf</b>"} for i in range(8)]
    links = messages.Links(7, None, "/var/reports/drift-production.html")
    payload = messages.webhook_payload({**DRIFT, "findings": many}, "clean", links)
    header, counts, top, context = payload["blocks"]
    assert header["text"]["text"] == "opsrun drift production: drift"
    assert counts["fields"][0]["text"] == "*status*\ndrift (was clean)" and len(counts["fields"]) <= 10
    assert "*hosts*\n3" in [f["text"] for f in counts["fields"]]
    lines = top["text"]["text"].splitlines()
    assert lines[0] == "*Top findings*" and len(lines) == 1 + messages.TOP
    assert lines[1] == "• web0 nginx: &lt;b&gt;&amp;conf&lt;/b&gt; (will_change, new)"
    assert [e["text"] for e in context["elements"]] == ["report: /var/reports/drift-production.html", "run: 7"]
    assert payload["text"].startswith("opsrun drift production: drift (was clean)\nhosts 3, checked 3")
    assert "report: /var/reports/drift-production.html" in payload["text"]
    assert payload["opsrun"]["report"] == "/var/reports/drift-production.html"


def test_a_dr_message_lists_its_issues():
    subject, text = messages.message(dr_doc("high"), "passed")
    assert subject == "opsrun dr-test production: failed (was passed)"
    assert "- backups: b0: old (high)" in text
    [_header, _counts, top] = messages.slack_blocks(dr_doc("high"), None)
    assert top["text"]["text"].startswith("*Top issues*\n")
