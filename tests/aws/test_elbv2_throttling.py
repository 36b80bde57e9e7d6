"""ELBv2 waits that fit the API: one DescribeTargetHealth per poll for a whole batch, every few seconds, and
a throttled answer waited out with backoff, never a failed host. Scripted answers (botocore's Stubber: moto
neither drains nor throttles) and a fake clock in opsrun.support.waiting, so a 30 s drain takes no real 30 s.

The Stubber answers before botocore's retry handler runs: a throttling error scripted here is what opsrun
sees once botocore's own retries are spent."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import boto3
import pytest
from botocore.stub import Stubber

from opsrun.balancers import validate, wait_drained
from opsrun.balancers.elbv2 import ELBv2
from opsrun.errors import ConfigError
from opsrun.model.inventory import Host, Inventory
from opsrun.model.project import Project
from opsrun.model.results import DeployRun, HostRun, OperationResult
from opsrun.rollout import Policy, Rollout, StageRunners
from opsrun.settings.models import ELBv2Balancer
from opsrun.support import waiting
from tests.aws.conftest import REGION

ARN = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web/0123456789abcdef"
IDS = ["i-1", "i-2", "i-3"]


class FakeTime:
    """opsrun.support.waiting's clock: sleeping moves it on at once, and tells `on_sleep` the new time."""

    def __init__(self) -> None:
        self.now, self.pauses = 0.0, []
        self.on_sleep = lambda now: None

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.pauses.append(seconds)
        self.now += seconds
        self.on_sleep(self.now)


@pytest.fixture
def clock(monkeypatch):
    fake = FakeTime()
    monkeypatch.setattr(waiting, "time", fake)
    return fake


def health(stub: Stubber, states: dict[str, str]) -> None:
    """One DescribeTargetHealth that must ask for exactly these targets, answering their states."""
    stub.add_response(
        "describe_target_health",
        {"TargetHealthDescriptions": [{"Target": {"Id": i}, "TargetHealth": {"State": s}} for i, s in states.items()]},
        {"TargetGroupArn": ARN, "Targets": [{"Id": i} for i in states]},
    )


def throttled(stub: Stubber, code: str) -> None:
    stub.add_client_error("describe_target_health", service_error_code=code, service_message="Rate exceeded")


def stubbed(**settings) -> tuple[ELBv2, Stubber]:
    client = boto3.client("elbv2", region_name=REGION)
    stub = Stubber(client)
    stub.activate()
    return ELBv2(target_group_arn=ARN, client=client, **settings), stub


@pytest.mark.parametrize("code", ["Throttling", "TooManyRequestsException"])
def test_throttling_during_a_drain_wait_is_waited_out_with_backoff_and_the_target_drains(clock, caplog, code):
    balancer, stub = stubbed(poll_jitter=0)
    health(stub, {"i-1": "draining"})
    throttled(stub, code)
    throttled(stub, code)
    health(stub, {"i-1": "unused"})
    with caplog.at_level(logging.WARNING, logger="opsrun.balancers"):
        state = wait_drained(balancer, "i-1", timeout=300)
    assert state.drained
    stub.assert_no_pending_responses()
    assert clock.pauses == [3.0, 6.0, 12.0]  # the interval, then doubled after each throttled answer
    warned = [r.getMessage() for r in caplog.records]
    assert len(warned) == 2 and all("elbv2 target group web: throttled" in w and code in w for w in warned)


def test_a_target_group_throttled_until_the_deadline_times_out_saying_so(clock):
    balancer, stub = stubbed(poll_jitter=0)
    for _ in range(20):
        throttled(stub, "ThrottlingException")
    with pytest.raises(Exception, match=r"timed out after 30s waiting for .* to drain i-1; last seen: throttled"):
        wait_drained(balancer, "i-1", timeout=30)
    assert clock.now == 30  # waited to its own deadline, no later: 6 + 12 + 12 (capped by the deadline)


def test_another_client_error_is_still_not_an_answer_and_times_out_as_before(clock):
    balancer, stub = stubbed(poll_jitter=0)
    for _ in range(11):
        stub.add_client_error("describe_target_health", service_error_code="AccessDenied", service_message="no")
    with pytest.raises(Exception, match=r"last seen: BalancerError: .*AccessDenied: no"):
        wait_drained(balancer, "i-1", timeout=30)
    assert clock.pauses == [3.0] * 10  # the plain interval: no backoff for what is not throttling


def inventory() -> Inventory:
    hosts = ["a", "b", "c"]
    return Inventory(
        "aws",
        Path("/ops/inventories/aws.py"),
        hosts,
        {},
        {},
        {h: Host(h, (), {"iid": i}) for h, i in zip(hosts, IDS, strict=True)},
    )


