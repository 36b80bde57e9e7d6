"""AWS APIs for the tests: moto's server on loopback, and credentials that can only reach it."""

from __future__ import annotations

import pytest

from tests.conftest import REGION, moto_url  # noqa: F401 - the fixture, for this folder's tests


@pytest.fixture(autouse=True)
def aws_env(monkeypatch):
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        monkeypatch.setenv(key, value)


def reset_moto(url: str) -> None:
    """Empty moto's state (POST /moto-api/reset): every test builds the AWS side it needs."""
    import urllib.request

    urllib.request.urlopen(urllib.request.Request(f"{url}/moto-api/reset", method="POST"), timeout=10).close()


@pytest.fixture
def moto_env(moto_url, monkeypatch, tmp_path):  # noqa: F811 - the fixture imported above
    """Only environment variables point boto3 at moto, as an operator's shell would (no test hook in any
    file): the endpoint, fake credentials, empty config files, no instance metadata. moto starts empty."""
    reset_moto(moto_url)
    empty = tmp_path / "aws-empty"
    empty.write_text("")
    for key, value in {
        "AWS_ENDPOINT_URL": moto_url,
        "AWS_CONFIG_FILE": str(empty),
        "AWS_SHARED_CREDENTIALS_FILE": str(empty),
        "AWS_EC2_METADATA_DISABLED": "true",
    }.items():
        monkeypatch.setenv(key, value)
    for key in ("AWS_PROFILE", "AWS_REGION", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(key, raising=False)
    return moto_url


class Fleet:
    """EC2 instances with chosen addresses and tags, and ALB target groups, in moto."""

    def __init__(self, url: str, cidr: str = "10.20.0.0/24"):
        import ipaddress

        import boto3

        kw = {"region_name": REGION, "endpoint_url": url}
        self.ec2, self.elb = boto3.client("ec2", **kw), boto3.client("elbv2", **kw)
        self.vpc = self.ec2.create_vpc(CidrBlock=cidr)["Vpc"]["VpcId"]
        halves = list(ipaddress.ip_network(cidr).subnets(1))
        self.subnets = {
            zone: self.ec2.create_subnet(VpcId=self.vpc, CidrBlock=str(net), AvailabilityZone=f"{REGION}{zone}")[
                "Subnet"
            ]["SubnetId"]
            for zone, net in zip("ab", halves, strict=True)
        }
        self.image = self.ec2.describe_images()["Images"][0]["ImageId"]

    def launch(self, ip: str | None = None, zone: str = "a", **tags: str) -> str:
        kwargs = {"PrivateIpAddress": ip} if ip else {}
        spec = [{"ResourceType": "instance", "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}]
        answer = self.ec2.run_instances(
            ImageId=self.image, MinCount=1, MaxCount=1, SubnetId=self.subnets[zone], TagSpecifications=spec, **kwargs
        )
        return str(answer["Instances"][0]["InstanceId"])

    def target_group(
        self,
        name: str,
        targets: list[str],
        *,
        delay: int = 300,
        target_type: str = "instance",
        tags=None,
        lb_type: str = "application",
    ) -> str:
        """A target group behind a new load balancer's listener (HTTP; TCP for a network one), `targets` in it."""
        protocol = "TCP" if lb_type == "network" else "HTTP"
        lb = self.elb.create_load_balancer(Name=f"{name}-lb", Subnets=list(self.subnets.values()), Type=lb_type)
        tg = self.elb.create_target_group(
            Name=name,
            Protocol=protocol,
            Port=3001,
            VpcId=self.vpc,
            TargetType=target_type,
            **({"Tags": [{"Key": k, "Value": v} for k, v in tags.items()]} if tags else {}),
        )["TargetGroups"][0]["TargetGroupArn"]
        self.elb.create_listener(
            LoadBalancerArn=lb["LoadBalancers"][0]["LoadBalancerArn"],
            Protocol=protocol,
            Port=80,
            DefaultActions=[{"Type": "forward", "TargetGroupArn": tg}],
        )
        self.elb.modify_target_group_attributes(
            TargetGroupArn=tg, Attributes=[{"Key": "deregistration_delay.timeout_seconds", "Value": str(delay)}]
        )
        if targets:
            self.elb.register_targets(TargetGroupArn=tg, Targets=[{"Id": t} for t in targets])
        return str(tg)
