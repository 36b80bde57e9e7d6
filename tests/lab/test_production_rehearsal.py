"""The production path rehearsed end to end, all real but AWS: moto's server on loopback holds a VPC with the
lab's subnet, EC2 instances whose private addresses are the lab hosts' addresses (tagged Env, Role,
PatchGroup), an ALB target group with them registered, an RDS instance with snapshots, a dead-letter queue,
and a loopback HTTPS endpoint. Only environment variables point boto3 at moto. Then the mission's commands,
literally: `opsrun apply production patching`, `opsrun apply staging patching`, `opsrun verify production
aws`, `opsrun drift production`, `opsrun dr-test production`.

How SSH reaches the lab hosts: as a fleet's are reached. The shipped group_data/production.py and staging.py
log in as `admin` with sudo; the project copy adds only the lab's key, known_hosts, bastion (`ssh_jump`) and
apt repository, as an operator's group_data names their own (the inventory files are this repo's,
unchanged). During the rollouts the hosts refuse root logins and any SSH not from the bastion
(`behind_bastion`); the tests look at the hosts through the lab's console, not SSH.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import time
import urllib.request

import boto3
import pytest
from freezegun import freeze_time

from opsrun.lab import aptrepo
from tests.aws.tls import TLSEndpoint
from tests.conftest import REGION, InBackground, opsrun, opsrun_json
from tests.lab.conftest import demo_versions, install_demo_1_0

pytestmark = pytest.mark.lab
PRODUCTION, STAGING = ["web1", "web2"], ["web3"]
WAVES = {"web1": "wave1", "web2": "wave2", "web3": "wave1"}


@pytest.fixture(scope="module")
def moto(lab):
    from moto.server import ThreadedMotoServer

    from tests.conftest import _free_port

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    url = f"http://127.0.0.1:{port}"
    try:
        yield url
    finally:
        server.stop()


@pytest.fixture(scope="module")
def tls():
    with TLSEndpoint() as endpoint:
        endpoint.serve("shop.rehearsal", days=90)
        yield endpoint


@pytest.fixture(scope="module")
def aws_env(moto, tmp_path_factory):
    """What an operator's shell would hold, pointed at moto: nothing else tells opsrun about AWS."""
    empty = tmp_path_factory.mktemp("aws") / "empty"
    empty.write_text("")
    env = {
        "AWS_ENDPOINT_URL": moto,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_CONFIG_FILE": str(empty),
        "AWS_SHARED_CREDENTIALS_FILE": str(empty),
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    mp = pytest.MonkeyPatch()
    for key, value in env.items():
        mp.setenv(key, value)
    mp.delenv("AWS_PROFILE", raising=False)
    yield env
    mp.undo()


@pytest.fixture(scope="module")
def fleet(lab, addresses, moto, aws_env):
    """The lab hosts as an EC2 fleet: production web1 (wave1), web2 (wave2); staging web3; an ALB target
    group per environment with its hosts registered (deregistration delay 5 s)."""
    urllib.request.urlopen(urllib.request.Request(f"{moto}/moto-api/reset", method="POST"), timeout=10).close()
    ec2, elb = boto3.client("ec2"), boto3.client("elbv2")
    vpc = ec2.create_vpc(CidrBlock="10.231.7.0/24")["Vpc"]["VpcId"]
    hosts_net = next(n for n in ipaddress.ip_network("10.231.7.0/24").subnets(new_prefix=26)
                     if all(ipaddress.ip_address(a) in n for a in addresses.values()))  # fmt: skip
    subnet_a = ec2.create_subnet(VpcId=vpc, CidrBlock=str(hosts_net), AvailabilityZone=f"{REGION}a")
    spare = next(n for n in ipaddress.ip_network("10.231.7.0/24").subnets(new_prefix=26) if n != hosts_net)
    subnet_b = ec2.create_subnet(VpcId=vpc, CidrBlock=str(spare), AvailabilityZone=f"{REGION}b")
    subnets = [subnet_a["Subnet"]["SubnetId"], subnet_b["Subnet"]["SubnetId"]]
    image = ec2.describe_images()["Images"][0]["ImageId"]
    ids = {}
    for name, address in sorted(addresses.items()):
        env = "production" if name in PRODUCTION else "staging"
        tags = {"Name": name, "Env": env, "Role": "web", "PatchGroup": WAVES[name]}
        ids[name] = ec2.run_instances(
            ImageId=image, MinCount=1, MaxCount=1, SubnetId=subnets[0], PrivateIpAddress=address,
            TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}],
        )["Instances"][0]["InstanceId"]  # fmt: skip
    groups = {}
    for env, members in (("production", PRODUCTION), ("staging", STAGING)):
        lb = elb.create_load_balancer(Name=f"{env}-lb", Subnets=subnets)["LoadBalancers"][0]["LoadBalancerArn"]
        tg = elb.create_target_group(Name=f"{env}-web", Protocol="HTTP", Port=80, VpcId=vpc, TargetType="instance")
        arn = tg["TargetGroups"][0]["TargetGroupArn"]
        elb.create_listener(LoadBalancerArn=lb, Protocol="HTTP", Port=80,
                            DefaultActions=[{"Type": "forward", "TargetGroupArn": arn}])  # fmt: skip
        elb.modify_target_group_attributes(
            TargetGroupArn=arn, Attributes=[{"Key": "deregistration_delay.timeout_seconds", "Value": "5"}]
        )
        elb.register_targets(TargetGroupArn=arn, Targets=[{"Id": ids[h]} for h in members])
        groups[env] = arn
    return ids, groups


