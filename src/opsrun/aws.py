"""The hosts of an EC2 fleet, by tags, for an inventory file (boto3 only, imported when called).

    # inventories/production.py
    from opsrun.aws import ec2_hosts

    globals().update(ec2_hosts(env="production"))

`ec2_hosts` returns pyinfra inventory groups (what a module-level list is to pyinfra's CLI, so both
`opsrun` and `pyinfra inventories/production.py DEPLOY` load the file):

    all                  every running instance tagged Env=ENV, as (name, host data)
    ROLE                 one group per value of the `Role` tag (comma-separated), so group_data/ROLE.py applies
    patch_WAVE           one group per value of the `PatchGroup` tag (PatchGroup=wave1 -> patch_wave1)
    az_ZONE              the availability zone (us-east-1a -> az_us_east_1a)

Host name: the `Name` tag; the instance id when the tag is missing, shared by several instances or not a
host name (opsrun.model.inventory.HOST_NAME: free text such as "web 1 (old)"). Host data: `ssh_hostname` (the
private address by default; `address="public" | "private_dns" | "public_dns"`), `ec2_instance_id`,
`ec2_private_ip`, `ec2_zone`, `ec2_tags`. SSH user, key and known_hosts come from group_data, as for any
inventory.

Region, credentials and endpoint are found the usual AWS way (environment, ~/.aws, instance role); the
endpoint can come from botocore's own variables (AWS_ENDPOINT_URL, AWS_ENDPOINT_URL_EC2), which is how the
tests point the very same inventory file at moto. Every way this can go wrong before a host is touched
(no region, no credentials, AccessDenied, throttling, no instance, an instance without the role tag) is a
ConfigError naming the inventory file, the setting and the fix.
"""

from __future__ import annotations

import re
import sys
from collections import Counter
from typing import Any

from opsrun.errors import ConfigError
from opsrun.model.inventory import HOST_NAME

ADDRESSES = {
    "private": "PrivateIpAddress",
    "public": "PublicIpAddress",
    "private_dns": "PrivateDnsName",
    "public_dns": "PublicDnsName",
}
GROUP_UNSAFE = re.compile(r"[^A-Za-z0-9_]+")
ACCESS_DENIED = {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "UnrecognizedClientException"}
THROTTLED = {"Throttling", "ThrottlingException", "RequestLimitExceeded", "TooManyRequestsException"}
BAD_CREDENTIALS = {"AuthFailure", "InvalidClientTokenId", "SignatureDoesNotMatch", "ExpiredToken"}


def group_name(prefix: str, value: str) -> str:
    """A tag value as a group name pyinfra and --limit accept: `patch_` + `wave 1` -> `patch_wave_1`."""
    return prefix + GROUP_UNSAFE.sub("_", value.strip()).strip("_").lower()


def _caller_file() -> str:
    frame = sys._getframe(2)  # the inventory file that called ec2_hosts
    return str(frame.f_globals.get("__file__", "<inventory>"))


RETRY_MODES = ("standard", "adaptive")
MAX_ATTEMPTS = 5  # botocore's standard mode makes 3; throttled APIs (DescribeTargetHealth) get a little more room
ATTEMPTS_RANGE = range(1, 11)


def client_config(*, total_max_attempts: int | None = None, **options: Any) -> Any:
    """The botocore Config of every boto3 client opsrun makes: retry mode `standard` (or AWS_RETRY_MODE=adaptive)
    with at most MAX_ATTEMPTS attempts a call (AWS_MAX_ATTEMPTS, 1 to 10; `total_max_attempts` when the caller
    retries itself). `options`: more Config settings (timeouts). A bad value is a ConfigError naming the variable."""
    import os

    from botocore.config import Config

    mode = os.environ.get("AWS_RETRY_MODE") or "standard"
    if mode not in RETRY_MODES:
        raise ConfigError(
            "environment", f"AWS_RETRY_MODE is {mode!r}.", field="AWS_RETRY_MODE", fix="use standard or adaptive"
        )
    if total_max_attempts is None:
        given = os.environ.get("AWS_MAX_ATTEMPTS") or str(MAX_ATTEMPTS)
        if not given.isdigit() or int(given) not in ATTEMPTS_RANGE:
            raise ConfigError(
                "environment",
                f"AWS_MAX_ATTEMPTS is {given!r}.",
                field="AWS_MAX_ATTEMPTS",
                fix=f"use a whole number from 1 to 10, or leave it unset ({MAX_ATTEMPTS})",
            )
        total_max_attempts = int(given)
    return Config(retries={"mode": mode, "total_max_attempts": total_max_attempts}, **options)


