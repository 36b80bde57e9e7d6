"""Membership on the ALB path, against moto's server: a target deregistered behind opsrun's back is found
by drift's membership check as out of the balancer; registered again, the finding resolves."""

from __future__ import annotations

from contextlib import closing
from pathlib import Path

import boto3

from opsrun.checks import membership
from opsrun.checks.drift import DriftRun
from opsrun.model.inventory import Host, Inventory
from opsrun.runs.checking import _membership_findings
from opsrun.store import open_store
from tests.aws.conftest import REGION
from tests.aws.test_elbv2 import target_group  # noqa: F401 - the fixture

HOSTS = ["web1", "web2", "web3"]


def _drift(store, inv: Inventory) -> tuple[DriftRun, list[dict]]:
    run = DriftRun("production", ["nginx"], HOSTS)
    asked = _membership_findings(store, inv, HOSTS, run)
    resolved = store.track_findings("production", run.tracked, checked={(h, "balancer") for h in asked}, cause=str)
    return run, resolved


def test_a_deregistered_target_is_found_by_drift(moto_url, target_group, tmp_path):  # noqa: F811
    arn, ids = target_group
    setting = {"type": "elbv2", "target_group_arn": arn, "endpoint_url": moto_url, "region": REGION, "server": "{iid}"}
    hosts = {h: Host(h, ("web",), {"balancer": setting, "iid": i}) for h, i in zip(HOSTS, ids, strict=True)}
    inv = Inventory("production", Path("/ops/inventories/production.py"), [], {}, {}, hosts)
    elb = boto3.client("elbv2", region_name=REGION, endpoint_url=moto_url)
    elb.deregister_targets(TargetGroupArn=arn, Targets=[{"Id": ids[1]}])  # by hand, outside opsrun
    with closing(open_store(tmp_path)) as store:
        found, errors = membership.out_of_balancer(store, inv, HOSTS)
        assert errors == {}
        assert [(o.host, o.who) for o in found] == [("web2", "nobody opsrun knows of")]
        run, _ = _drift(store, inv)
        assert run.exit_code == 3
        assert [(f.host, f.verdict, f.operation) for f in run.drifted] == [
            ("web2", "out_of_balancer", f"elbv2 target group {arn.split('/')[-2]}")
        ]
        elb.register_targets(TargetGroupArn=arn, Targets=[{"Id": ids[1]}])
        clean, resolved = _drift(store, inv)
        assert clean.exit_code == 0 and [r["host"] for r in resolved] == ["web2"]
