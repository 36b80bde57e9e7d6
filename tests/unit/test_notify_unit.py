"""Notifications, the pure parts: what PagerDuty is sent given the last event (trigger once, nothing when
nothing changed, resolve when clean), severities from the outcome, the retry policy's waits (bounded, with
jitter, Retry-After honoured and capped; a refusal not retried), the targets and settings refused before
anything runs, and the Slack blocks."""

from __future__ import annotations

import pytest

from opsrun import notify, settings
from opsrun.errors import ConfigError
from opsrun.model import inventory, secrets
from opsrun.model.project import Project
from opsrun.notify import delivery, messages, pagerduty
from opsrun.settings import models, validate_key
from opsrun.store import AlertState

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


def state(action: str, wanted: pagerduty.Outcome) -> AlertState:
    return AlertState("triggered" if action == "trigger" else "resolved", wanted.fingerprint, 1, "now")


def test_drift_triggers_once_then_nothing_while_the_same_then_resolves():
    found = pagerduty.outcome(DRIFT)
    assert (found.action, found.severity) == ("trigger", "warning")
    assert pagerduty.decide(found, None) == "trigger"
    assert pagerduty.decide(found, state("trigger", found)) is None  # a second identical night
    clean = pagerduty.outcome({**DRIFT, "status": "clean", "findings": []})
    assert pagerduty.decide(clean, state("trigger", found)) == "resolve"
    assert pagerduty.decide(clean, state("resolve", clean)) is None  # resolved already
    assert pagerduty.decide(clean, None) is None  # nothing was ever open


def test_a_change_in_what_was_found_triggers_again_with_the_same_dedup_key():
    before = pagerduty.outcome(DRIFT)
    more = pagerduty.outcome({**DRIFT, "findings": [FINDING, {**FINDING, "host": "web3"}]})
    failed = pagerduty.outcome({**DRIFT, "status": "error"})
    assert pagerduty.decide(more, state("trigger", before)) == "trigger"
    assert (failed.severity, pagerduty.decide(failed, state("trigger", before))) == ("error", "trigger")


@pytest.mark.parametrize("status", ["partial", "interrupted"])
def test_a_run_that_did_not_see_every_host_sends_nothing(status):
    wanted = pagerduty.outcome({**DRIFT, "status": status})
    assert wanted.action is None and pagerduty.decide(wanted, None, always=True) is None


@pytest.mark.parametrize(
    ("severities", "degraded", "expected"),
    [
        (["high"], None, "error"),
        (["medium", "low"], None, "warning"),
        (["low", "critical", "high"], None, "critical"),
        (["high"], ["redis"], "critical"),
        (["low"], None, "info"),
    ],
)
def test_a_dr_failure_triggers_with_the_severity_of_its_worst_issue(severities, degraded, expected):
    wanted = pagerduty.outcome(dr_doc(*severities, degraded=degraded))
    assert (wanted.action, wanted.severity) == ("trigger", expected)
    assert pagerduty.outcome({"kind": "dr-test", "status": "passed"}).action == "resolve"


def test_the_trigger_event_reads_well_and_points_at_the_report():
    wanted = pagerduty.outcome(DRIFT)
    links = messages.Links(7, "/srv/ops/.opsrun/results/x-drift-production.json", "/var/reports/drift-production.html")
    event = pagerduty.event("trigger", pagerduty.dedup_key("drift production"), DRIFT, wanted, links)
    assert "routing_key" not in event
    assert event["dedup_key"] == "opsrun drift production"
    payload = event["payload"]
    title = "Drift on production: 1 finding(s), 1 new: web2 nginx: nginx configuration (will_change, new)"
    assert payload["summary"] == title
    assert (payload["severity"], payload["source"], payload["component"]) == ("warning", "production", "drift")
    details = payload["custom_details"]
    assert details["run_id"] == 7 and details["report"] == "/var/reports/drift-production.html"
    assert details["result"].endswith("x-drift-production.json") and details["command"] == "drift production"
    assert pagerduty.event("resolve", "opsrun drift production", DRIFT, wanted, links) == {
        "event_action": "resolve",
        "dedup_key": "opsrun drift production",
    }


def test_a_long_dedup_key_is_cut_to_pagerdutys_limit_and_stays_distinct():
    a, b = pagerduty.dedup_key("drift p " + "x" * 300), pagerduty.dedup_key("drift p " + "x" * 299 + "y")
    assert len(a) <= 255 and len(b) <= 255 and a != b


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


# ------------------------------------------------------------------------------------------------ targets