def client(service: str, **kwargs: Any) -> Any:
    """boto3.client(service, **kwargs) with client_config() unless `config` is given: for the clients whose
    region and errors their callers handle (the DR checks, the cloud-side suite, SNS)."""
    import boto3

    return boto3.client(service, **{"config": client_config(), **kwargs})


def make_client(service: str, *, where: str, region: str | None = None, endpoint_url: str | None = None) -> Any:
    """A boto3 client, with AWS's usual lookup of region, credentials and endpoint (AWS_ENDPOINT_URL...),
    and the retries of client_config (throttling retried with backoff by botocore).

    No region anywhere is a ConfigError naming `where` and the ways to give one."""
    import boto3
    from botocore.exceptions import NoRegionError

    try:
        return boto3.client(service, region_name=region, endpoint_url=endpoint_url, config=client_config())
    except NoRegionError as exc:
        raise ConfigError(
            where,
            f"no AWS region for {service}.",
            field="region",
            fix="export AWS_REGION (or AWS_DEFAULT_REGION), set region in ~/.aws/config, or pass region=",
        ) from exc


def call_error(exc: BaseException, *, where: str, action: str, permission: str) -> ConfigError:
    """What an AWS call that failed before any host was touched means to the operator, as a ConfigError."""
    from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError

    if isinstance(exc, NoCredentialsError):
        return ConfigError(
            where,
            f"no AWS credentials to {action}.",
            field="credentials",
            fix="export AWS_PROFILE (or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY), run `aws sso login`, "
            "or run opsrun where an instance or task role applies",
        )
    if isinstance(exc, EndpointConnectionError):
        return ConfigError(
            where,
            f"cannot reach AWS to {action}: {exc}.",
            field="endpoint",
            fix="check the network, the region, and AWS_ENDPOINT_URL* if one is set",
        )
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code, message = str(error.get("Code", "")), str(error.get("Message", ""))
        if code in ACCESS_DENIED:
            return ConfigError(
                where,
                f"AWS refused to {action}: {code}: {message}",
                field="credentials",
                fix=f"allow {permission} for the identity opsrun runs as (aws sts get-caller-identity)",
            )
        if code in BAD_CREDENTIALS:
            return ConfigError(
                where,
                f"AWS did not accept the credentials to {action}: {code}: {message}",
                field="credentials",
                fix="refresh the credentials (aws sso login, or a new access key) and check the profile",
            )
        if code in THROTTLED:
            return ConfigError(
                where,
                f"AWS kept throttling the calls to {action} after botocore's retries: {code}.",
                field="throttling",
                fix="run again in a minute, or allow more retries: export AWS_MAX_ATTEMPTS=10",
            )
        return ConfigError(where, f"AWS answered {code} to {action}: {message}", fix="see the AWS message above")
    return ConfigError(where, f"cannot {action}: {type(exc).__name__}: {exc}.")


