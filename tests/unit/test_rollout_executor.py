"""The rollout executor's stage logic with a fake balancer and scripted engine results (the real parts
are proved in tests/lab/test_rolling.py)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from opsrun import rollout as rollouts
from opsrun import settings
from opsrun.balancers.fake import FakeBalancer
from opsrun.errors import BalancerError, ConfigError
from opsrun.model.inventory import Host, Inventory
from opsrun.model.project import Project
from opsrun.model.results import DeployRun, HostRun, OperationResult, TestResult, VerifyRun
from opsrun.rollout import Policy, Rollout, StageRunners, make_plan
from opsrun.rollout.stages import each_batch

HOSTS = ["web1", "web2", "web3", "web4"]


def load_policy(inv: Inventory, hosts: list[str], **flags) -> Policy | None:
    """The policy as a run loads it: the hosts' settings checked once (settings.check_hosts), then read."""
    return rollouts.load_policy(inv, hosts, settings.check_hosts(inv, hosts), **flags)


def inventory(data=None, per_host=None) -> Inventory:
    per_host = per_host or {}
    hosts = {h: Host(h, ("web",), {**(data or {}), **per_host.get(h, {})}) for h in HOSTS}
    return Inventory(
        "prod",
        Path("/ops/inventories/prod.py"),
        HOSTS,
        {},
        {"web": (HOSTS, {})},
        hosts,
        {"web": {"rolling": Path("/ops/group_data/web.py")}},
    )


class Script:
    """Scripted engine and verify answers; records what was touched, in order."""

    def __init__(
        self, *, unreachable=(), apply_fails=(), verify_fails=(), on_apply=None, needs_reboot=(), reboot_fails=()
    ):
        self.unreachable, self.apply_fails, self.verify_fails = set(unreachable), set(apply_fails), set(verify_fails)
        self.needs_reboot, self.reboot_fails = set(needs_reboot), set(reboot_fails)
        self.rebooted: list[tuple[str, str]] = []
        self.applied: list[list[str]] = []
        self.on_apply = on_apply

    def connect(self, project, inv, hosts, **_):
        return {h: ("Could not connect (timed out)" if h in self.unreachable else None) for h in hosts}

    def apply(self, project, inv, deploy, hosts, **_):
        self.applied.append(hosts)
        if self.on_apply:
            self.on_apply(hosts)
        return DeployRun(
            "prod",
            deploy,
            False,
            [
                HostRun(
                    h,
                    [
                        OperationResult(
                            "config", True, h not in self.apply_fails, "exit 3" if h in self.apply_fails else None
                        )
                    ],
                )
                for h in hosts
            ],
        )

    def reboot_if_needed(self, mode, timeout, inv):
        def reboot(host):
            self.rebooted.append((host, mode))
            if host in self.reboot_fails:
                raise TimeoutError(f"{host} did not come back")
            return mode == "always" or host in self.needs_reboot

        return reboot

    def verify(self, project, inv, suite, hosts, **kwargs):
        self.verified_after = kwargs.get("after_apply")
        return VerifyRun(
            "prod",
            suite,
            hosts,
            [TestResult(h, "test_x", "failed" if h in self.verify_fails else "passed", "boom") for h in hosts],
        )


def rollout(script, balancer, policy=None, stop=None, tmp_path=Path("/nonexistent")):
    runners = StageRunners(
        connect=script.connect,
        apply=script.apply,
        verification=each_batch(script.verify),
        balancer=balancer,
        reboot_if_needed=script.reboot_if_needed,
    )
    policy = policy or Policy(
        serial=(1,), max_fail=0, drain_timeout=0.2, healthy_timeout=0.2, verify=False, reboot="never"
    )
    return Rollout(Project(tmp_path), inventory(), "app", policy, runners=runners, stop=stop)


def outcomes(run):
    return {h.name: (h.outcome, h.stage if h.outcome == "failed" else None, h.in_balancer) for h in run.hosts.values()}