def test_pagerduty_reads_its_key_from_the_environment(monkeypatch):
    monkeypatch.setenv("PD_OPS_ROUTING", "r" * 32)
    monkeypatch.delenv("OPSRUN_PAGERDUTY_URL", raising=False)
    [target] = notify.parse(["pagerduty:PD_OPS_ROUTING"])
    assert (str(target), target.url) == ("pagerduty:PD_OPS_ROUTING", "https://events.pagerduty.com/v2/enqueue")
    assert "r" * 32 not in target.ident and secrets.redact("key " + "r" * 32) == "key ***"
    monkeypatch.setenv("OPSRUN_PAGERDUTY_ROUTING_KEY", "k" * 32)
    monkeypatch.setenv("OPSRUN_PAGERDUTY_URL", "https://events.eu.pagerduty.com/v2/enqueue")
    [default] = notify.parse(["pagerduty"])
    assert (default.address, default.url) == (
        "OPSRUN_PAGERDUTY_ROUTING_KEY",
        "https://events.eu.pagerduty.com/v2/enqueue",
    )


def configured(tmp_path, all_py: str, job: str, web_py: str = ""):
    (tmp_path / "inventories").mkdir(parents=True)
    (tmp_path / "group_data").mkdir()
    (tmp_path / "inventories" / "prod.py").write_text('web = ["web1", "web2"]\ndb = ["db1"]\n')
    (tmp_path / "group_data" / "all.py").write_text(all_py)
    if web_py:
        (tmp_path / "group_data" / "web.py").write_text(web_py)
    inv = inventory.load(Project(tmp_path), "prod")
    return notify.configured(inv, list(inv.hosts), settings.check_hosts(inv, list(inv.hosts)), job, [])


def test_group_data_notify_gives_the_pagerduty_target_of_its_jobs(tmp_path, monkeypatch):
    monkeypatch.setenv("PD_PROD", "p" * 32)
    monkeypatch.delenv("OPSRUN_PAGERDUTY_URL", raising=False)
    eu = "https://events.eu.pagerduty.com/v2/enqueue"
    setting = (
        f'notify = {{"pagerduty": {{"secret_env": {{"routing_key": "PD_PROD"}}, "url": "{eu}", "jobs": ["drift"]}}}}\n'
    )
    [target] = configured(tmp_path, setting, "drift")
    assert (target.kind, target.address, target.url) == ("pagerduty", "PD_PROD", eu)
    assert configured(tmp_path / "dr", setting, "dr-test") == []  # this setting pages for drift only


def test_hosts_with_different_notify_settings_are_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("PD_PROD", "p" * 32)
    setting = 'notify = {"pagerduty": {"secret_env": {"routing_key": "PD_PROD"}}}\n'
    web = setting.replace("PD_PROD", "PD_WEB")
    with pytest.raises(ConfigError) as err:
        configured(tmp_path, setting, "drift", web_py=web)
    assert err.value.field == "notify" and err.value.path == str(tmp_path / "group_data" / "all.py")
    assert f"than web1 (set in {tmp_path / 'group_data' / 'web.py'})" in err.value.problem
    assert "group_data/all.py" in (err.value.fix or "")


def test_a_missing_routing_key_variable_is_a_config_error(monkeypatch):
    monkeypatch.delenv("PD_NOT_SET", raising=False)
    with pytest.raises(ConfigError) as err:
        notify.parse(["pagerduty:PD_NOT_SET"])
    assert err.value.exit_code == 2 and err.value.field == "--notify"
    assert "PD_NOT_SET" in str(err.value) and "export PD_NOT_SET=" in (err.value.fix or "")


def test_a_routing_key_given_on_the_command_line_is_refused_without_showing_it():
    key = "0123456789abcdef0123456789abcdef"
    with pytest.raises(ConfigError) as err:
        notify.parse([f"pagerduty:{key}"])
    assert key not in str(err.value) and "environment variable" in str(err.value)
    assert secrets.redact(f"argv: pagerduty:{key}") == "argv: pagerduty:***"


@pytest.mark.parametrize("url", ["http://events.example.com/v2/enqueue", "ftp://127.0.0.1/x", "https://", "not a url"])
def test_an_endpoint_that_would_carry_the_key_in_clear_is_refused(monkeypatch, url):
    monkeypatch.setenv("OPSRUN_PAGERDUTY_ROUTING_KEY", "k" * 32)
    monkeypatch.setenv("OPSRUN_PAGERDUTY_URL", url)
    with pytest.raises(ConfigError) as err:
        notify.parse(["pagerduty"])
    assert err.value.path == "OPSRUN_PAGERDUTY_URL"


