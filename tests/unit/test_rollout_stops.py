"""A rollout that stops early for what is outside its hosts: the state store halting it (no new host is
drained, the hosts in flight finish) and the operator's second Ctrl-C (stop now: hosts in flight are
interrupted at their stage, put back when nothing was changed on them, left out otherwise, and the summary
reads their place back from the balancer). Fake balancer and scripted engine, as in test_rollout_executor."""

from __future__ import annotations

import threading
from dataclasses import replace
from pathlib import Path

from rich.console import Console

from opsrun.balancers.fake import FakeBalancer
from opsrun.model.results import DeployRun, HostRun, OperationResult
from opsrun.reports import as_text, render_report
from opsrun.rollout import Policy
from opsrun.rollout.stages import each_batch
from opsrun.support.waiting import Stop, poll_until
from tests.unit.test_rollout_executor import HOSTS, Script, rollout

STORE_AWAY = "the state store at /x/state.db did not answer for 60s: no further host was drained"


def policy(**changes) -> Policy:
    base = {"serial": (1,), "max_fail": 0, "drain_timeout": 0.2, "healthy_timeout": 0.2, "verify": False}
    return Policy(**{**base, "reboot": "never", **changes})


def outcomes(run):
    """Per host: its outcome, the stage it ended at (failed or interrupted), and whether it is in the balancer."""
    stopped = ("failed", "interrupted")
    return {h.name: (h.outcome, h.stage if h.outcome in stopped else None, h.in_balancer) for h in run.hosts.values()}


def summary(run) -> str:
    console = Console(record=True, width=200)
    as_text.rollout_run(run, console)
    return console.export_text()


# ------------------------------------------------------------------------------------ the store halts it


def test_a_store_lost_while_a_host_is_in_flight_lets_it_finish_and_drains_no_other():
    bal = FakeBalancer(HOSTS)
    ro = rollout(Script(), bal)

    def record(h):  # the store stops answering as web2's apply is recorded
        if (h.name, h.stage) == ("web2", "apply"):
            ro.halt(STORE_AWAY)

    ro.record = record
    run = ro.run(HOSTS)
    assert outcomes(run) == {
        "web1": ("done", None, True),
        "web2": ("done", None, True),  # in flight: applied, past its gates, back in the balancer
        "web3": ("not_reached", None, True),
        "web4": ("not_reached", None, True),
    }
    assert run.halted == STORE_AWAY and run.exit_code == 1
    assert bal.admin == dict.fromkeys(HOSTS, "ready")
    assert ("drain", "web3") not in bal.calls


def test_a_store_lost_as_a_host_is_about_to_be_drained_leaves_it_untouched():
    """The drain of each host is recorded before the balancer is asked: when that record cannot be made,
    the host is not taken out (a crash then would hide it), and the batch's drained hosts go back."""
    bal = FakeBalancer(HOSTS)
    script = Script()
    ro = rollout(script, bal, policy(serial=(2,)))

    def record(h):
        if (h.name, h.stage, h.in_balancer) == ("web2", "drain", False):
            ro.halt(STORE_AWAY)

    ro.record = record
    run = ro.run(HOSTS)
    assert bal.calls == [("drain", "web1"), ("enable", "web1")]  # web2 never drained; web1 put back
    assert script.applied == []
    assert {h: o[0] for h, o in outcomes(run).items()} == dict.fromkeys(HOSTS, "not_reached")
    assert run.left_out() == [] and run.halted == STORE_AWAY


def test_a_host_in_flight_that_fails_its_gates_stays_out_and_the_summary_says_so():
    bal = FakeBalancer(HOSTS)
    ro = rollout(Script(on_apply=lambda hosts: bal.healthy.update(web1=False)), bal)
    ro.record = lambda h: ro.halt(STORE_AWAY) if (h.name, h.stage) == ("web1", "apply") else None
    run = ro.run(HOSTS)
    assert outcomes(run)["web1"] == ("failed", "enable", False) and bal.admin["web1"] == "drain"
    assert run.halted == STORE_AWAY
    text = summary(run)
    assert "web1: failed at enable" in text and "it is left out of the balancer" in text
    assert f"halted: {STORE_AWAY}" in text


# ------------------------------------------------------------------------------------ the second Ctrl-C


class Hung:
    """An apply that hangs until the stop now, as the engine's worker does: the hosts in `hang` are cut
    short mid-operation (failed, "interrupted: stopped now ..."), the others end with what they did."""

    def __init__(self, script: Script, stop: Stop, hang: set[str], changed: set[str]):
        self.script, self.stop, self.hang, self.changed = script, stop, hang, changed
        self.told: list[object] = []

    def __call__(self, project, inv, deploy, hosts, *, stop_now=None, **_):
        self.told.append(stop_now)
        self.stop.set()
        self.stop.now.set()  # the operator pressed Ctrl-C twice while the command hangs
        assert stop_now is not None and stop_now.wait(5)

        def host(h: str) -> HostRun:
            if h in self.hang:
                cut = "interrupted: stopped now (a second Ctrl-C) in stage apply"
                return HostRun(h, [OperationResult("config", True, True), OperationResult("slow", False, False, cut)])
            return HostRun(h, [OperationResult("config", h in self.changed, True)])

        return DeployRun("prod", deploy, False, [host(h) for h in hosts], interrupted="interrupted: stopped now")