def test_all_hosts_done_batch_by_batch_drain_before_enable():
    bal = FakeBalancer(HOSTS)
    script = Script()
    run = rollout(script, bal).run(HOSTS)
    assert run.status == "success" and run.exit_code == 0
    assert script.applied == [["web1"], ["web2"], ["web3"], ["web4"]]
    assert bal.calls == [(op, h) for h in HOSTS for op in ("drain", "enable")]
    assert set(run.stage_seconds) == {"connect", "drain", "apply", "enable"}


def test_failure_halts_after_the_batch_and_leaves_the_failed_host_out():
    bal = FakeBalancer(HOSTS)
    run = rollout(Script(apply_fails={"web2"}), bal).run(HOSTS)
    assert outcomes(run) == {
        "web1": ("done", None, True),
        "web2": ("failed", "apply", False),
        "web3": ("not_reached", None, True),
        "web4": ("not_reached", None, True),
    }
    assert bal.admin == {"web1": "ready", "web2": "drain", "web3": "ready", "web4": "ready"}
    assert run.left_out() == ["web2"] and run.exit_code == 1
    assert "operation 'config' failed: exit 3" in run.hosts["web2"].reason


def test_budget_lets_a_failure_pass_and_the_rest_continue():
    policy = Policy(serial=(2,), max_fail=1, drain_timeout=0.2, healthy_timeout=0.2, verify=False, reboot="never")
    run = rollout(Script(unreachable={"web1"}), FakeBalancer(HOSTS), policy).run(HOSTS)
    assert outcomes(run)["web1"] == ("failed", "connect", True)  # never drained
    assert [outcomes(run)[h][0] for h in ("web2", "web3", "web4")] == ["done"] * 3
    assert run.halted is None and run.status == "failed"


def test_a_host_that_never_drains_is_failed_and_not_applied():
    bal = FakeBalancer(HOSTS, never_drains={"web1"})
    script = Script()
    run = rollout(script, bal).run(HOSTS)
    assert outcomes(run)["web1"] == ("failed", "drain", False)
    assert "timed out after 0.2s waiting for fake balancer to drain web1" in run.hosts["web1"].reason
    assert "last seen: web1: drain, healthy, 1 sessions" in run.hosts["web1"].reason
    assert script.applied == []


def test_unhealthy_after_enable_is_taken_out_again():
    bal = FakeBalancer(HOSTS)
    run = rollout(Script(on_apply=lambda hosts: bal.healthy.update(web1=False)), bal).run(HOSTS)
    assert outcomes(run)["web1"] == ("failed", "enable", False)
    assert bal.admin["web1"] == "drain"


def test_a_host_that_was_not_serving_before_is_enabled_not_held_to_serving():
    """From nothing (the app deployed before nginx exists), the balancer's check fails before and after:
    the change did not take the host out of service, so it goes back in with a note, not a failure."""
    bal = FakeBalancer(HOSTS)
    bal.healthy["web1"] = False
    run = rollout(Script(), bal).run(HOSTS)
    assert outcomes(run)["web1"] == ("done", None, True)
    assert bal.admin["web1"] == "ready"
    assert "unhealthy before the change and still does" in (run.hosts["web1"].note or "")
    assert [run.hosts[h].note for h in HOSTS[1:]] == [None, None, None]


def test_verify_failure_fails_the_host(tmp_path):
    (tmp_path / "verify" / "app").mkdir(parents=True)
    (tmp_path / "verify" / "app" / "test_app.py").write_text("")
    policy = Policy(serial=(1,), drain_timeout=0.2, healthy_timeout=0.2, verify=True, reboot="never")
    run = rollout(Script(verify_fails={"web1"}), FakeBalancer(HOSTS), policy, tmp_path=tmp_path).run(HOSTS)
    assert outcomes(run)["web1"] == ("failed", "verify", False)
    assert run.hosts["web1"].reason == "verify/app: test_x: boom"