@pytest.fixture(scope="module")
def cloud(fleet, tls):
    """RDS with automated backups (made 3 days ago) and a fresh manual snapshot, a session cache, an empty
    dead-letter queue."""
    rds = boto3.client("rds")
    with freeze_time(dt.datetime.now(dt.UTC) - dt.timedelta(days=3)):
        rds.create_db_instance(
            DBInstanceIdentifier="production-orders", DBInstanceClass="db.t3.micro", Engine="postgres",
            MasterUsername="opsrun", MasterUserPassword="not-a-secret-0", AllocatedStorage=20,
            BackupRetentionPeriod=7,
        )  # fmt: skip
    rds.create_db_snapshot(DBInstanceIdentifier="production-orders", DBSnapshotIdentifier="nightly")
    boto3.client("elasticache").create_replication_group(
        ReplicationGroupId="production-sessions", ReplicationGroupDescription="sessions", Engine="redis",
        CacheNodeType="cache.t3.micro", NumCacheClusters=2,
    )  # fmt: skip
    boto3.client("sqs").create_queue(QueueName="production-orders-dlq")


@pytest.fixture(scope="module")
def on_host(console):
    """The tests' own look at a host goes through the console: root cannot log in while behind_bastion."""
    return console


@pytest.fixture(scope="module")
def ops(lab, tmp_path_factory, tls, bastion):
    """A copy of this repo's ops content whose production/staging group_data reach the lab as an operator's
    would reach their hosts: the lab's key, known_hosts and apt repository; the TLS endpoint to check."""
    from tests.conftest import copy_ops

    ops = copy_ops(tmp_path_factory.mktemp("rehearsal") / "ops")
    state = json.loads(lab.cfg.state_file.read_text())
    for env in ("production", "staging"):
        gd = ops / "group_data" / f"{env}.py"
        gd.write_text(
            gd.read_text()
            + f'\nssh_key = "{lab.cfg.key}"\nssh_known_hosts_file = "{lab.cfg.known_hosts}"\n'
            + f'ssh_jump = "admin@{bastion}"\n'
            + f"apt_repositories = {[state['apt_repository']]!r}\n"
            + f'aws_checks["tls"] = {{"endpoints": ["{tls.url}"], "warn_days": 30, "fail_days": 14, '
            f'"ca_file": "{tls.ca_file}"}}\n'
            + 'dr = {"backups": [{"name": "RDS snapshots", "rds": "production-orders", "max_age_hours": 26}]}\n'
        )
    return ops