def test_stop_now_during_an_apply_puts_back_what_did_not_change_and_leaves_out_what_may_have():
    stop, bal, script = Stop(), FakeBalancer(HOSTS), Script()
    ro = rollout(script, bal, policy(serial=(3,)), stop=stop)
    hung = Hung(script, stop, hang={"web1"}, changed={"web2"})
    ro.runners.apply = hung
    run = ro.run(HOSTS)
    assert hung.told == [stop.now]  # the engine was given the stop now: it ends the running commands
    assert outcomes(run) == {
        "web1": ("interrupted", "apply", False),  # cut short mid-operation: it may be half changed
        "web2": ("interrupted", "apply", False),  # changed, never checked
        "web3": ("interrupted", "apply", True),  # nothing changed on it: put back
        "web4": ("not_reached", None, True),
    }
    assert bal.admin == {"web1": "drain", "web2": "drain", "web3": "ready", "web4": "ready"}
    assert run.status == "interrupted" and run.exit_code == 130 and run.stopped_now
    assert "fake balancer says web1: drain, healthy, 0 sessions" in run.hosts["web1"].note
    assert "fake balancer says web3: ready, healthy, 0 sessions" in run.hosts["web3"].note
    assert "in stage apply; it may be half changed" in run.hosts["web1"].reason
    assert run.left_out() == ["web1", "web2"]
    text = summary(run)
    assert "web1: interrupted at apply: " in text and "(it is left out of the balancer)" in text
    assert (
        "web3: interrupted at apply: stopped now at apply, before any change: put back (it is in the balancer)" in text
    )
    assert "interrupted: stopped now (a second Ctrl-C)" in text and "not reached (untouched): web4" in text
    assert "stage apply" in render_report(run, "md") and "interrupted" in render_report(run, "md")


class SlowGate:
    """A health gate that passes before the change and then not for a minute: waited for as the real ones
    are (waiting.poll_until)."""

    http, tcp = "http://{address}/health", None

    def probe(self, host, address):
        return True, "HTTP 200"

    def wait(self, host, address):
        poll_until(lambda: None, timeout=60, interval=0.5, what=f"{host}'s health gate")


def test_stop_now_during_a_health_gate_ends_the_wait_and_leaves_the_changed_host_out():
    stop, bal = Stop(), FakeBalancer(HOSTS)
    ro = rollout(Script(), bal, policy(health=SlowGate()), stop=stop)
    recorded = []

    def record(h):
        recorded.append((h.name, h.stage))
        if (h.name, h.stage) == ("web1", "health"):
            stop.set()
            threading.Timer(0.2, stop.now.set).start()

    ro.record = record
    ended = []
    worker = threading.Thread(target=lambda: ended.append(ro.run(HOSTS)))
    worker.start()
    worker.join(10)
    assert not worker.is_alive(), "the gate's wait was not ended by the stop now"
    [run] = ended
    assert outcomes(run)["web1"] == ("interrupted", "health", False) and bal.admin["web1"] == "drain"
    assert run.hosts["web1"].reason.startswith("interrupted: stopped now while waiting for")
    assert [outcomes(run)[h][0] for h in HOSTS[1:]] == ["not_reached"] * 3


def test_stop_now_during_a_verification_interrupts_the_host_at_verify_and_leaves_it_out(tmp_path):
    """A verification that the stop now ended is no verdict: its host is interrupted at verify, not failed
    (its tests did not fail), and stays out of the balancer (it was changed)."""
    (tmp_path / "verify" / "app").mkdir(parents=True)
    (tmp_path / "verify" / "app" / "test_app.py").write_text("")
    stop, bal, script = Stop(), FakeBalancer(HOSTS), Script()

    def verify(project, inv, suite, hosts, **kwargs):
        stop.set()
        stop.now.set()
        return replace(script.verify(project, inv, suite, hosts, **kwargs), interrupted="stopped now at verify")

    ro = rollout(script, bal, policy(verify=True), stop=stop, tmp_path=tmp_path)
    ro.runners.verification = each_batch(verify)
    run = ro.run(HOSTS)
    assert outcomes(run)["web1"] == ("interrupted", "verify", False) and bal.admin["web1"] == "drain"
    assert run.hosts["web1"].reason == "stopped now at verify"
    assert [outcomes(run)[h][0] for h in HOSTS[1:]] == ["not_reached"] * 3


class StopWhileDraining(FakeBalancer):
    """Ctrl-C twice once web1 is told to drain, which it never finishes (a long-lived session)."""

    def __init__(self, servers, stop: Stop):
        super().__init__(servers, never_drains={"web1"})
        self.stop = stop

    def drain(self, server):
        super().drain(server)
        self.stop.set()
        threading.Timer(0.2, self.stop.now.set).start()


def test_stop_now_while_a_host_drains_puts_it_back_unchanged():
    stop = Stop()
    bal = StopWhileDraining(HOSTS, stop)
    script = Script()
    run = rollout(script, bal, policy(drain_timeout=60), stop=stop).run(HOSTS)
    assert outcomes(run)["web1"] == ("interrupted", "drain", True) and bal.admin["web1"] == "ready"
    assert script.applied == [] and run.exit_code == 130
    assert "fake balancer says web1: ready, healthy, 1 sessions" in run.hosts["web1"].note


def test_the_first_stop_alone_still_finishes_the_batch(tmp_path: Path):
    stop, bal = Stop(), FakeBalancer(HOSTS)
    run = rollout(Script(on_apply=lambda hosts: stop.set()), bal, stop=stop).run(HOSTS)
    assert [outcomes(run)[h][0] for h in HOSTS] == ["done", "not_reached", "not_reached", "not_reached"]
    assert not run.stopped_now and "stopped at a safe point" in summary(run)
