"""Membership in the balancer as desired state: who left a host out (the store), hold marks, the drift
finding it becomes and what every run says of it. Balancers are the in-memory fake here; the real ones are
driven in tests/balancers (HAProxy) and tests/aws (ALB on moto)."""

from __future__ import annotations

from contextlib import closing
from pathlib import Path

import pytest

from opsrun import balancers
from opsrun.balancers.fake import FakeBalancer
from opsrun.checks import membership
from opsrun.checks.drift import DriftRun, Finding
from opsrun.model.inventory import Host, Inventory
from opsrun.reports import render_report
from opsrun.runs.checking import _membership_findings
from opsrun.store import open_store

HOSTS = ["web1", "web2", "web3"]
SETTING = {"type": "haproxy", "socket": "/run/haproxy.sock", "backend": "web"}


@pytest.fixture
def store(tmp_path):
    s = open_store(tmp_path)
    try:
        yield s
    finally:
        s.close()


@pytest.fixture
def inv() -> Inventory:
    hosts = {h: Host(h, ("web",), {"balancer": SETTING}) for h in HOSTS}
    return Inventory("lab", Path("/ops/inventories/lab.py"), [], {}, {}, hosts)


@pytest.fixture
def fake(monkeypatch) -> FakeBalancer:
    bal = FakeBalancer(HOSTS)
    monkeypatch.setattr(balancers, "make", lambda *_a, **_k: bal)
    return bal


def dead_run(store, left: str) -> int:
    """An apply killed with -9 while `left` was drained (as run_hosts records it), then found dead."""
    run_id = store.start_run("apply", "lab", "nginx", revision=None, plan={"batches": [[h] for h in HOSTS]})
    store.record_host(run_id, {"name": "web1", "outcome": "done", "stage": "enable", "in_balancer": True})
    store.record_host(run_id, {"name": left, "outcome": "running", "stage": "apply", "in_balancer": False})
    store.interrupt_dead_runs("lab", found_by="a test")
    return run_id


def test_a_host_drained_by_nobody_known_is_out_of_the_balancer(store, inv, fake):
    fake.drain("web2")
    found, errors = membership.out_of_balancer(store, inv, HOSTS)
    assert errors == {}
    assert [(o.host, o.who, o.held) for o in found] == [("web2", "nobody opsrun knows of", None)]
    assert "opsrun hold lab web2 --reason" in found[0].fix


def test_an_unhealthy_host_is_out_too(store, inv, fake):
    fake.healthy["web3"] = False
    assert [o.host for o in membership.out_of_balancer(store, inv, HOSTS)[0]] == ["web3"]


def test_a_dead_run_is_named_as_who_left_it_with_the_command_that_brings_it_back(store, inv, fake):
    run_id = dead_run(store, "web2")
    fake.drain("web2")
    (out,), _ = membership.out_of_balancer(store, inv, HOSTS)
    assert out.who.startswith(f"run {run_id} (nginx, ") and out.who.endswith("did not finish (interrupted)")
    assert out.fix == "opsrun apply lab nginx --limit web2"


def test_a_later_run_that_put_the_host_back_clears_the_record(store, inv, fake):
    dead_run(store, "web2")
    later = store.start_run("apply", "lab", "nginx", revision=None)
    store.record_host(later, {"name": "web2", "outcome": "done", "stage": "enable", "in_balancer": True})
    assert store.left_out("lab") == {}


def test_every_run_names_the_host_until_it_is_back_and_says_whether_it_touches_it(store, inv, fake):
    run_id = dead_run(store, "web2")
    fake.drain("web2")
    said: list[str] = []
    assert membership.unfinished_notices(store, inv, ["web3"], said.append, heals=True) == ["web2"]
    assert said == [
        f"web2 is out of the balancer: {store.left_out('lab')['web2']} and left it so; this run does not touch it "
        "(not in its selection); bring it back: opsrun apply lab nginx --limit web2"
    ]
    assert str(run_id) in said[0]
    said.clear()
    membership.unfinished_notices(store, inv, ["web2"], said.append, heals=True)
    assert "this run brings it back first" in said[0]
    said.clear()
    fake.enable("web2")  # put back by hand: nothing left to say
    assert membership.unfinished_notices(store, inv, HOSTS, said.append) == [] and said == []


def drift_with_membership(store, inv) -> DriftRun:
    run = DriftRun("lab", ["nginx"], HOSTS)
    asked = _membership_findings(store, inv, HOSTS, run)
    checked = {(h, "balancer") for h in asked}
    run.resolved = store.track_findings("lab", run.tracked, checked=checked, cause=lambda _d: "corrective")
    return run


def test_drift_exits_3_naming_the_host_out_of_the_balancer_and_remembers_since_when(store, inv, fake):
    dead_run(store, "web2")
    fake.drain("web2")
    first = drift_with_membership(store, inv)
    (f,) = first.findings
    assert (f.host, f.deploy, f.verdict, f.status, f.cause) == (
        "web2",
        "balancer",
        "out_of_balancer",
        "new",
        "corrective",
    )
    assert first.exit_code == 3 and first.to_dict()["summary"]["out_of_balancer"] == 1
    assert "did not finish" in f.detail[1] and f.detail[2] == "bring it back: opsrun apply lab nginx --limit web2"
    fake.admin["web2"] = "maint"  # another state, same finding
    again = drift_with_membership(store, inv)
    assert (again.findings[0].status, again.findings[0].first_seen) == ("persisting", f.first_seen)
    fake.enable("web2")
    clean = drift_with_membership(store, inv)
    assert clean.exit_code == 0 and [r["host"] for r in clean.resolved] == ["web2"]