def test_stop_request_finishes_the_current_batch_then_stops():
    stop = threading.Event()
    bal = FakeBalancer(HOSTS)
    run = rollout(Script(on_apply=lambda hosts: stop.set() if hosts == ["web2"] else None), bal, stop=stop).run(HOSTS)
    assert run.interrupted and run.status == "interrupted" and run.exit_code == 130
    assert [outcomes(run)[h][0] for h in HOSTS] == ["done", "done", "not_reached", "not_reached"]
    assert bal.admin == dict.fromkeys(HOSTS, "ready")


def test_unknown_balancer_server_is_found_before_anything_is_touched():
    script = Script()
    with pytest.raises(BalancerError, match="has no server web4"):
        rollout(script, FakeBalancer(HOSTS[:3])).run(HOSTS)
    assert script.applied == []


def test_ramp_plan_over_four_hosts():
    assert make_plan(HOSTS, (1, "50%", "100%")).batches == (("web1",), ("web2", "web3"), ("web4",))


def test_policy_from_group_data_with_cli_overrides():
    inv = inventory({"rolling": {"serial": "50%", "max_fail": 1, "health": {"tcp": 80}}})
    policy = load_policy(inv, HOSTS)
    assert policy.serial == ("50%",) and policy.max_fail == 1 and policy.health.setting.tcp == 80
    assert load_policy(inv, HOSTS, serial=[1, "100%"], max_fail=0).serial == (1, "100%")
    assert load_policy(inventory(), HOSTS) is None  # no policy, no balancer: a plain apply


@pytest.mark.parametrize(
    ("rolling", "message"),
    [
        ({"serail": 1}, "/ops/group_data/web.py: rolling.serail: unknown setting. Fix: remove it, or use one of: se"),
        ({"serial": "all"}, "/ops/group_data/web.py: rolling.serial: String should match pattern"),
        # a value that fits no member of a union: the error of the member it was meant for
        ({"serial": 0}, "/ops/group_data/web.py: rolling.serial: Input should be greater than or equal to 1 (got 0)."),
        ({"serial": [1, "x"]}, "/ops/group_data/web.py: rolling.serial[1]: String should match pattern"),
        ({"max_fail": "101%"}, "/ops/group_data/web.py: rolling.max_fail: '101%' is out of range (at most 100%)"),
        ({"verify": "a b"}, "/ops/group_data/web.py: rolling.verify: String should match pattern"),
        ({"reboot": "sometimes"}, "/ops/group_data/web.py: rolling.reboot: Input should be 'if-needed', 'never'"),
        (
            {"health": {"http": "ftp://x"}},
            "/ops/group_data/web.py: rolling.health.http: String should match pattern '^https?://",
        ),
        ({"drain_timeout": 0}, "/ops/group_data/web.py: rolling.drain_timeout: Input should be greater than 0"),
        ({"waves": 3}, "/ops/group_data/web.py: rolling.waves: Input should be a valid string"),
    ],
)
def test_invalid_policy_names_file_and_field(rolling, message):
    with pytest.raises(ConfigError) as err:
        load_policy(inventory({"rolling": rolling}), HOSTS)
    assert str(err.value).startswith(message)


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (
            {"serial": 0},
            "the command line: --serial: Input should be greater than or equal to 1 (got 0). "
            'Fix: set --serial to a count (1), a percentage ("25%") or a ramp such as [1, "50%", "100%"]',
        ),
        ({"serial": "0%"}, "the command line: --serial: '0%' is out of range (above 0 and at most 100%)"),
        ({"serial": "150%"}, "the command line: --serial: '150%' is out of range (above 0 and at most 100%)"),
        ({"serial": "half"}, "the command line: --serial: String should match pattern"),
        ({"serial": [1, "x"]}, "the command line: --serial[1]: String should match pattern"),
        ({"max_fail": "-1"}, "the command line: --max-fail: String should match pattern"),
        ({"max_fail": "101%"}, "the command line: --max-fail: '101%' is out of range (at most 100%)"),
    ],
)
def test_command_line_sizes_are_checked_by_the_rolling_schema(flags, message):
    """--serial and --max-fail (as the command line parses them) are refused as group_data's are, naming the flag."""
    with pytest.raises(ConfigError) as err:
        load_policy(inventory({"rolling": {"serial": 1}}), HOSTS, **flags)
    assert str(err.value).startswith(message)
    assert err.value.exit_code == 2