@pytest.fixture
def demo_installed(lab, on_host, web_tier, fleet):
    """opsrun-demo 1.0 on every lab host, from the lab's repository, and every host registered in its
    environment's target group (a test that failed mid-rollout may have left one out)."""
    install_demo_1_0(lab, on_host, PRODUCTION + STAGING)
    ids, groups = fleet
    elb = boto3.client("elbv2")
    for env, members in (("production", PRODUCTION), ("staging", STAGING)):
        elb.register_targets(TargetGroupArn=groups[env], Targets=[{"Id": ids[h]} for h in members])


class TargetRecorder(InBackground):
    """Polls describe_target_health of a target group every 50 ms: (time, {instance id: state})."""

    def __init__(self, arn: str):
        super().__init__()
        self.arn, self.seen = arn, []
        self.client = boto3.client("elbv2")

    def _loop(self) -> None:
        while not self.stop.is_set():
            health = self.client.describe_target_health(TargetGroupArn=self.arn)["TargetHealthDescriptions"]
            self.seen.append((time.time(), {d["Target"]["Id"]: d["TargetHealth"]["State"] for d in health}))
            self.stop.wait(0.05)

    def out_windows(self, target: str) -> list[tuple[float, float]]:
        """Periods in which `target` was not registered (absent from the group's targets)."""
        windows, start = [], None
        for when, states in self.seen:
            if target not in states and start is None:
                start = when
            elif target in states and start is not None:
                windows.append((start, when))
                start = None
        return windows


def dpkg_upgrade_time(on_host, host: str, version: str) -> float:
    line = on_host(host, f"grep -h ' upgrade opsrun-demo:[^ ]* [^ ]* {version}$' /var/log/dpkg.log | tail -1").stdout
    stamp = " ".join(line.split()[:2])
    return dt.datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S").replace(tzinfo=dt.UTC).timestamp()


def test_apply_production_patching_drains_each_host_in_the_alb_wave_by_wave(
    lab, on_host, fleet, cloud, ops, demo_installed, behind_bastion
):
    ids, groups = fleet
    aptrepo.publish(lab.cfg, "1.1")
    with TargetRecorder(groups["production"]) as recorder:
        code, doc = opsrun_json("apply", "production", "patching", project=ops)
    assert code == 0, doc
    assert doc["plan"]["batches"] == [["web1"], ["web2"]]
    assert doc["plan"]["waves"] == ["patch_wave1", "patch_wave2"]
    for h in PRODUCTION:
        host = doc["hosts"][h]
        assert (host["outcome"], host["in_balancer"], host["balancer_target"]) == ("done", True, ids[h])
        assert {"package": "opsrun-demo", "from": "1.0", "to": "1.1"} in host["upgrades"]
        # moto's recorded states: out of the target group exactly once, and the upgrade happened then
        [(out, back)] = recorder.out_windows(ids[h])
        upgraded = dpkg_upgrade_time(on_host, h, "1.1")
        assert int(out) <= upgraded <= back + 1, (h, out, upgraded, back)
        others = [i for n, i in ids.items() if n in PRODUCTION and n != h]
        assert all(o in states for when, states in recorder.seen if out < when < back for o in others)
    assert all(set(states) == {ids[h] for h in PRODUCTION} for _w, states in recorder.seen[-3:])
    assert demo_versions(on_host, PRODUCTION) == dict.fromkeys(PRODUCTION, "1.1")
    assert demo_versions(on_host, STAGING) == {"web3": "1.0"}  # staging is another inventory

    history = json.loads(opsrun("history", "show", str(doc["run_id"]), "--format", "json", project=ops).stdout)
    assert {history["hosts"][h]["balancer_target"] for h in PRODUCTION} == {ids[h] for h in PRODUCTION}


def test_apply_production_patching_with_a_reboot(lab, on_host, fleet, cloud, ops, demo_installed, behind_bastion):
    boot = {h: on_host(h, "cat /proc/sys/kernel/random/boot_id").stdout for h in PRODUCTION}
    aptrepo.publish(lab.cfg, "1.2", reboot=True)
    code, doc = opsrun_json("apply", "production", "patching", project=ops)
    assert code == 0, doc
    for h in PRODUCTION:
        assert (doc["hosts"][h]["outcome"], doc["hosts"][h]["rebooted"]) == ("done", True)
        assert on_host(h, "cat /proc/sys/kernel/random/boot_id").stdout != boot[h]
    assert demo_versions(on_host, PRODUCTION) == dict.fromkeys(PRODUCTION, "1.2")