def scripted_rollout(stub: Stubber, balancer: ELBv2, clock: FakeTime, during_drain) -> Rollout:
    """A 3-host batch through check, drain and its wait, apply, enable and its wait, every AWS call scripted:
    `during_drain(now)` gives the next DescribeTargetHealth answer (or scripts a throttle) after each pause."""
    stub.add_response(
        "describe_target_groups",
        {"TargetGroups": [{"TargetGroupArn": ARN, "TargetGroupName": "web", "TargetType": "instance"}]},
    )
    stub.add_response(
        "describe_target_group_attributes",
        {"Attributes": [{"Key": "deregistration_delay.timeout_seconds", "Value": "30"}]},
        {"TargetGroupArn": ARN},
    )
    stub.add_response(
        "describe_target_health",
        {"TargetHealthDescriptions": [{"Target": {"Id": i}, "TargetHealth": {"State": "healthy"}} for i in IDS]},
        {"TargetGroupArn": ARN},
    )
    for i in IDS:  # served before, then taken out
        health(stub, {i: "healthy"})
        stub.add_response("deregister_targets", {}, {"TargetGroupArn": ARN, "Targets": [{"Id": i}]})
    health(stub, dict.fromkeys(IDS, "draining"))  # the batch's first read, at once
    clock.on_sleep = during_drain

    def apply(project, inv, deploy, batch, **_):
        clock.on_sleep = lambda now: pytest.fail(f"a pause after the drain, at {now}s")
        for i in IDS:
            stub.add_response("register_targets", {}, {"TargetGroupArn": ARN, "Targets": [{"Id": i}]})
        health(stub, dict.fromkeys(IDS, "healthy"))
        return DeployRun("aws", deploy, False, [HostRun(h, [OperationResult("x", True, True)]) for h in batch])

    setting = ELBv2Balancer(type="elbv2", target_group_arn=ARN, server="{iid}")
    timeouts = {"drain_timeout": 60, "healthy_timeout": 60}
    policy = Policy(serial=(3,), verify=False, reboot="never", balancer=setting, **timeouts)
    runners = StageRunners(connect=lambda p, i, b, **k: dict.fromkeys(b), apply=apply, balancer=balancer)
    return Rollout(Project(Path("/nonexistent")), inventory(), "app", policy, runners=runners)


def count_drain_calls(stub: Stubber, clock: FakeTime) -> tuple[list[float], Callable[[float], None]]:
    """During the drain: each pause scripts the next answer, `draining` until 30 s have passed."""
    asked: list[float] = [clock.now]

    def next_answer(now: float) -> None:
        asked.append(now)
        health(stub, dict.fromkeys(IDS, "draining" if now < 30 else "unused"))

    return asked, next_answer


def test_a_three_host_batch_drains_over_30s_with_one_describe_call_per_poll(clock):
    balancer, stub = stubbed(poll_jitter=0)
    asked, next_answer = count_drain_calls(stub, clock)
    run = scripted_rollout(stub, balancer, clock, next_answer).run(["a", "b", "c"])
    assert run.status == "success", {h.name: (h.stage, h.reason) for h in run.hosts.values()}
    stub.assert_no_pending_responses()  # every scripted call made, each naming all three targets
    # one DescribeTargetHealth for the three targets every 3 s, from 0 s to 30 s: 11 calls, not 3 x 151 (453)
    # as one call per host every 0.2 s made
    assert len(asked) == 11 and asked == [3.0 * k for k in range(11)]


def test_with_jitter_the_batch_still_calls_between_10_and_14_times_over_30s(clock):
    balancer, stub = stubbed()  # the defaults: every 3 s, give or take 20%
    asked, next_answer = count_drain_calls(stub, clock)
    run = scripted_rollout(stub, balancer, clock, next_answer).run(["a", "b", "c"])
    assert run.status == "success"
    assert 10 <= len(asked) <= 14  # 1 + 30/3.6 rounded up, 1 + 30/2.4 rounded up
    assert all(2.4 <= p <= 3.6 for p in clock.pauses)


@pytest.mark.parametrize("code", ["Throttling", "TooManyRequestsException"])
def test_a_batch_throttled_while_it_drains_is_drained_not_failed(clock, code):
    balancer, stub = stubbed(poll_jitter=0)
    answers = iter(["throttle", "throttle", "draining", "unused"])

    def next_answer(now: float) -> None:
        answer = next(answers)
        if answer == "throttle":
            throttled(stub, code)
        else:
            health(stub, dict.fromkeys(IDS, answer))

    run = scripted_rollout(stub, balancer, clock, next_answer).run(["a", "b", "c"])
    assert {h.name: h.outcome for h in run.hosts.values()} == dict.fromkeys("abc", "done")
    stub.assert_no_pending_responses()
    assert clock.pauses == [3.0, 6.0, 12.0, 3.0]


def test_every_client_takes_the_standard_retry_mode_with_bounded_attempts(monkeypatch):
    from opsrun.aws import client, make_client
    from opsrun.dr import rds_failover

    made = [make_client("ec2", where="inv.py"), client("s3"), rds_failover.client()]
    assert [c.meta.config.retries for c in made] == [{"mode": "standard", "total_max_attempts": 5}] * 3
    monkeypatch.setenv("AWS_RETRY_MODE", "adaptive")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "8")
    assert make_client("elbv2", where="inv.py").meta.config.retries == {"mode": "adaptive", "total_max_attempts": 8}


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("AWS_MAX_ATTEMPTS", "50", "environment: AWS_MAX_ATTEMPTS: AWS_MAX_ATTEMPTS is '50'. Fix: use a whole number"),
        ("AWS_RETRY_MODE", "legacy", "environment: AWS_RETRY_MODE: AWS_RETRY_MODE is 'legacy'. Fix: use standard"),
    ],
)
def test_a_retry_setting_out_of_bounds_is_refused_naming_it(monkeypatch, variable, value, message):
    from opsrun.aws import client_config

    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as err:
        client_config()
    assert str(err.value).startswith(message)


def test_a_poll_interval_that_would_hammer_the_api_is_refused_by_the_schema():
    with pytest.raises(ConfigError, match=r"group_data/web.py: balancer.poll_interval: .*greater than or equal to 1"):
        validate({"type": "elbv2", "target_group": "web", "poll_interval": 0.2}, where="group_data/web.py")