def test_hosts_with_different_policies_cannot_share_a_rollout():
    inv = inventory({"rolling": {"serial": 1}}, per_host={"web3": {"rolling": {"serial": 2}}})
    with pytest.raises(ConfigError, match="hosts web1 and web3 of this rollout differ"):
        load_policy(inv, HOSTS)


def test_unknown_balancer_type_lists_the_choices():
    with pytest.raises(ConfigError, match=r"balancer: Input tag 'f5' .* expected tags: 'haproxy', 'nginx', 'elbv2'"):
        load_policy(inventory({"balancer": {"type": "f5"}}), HOSTS)


def test_reboot_stage_runs_after_apply_and_a_host_that_does_not_come_back_fails():
    policy = Policy(serial=(2,), drain_timeout=0.2, healthy_timeout=0.2, verify=False, reboot="if-needed")
    script = Script(needs_reboot={"web1"}, reboot_fails={"web2"})
    bal = FakeBalancer(HOSTS)
    run = rollout(script, bal, policy).run(HOSTS)
    # the batch reboots in parallel, so in any order; but each host of it once, and no other host
    assert sorted(script.rebooted) == [("web1", "if-needed"), ("web2", "if-needed")]
    assert run.hosts["web1"].rebooted and run.hosts["web1"].outcome == "done"
    assert outcomes(run)["web2"] == ("failed", "reboot", False)
    assert "web2 did not come back" in run.hosts["web2"].reason
    assert [outcomes(run)[h][0] for h in ("web3", "web4")] == ["not_reached", "not_reached"]


def test_reboot_never_skips_the_stage():
    script = Script(needs_reboot=set(HOSTS))
    run = rollout(script, FakeBalancer(HOSTS)).run(HOSTS)
    assert script.rebooted == [] and "reboot" not in run.stage_seconds


class FlakyBalancer(FakeBalancer):
    """The fake balancer whose commands fail for the servers named: as HAProxy does when its admin socket
    is gone or an ELBv2 call is refused."""

    def __init__(self, servers, *, drain_fails=(), enable_fails=()):
        super().__init__(servers)
        self.drain_fails, self.enable_fails = set(drain_fails), set(enable_fails)

    def drain(self, server):
        if server in self.drain_fails:
            raise BalancerError(f"admin socket gone while draining {server}")
        super().drain(server)

    def enable(self, server):
        if server in self.enable_fails:
            raise BalancerError(f"admin socket gone while enabling {server}")
        super().enable(server)


def test_a_balancer_error_on_enable_is_that_hosts_failure_and_it_is_reported_out():
    bal = FlakyBalancer(HOSTS, enable_fails={"web2"})
    run = rollout(Script(), bal).run(HOSTS)
    assert outcomes(run) == {
        "web1": ("done", None, True),
        "web2": ("failed", "enable", False),
        "web3": ("not_reached", None, True),
        "web4": ("not_reached", None, True),
    }
    assert "admin socket gone while enabling web2" in run.hosts["web2"].reason
    assert run.left_out() == ["web2"] and bal.admin["web2"] == "drain"
    assert run.halted == "1 failed host(s), over the failure budget of 0"


def test_a_balancer_error_on_drain_fails_the_host_untouched_and_in_service():
    bal = FlakyBalancer(HOSTS, drain_fails={"web1"})
    script = Script()
    run = rollout(script, bal).run(HOSTS)
    assert outcomes(run)["web1"] == ("failed", "drain", True)
    assert script.applied == [] and run.left_out() == []


