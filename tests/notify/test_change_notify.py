"""`apply --notify` and `rollback --notify` through the real CLI, against a real webhook receiver and a real
PagerDuty Events API v2 endpoint on loopback (tests/events_api.py), the state store on SQLite.

Shows: an apply that fails triggers PagerDuty (severity error) and tells the webhook, in a real subprocess
against hosts that cannot be reached; an apply whose canary failed and whose on_failure rolled web1 back says
what was rolled back, to what, and that it succeeded; the same failure again pages nobody again (the chat is
told: hosts were rolled back); a clean apply resolves the alert and tells the chat the status changed; a
second clean one tells no one; `opsrun rollback` by hand pages a warning, a rollback that failed pages
critical; a webhook that refuses is reported, kept beside the result and exits 1 though the apply succeeded;
a bad target and --notify with --dry-run exit 2 with no host touched.

Where a run needs hosts, `opsrun.runs.apply` (or the rollback's call) is replaced by the run's outcome,
recorded in the real state store and saved as a real run's is; everything after it is real."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from opsrun import runs
from opsrun.cli import cli
from opsrun.model.project import Project
from opsrun.model.results import HostOutcome, Rollback, RolloutRun
from opsrun.runs import rolling_back
from opsrun.runs.saving import save_or_say
from opsrun.store import open_store
from tests.conftest import _free_port, copy_ops, opsrun

GOOD, BAD = "a" * 40, "b" * 40
KEY = "opsrun apply fleet pm2"  # the dedup key of apply and rollback alike


def shown(url: str) -> str:
    """A webhook target as opsrun shows it: its path is the key of a chat webhook, never shown."""
    return "webhook:" + url.rsplit("/", 1)[0] + "/***"


@pytest.fixture
def ops(tmp_path: Path) -> Path:
    """An ops repository whose inventory `fleet` has two hosts on a loopback port where nothing listens."""
    ops = copy_ops(tmp_path / "ops")
    port = _free_port()
    (ops / "inventories" / "fleet.py").write_text(
        f'fleet = (["web1", "web2"], {{"ssh_hostname": "127.0.0.1", "ssh_port": {port}}})\n'
    )
    (ops / "group_data" / "all.py").write_text("")
    return ops


def rollout(status: str, *, back: Rollback | None = None, failed: str | None = None) -> RolloutRun:
    """A rollout of pm2 on web1 and web2: done, or failed at the canary on web1 (web2 not reached)."""
    hosts = {h: HostOutcome(h, i, outcome="done") for i, h in enumerate(["web1", "web2"], 1)}
    run = RolloutRun("fleet", "pm2", {"batches": [["web1"], ["web2"]], "max_fail": 0}, {}, hosts, rollback=back)
    if status == "failed":
        hosts["web1"].fail("canary", failed or "error rate 19.8 % > 5 % over 392 requests", in_balancer=True)
        hosts["web2"].outcome = "not_reached"
        run.halted = f"canary: {failed or 'error rate 19.8 % > 5 % over 392 requests'}"
    return run


def automatic(status: str) -> Rollback:
    """on_failure "rollback" of web1 to GOOD (run 1), whose own rollout ended `status`."""
    back = Rollback(GOOD, 1, {"web1": BAD}, automatic=True)
    back.run = RolloutRun("fleet", "pm2", {"batches": [["web1"]]}, {}, {"web1": HostOutcome("web1", 1)})
    if status == "success":
        back.run.hosts["web1"].outcome = "done"
    else:
        back.run.hosts["web1"].fail("health", "GET /health answered 502", in_balancer=False)
        back.run.halted = "1 failed host(s), over the failure budget of 0"
    return back


def scripted(monkeypatch, *outcomes: RolloutRun) -> None:
    """Each apply (or rollback) in turn ends as the next of `outcomes`: recorded and saved as a real one."""
    queue = list(outcomes)

    def run(project: Project, inventory_name: str, deploy: str, *_args, **_kwargs):
        result = queue.pop(0)
        store = open_store(project.state_dir, None)
        try:
            result.run_id = store.start_run("apply", inventory_name, deploy, revision=GOOD)
            store.finish_run(result.run_id, result.to_dict())
        finally:
            store.close()
        return save_or_say(project, f"apply-{inventory_name}-{deploy}", result, lambda _m: None)

    monkeypatch.setattr(runs, "apply", run)
    monkeypatch.setattr(rolling_back, "rollback", run)


def cli_run(ops: Path, *args: str):
    result = CliRunner().invoke(cli, ["--project", str(ops), *args, "--format", "json"])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result


def test_an_apply_that_fails_triggers_pagerduty_and_tells_the_webhook(ops, pagerduty, webhook_receiver):
    url, got, _answer = webhook_receiver
    proc = opsrun("apply", "fleet", "nginx", "--notify", "pagerduty", "--notify", f"webhook:{url}", "--format", "json",
                  project=ops)  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    doc = json.loads(proc.stdout)
    [trigger] = pagerduty.accepted
    assert (trigger["event_action"], trigger["dedup_key"]) == ("trigger", "opsrun apply fleet nginx")
    payload = trigger["payload"]
    assert (payload["severity"], payload["source"], payload["class"]) == ("error", "fleet", "failed")
    assert payload["summary"].startswith("Apply of nginx on fleet: failed: web1: failed at apply: ")
    assert payload["custom_details"]["run_id"] == doc["run_id"]
    [message] = got
    assert message["text"].startswith("opsrun apply fleet nginx: failed\n- web1: failed at apply: "), message
    assert message["opsrun"]["status"] == "failed" and message["opsrun"]["deploy"] == "nginx"
    assert doc["notified"] == ["pagerduty:OPSRUN_PAGERDUTY_ROUTING_KEY: trigger (error)", shown(url)]
    assert doc["notify_errors"] == []
    saved = json.loads(Path(message["opsrun"]["result"]).read_text())
    assert saved["notified"] == doc["notified"]  # the result document says who was told
    assert pagerduty.routing_key not in proc.stdout + proc.stderr


def test_a_rollback_is_told_then_a_clean_apply_resolves_it(ops, pagerduty, webhook_receiver, monkeypatch):
    url, got, _answer = webhook_receiver
    scripted(
        monkeypatch,
        rollout("failed", back=automatic("success")),
        rollout("failed", back=automatic("success")),
        rollout("success"),
        rollout("success"),
    )
    targets = ["--notify", "pagerduty", "--notify", f"webhook:{url}"]

    first = cli_run(ops, "apply", "fleet", "pm2", *targets)
    assert first.exit_code == 1, first.output
    [trigger] = pagerduty.accepted
    assert (trigger["dedup_key"], trigger["payload"]["severity"]) == (KEY, "error")
    rolled = f"rolled back web1 to revision {GOOD[:12]} (run 1): succeeded"
    assert rolled in trigger["payload"]["summary"] and rolled in trigger["payload"]["custom_details"]["top"]
    text = got[0]["text"]
    assert text.startswith("opsrun apply fleet pm2: failed, rolled back web1: succeeded\n"), text
    assert "- halted: canary: error rate 19.8 % > 5 % over 392 requests\n" in text
    assert f"- {rolled}\n" in text

    again = cli_run(ops, "apply", "fleet", "pm2", *targets)  # the same failure, the same way back
    assert again.exit_code == 1 and len(pagerduty.received) == 1  # paged once
    assert len(got) == 2 and json.loads(again.stdout)["notified"] == [shown(url)]  # hosts went back: told

    clean = cli_run(ops, "apply", "fleet", "pm2", *targets)
    assert clean.exit_code == 0, clean.output
    assert pagerduty.accepted[-1]["event_action"] == "resolve" and pagerduty.alerts == {KEY: "resolved"}
    assert got[2]["text"].startswith("opsrun apply fleet pm2: success (was failed)\n"), got[2]

    quiet = cli_run(ops, "apply", "fleet", "pm2", *targets)
    assert quiet.exit_code == 0 and len(pagerduty.received) == 2 and len(got) == 3  # trigger, resolve
    assert json.loads(quiet.stdout)["notified"] == []


def test_a_rollback_by_hand_pages_a_warning_and_one_that_failed_pages_critical(ops, pagerduty, monkeypatch):
    by_hand = rollout("success", back=Rollback(GOOD, 1, {"web2": BAD, "web1": BAD}))
    failed = rollout("failed", back=automatic("failed"))
    scripted(monkeypatch, by_hand, failed)

    went = cli_run(ops, "rollback", "fleet", "pm2", "--notify", "pagerduty")
    assert went.exit_code == 0, went.output
    payload = pagerduty.accepted[0]["payload"]
    assert payload["severity"] == "warning"
    rolled = f"rolled back web2, web1 to revision {GOOD[:12]} (run 1): succeeded"
    assert payload["summary"] == f"Rollback of pm2 on fleet: success: {rolled}"

    stuck = cli_run(ops, "apply", "fleet", "pm2", "--notify", "pagerduty")
    assert stuck.exit_code == 1
    payload = pagerduty.accepted[1]["payload"]
    assert payload["severity"] == "critical"
    top = payload["custom_details"]["top"]
    assert f"rolled back web1 to revision {GOOD[:12]} (run 1): failed" in top
    assert "web1: rollback failed at health: GET /health answered 502 (OUT of the balancer)" in top


def test_an_undelivered_message_is_kept_and_exits_1_though_the_apply_succeeded(ops, webhook_receiver, monkeypatch):
    url, got, answer = webhook_receiver
    answer["status"] = 400  # refused: not retried
    scripted(monkeypatch, rollout("success"))
    result = cli_run(ops, "apply", "fleet", "pm2", "--notify", f"webhook:{url}")
    assert result.exit_code == 1, result.output
    doc = json.loads(result.stdout)
    assert doc["status"] == "success" and doc["notified"] == []
    [error] = doc["notify_errors"]
    assert error.startswith(f"notify {shown(url)}: ") and "the message is kept in " in error
    kept = Path(error.rsplit("the message is kept in ", 1)[1])
    assert json.loads(kept.read_text())["undelivered"][0]["message"]["opsrun"]["status"] == "success"
    assert len(got) == 1


BAD_NOTIFY = {
    "not http": ["--notify", "webhook:ftp://example.invalid/x"],
    "unknown kind": ["--notify", "sms:+15550100"],
    "key not set": ["--notify", "pagerduty:NOT_SET_HERE"],
    "dry run": ["--dry-run", "--notify", "pagerduty"],
}


@pytest.mark.parametrize("args", BAD_NOTIFY.values(), ids=BAD_NOTIFY.keys())
def test_a_bad_notify_exits_2_and_touches_no_host(ops, no_ssh, pagerduty, args):
    port, seen = no_ssh
    (ops / "inventories" / "fleet.py").write_text(
        f'fleet = (["web1"], {{"ssh_hostname": "127.0.0.1", "ssh_port": {port}}})\n'
    )
    proc = opsrun("apply", "fleet", "nginx", *args, project=ops)
    assert proc.returncode == 2, proc.stderr
    assert "--notify" in proc.stderr and seen == []