def test_apply_staging_patching_touches_only_staging_hosts(
    lab, on_host, fleet, cloud, ops, demo_installed, behind_bastion
):
    before = demo_versions(on_host, PRODUCTION)
    aptrepo.publish(lab.cfg, "1.3")
    code, doc = opsrun_json("apply", "staging", "patching", project=ops)
    assert code == 0, doc
    assert list(doc["hosts"]) == STAGING
    assert doc["hosts"]["web3"]["balancer_target"] == fleet[0]["web3"]
    assert demo_versions(on_host, STAGING) == {"web3": "1.3"}
    assert demo_versions(on_host, PRODUCTION) == before


def test_verify_production_aws_passes_then_fails(fleet, cloud, ops, tls):
    code, doc = opsrun_json("verify", "production", "aws", project=ops)
    assert code == 0, doc
    tls.serve("shop.rehearsal", days=5)
    boto3.client("rds").delete_db_snapshot(DBSnapshotIdentifier="nightly")
    sqs = boto3.client("sqs")
    sqs.send_message(QueueUrl=sqs.get_queue_url(QueueName="production-orders-dlq")["QueueUrl"], MessageBody="x")
    try:
        code, doc = opsrun_json("verify", "production", "aws", project=ops)
        assert code == 1, doc
        messages = "\n".join(t["message"] or "" for t in doc["hosts"]["controller"]["tests"])
        assert f"certificate of {tls.url} (CN=shop.rehearsal) expires in 5.0 days" in messages
        assert "RDS production-orders: newest snapshot rds:production-orders-" in messages
        assert "dead-letter queue production-orders-dlq holds 1 message(s)" in messages

        code, drift = opsrun_json("drift", "production", project=ops)
        assert code == 3, drift  # the cloud side's failures are findings
        assert {f["host"] for f in drift["findings"] if f["deploy"] == "aws"} == {"controller"}
        assert drift["unreachable"] == {}

        proc = opsrun("dr-test", "production", "--format", "json", project=ops)
        report = json.loads(proc.stdout)
        assert proc.returncode == 1, proc.stderr
        assert any(c["system"] == "aws" and c["status"] == "FAIL" for c in report["checks"])
    finally:
        tls.serve("shop.rehearsal", days=90)
        boto3.client("rds").create_db_snapshot(DBInstanceIdentifier="production-orders", DBSnapshotIdentifier="nightly")
        sqs.purge_queue(QueueUrl=sqs.get_queue_url(QueueName="production-orders-dlq")["QueueUrl"])


def test_drift_production_finds_a_target_deregistered_by_hand(fleet, cloud, ops):
    """A target taken out of the ALB's target group behind opsrun's back (the console, another tool) is drift
    of its own kind on the production fleet, until it is registered again."""
    ids, groups = fleet
    elb = boto3.client("elbv2")
    elb.deregister_targets(TargetGroupArn=groups["production"], Targets=[{"Id": ids["web2"]}])
    try:
        code, doc = opsrun_json("drift", "production", project=ops)
        assert code == 3, doc
        out = [(f["host"], f["deploy"], f["cause"]) for f in doc["findings"] if f["verdict"] == "out_of_balancer"]
        assert out == [("web2", "balancer", "corrective")]
        [found] = [f for f in doc["findings"] if f["verdict"] == "out_of_balancer"]
        assert "left so by nobody opsrun knows of" in found["detail"]
    finally:
        elb.register_targets(TargetGroupArn=groups["production"], Targets=[{"Id": ids["web2"]}])
    code, doc = opsrun_json("drift", "production", project=ops)
    assert [f for f in doc["findings"] if f["verdict"] == "out_of_balancer"] == []
    assert ("web2", "balancer") in {(r["host"], r["deploy"]) for r in doc["resolved"]}
