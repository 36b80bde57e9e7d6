"""AWS ELBv2 (ALB/NLB) target groups through boto3.

The target group is found by name (`target_group`) or by tags (`target_group_tags`, exactly one match),
so no ARN sits in a file (`target_group_arn` is still accepted). A target is the instance id for an
`instance` target group (the host's `ec2_instance_id`, the default `server`) or the address for an `ip`
one (`"server": "{ec2_private_ip}"`).

check:   the target group exists, its target type fits the servers, each server is registered, and its
         `deregistration_delay.timeout_seconds` is read into `deregistration_delay` (the rollout refuses
         to start when its drain timeout is shorter; see Rollout.check)
drain:   deregister_targets; the target is `draining` until its connections end or the delay passes
drained: describe_target_health, polled with a deadline (balancers.base.wait_all), says `unused`
         (Target.NotRegistered) or no longer lists it; `draining` is "not yet"
enable:  register_targets
healthy: describe_target_health says `healthy` (`initial` until the health checks pass), polled the same way

stats:   CloudWatch's target-group metrics (balancers.elbv2_metrics), for a canary's figures

A batch's waits read all its targets in one describe_target_health (`states`) every `poll_interval` seconds
(3 by default, jittered by `poll_jitter`), not one call per host every 0.2 s.
Region, credentials and endpoint come the usual AWS way (AWS_ENDPOINT_URL_ELASTIC_LOAD_BALANCING_V2 in the
tests); botocore's retry mode as opsrun.aws.client_config sets it. A call still throttled after those retries
is `Throttled`: a wait backs off and asks again until its deadline. A target group that cannot be found, or
that the caller may not read, is a ConfigError (exit 2) from `check`, before any host is touched.
"""

from __future__ import annotations

from typing import Any

from opsrun.balancers.base import ServerState
from opsrun.errors import BalancerError, ConfigError, Throttled

REGISTERED = {"initial", "healthy", "unhealthy", "unavailable", "unhealthy.draining"}
DELAY = "deregistration_delay.timeout_seconds"
PERMISSION = "elasticloadbalancing:DescribeTargetGroups and DescribeTags"


