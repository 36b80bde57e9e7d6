"""inventories/production.py (opsrun.aws.ec2_hosts) against moto's EC2 on loopback, reached through
environment variables only (AWS_ENDPOINT_URL...), as the file runs for an operator; AccessDenied and
throttling from scripted answers (botocore's Stubber), which moto does not give."""

from __future__ import annotations

import subprocess
import sys

import boto3
import pytest
from botocore.stub import Stubber

from opsrun.aws import ec2_hosts
from opsrun.errors import ConfigError
from opsrun.model import inventory
from opsrun.model.project import Project
from tests.aws.conftest import REGION, Fleet
from tests.conftest import copy_ops, opsrun


@pytest.fixture
def ops(tmp_path):
    return copy_ops(tmp_path / "ops")


@pytest.fixture
def fleet(moto_env):
    return Fleet(moto_env)


def test_hosts_groups_and_data_come_from_the_tags(fleet, ops):
    web1 = fleet.launch("10.20.0.11", "a", Name="web1", Env="production", Role="web", PatchGroup="wave1")
    web2 = fleet.launch("10.20.0.140", "b", Name="web2", Env="production", Role="web,cache", PatchGroup="wave2")
    fleet.launch("10.20.0.12", "a", Name="stage1", Env="staging", Role="web")
    stopped = fleet.launch("10.20.0.13", "a", Name="web9", Env="production", Role="web")
    fleet.ec2.stop_instances(InstanceIds=[stopped])

    inv = inventory.load(Project(ops), "production")

    assert list(inv.hosts) == ["web1", "web2"]  # running, Env=production only
    assert inv.select("web") == ["web1", "web2"]
    assert inv.select("cache") == ["web2"]
    assert inv.select("patch_wave1") == ["web1"]
    assert inv.select("az_us_east_1b") == ["web2"]
    assert set(inv.hosts["web2"].groups) == {"web", "cache", "patch_wave2", "az_us_east_1b", "production"}
    data = inv.hosts["web1"].data
    assert (data["ssh_hostname"], data["ec2_instance_id"], data["ec2_zone"]) == ("10.20.0.11", web1, "us-east-1a")
    assert data["ec2_tags"] == {"Name": "web1", "Env": "production", "Role": "web", "PatchGroup": "wave1"}
    assert inv.hosts["web2"].data["ec2_instance_id"] == web2
    # group_data applies: web.py through the Role tag, production.py through the file's own group
    assert inv.hosts["web1"].data["nginx_listen_port"] == 80
    assert inv.hosts["web1"].data["balancer"]["target_group"] == "production-web"
    assert inv.hosts["web1"].data["ssh_strict_host_key_checking"] == "yes"


def test_a_missing_or_shared_name_becomes_the_instance_id(fleet, ops):
    nameless = fleet.launch(Env="production", Role="web")
    twins = [fleet.launch(Name="web", Env="production", Role="web") for _ in range(2)]
    single = fleet.launch(Name="web3", Env="production", Role="web")
    inv = inventory.load(Project(ops), "production")
    assert sorted(inv.hosts) == sorted([nameless, *twins, "web3"])
    assert inv.hosts["web3"].data["ec2_instance_id"] == single


def test_a_name_tag_that_is_no_host_name_becomes_the_instance_id(fleet, ops):
    """A Name tag is free text ("web 1 (old)", "admin@web1"); a host name must be one word ssh and testinfra
    read as it is."""
    spaced = fleet.launch(Name="web 1 (old)", Env="production", Role="web")
    at = fleet.launch(Name="admin@web1", Env="production", Role="web")
    fleet.launch(Name="web3", Env="production", Role="web")
    inv = inventory.load(Project(ops), "production")
    assert sorted(inv.hosts) == sorted([spaced, at, "web3"])


