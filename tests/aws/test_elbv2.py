"""ELBv2 target groups: against moto's server on loopback (the AWS API as boto3 sees it), and the waiting
logic against scripted answers (botocore's Stubber), since moto does not simulate draining.

Real AWS is not reachable here: what moto does not simulate (initial/draining states, the deregistration
delay, throttling) is covered by the scripted tests only."""

from __future__ import annotations

from pathlib import Path

import boto3
import pytest
from botocore.stub import Stubber

from opsrun.balancers import make, validate, wait_drained, wait_healthy
from opsrun.balancers.elbv2 import ELBv2
from opsrun.errors import BalancerError, ConfigError, WaitTimeout
from opsrun.model.inventory import Host, Inventory
from opsrun.model.project import Project
from opsrun.model.results import DeployRun, HostRun, OperationResult
from opsrun.rollout import Policy, Rollout, StageRunners
from opsrun.settings.models import ELBv2Balancer
from tests.aws.conftest import REGION


@pytest.fixture
def target_group(moto_url):
    """A load balancer, listener and target group with 3 running instances registered."""
    ec2 = boto3.client("ec2", region_name=REGION, endpoint_url=moto_url)
    elb = boto3.client("elbv2", region_name=REGION, endpoint_url=moto_url)
    vpc = ec2.describe_vpcs(Filters=[{"Name": "isDefault", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
    subnets = [s["SubnetId"] for s in ec2.describe_subnets()["Subnets"] if s["VpcId"] == vpc][:2]
    image = ec2.describe_images()["Images"][0]["ImageId"]
    ids = [i["InstanceId"] for i in ec2.run_instances(ImageId=image, MinCount=3, MaxCount=3)["Instances"]]
    lb = elb.create_load_balancer(Name="web", Subnets=subnets)["LoadBalancers"][0]["LoadBalancerArn"]
    tg = elb.create_target_group(
        Name=f"web-{ids[0][-6:]}", Protocol="HTTP", Port=3001, VpcId=vpc, TargetType="instance"
    )["TargetGroups"][0]["TargetGroupArn"]
    elb.create_listener(
        LoadBalancerArn=lb, Protocol="HTTP", Port=80, DefaultActions=[{"Type": "forward", "TargetGroupArn": tg}]
    )
    elb.modify_target_group_attributes(
        TargetGroupArn=tg, Attributes=[{"Key": "deregistration_delay.timeout_seconds", "Value": "5"}]
    )
    elb.register_targets(TargetGroupArn=tg, Targets=[{"Id": i} for i in ids])
    return tg, ids


def test_drain_wait_enable_wait_against_moto(moto_url, target_group):
    arn, ids = target_group
    setting = {"type": "elbv2", "target_group_arn": arn, "endpoint_url": moto_url, "region": REGION}
    balancer = make(validate(setting, where="group_data/web.py"), where="group_data/web.py")
    balancer.check(ids)
    assert balancer.deregistration_delay == 5
    balancer.drain(ids[0])
    assert wait_drained(balancer, ids[0], timeout=10).drained
    assert balancer.state(ids[1]).in_service  # the others keep serving
    with pytest.raises(BalancerError, match=f"no registered target {ids[0]}"):
        balancer.check(ids)  # a drained target is not registered any more
    balancer.enable(ids[0])
    assert wait_healthy(balancer, ids[0], timeout=10).in_service


def test_unknown_target_group_fails_before_any_host_is_touched(moto_url, target_group):
    arn, ids = target_group
    bogus = arn.rsplit("/", 2)[0] + "/nosuch/0123456789abcdef"
    balancer = ELBv2(target_group_arn=bogus, region=REGION, endpoint_url=moto_url)
    applied = []
    inv = Inventory("aws", Path("/ops/inventories/aws.py"), ["a"], {}, {}, {"a": Host("a", (), {"iid": ids[0]})})
    runners = StageRunners(
        connect=lambda *a, **k: {"a": None}, apply=lambda *a, **k: applied.append(a), balancer=balancer
    )
    policy = Policy(
        verify=False, reboot="never", balancer=ELBv2Balancer(type="elbv2", target_group_arn=bogus, server="{iid}")
    )
    with pytest.raises(ConfigError, match=r"balancer\.target_group_arn: no elbv2 target group nosuch in us-east-1"):
        Rollout(Project(Path("/nonexistent")), inv, "app", policy, runners=runners).run(["a"])
    assert applied == []


def test_rollout_drains_and_registers_each_target_against_moto(moto_url, target_group):
    arn, ids = target_group
    hosts = ["a", "b", "c"]
    inv = Inventory(
        "aws",
        Path("/ops/inventories/aws.py"),
        hosts,
        {},
        {},
        {h: Host(h, (), {"iid": i}) for h, i in zip(hosts, ids, strict=True)},
    )
    balancer = ELBv2(target_group_arn=arn, region=REGION, endpoint_url=moto_url)
    seen = []

    def apply(project, inv, deploy, batch, **_):
        seen.append({i: balancer.state(i).admin for i in ids})  # what the LB says while the batch is applied
        return DeployRun("aws", deploy, False, [HostRun(h, [OperationResult("x", True, True)]) for h in batch])

    policy = Policy(
        verify=False,
        reboot="never",
        drain_timeout=10,
        healthy_timeout=10,
        balancer=ELBv2Balancer(type="elbv2", target_group_arn=arn, server="{iid}"),
    )
    runners = StageRunners(connect=lambda p, i, b, **k: dict.fromkeys(b), apply=apply, balancer=balancer)
    run = Rollout(Project(Path("/nonexistent")), inv, "app", policy, runners=runners).run(hosts)
    assert run.status == "success", {h.name: (h.stage, h.reason) for h in run.hosts.values()}
    assert seen == [{i: ("drain" if n == k else "ready") for n, i in enumerate(ids)} for k in range(3)]
    assert all(balancer.state(i).in_service for i in ids)


def stubbed(answers: list[str]) -> tuple[ELBv2, Stubber]:
    client = boto3.client("elbv2", region_name=REGION)
    stub = Stubber(client)
    arn = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web/0123456789abcdef"
    for state in answers:
        stub.add_response(
            "describe_target_health",
            {"TargetHealthDescriptions": [{"Target": {"Id": "i-1"}, "TargetHealth": {"State": state}}]},
            {"TargetGroupArn": arn, "Targets": [{"Id": "i-1"}]},
        )
    stub.activate()
    return ELBv2(target_group_arn=arn, client=client), stub


def test_waits_through_draining_until_unused():
    balancer, stub = stubbed(["draining", "draining", "unused"])
    state = wait_drained(balancer, "i-1", timeout=5, interval=0.01)
    assert state.drained and state.admin == "drain"
    stub.assert_no_pending_responses()


def test_a_target_that_never_drains_times_out_naming_it():
    balancer, _stub = stubbed(["draining"] * 200)
    with pytest.raises(WaitTimeout) as err:
        wait_drained(balancer, "i-1", timeout=0.3, interval=0.01)
    assert "waiting for elbv2 target group web to drain i-1" in str(err.value)
    assert "last seen: i-1: drain, unhealthy, 1 sessions" in str(err.value)


def test_initial_is_registered_but_not_yet_in_service():
    balancer, _stub = stubbed(["initial", "initial", "healthy"])
    assert not balancer.state("i-1").in_service
    assert wait_healthy(balancer, "i-1", timeout=5, interval=0.01).in_service