def test_an_opsrun_fault_mid_batch_fails_its_hosts_and_the_run_still_reports():
    def broken(hosts):
        raise TypeError("a bug in opsrun")

    bal = FakeBalancer(HOSTS)
    run = rollout(Script(on_apply=broken), bal).run(HOSTS)
    assert outcomes(run)["web1"] == ("failed", "apply", False)
    assert run.halted == "opsrun error: TypeError: a bug in opsrun"
    assert run.left_out() == ["web1"] and bal.admin["web1"] == "drain"
    assert run.to_dict()["left_out_of_balancer"] == ["web1"]


def test_every_stage_change_is_recorded_as_it_happens():
    seen = []
    ro = rollout(Script(apply_fails={"web1"}), FakeBalancer(HOSTS))
    ro.record = lambda h: seen.append((h.name, h.stage, h.outcome, h.in_balancer))
    ro.run(HOSTS)
    assert seen == [
        ("web1", "connect", "not_reached", True),
        ("web1", "drain", "not_reached", True),
        ("web1", "drain", "not_reached", False),  # out before the balancer is asked: a kill -9 here is known
        ("web1", "apply", "not_reached", False),
        ("web1", "apply", "failed", False),
    ]


def test_a_stage_is_recorded_before_it_is_announced():
    """Whoever sees "web1: apply" on the progress (a person, a test, a kill -9) finds the store saying so."""
    seen = []
    ro = rollout(Script(), FakeBalancer(HOSTS))
    ro.record = lambda h: seen.append(("record", h.name, h.stage))
    ro.events = lambda _b, h, stage: seen.append(("event", h, stage))
    ro.run(["web1"])
    for i, entry in enumerate(seen):
        if entry[0] == "event":
            assert ("record", entry[1], entry[2]) in seen[:i], f"{entry} announced before it was recorded"


def test_the_batch_verification_is_told_which_deploy_was_just_applied(tmp_path):
    """A suite may then use what the apply just refreshed (patching: apt's lists) instead of doing it again."""
    script = Script()
    policy = Policy(serial=(2,), max_fail=0, drain_timeout=0.2, healthy_timeout=0.2, verify="app", reboot="never")
    (tmp_path / "verify" / "app").mkdir(parents=True)
    (tmp_path / "verify" / "app" / "test_app.py").write_text("")
    run = rollout(script, FakeBalancer(HOSTS), policy, tmp_path=tmp_path).run(HOSTS)
    assert run.status == "success" and script.verified_after == "app"


def _controller_suite(root: Path, name: str) -> None:
    (root / "verify" / name).mkdir(parents=True)
    (root / "verify" / name / "conftest.py").write_text('opsrun_scope = "controller"\n')
    (root / "verify" / name / "test_cloud.py").write_text("def test_cloud():\n    pass\n")


def test_a_rollout_that_names_a_controller_suite_to_verify_its_hosts_is_refused_before_any_host(tmp_path):
    """Its results are the controller's, not a host's: every host would fail "no test ran" after its apply."""
    _controller_suite(tmp_path, "aws")
    script = Script()
    policy = Policy(serial=(2,), drain_timeout=0.2, healthy_timeout=0.2, verify="aws", reboot="never")
    with pytest.raises(ConfigError) as err:
        rollout(script, FakeBalancer(HOSTS), policy, tmp_path=tmp_path).run(HOSTS)
    assert err.value.path == "/ops/group_data/web.py" and err.value.field == "rolling.verify"
    assert "checks from the controller" in err.value.problem and "opsrun verify prod aws" in str(err.value.fix)
    assert script.applied == []


