"""AWS ELBv2 (ALB/NLB) target groups through boto3.

drain:   deregister_targets; the target is `draining` for the group's deregistration delay, then gone
drained: describe_target_health says `unused` (Target.NotRegistered) or no longer lists it
enable:  register_targets
healthy: describe_target_health says `healthy` (`initial` until the health checks pass)

Throttling is retried by botocore's standard retry mode with backoff. The deregistration delay is read in
`check` and exposed, so a drain timeout shorter than it is reported before any host is touched.
"""

from __future__ import annotations

from typing import Any

from opsrun.balancers.base import ServerState
from opsrun.errors import BalancerError

REGISTERED = {"initial", "healthy", "unhealthy", "unavailable", "unhealthy.draining"}


class ELBv2:
    def __init__(
        self,
        target_group_arn: str,
        region: str | None = None,
        endpoint_url: str | None = None,
        port: int | None = None,
        client: Any = None,
    ):
        self.arn = target_group_arn
        self.port = port
        # arn:aws:elasticloadbalancing:REGION:ACCOUNT:targetgroup/NAME/ID
        parts = target_group_arn.split("/")
        self.name = f"elbv2 target group {parts[-2] if len(parts) >= 3 else target_group_arn}"
        self.deregistration_delay: float | None = None
        if client is None:
            import boto3
            from botocore.config import Config

            client = boto3.client(
                "elbv2",
                region_name=region,
                endpoint_url=endpoint_url,
                config=Config(retries={"mode": "standard", "max_attempts": 8}),
            )
        self.client = client

    def _call(self, method: str, **kwargs: Any) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return getattr(self.client, method)(**kwargs)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            raise BalancerError(f"{self.name}: {method}: {error.get('Code')}: {error.get('Message')}") from exc
        except BotoCoreError as exc:
            raise BalancerError(f"{self.name}: {method}: {exc}") from exc

    def _target(self, server: str) -> dict[str, Any]:
        return {"Id": server, **({"Port": self.port} if self.port else {})}

    def _health(self, servers: list[str] | None = None) -> dict[str, dict[str, Any]]:
        kwargs: dict[str, Any] = {"TargetGroupArn": self.arn}
        if servers:
            kwargs["Targets"] = [self._target(s) for s in servers]
        answer = self._call("describe_target_health", **kwargs)
        return {d["Target"]["Id"]: d["TargetHealth"] for d in answer.get("TargetHealthDescriptions", [])}

    def check(self, servers: list[str]) -> None:
        self._call("describe_target_groups", TargetGroupArns=[self.arn])  # TargetGroupNotFound -> BalancerError
        attrs = self._call("describe_target_group_attributes", TargetGroupArn=self.arn)["Attributes"]
        delay = next((a["Value"] for a in attrs if a["Key"] == "deregistration_delay.timeout_seconds"), None)
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
        health = self._health([server]).get(server, {"State": "unused", "Reason": "Target.NotRegistered"})
        state = health.get("State", "unused")
        if state in REGISTERED:
            return ServerState(server, "ready", state == "healthy", 0)
        # draining: connections may still be open until the deregistration delay passes
        return ServerState(server, "drain", False, 1 if state == "draining" else 0)