@pytest.mark.parametrize("fmt", ["md", "html", "junit", "json"])
def test_every_report_format_names_the_host_out_of_the_balancer(store, inv, fake, fmt):
    fake.drain("web2")
    text = render_report(drift_with_membership(store, inv), fmt)
    assert "web2" in text and "out_of_balancer" in text and "nobody opsrun knows of" in text


def test_a_held_host_is_intentional_not_drift_until_released(store, inv, fake):
    fake.drain("web3")
    store.hold("lab", "web3", "disk replacement")
    held = drift_with_membership(store, inv)
    (f,) = held.findings
    assert (f.held, f.cause, held.status, held.exit_code) == (True, "intentional", "clean", 0)
    assert "held by " in f.detail[2] and f.detail[2].endswith(": disk replacement")
    assert "<failure" not in render_report(held, "junit")
    assert store.release("lab", "web3") is not None
    after = drift_with_membership(store, inv)
    assert (after.findings[0].cause, after.findings[0].status, after.exit_code) == ("corrective", "persisting", 3)


def test_a_balancer_that_cannot_answer_is_an_error_not_clean(store, inv, monkeypatch):
    def refuse(*_a, **_k):
        raise balancers.base.BalancerError("haproxy admin socket /run/haproxy.sock: No such file or directory")

    monkeypatch.setattr(balancers, "make", refuse)
    run = DriftRun("lab", ["nginx"], HOSTS)
    assert _membership_findings(store, inv, HOSTS, run) == []
    assert run.status == "error" and {f.verdict for f in run.findings} == {"error"}


def test_out_of_balancer_finding_keeps_its_identity_whatever_its_detail():
    a = Finding("web2", "balancer", "haproxy backend web", "out_of_balancer", ["web2: drain", "left so by x"])
    b = Finding("web2", "balancer", "haproxy backend web", "out_of_balancer", ["web2: maint", "left so by y"])
    assert a.fingerprint == b.fingerprint


def test_hold_and_release_keep_the_mark_in_the_state_store(project_copy):
    from click.testing import CliRunner

    from opsrun.cli import cli

    def opsrun(*args):
        return CliRunner().invoke(cli, ["--project", str(project_copy), *args])

    held = opsrun("hold", "lab", "web3", "--reason", "disk replacement")
    assert held.exit_code == 0 and "web3 of lab: held by " in held.output and "disk replacement" in held.output
    with closing(open_store(project_copy / ".opsrun")) as store:
        assert store.holds("lab")["web3"].reason == "disk replacement"
    assert "released (was held by " in opsrun("release", "lab", "web3").output
    assert opsrun("release", "lab", "web3").output.strip() == "web3 of lab: was not held"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["hold", "lab", "web9", "--reason", "x"], "no host 'web9' in inventory lab"),
        (["hold", "lab", "web3", "--reason", " "], "--reason: the reason must be one line"),
        (["release", "lab", "web9"], "no host 'web9' in inventory lab"),
    ],
)
def test_hold_refuses_bad_input_with_exit_2(project_copy, args, message):
    from click.testing import CliRunner

    from opsrun.cli import cli

    result = CliRunner().invoke(cli, ["--project", str(project_copy), *args])
    assert result.exit_code == 2 and message in result.output


def test_a_dry_run_names_what_a_dead_run_left_out_as_a_real_apply_does(project_copy, fake, monkeypatch):
    """`apply --dry-run` reads the store (marking nothing) and names the host a dead run left drained, with the
    command that brings it back, whether the selection includes it or not."""
    from click.testing import CliRunner

    from opsrun import engine
    from opsrun.cli import cli
    from opsrun.model.results import DeployRun, HostRun

    def planned(_project, _inv, deploy, hosts, dry_run=False, **_):
        assert dry_run
        return DeployRun("lab", deploy, True, [HostRun(h, []) for h in hosts])

    monkeypatch.setattr(engine, "run_deploy", planned)
    with closing(open_store(project_copy / ".opsrun")) as store:
        dead_run(store, "web2")
    fake.drain("web2")

    def dry(*limit: str) -> str:
        args = ["--project", str(project_copy), "apply", "lab", "nginx", "--dry-run", *limit]
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 0, result.output
        return result.stderr

    elsewhere = dry("--limit", "web3")
    assert "note: web2 is out of the balancer: run " in elsewhere and "did not finish (interrupted)" in elsewhere
    assert "this run does not touch it (not in its selection)" in elsewhere
    assert "bring it back: opsrun apply lab nginx --limit web2" in elsewhere
    assert "the apply without --dry-run brings it back first" in dry("--limit", "web2")
    fake.enable("web2")  # put back by hand: nothing left to say
    assert "out of the balancer" not in dry()
    with closing(open_store(project_copy / ".opsrun")) as store:
        assert len(store.runs("lab")) == 1  # the dead run: the dry runs recorded nothing