def test_a_deploy_whose_namesake_suite_checks_from_the_controller_rolls_without_host_verification(tmp_path):
    """`verify: true` is the deploy's own suite of its hosts; a controller suite of that name is not one."""
    _controller_suite(tmp_path, "app")
    policy = Policy(serial=(2,), drain_timeout=0.2, healthy_timeout=0.2, verify=True, reboot="never")
    run = rollout(Script(), FakeBalancer(HOSTS), policy, tmp_path=tmp_path).run(HOSTS)
    assert run.status == "success" and "verify" not in run.stage_seconds


def test_heal_puts_back_what_passes_and_keeps_out_what_does_not():
    bal = FakeBalancer(HOSTS)
    bal.admin.update(web1="drain", web2="drain")
    bal.healthy["web2"] = False
    healed = rollout(Script(), bal).heal(["web1", "web2"])
    assert healed["web1"] == "back in the balancer: it passed its health gate"
    assert healed["web2"].startswith("still out of the balancer: timed out after 0.2s")
    assert bal.admin == {"web1": "ready", "web2": "drain", "web3": "ready", "web4": "ready"}


class Gate:
    """A health gate whose answers are scripted per host: (before the change, after it)."""

    def __init__(self, answers):
        self.answers = {h: list(a) for h, a in answers.items()}
        self.http, self.tcp = "http://{address}/health", None

    def probe(self, host, address):
        ok = self.answers[host].pop(0) if len(self.answers[host]) > 1 else self.answers[host][0]
        return ok, "HTTP 200" if ok else "connection refused"

    def wait(self, host, address):
        ok, seen = self.probe(host, address)
        if not ok:
            raise TimeoutError(f"health gate: {seen}")
        return seen


def test_a_host_whose_gate_failed_before_the_change_is_not_held_to_it():
    gate = Gate({"web1": [False, False], "web2": [True, False], "web3": [False], "web4": [True]})
    policy = Policy(serial=(4,), max_fail=2, drain_timeout=0.2, healthy_timeout=0.2, verify=False, reboot="never")
    policy = Policy(**{**policy.__dict__, "health": gate})
    bal = FakeBalancer(HOSTS)
    bal.healthy["web1"] = False  # not serving before: its stack's other half is not there yet
    run = rollout(Script(), bal, policy).run(HOSTS)
    assert outcomes(run)["web1"] == ("done", None, True)
    assert "did not pass before the change and still does not (connection refused)" in run.hosts["web1"].note
    assert outcomes(run)["web2"] == ("failed", "health", False)  # it served before: the change broke it
    # served by its balancer, yet the gate never passes (a wrong gate): held to it, and it stays out
    assert outcomes(run)["web3"] == ("failed", "health", False)


class SlowGates:
    """A health gate per host that passes when `ready[host]` is set (or fails after `timeout`)."""

    def __init__(self, hosts, timeout=3.0):
        self.ready = {h: threading.Event() for h in hosts}
        self.timeout, self.http, self.tcp = timeout, "http://{address}/health", None
        self.failed: set[str] = set()

    def probe(self, host, address):
        return True, "HTTP 200"

    def wait(self, host, address):
        if not self.ready[host].wait(self.timeout):
            self.failed.add(host)
            raise TimeoutError(f"health gate: nothing after {self.timeout}s")
        return "HTTP 200"


def gated(tmp_path, gates, script, verify, **policy):
    """A rollout whose batches pass `gates` and are verified by `verify` (the shape of Script.verify)."""
    (tmp_path / "verify" / "app").mkdir(parents=True)
    (tmp_path / "verify" / "app" / "test_app.py").write_text("")
    settings = {"serial": (2,), "drain_timeout": 0.2, "healthy_timeout": 0.2, "verify": True, "reboot": "never"}
    ro = rollout(script, FakeBalancer(HOSTS), Policy(**{**settings, **policy}, health=gates), tmp_path=tmp_path)
    ro.runners.verification = each_batch(verify)
    return ro