class ELBv2:
    takes_where = True  # balancers.make passes the group_data file, for ConfigError messages

    def __init__(
        self,
        target_group: str | None = None,
        target_group_tags: dict[str, str] | None = None,
        target_group_arn: str | None = None,
        region: str | None = None,
        endpoint_url: str | None = None,
        port: int | None = None,
        poll_interval: float = 3.0,
        poll_jitter: float = 0.2,
        client: Any = None,
        where: str = "group_data balancer",
    ):
        given = [k for k, v in (("target_group", target_group), ("target_group_tags", target_group_tags),
                                ("target_group_arn", target_group_arn)) if v]  # fmt: skip
        if len(given) != 1:
            raise TypeError(f"give exactly one of target_group, target_group_tags, target_group_arn (got {given})")
        self.wanted_name, self.wanted_tags, self._arn = target_group, target_group_tags, target_group_arn
        self.port = port
        self.where = where
        self.poll_interval, self.poll_jitter = poll_interval, poll_jitter  # read by balancers.base.Pace
        if target_group:
            label = target_group
        elif target_group_tags:
            label = ",".join(f"{k}={v}" for k, v in target_group_tags.items())
        else:  # arn:aws:elasticloadbalancing:REGION:ACCOUNT:targetgroup/NAME/ID
            parts = str(target_group_arn).split("/")
            label = parts[-2] if len(parts) >= 3 else str(target_group_arn)
        self.name = f"elbv2 target group {label}"
        self.deregistration_delay: float | None = None
        self.target_type: str | None = None
        if client is None:
            from opsrun.aws import make_client

            client = make_client("elbv2", where=where, region=region, endpoint_url=endpoint_url)
        self.client = client

    def _call(self, method: str, **kwargs: Any) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return getattr(self.client, method)(**kwargs)
        except ClientError as exc:
            from opsrun.aws import THROTTLED

            error = exc.response.get("Error", {})
            kind = Throttled if error.get("Code") in THROTTLED else BalancerError
            raise kind(f"{self.name}: {method}: {error.get('Code')}: {error.get('Message')}") from exc
        except BotoCoreError as exc:
            raise BalancerError(f"{self.name}: {method}: {exc}") from exc

    @property
    def arn(self) -> str:
        if self._arn is None:
            self._arn = self._find()["TargetGroupArn"]
        return self._arn

    def _find(self) -> dict[str, Any]:
        """The target group, by ARN, name or tags; a ConfigError naming the setting when there is none."""
        from botocore.exceptions import BotoCoreError, ClientError

        from opsrun.aws import call_error

        field = "balancer." + (
            "target_group" if self.wanted_name else "target_group_tags" if self.wanted_tags else "target_group_arn"
        )
        try:
            if self._arn is not None or self.wanted_name:
                key = {"TargetGroupArns": [self._arn]} if self._arn else {"Names": [self.wanted_name]}
                return dict(self.client.describe_target_groups(**key)["TargetGroups"][0])
            assert self.wanted_tags is not None
            groups = [
                tg
                for page in self.client.get_paginator("describe_target_groups").paginate()
                for tg in page["TargetGroups"]
            ]
            matches = []
            for start in range(0, len(groups), 20):  # DescribeTags takes at most 20 ARNs
                arns = [tg["TargetGroupArn"] for tg in groups[start : start + 20]]
                for desc in self.client.describe_tags(ResourceArns=arns)["TagDescriptions"]:
                    tags = {t["Key"]: t["Value"] for t in desc.get("Tags", [])}
                    if all(tags.get(k) == v for k, v in self.wanted_tags.items()):
                        matches.append(next(tg for tg in groups if tg["TargetGroupArn"] == desc["ResourceArn"]))
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code")
            if code in ("TargetGroupNotFound", "TargetGroupNotFoundException", "ValidationError"):
                raise self._not_found(field) from exc
            raise call_error(exc, where=self.where, action=f"find {self.name}", permission=PERMISSION) from exc
        except BotoCoreError as exc:
            raise call_error(exc, where=self.where, action=f"find {self.name}", permission=PERMISSION) from exc
        if len(matches) != 1:
            if not matches:
                raise self._not_found(field)
            names = ", ".join(tg["TargetGroupName"] for tg in matches)
            raise ConfigError(
                self.where,
                f"{len(matches)} target groups have the tags of {self.name}: {names}.",
                field=field,
                fix="add a tag that tells them apart, or name the target group (target_group)",
            )
        return dict(matches[0])

    def _not_found(self, field: str) -> ConfigError:
        region = getattr(getattr(self.client, "meta", None), "region_name", "?")
        return ConfigError(
            self.where,
            f"no {self.name} in {region}.",
            field=field,
            fix="check the name or tags (aws elbv2 describe-target-groups) and the region (AWS_REGION)",
        )

    def _target(self, server: str) -> dict[str, Any]:
        return {"Id": server, **({"Port": self.port} if self.port else {})}

    def _health(self, servers: list[str] | None = None) -> dict[str, dict[str, Any]]:
        kwargs: dict[str, Any] = {"TargetGroupArn": self.arn}
        if servers:
            kwargs["Targets"] = [self._target(s) for s in servers]
        answer = self._call("describe_target_health", **kwargs)
        return {d["Target"]["Id"]: d["TargetHealth"] for d in answer.get("TargetHealthDescriptions", [])}

    def check(self, servers: list[str]) -> None:
        group = self._find()
        self._arn = group["TargetGroupArn"]
        self.target_type = group.get("TargetType", "instance")
        if self.target_type == "instance":
            odd = [s for s in servers if not s.startswith("i-")]
            if odd:
                raise ConfigError(
                    self.where,
                    f"{self.name} has instance targets, but the hosts' servers are {', '.join(odd[:5])}.",
                    field="balancer.server",
                    fix='leave server out (it defaults to "{ec2_instance_id}", set by opsrun.aws.ec2_hosts)',
                )
        elif self.target_type == "ip":
            odd = [s for s in servers if s.startswith("i-")]
            if odd:
                raise ConfigError(
                    self.where,
                    f"{self.name} has ip targets, but the hosts' servers are instance ids: {', '.join(odd[:5])}.",
                    field="balancer.server",
                    fix='set "server": "{ec2_private_ip}" (or "{ssh_hostname}")',
                )
        attrs = self._call("describe_target_group_attributes", TargetGroupArn=self.arn)["Attributes"]
        delay = next((a["Value"] for a in attrs if a["Key"] == DELAY), None)
        self.deregistration_delay = float(delay) if delay is not None else None
        health = self._health()
        missing = [s for s in servers if health.get(s, {}).get("State") not in REGISTERED | {"draining"}]
        if missing:
            raise BalancerError(
                f"{self.name} has no registered target {', '.join(missing)} (registered: {', '.join(health) or 'none'})"
            )

    def drain(self, server: str) -> None:
        self._call("deregister_targets", TargetGroupArn=self.arn, Targets=[self._target(server)])

    def enable(self, server: str) -> None:
        self._call("register_targets", TargetGroupArn=self.arn, Targets=[self._target(server)])

    def state(self, server: str) -> ServerState:
        return self.states([server])[server]

    def stats_check(self, servers: list[str]) -> None:
        """The target group is behind an ALB, whose CloudWatch metrics a canary is judged by."""
        from opsrun.balancers.elbv2_metrics import load_balancers

        self.metric_balancers = load_balancers(self)

    def stats_window(self, canary: list[str], others: list[str]) -> Any:
        """The target group's figures from now on (every target's: CloudWatch has none per target)."""
        from opsrun.balancers.elbv2_metrics import TargetGroupWindow, load_balancers

        found = getattr(self, "metric_balancers", None)
        return TargetGroupWindow(self, found if found is not None else load_balancers(self))

    def states(self, servers: list[str]) -> dict[str, ServerState]:
        """The targets' states from one describe_target_health (a target it does not list is unused)."""
        answer = self._health(servers) if servers else {}
        return {s: _server_state(s, answer.get(s, {"State": "unused"})) for s in servers}


def _server_state(server: str, health: dict[str, Any]) -> ServerState:
    state = health.get("State", "unused")
    if state in REGISTERED:
        return ServerState(server, "ready", state == "healthy", 0)
    # draining: connections may still be open until the deregistration delay passes
    return ServerState(server, "drain", False, 1 if state == "draining" else 0)
