"""A canary's figures behind an ALB: CloudWatch's target-group metrics (namespace AWS/ApplicationELB), read
with one GetMetricData call per read over the time since the window opened:

    HTTPCode_Target_5XX_Count   Sum                  the 5xx the targets answered
    RequestCount                Sum                  the requests sent to the targets
    TargetResponseTime          Sum and SampleCount  their mean response time, in seconds

with the dimensions TargetGroup (targetgroup/NAME/ID) and LoadBalancer (app/NAME/ID), summed over each load
balancer that forwards to the target group. An ALB publishes no metric per target: the figures are the whole
target group's (the canary's requests and the unchanged targets' together, what users see), with none apart
for the unchanged hosts. CloudWatch counts in whole minutes (a window's first minute is counted whole) and
publishes them a minute or so late: a bake behind an ALB wants several minutes. A network or gateway load
balancer publishes no HTTP figures: refused by `load_balancers`, before any host is touched.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from opsrun.balancers.stats import Figures
from opsrun.errors import BalancerError, ConfigError, Throttled

if TYPE_CHECKING:
    from opsrun.balancers.elbv2 import ELBv2

NAMESPACE = "AWS/ApplicationELB"
PERIOD = 60  # seconds: ALB metrics are published per minute
QUERIES = {  # query id -> (metric, statistic)
    "errors": ("HTTPCode_Target_5XX_Count", "Sum"),
    "requests": ("RequestCount", "Sum"),
    "time_sum": ("TargetResponseTime", "Sum"),
    "time_count": ("TargetResponseTime", "SampleCount"),
}
PERMISSION = "elasticloadbalancing:DescribeLoadBalancers and cloudwatch:GetMetricData"


def dimension(arn: str, kind: str) -> str:
    """The CloudWatch dimension value of an ELBv2 ARN: `targetgroup/NAME/ID` or `app/NAME/ID`."""
    return arn.split(":loadbalancer/", 1)[1] if kind == "loadbalancer" else arn.rsplit(":", 1)[1]


def load_balancers(elb: ELBv2) -> list[str]:
    """The ALBs that forward to the target group (their dimension values); a ConfigError when none does or
    one is not an application load balancer."""
    group = elb._call("describe_target_groups", TargetGroupArns=[elb.arn])["TargetGroups"][0]
    arns = list(group.get("LoadBalancerArns") or [])
    if not arns:
        raise ConfigError(
            elb.where,
            f"{elb.name} is attached to no load balancer, so CloudWatch has no figures of its requests.",
            field="balancer",
            fix="forward a listener of an application load balancer to it, or remove the rolling policy's canary",
        )
    kinds = {lb["LoadBalancerArn"]: lb.get("Type", "application")
             for lb in elb._call("describe_load_balancers", LoadBalancerArns=arns)["LoadBalancers"]}  # fmt: skip
    odd = [f"{dimension(arn, 'loadbalancer')} ({kind})" for arn, kind in kinds.items() if kind != "application"]
    if odd:
        raise ConfigError(
            elb.where,
            f"{elb.name} is behind {', '.join(odd)}: only an application load balancer publishes HTTP figures "
            "(5xx, response time) per target group.",
            field="balancer",
            fix="judge the canary behind an ALB, or remove the rolling policy's canary",
        )
    return [dimension(arn, "loadbalancer") for arn in arns]


def figures(results: list[dict[str, Any]]) -> Figures:
    """GetMetricData's MetricDataResults (ids `KIND_N`, N a load balancer) as one Figures (pure)."""
    total = dict.fromkeys(QUERIES, 0.0)
    for result in results:
        kind = str(result["Id"]).rsplit("_", 1)[0]
        total[kind] += sum(float(v) for v in result.get("Values", []))
    mean = total["time_sum"] / total["time_count"] if total["time_count"] else None
    return Figures(int(total["requests"]), int(total["errors"]), mean)


class TargetGroupWindow:
    """The target group's figures since it opened (balancers.stats.Window); no separate unchanged hosts'."""

    def __init__(self, elb: ELBv2, balancers: list[str], client: Any = None):
        from opsrun.aws import make_client

        self.elb, self.balancers = elb, balancers
        region = getattr(getattr(elb.client, "meta", None), "region_name", None)
        self.client = client or make_client("cloudwatch", where=elb.where, region=region)
        self.source = f"CloudWatch {NAMESPACE} ({', '.join(balancers)})"
        self.scope = f"{elb.name} (every target: an ALB publishes no figure per target)"
        self.started = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0)  # as CloudWatch rounds it

    def _queries(self) -> list[dict[str, Any]]:
        group = dimension(self.elb.arn, "targetgroup")
        return [
            {
                "Id": f"{kind}_{n}",
                "MetricStat": {
                    "Metric": {
                        "Namespace": NAMESPACE,
                        "MetricName": metric,
                        "Dimensions": [{"Name": "TargetGroup", "Value": group}, {"Name": "LoadBalancer", "Value": lb}],
                    },
                    "Period": PERIOD,
                    "Stat": stat,
                },
                "ReturnData": True,
            }
            for n, lb in enumerate(self.balancers)
            for kind, (metric, stat) in QUERIES.items()
        ]

    def read(self) -> tuple[Figures, Figures | None]:
        from botocore.exceptions import BotoCoreError, ClientError

        from opsrun.aws import THROTTLED

        end = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=PERIOD)  # the minute in progress too
        results: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"MetricDataQueries": self._queries(), "StartTime": self.started, "EndTime": end}
        try:
            while True:
                answer = self.client.get_metric_data(**kwargs)
                results += answer.get("MetricDataResults", [])
                if not answer.get("NextToken"):
                    break
                kwargs["NextToken"] = answer["NextToken"]
        except ClientError as exc:
            error = exc.response.get("Error", {})
            kind = Throttled if error.get("Code") in THROTTLED else BalancerError
            what = f"CloudWatch GetMetricData for {self.elb.name}: {error.get('Code')}: {error.get('Message')}"
            raise kind(what) from exc
        except BotoCoreError as exc:
            raise BalancerError(f"CloudWatch GetMetricData for {self.elb.name}: {exc}") from exc
        return figures(results), None