def test_a_host_is_verified_as_soon_as_it_passes_its_gate_not_when_its_whole_batch_has(tmp_path):
    """One slow reboot must not hold back its batch's checks: web1 passes its gate first and is verified
    while web2 still waits on its own (which here passes only once web1's verification has run)."""
    gates = SlowGates(["web1", "web2"])
    gates.ready["web1"].set()
    script = Script()
    verified: list[list[str]] = []

    def verify(project, inv, suite, hosts, **kwargs):
        verified.append(list(hosts))
        if "web1" in hosts:
            gates.ready["web2"].set()
        return script.verify(project, inv, suite, hosts, **kwargs)

    run = gated(tmp_path, gates, script, verify).run(["web1", "web2"])
    assert outcomes(run) == {h: ("done", None, True) for h in ["web1", "web2"]}
    assert verified == [["web1"], ["web2"]]


def test_verification_while_gates_are_waited_for_counts_as_the_gate_wait_not_as_verification(tmp_path):
    """The rollout's verify time is what verification added after the batch's last gate passed (here web2's,
    0.3 s in, during web1's 1 s verification); each host keeps its own gate wait and verification time."""
    gates = SlowGates(["web1", "web2"])
    gates.ready["web1"].set()
    threading.Timer(0.3, gates.ready["web2"].set).start()
    script = Script()

    def verify(project, inv, suite, hosts, **kwargs):
        time.sleep(1.0)
        return script.verify(project, inv, suite, hosts, **kwargs)

    run = gated(tmp_path, gates, script, verify).run(["web1", "web2"])
    assert run.status == "success"
    assert run.hosts["web1"].seconds["verify"] >= 1.0 and run.hosts["web2"].seconds["verify"] >= 1.0
    assert run.hosts["web2"].seconds["health"] > run.hosts["web1"].seconds["health"]
    # the gate wait ended when web2's gate passed, not when web1's verification let the executor look; the
    # verification added after it is web2's own (web1's ran beside it)
    assert run.stage_seconds["health"] < 0.8 and 0.9 <= run.stage_seconds["verify"] < 1.5


def test_a_host_that_passes_its_gate_while_another_is_verified_is_verified_at_once(tmp_path):
    """web2 passes its gate while web1's verification runs (which here ends only once web2's has begun):
    web2 does not wait for web1's verification to end before its own starts."""
    gates = SlowGates(["web1", "web2"])
    gates.ready["web1"].set()
    web2_verifying = threading.Event()
    script = Script()

    def verify(project, inv, suite, hosts, **kwargs):
        if hosts == ["web1"]:
            gates.ready["web2"].set()
            assert web2_verifying.wait(3), "web2 was not verified while web1 was"
        else:
            web2_verifying.set()
        return script.verify(project, inv, suite, hosts, **kwargs)

    run = gated(tmp_path, gates, script, verify).run(["web1", "web2"])
    assert outcomes(run) == {h: ("done", None, True) for h in ["web1", "web2"]}


def test_a_host_that_fails_its_gate_does_not_hold_back_the_others_verification(tmp_path):
    gates = SlowGates(["web1", "web2"], timeout=0.5)
    gates.ready["web1"].set()
    script = Script()
    failed_when_verified = []

    def verify(project, inv, suite, hosts, **kwargs):
        failed_when_verified.append(sorted(gates.failed))
        return script.verify(project, inv, suite, hosts, **kwargs)

    run = gated(tmp_path, gates, script, verify, max_fail=1).run(["web1", "web2"])
    assert outcomes(run) == {"web1": ("done", None, True), "web2": ("failed", "health", False)}
    assert "nothing after 0.5s" in run.hosts["web2"].reason
    assert failed_when_verified == [[]]  # web1 was verified before web2's gate gave up