@pytest.mark.parametrize(
    ("value", "field", "problem"),
    [
        ({"pagerduty": {"routing_key": "k" * 32}}, "notify.pagerduty.secret_env", "missing."),
        (
            {"pagerduty": {"secret_env": {"routing_key": "PD"}, "routing_key": "k" * 32}},
            "notify.pagerduty.routing_key",
            "unknown setting.",
        ),
        ({"pagerduty": {"secret_env": {"routing_key": "not a name"}}}, "notify.pagerduty.secret_env.routing_key", ""),
        ({"pagerduty": {"secret_env": {}}}, "notify.pagerduty.secret_env", 'secret_env needs "routing_key"'),
        (
            {"pagerduty": {"secret_env": {"routing_key": "PD"}, "url": "http://pd.example/v2/enqueue"}},
            "notify.pagerduty.url",
            "not loopback",
        ),
        ({"pagerduty": {"secret_env": {"routing_key": "PD"}, "jobs": ["apply"]}}, "notify.pagerduty.jobs[0]", ""),
        ({"slack": {}}, "notify.slack", "unknown setting."),
    ],
)
def test_the_notify_setting_is_refused_naming_the_field_and_never_echoing_a_key(value, field, problem):
    with pytest.raises(ConfigError) as err:
        validate_key(models.NotifySetting, "notify", value, where="group_data/all.py")
    assert (err.value.path, err.value.field) == ("group_data/all.py", field)
    assert problem in err.value.problem and "k" * 32 not in str(err.value)


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


# ------------------------------------------------------------------------- changes: apply and rollback


def change(status: str, **extra: object) -> dict:
    return {"kind": "rollout", "inventory": "lab", "deploy": "pm2", "status": status, "hosts": {}, **extra}


ROLLED = {"to_revision": "a" * 40, "to_run": 7, "from": {"web1": "b" * 40}, "automatic": True}


@pytest.mark.parametrize(
    ("doc", "action", "severity"),
    [
        (change("success"), "resolve", None),
        (change("interrupted"), None, None),
        (change("failed", halted="2 failed host(s)"), "trigger", "error"),
        (change("failed", rollback={**ROLLED, "status": "succeeded", "run": {}}), "trigger", "error"),
        (change("failed", rollback={**ROLLED, "status": "failed", "run": {}}), "trigger", "critical"),
        (change("failed", left_out_of_balancer=["web1"]), "trigger", "critical"),
        (change("success", rollback={**ROLLED, "automatic": False}), "trigger", "warning"),
        (change("failed", rollback={**ROLLED, "automatic": False}), "trigger", "critical"),
    ],
    ids=["clean", "interrupted", "failed", "rolled back", "rollback failed", "left out", "by hand", "by hand failed"],
)
def test_a_change_pages_as_the_table_says(doc, action, severity):
    from opsrun.notify import pagerduty

    wanted = pagerduty.outcome(doc)
    assert (wanted.action, wanted.severity) == (action, severity)


def test_a_change_says_what_was_rolled_back_to_what_and_whether_it_succeeded():
    from opsrun.notify import changes

    web1 = {"outcome": "failed", "stage": "canary", "reason": "error rate 19.8 % > 5 %", "in_balancer": False}
    back_run = {"hosts": {"web1": {"outcome": "done", "in_balancer": True}}}
    doc = change(
        "failed",
        halted="canary: error rate 19.8 % > 5 %",
        hosts={"web1": web1},
        rollback={**ROLLED, "status": "succeeded", "run": back_run},
    )
    assert messages.message(doc, "success")[1].splitlines() == [
        "opsrun apply lab pm2: failed, rolled back web1: succeeded (was success)",
        "- halted: canary: error rate 19.8 % > 5 %",
        "- web1: failed at canary: error rate 19.8 % > 5 %, out of the balancer",
        "- rolled back web1 to revision aaaaaaaaaaaa (run 7): succeeded",
    ]
    not_attempted = {**ROLLED, "status": "not attempted", "run": None, "reason": "no successful apply recorded"}
    assert changes.rollback_line(change("failed", rollback=not_attempted)) == (
        "not rolled back: no successful apply recorded"
    )
    plain = {"kind": "apply", "status": "failed", "hosts": {"web2": {"status": "failed", "error": "could not connect"}}}
    assert changes.lines(plain) == ["web2: failed at apply: could not connect"]  # a parallel apply's document
