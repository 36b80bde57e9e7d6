"""The canary behind an ALB, against moto's server: its verdict read from CloudWatch's target-group metrics
(put by the test, as an ALB would publish them, when the canary starts to bake), the targets drained and
registered by the real ELBv2 calls. Only the apply is scripted.

moto (5.2) keeps the figures it is given and does what GetMetricData says with them: exact dimensions, the
period, the time window. Real ALBs publish per minute, a minute or so late: not simulated here."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import boto3
import pytest

from opsrun.balancers.elbv2 import ELBv2
from opsrun.balancers.elbv2_metrics import NAMESPACE, dimension
from opsrun.errors import ConfigError
from opsrun.model.inventory import Host, Inventory
from opsrun.model.project import Project
from opsrun.model.results import DeployRun, HostRun, OperationResult
from opsrun.rollout import Policy, Rollout, StageRunners
from opsrun.settings.models import CanaryPolicy, ELBv2Balancer
from tests.aws.conftest import REGION, Fleet

HOSTS = ["web1", "web2", "web3"]


class Alb:
    """Three instances behind an ALB's target group in moto, and the metrics it would publish."""

    def __init__(self, url: str):
        self.fleet = Fleet(url)
        self.ids = [self.fleet.launch(Name=h) for h in HOSTS]
        self.arn = self.fleet.target_group("web", self.ids, delay=1)
        group = self.fleet.elb.describe_target_groups(TargetGroupArns=[self.arn])["TargetGroups"][0]
        self.lb = dimension(group["LoadBalancerArns"][0], "loadbalancer")
        self.cloudwatch = boto3.client("cloudwatch", region_name=REGION)
        self.applied: list[list[str]] = []

    def put(self, requests: int, errors: int, mean: float, *, group: str | None = None, zone: str | None = None):
        """One minute of the target group's metrics (`group`: another's; `zone`: one zone's part only)."""
        dims = [{"Name": "TargetGroup", "Value": group or dimension(self.arn, "targetgroup")},
                {"Name": "LoadBalancer", "Value": self.lb}]  # fmt: skip
        dims += [{"Name": "AvailabilityZone", "Value": zone}] if zone else []
        now = dt.datetime.now(dt.UTC)
        times = {"SampleCount": requests, "Sum": requests * mean, "Minimum": mean, "Maximum": mean}
        self.cloudwatch.put_metric_data(
            Namespace=NAMESPACE,
            MetricData=[
                {"MetricName": "RequestCount", "Dimensions": dims, "Value": requests, "Timestamp": now},
                {"MetricName": "HTTPCode_Target_5XX_Count", "Dimensions": dims, "Value": errors, "Timestamp": now},
                {"MetricName": "TargetResponseTime", "Dimensions": dims, "StatisticValues": times, "Timestamp": now},
            ],
        )

    def rollout(self, on_canary=None, **canary) -> Rollout:
        def apply(project, inv, deploy, batch, **_):
            self.applied.append(list(batch))
            return DeployRun("aws", deploy, False, [HostRun(h, [OperationResult("x", True, True)]) for h in batch])

        def events(batch, host, stage):
            if stage == "canary" and on_canary:
                on_canary()  # the canary serves: the ALB counts its requests

        hosts = {h: Host(h, (), {"ec2_instance_id": i}) for h, i in zip(HOSTS, self.ids, strict=True)}
        inv = Inventory("aws", Path("/ops/inventories/aws.py"), HOSTS, {}, {}, hosts)
        limits = CanaryPolicy(**{"bake": 1.5, "interval": 0.25, "min_requests": 100, **canary})
        policy = Policy(
            verify=False,
            reboot="never",
            drain_timeout=10,
            healthy_timeout=10,
            balancer=ELBv2Balancer(type="elbv2", target_group_arn=self.arn),
            canary=limits,
        )
        runners = StageRunners(
            connect=lambda p, i, b, **k: dict.fromkeys(b), apply=apply, balancer=ELBv2(target_group_arn=self.arn)
        )
        return Rollout(Project(Path("/nonexistent")), inv, "app", policy, runners=runners, events=events)

    def registered(self) -> list[str]:
        health = self.fleet.elb.describe_target_health(TargetGroupArn=self.arn)["TargetHealthDescriptions"]
        return sorted(d["Target"]["Id"] for d in health if d["TargetHealth"]["State"] == "healthy")


@pytest.fixture
def alb(moto_env) -> Alb:
    return Alb(moto_env)


def test_a_breach_in_cloudwatch_fails_the_canary_and_halts(alb):
    def serving():
        alb.put(150, 30, 0.05)  # the target group while the canary serves: 20 % errors
        alb.put(100_000, 0, 0.01, group="targetgroup/other/0123456789abcdef")  # another group: not counted
        alb.put(100_000, 0, 0.01, zone=f"{REGION}a")  # one zone's share of it: counted in the total already

    result = alb.rollout(serving, bake=30).run(HOSTS)
    assert result.status == "failed" and result.exit_code == 1
    assert result.halted is not None and result.halted.startswith("canary: error rate 20.0 % > 5 % over 150 requests")
    web1 = result.hosts["web1"]
    assert (web1.outcome, web1.stage, web1.in_balancer) == ("failed", "canary", False)
    assert [result.hosts[h].outcome for h in ("web2", "web3")] == ["not_reached", "not_reached"]
    assert alb.applied == [["web1"]] and alb.registered() == sorted(alb.ids[1:])  # the canary deregistered
    verdict = result.canary
    assert verdict is not None and verdict["outcome"] == "breach" and verdict["seconds"] < 30
    assert verdict["canary"] == {"requests": 150, "errors": 30, "error_rate": 20.0, "response_time": 0.05}
    assert verdict["unchanged"] is None  # an ALB publishes no figure per target
    assert verdict["source"] == f"CloudWatch AWS/ApplicationELB ({alb.lb})"
    assert "every target" in verdict["scope"]


def test_a_slow_target_group_is_a_breach(alb):
    result = alb.rollout(lambda: alb.put(400, 0, 1.5), bake=30).run(HOSTS)
    assert result.halted is not None
    assert re.fullmatch(r"canary: response time 1\.500 s > 1 s over 400 requests in \d+ s", result.halted)


def test_good_metrics_pass_after_the_bake_and_every_host_is_done(alb):
    result = alb.rollout(lambda: alb.put(400, 2, 0.05)).run(HOSTS)
    assert result.status == "success", {h.name: h.reason for h in result.hosts.values()}
    assert result.canary is not None and result.canary["outcome"] == "pass" and result.canary["seconds"] >= 1.5
    assert alb.applied == [["web1"], ["web2"], ["web3"]] and alb.registered() == sorted(alb.ids)


def test_no_metrics_is_no_verdict_never_a_pass(alb):
    result = alb.rollout().run(HOSTS)
    assert result.status == "failed"
    assert result.halted == "canary: no verdict: 0 requests in 2 s, fewer than the 100 needed"
    assert alb.applied == [["web1"]]


def test_a_network_load_balancer_is_refused_before_any_host(alb):
    alb.arn = alb.fleet.target_group("tcp", alb.ids, delay=1, lb_type="network")
    with pytest.raises(ConfigError, match=r"balancer: elbv2 target group \S+ is behind \S+/tcp-lb/\S+ \(network\)"):
        alb.rollout().run(HOSTS)
    assert alb.applied == []