def test_stages_no_host_reached_take_no_time():
    policy = Policy(serial=(2,), drain_timeout=0.2, healthy_timeout=0.2, verify=False, reboot="if-needed")
    policy = Policy(**{**policy.__dict__, "health": SlowGates(["web1", "web2"])})
    run = rollout(Script(reboot_fails={"web1", "web2"}), FakeBalancer(HOSTS), policy).run(["web1", "web2"])
    assert [outcomes(run)[h] for h in ("web1", "web2")] == [("failed", "reboot", False)] * 2
    assert "reboot" in run.stage_seconds and "health" not in run.stage_seconds


def test_a_host_that_needs_no_reboot_goes_through_its_gate_and_verification_while_another_reboots(tmp_path):
    """Each host goes on from its own reboot: web2 (no reboot needed) passes its gate and is verified while
    web1 still reboots (here web1 comes back only once web2 has been verified)."""
    gates = SlowGates(["web1", "web2"])
    for ready in gates.ready.values():
        ready.set()
    web2_verified = threading.Event()
    script = Script(needs_reboot={"web1"})
    verified: list[list[str]] = []
    seen: list[tuple[str, str | None]] = []

    def reboot_if_needed(mode, timeout, inv):
        def reboot(host):
            if host == "web1" and not web2_verified.wait(3):
                raise TimeoutError("web1 did not come back")
            return host == "web1"

        return reboot

    def verify(project, inv, suite, hosts, **kwargs):
        verified.append(list(hosts))
        if "web2" in hosts:
            web2_verified.set()
        return script.verify(project, inv, suite, hosts, **kwargs)

    ro = gated(tmp_path, gates, script, verify, reboot="if-needed")
    ro.runners.reboot_if_needed = reboot_if_needed
    ro.record = lambda h: seen.append((h.name, h.stage))
    run = ro.run(["web1", "web2"])
    assert outcomes(run) == {h: ("done", None, True) for h in ["web1", "web2"]}
    assert verified == [["web2"], ["web1"]]
    assert run.hosts["web1"].rebooted and not run.hosts["web2"].rebooted
    # each host's own way through the stages is recorded as it goes
    for host in ("web1", "web2"):
        stages = [stage for h, stage in seen if h == host]
        assert stages.index("reboot") < stages.index("health") < stages.index("verify") < stages.index("enable")


class BatchReadingBalancer(FakeBalancer):
    """A fake balancer that reads a batch's servers in one call (as ELBv2's one DescribeTargetHealth does)."""

    def __init__(self, servers, **kwargs):
        super().__init__(servers, **kwargs)
        self.reads: list[list[str]] = []

    def states(self, servers):
        self.reads.append(list(servers))
        return {s: self.state(s) for s in servers}


def test_a_batch_waits_for_its_drain_and_health_with_one_read_per_poll_for_all_its_hosts():
    bal = BatchReadingBalancer(HOSTS)
    policy = Policy(serial=(2,), max_fail=0, drain_timeout=0.2, healthy_timeout=0.2, verify=False, reboot="never")
    run = rollout(Script(), bal, policy).run(HOSTS)
    assert run.status == "success"
    # per batch: one read for the drain wait, one for the health wait, each naming the batch's two servers
    assert bal.reads == [["web1", "web2"], ["web1", "web2"], ["web3", "web4"], ["web3", "web4"]]


class OneServerGone(FakeBalancer):
    """No batch read: each server's state is asked for alone, and one of them cannot be answered for once
    it is drained."""

    def state(self, server):
        if server == "web2" and self.admin[server] == "drain":
            raise BalancerError(f"{self.name} has no server web2")
        return super().state(server)


def test_without_a_batch_read_a_server_that_cannot_be_read_fails_alone():
    policy = Policy(serial=(2,), max_fail=1, drain_timeout=0.2, healthy_timeout=0.2, verify=False, reboot="never")
    run = rollout(Script(), OneServerGone(HOSTS), policy).run(HOSTS[:2])
    assert outcomes(run) == {"web1": ("done", None, True), "web2": ("failed", "drain", False)}
    assert "last seen: BalancerError: fake balancer has no server web2" in run.hosts["web2"].reason