def test_pages_through_many_instances(fleet):
    ids = {fleet.launch(Name=f"h{i:02d}", Env="production", Role="web") for i in range(23)}
    client = boto3.client("ec2", region_name=REGION)
    pages = []
    client.meta.events.register("after-call.ec2.DescribeInstances", lambda **kw: pages.append(1))
    groups = ec2_hosts(env="production", page_size=5, client=client)
    assert {d["ec2_instance_id"] for _n, d in groups["all"][0]} == ids
    assert len(pages) >= 5  # moto pages by reservation: one instance each here


def test_public_address_by_choice_and_a_clear_error_when_there_is_none(fleet):
    fleet.launch(Name="web1", Env="production", Role="web")
    with pytest.raises(ConfigError, match=r"address: instance i-\w+ \(web1\) has no PublicIpAddress"):
        ec2_hosts(env="production", address="public")
    groups = ec2_hosts(env="production", address="private_dns")
    assert groups["all"][0][0][1]["ssh_hostname"].endswith(".internal")


def test_pyinfra_cli_loads_the_same_inventory_file(fleet, ops):
    fleet.launch("10.20.0.11", Name="web1", Env="production", Role="web", PatchGroup="wave1")
    proc = subprocess.run(
        [sys.executable, "-m", "pyinfra", "inventories/production.py", "debug-inventory"],
        cwd=ops,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout + proc.stderr
    assert "web1" in out and "10.20.0.11" in out and "patch_wave1" in out


def scripted(code: str) -> boto3.client:
    client = boto3.client("ec2", region_name=REGION)
    stub = Stubber(client)
    stub.add_client_error("describe_instances", service_error_code=code, service_message=f"scripted {code}")
    stub.activate()
    return client


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("UnauthorizedOperation", "credentials: AWS refused to list the EC2 instances of production in us-east-1: "
         "UnauthorizedOperation: scripted UnauthorizedOperation Fix: allow ec2:DescribeInstances"),
        ("RequestLimitExceeded", "throttling: AWS kept throttling the calls to list the EC2 instances of production "
         "in us-east-1 after botocore's retries: RequestLimitExceeded. Fix: run again in a minute"),
    ],
)  # fmt: skip
def test_access_denied_and_throttling_name_the_fix(code, expected):
    with pytest.raises(ConfigError) as err:
        ec2_hosts(env="production", client=scripted(code))
    assert expected in str(err.value)
    assert err.value.exit_code == 2


def test_no_region_exits_2_naming_the_fix(moto_env, ops, monkeypatch):
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    proc = opsrun("apply", "production", "patching", project=ops)
    assert proc.returncode == 2, proc.stderr
    assert "inventories/production.py: region: no AWS region for ec2. Fix: export AWS_REGION" in proc.stderr


def test_no_credentials_exits_2_naming_the_fix(moto_env, ops, monkeypatch):
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    proc = opsrun("apply", "production", "patching", project=ops)
    assert proc.returncode == 2, proc.stderr
    assert "production.py: credentials: no AWS credentials to list the EC2 instances of production" in proc.stderr


def test_no_instance_exits_2_naming_the_tag(fleet, ops):
    fleet.launch(Name="web1", Env="staging", Role="web")
    proc = opsrun("apply", "production", "patching", project=ops)
    assert proc.returncode == 2, proc.stderr
    assert "tag:Env: no running EC2 instance tagged Env=production in us-east-1. Fix: tag the instances" in proc.stderr


def test_instances_without_the_role_tag_exit_2_before_any_host_is_touched(moto_env, ops, no_ssh):
    port, seen = no_ssh
    fleet = Fleet(moto_env, cidr="127.0.0.0/24")  # the hosts' addresses are this machine's loopback
    fleet.launch("127.0.0.11", Name="web1", Env="production", Role="web")
    bare = fleet.launch("127.0.0.12", Name="web2", Env="production")
    (ops / "group_data" / "production.py").write_text(
        (ops / "group_data" / "production.py").read_text() + f"\nssh_port = {port}\n"
    )
    proc = opsrun("apply", "production", "patching", project=ops)
    assert proc.returncode == 2, proc.stderr
    assert f"tag:Role: 1 instance(s) have no Role tag: {bare}. Fix: tag each instance Role=ROLE" in proc.stderr
    assert seen == []