def ec2_hosts(
    *,
    env: str,
    env_tag: str = "Env",
    role_tag: str = "Role",
    wave_tag: str = "PatchGroup",
    address: str = "private",
    region: str | None = None,
    filters: dict[str, list[str]] | None = None,
    page_size: int | None = None,
    client: Any = None,
) -> dict[str, Any]:
    """The running instances tagged `env_tag`=`env`, as pyinfra inventory groups (see the module doc).

    `filters`: more DescribeInstances filters (e.g. {"tag:Team": ["payments"]}). `client`: an EC2 client
    to use instead of boto3's default one (tests pass one with scripted answers)."""
    where = _caller_file()
    if address not in ADDRESSES:
        choices = ", ".join(ADDRESSES)
        raise ConfigError(where, f"unknown address {address!r}.", field="address", fix=f"use one of: {choices}")
    ec2 = client or make_client("ec2", where=where, region=region)
    region_name = ec2.meta.region_name
    wanted = [
        {"Name": f"tag:{env_tag}", "Values": [env]},
        {"Name": "instance-state-name", "Values": ["running"]},
        *({"Name": k, "Values": list(v)} for k, v in (filters or {}).items()),
    ]
    from botocore.exceptions import BotoCoreError, ClientError

    instances: list[dict[str, Any]] = []
    try:
        paging = {"PageSize": page_size} if page_size else {}
        for page in ec2.get_paginator("describe_instances").paginate(Filters=wanted, PaginationConfig=paging):
            for reservation in page.get("Reservations", []):
                instances += reservation.get("Instances", [])
    except (BotoCoreError, ClientError) as exc:
        action = f"list the EC2 instances of {env} in {region_name}"
        raise call_error(exc, where=where, action=action, permission="ec2:DescribeInstances") from exc
    if not instances:
        raise ConfigError(
            where,
            f"no running EC2 instance tagged {env_tag}={env} in {region_name}.",
            field=f"tag:{env_tag}",
            fix=f"tag the instances {env_tag}={env} (and start them), or check the region (AWS_REGION)",
        )
    return fleet_groups(instances, where=where, role_tag=role_tag, wave_tag=wave_tag, address=address)


def fleet_groups(
    instances: list[dict[str, Any]], *, where: str, role_tag: str, wave_tag: str, address: str
) -> dict[str, Any]:
    """DescribeInstances' instances as pyinfra groups (pure: tested on plain dicts)."""
    instances = sorted(instances, key=lambda i: (_tags(i).get("Name", ""), i["InstanceId"]))
    names = Counter(_tags(i).get("Name") for i in instances)
    no_role = [i["InstanceId"] for i in instances if not _roles(_tags(i).get(role_tag, ""))]
    if no_role:
        raise ConfigError(
            where,
            f"{len(no_role)} instance(s) have no {role_tag} tag: {', '.join(no_role[:10])}.",
            field=f"tag:{role_tag}",
            fix=f"tag each instance {role_tag}=ROLE (comma-separated roles, e.g. web,patching), so that "
            "group_data/ROLE.py applies",
        )
    hosts: list[tuple[str, dict[str, Any]]] = []
    groups: dict[str, list[str]] = {}
    for inst in instances:
        tags = _tags(inst)
        iid = inst["InstanceId"]
        name = tags.get("Name") or iid
        if names[tags.get("Name")] > 1 or not HOST_NAME.fullmatch(name):
            name = iid  # a shared Name would merge hosts, free text is no host name: each keeps its own id
        key = ADDRESSES[address]
        reach = inst.get(key)
        if not reach:
            raise ConfigError(
                where,
                f"instance {iid} ({name}) has no {key}.",
                field="address",
                fix='use address="private" (the default), or give the instance that address',
            )
        zone = inst.get("Placement", {}).get("AvailabilityZone", "")
        data = {
            "ssh_hostname": reach,
            "ec2_instance_id": iid,
            "ec2_private_ip": inst.get("PrivateIpAddress"),
            "ec2_zone": zone,
            "ec2_tags": tags,
        }
        hosts.append((name, data))
        member = [*_roles(tags[role_tag])]
        if tags.get(wave_tag, "").strip():
            member.append(group_name("patch_", tags[wave_tag]))
        if zone:
            member.append(group_name("az_", zone))
        for g in member:
            groups.setdefault(g, []).append(name)
    reserved = {"all"} & set(groups)
    if reserved:
        raise ConfigError(
            where, f"a {role_tag} tag says {', '.join(reserved)}.", field=f"tag:{role_tag}", fix="rename that role"
        )
    return {"all": (hosts, {}), **dict(sorted(groups.items()))}


def _tags(instance: dict[str, Any]) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in instance.get("Tags", [])}


def _roles(value: str) -> list[str]:
    return [group_name("", r) for r in value.split(",") if r.strip()]
