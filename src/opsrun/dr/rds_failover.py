"""The RDS Multi-AZ failover drill (dr.postgres.rds_failover): markers committed through the instance's
endpoint, then RebootDBInstance with ForceFailover; RTO from the call until RDS reports the instance available
again after the failover and a write through the endpoint (a new connection, a new DNS lookup) succeeds; RPO
from the markers the instance lacks afterwards. The standby's zone is the primary's now: the drill records the
zones, and does not fail back (that would be a second outage)."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from typing import Any

from opsrun.dr.model import FAIL, PASS, Check, DRRun
from opsrun.dr.pg_markers import accepts_write, data_loss, ensure_table, forget, write_markers
from opsrun.errors import WaitTimeout
from opsrun.settings.dr_models import RdsFailover
from opsrun.support.waiting import poll_until

NAME = "RDS failover drill"
POLL_SECONDS = 2.0  # between two DescribeDBInstances calls (with jitter): polite to the API


@dataclass
class Seen:
    """What the drill saw of the instance since the failover was asked for."""

    zone_before: str
    statuses: list[str] = field(default_factory=list)
    zone: str = ""

    def see(self, instance: dict[str, Any]) -> str:
        status = str(instance.get("DBInstanceStatus", "?"))
        if not self.statuses or self.statuses[-1] != status:
            self.statuses.append(status)
        self.zone = str(instance.get("AvailabilityZone", ""))
        return status

    @property
    def failed_over(self) -> bool:
        """RDS showed the failover: the instance left `available`, or its primary moved to another zone."""
        return any(s != "available" for s in self.statuses) or (bool(self.zone) and self.zone != self.zone_before)

    def describe(self) -> str:
        return f"statuses {' -> '.join(self.statuses) or 'none'}, zone {self.zone_before} -> {self.zone or '?'}"


def client() -> Any:
    from opsrun import aws

    return aws.client("rds")


def instance(rds: Any, name: str) -> dict[str, Any]:
    return dict(rds.describe_db_instances(DBInstanceIdentifier=name)["DBInstances"][0])


def rds_failover_drill(spec: RdsFailover, url: str, run: DRRun) -> Check:
    """The drill of `spec` (dr.postgres.rds_failover); `url` reaches the database through the endpoint."""
    rds, name = client(), spec.instance
    timeout = spec.timeout_seconds
    before = instance(rds, name)
    refused = _refusal(before)
    if refused:
        return Check("postgres", NAME, FAIL, [f"not started, nothing was touched: {refused}"])
    prefix = f"dr-rds-failover-{time.time_ns()}"
    ensure_table(url)
    written = write_markers(url, spec.markers, prefix)
    seen = Seen(str(before.get("AvailabilityZone", "")))
    run.step(f"rds: {len(written)} markers committed through the endpoint of {name} (primary in {seen.zone_before})")
    start = time.monotonic()
    answer = rds.reboot_db_instance(DBInstanceIdentifier=name, ForceFailover=True)["DBInstance"]
    run.step(f"rds: RebootDBInstance {name} ForceFailover=True: {seen.see(answer)}")

    def back() -> bool:
        status = seen.see(instance(rds, name))
        return seen.failed_over and status == "available" and accepts_write(url, prefix)

    try:
        poll_until(back, timeout=timeout, interval=POLL_SECONDS * random.uniform(0.8, 1.2), what=f"{name} back")  # noqa: S311 - jitter
    except WaitTimeout:
        run.step(f"rds: {name}: no failover seen within {timeout:g} s ({seen.describe()})")
        _forget_if_reachable(url, prefix)
        evidence = [f"RDS showed no completed failover within {timeout:g} s: {seen.describe()}"]
        return Check("postgres", NAME, FAIL, evidence)
    rto = time.monotonic() - start
    loss = data_loss(url, written)
    forget(url, prefix)
    run.step(f"rds: {name} available in {seen.zone} and a write succeeded {rto:.3f} s after the call")
    return Check(
        "postgres",
        NAME,
        PASS,
        [
            f"measured RTO {rto:.3f} s (RebootDBInstance ForceFailover until RDS reported {name} available again "
            "and a write through its endpoint succeeded)",
            loss.describe(name),
            f"{seen.describe()}: the standby in {seen.zone} is the primary now (roles recorded, not failed back)",
        ],
        f"rds RebootDBInstance DBInstanceIdentifier={name} ForceFailover=True; DescribeDBInstances; INSERT",
        {"rto_seconds": round(rto, 3), "rpo_seconds": round(loss.seconds, 3), "markers_lost": loss.lost},
    )


def _forget_if_reachable(url: str, prefix: str) -> None:
    """The drill's markers removed when the database takes the DELETE; left (and harmless) when not."""
    import psycopg

    try:
        forget(url, prefix)
    except psycopg.Error:
        return


def _refusal(before: dict[str, Any]) -> str | None:
    """Why the drill must not start on this instance, or None."""
    name = before.get("DBInstanceIdentifier")
    if not before.get("MultiAZ"):
        return f"{name} is not Multi-AZ: there is no standby to fail over to (a forced failover needs one)"
    if before.get("DBInstanceStatus") != "available":
        return f"{name} is {before.get('DBInstanceStatus')}, not available"
    return None
