"""The ALB's target group found by name or tags (no ARN in any file), instance and ip targets, and the
pre-flight checks that stop `opsrun apply` before any host is touched: against moto on loopback, reached
through environment variables only."""

from __future__ import annotations

import pytest

from opsrun.balancers import make, validate, wait_drained, wait_healthy
from opsrun.errors import ConfigError
from opsrun.rollout import group_waves, make_plan
from tests.aws.conftest import Fleet
from tests.conftest import copy_ops, opsrun

WHERE = "group_data/production.py"


def built(setting):
    """The balancer a group_data `balancer` describes, as the rollout builds it: validated, then made."""
    return make(validate(setting, where=WHERE), where=WHERE)


@pytest.fixture
def fleet(moto_env):
    return Fleet(moto_env)


def test_finds_the_target_group_by_name_and_drives_instance_targets(fleet):
    ids = [fleet.launch(Name=f"web{i}", Env="production", Role="web") for i in (1, 2)]
    fleet.target_group("production-web", ids, delay=20)
    balancer = built({"type": "elbv2", "target_group": "production-web"})
    balancer.check(ids)
    assert (balancer.deregistration_delay, balancer.target_type) == (20, "instance")
    balancer.drain(ids[0])
    assert wait_drained(balancer, ids[0], timeout=5, interval=0.05).drained
    assert balancer.state(ids[1]).in_service
    balancer.enable(ids[0])
    assert wait_healthy(balancer, ids[0], timeout=5, interval=0.05).in_service


def test_finds_the_target_group_by_tags_and_refuses_an_ambiguous_match(fleet):
    ids = [fleet.launch(Name="web1", Env="production", Role="web")]
    fleet.target_group("blue", ids, tags={"Env": "production", "Tier": "web", "Colour": "blue"})
    fleet.target_group("green", [], tags={"Env": "production", "Tier": "web", "Colour": "green"})
    blue = built({"type": "elbv2", "target_group_tags": {"Tier": "web", "Colour": "blue"}})
    blue.check(ids)
    assert blue.arn.split("/")[-2] == "blue"
    both = built({"type": "elbv2", "target_group_tags": {"Env": "production", "Tier": "web"}})
    with pytest.raises(ConfigError) as err:
        both.check(ids)
    assert str(err.value) == (
        f"{WHERE}: balancer.target_group_tags: 2 target groups have the tags of elbv2 target group "
        "Env=production,Tier=web: blue, green. Fix: add a tag that tells them apart, or name the target group "
        "(target_group)"
    )


def test_ip_target_groups_take_the_address(fleet):
    ip = "10.20.0.21"
    iid = fleet.launch(ip, Name="web1", Env="production", Role="web")
    fleet.target_group("production-ip", [ip], target_type="ip")
    balancer = built({"type": "elbv2", "target_group": "production-ip"})
    balancer.check([ip])
    assert balancer.target_type == "ip"
    balancer.drain(ip)
    assert wait_drained(balancer, ip, timeout=5, interval=0.05).drained
    balancer.enable(ip)
    assert balancer.state(ip).in_service
    with pytest.raises(ConfigError, match=r"balancer\.server: .* has ip targets, but the hosts' servers are instance"):
        balancer.check([iid])


def test_an_unknown_target_group_name_is_a_config_error(fleet):
    balancer = built({"type": "elbv2", "target_group": "nosuch"})
    with pytest.raises(ConfigError) as err:
        balancer.check(["i-0123456789abcdef0"])
    assert str(err.value).startswith(
        f"{WHERE}: balancer.target_group: no elbv2 target group nosuch in us-east-1. Fix: check the name or tags"
    )
    assert err.value.exit_code == 2


def production(fleet, ops, port, **rolling):
    """Two web hosts tagged Env=production in two patch waves at this machine's loopback addresses, the
    target group of group_data/production.py with them registered; SSH (if any) would reach `port`."""
    ids = [
        fleet.launch(f"127.0.0.{10 + i}", Name=f"web{i}", Env="production", Role="web", PatchGroup=f"wave{i}")
        for i in (1, 2)
    ]
    gd = ops / "group_data" / "production.py"
    extra = "".join(f"patching_rolling[{k!r}] = {v!r}\n" for k, v in rolling.items())
    gd.write_text(gd.read_text() + f"\nssh_port = {port}\n" + extra)
    return ids


@pytest.fixture
def loopback_fleet(moto_env):
    return Fleet(moto_env, cidr="127.0.0.0/24")


def test_a_drain_timeout_shorter_than_the_deregistration_delay_exits_2_before_any_host(
    loopback_fleet, tmp_path, no_ssh
):
    port, seen = no_ssh
    ops = copy_ops(tmp_path / "ops")
    ids = production(loopback_fleet, ops, port, drain_timeout=30)
    loopback_fleet.target_group("production-web", ids, delay=300)
    proc = opsrun("apply", "production", "patching", project=ops)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert (
        f"{ops}/group_data/production.py: patching_rolling.drain_timeout: the drain timeout (30s) is shorter than "
        "the deregistration delay of elbv2 target group production-web (300s): draining hosts would time out. "
        "Fix: set drain_timeout to at least 300"
    ) in proc.stderr
    assert seen == [], "a host was contacted"
    assert "connect" not in proc.stderr


def test_a_target_group_that_does_not_exist_exits_2_before_any_host(loopback_fleet, tmp_path, no_ssh):
    port, seen = no_ssh
    ops = copy_ops(tmp_path / "ops")
    production(loopback_fleet, ops, port)  # and no target group named production-web
    proc = opsrun("apply", "production", "patching", project=ops)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "balancer.target_group: no elbv2 target group production-web in us-east-1" in proc.stderr
    assert seen == [], "a host was contacted"


def test_the_plan_goes_wave_by_wave_and_limit_takes_one_wave(loopback_fleet, tmp_path, no_ssh):
    port, _seen = no_ssh
    ops = copy_ops(tmp_path / "ops")
    ids = production(loopback_fleet, ops, port)
    loopback_fleet.target_group("production-web", ids, delay=300)
    from opsrun.model import inventory
    from opsrun.model.project import Project

    inv = inventory.load(Project(ops), "production")
    assert inv.select("patch_wave1") == ["web1"]
    hosts = list(inv.hosts)
    waves = group_waves(hosts, {h: inv.hosts[h].groups for h in hosts}, "patch_")
    assert make_plan(hosts, (2,), 0, waves).to_dict() == {
        "batches": [["web1"], ["web2"]],
        "max_fail": 0,
        "waves": ["patch_wave1", "patch_wave2"],
    }
