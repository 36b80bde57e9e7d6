"""The commands' single calls: load and check every input first, then touch hosts, then keep the result.

Everything that can be wrong with the input (inventory, group_data, deploy or suite name, --limit) is
found before the first SSH connection, so a bad command line never touches a host.
"""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from opsrun import engine, inventory, rollout, verify
from opsrun.project import Project
from opsrun.reports import as_json, write_atomic
from opsrun.results import DeployRun, RolloutRun, VerifyRun


def apply(
    project: Project,
    inventory_name: str,
    deploy: str,
    *,
    limit: str | None = None,
    dry_run: bool = False,
    serial: Any = None,
    max_fail: Any = None,
    events: rollout.Events | None = None,
    stop: threading.Event | None = None,
) -> tuple[DeployRun | RolloutRun, Path]:
    """Apply a deploy: a rolling apply when the hosts have a rolling policy or a balancer (or --serial asks
    for batches), otherwise all hosts in parallel. A dry run touches neither hosts nor the balancer."""
    inv = inventory.load(project, inventory_name)
    project.deploy_path(deploy)
    hosts = inv.select(limit)
    policy = rollout.load_policy(inv, hosts, serial=serial, max_fail=max_fail)
    result: DeployRun | RolloutRun
    if policy is None:
        result = engine.run_deploy(project, inv, deploy, hosts, dry_run=dry_run)
    else:
        plan = rollout.make_plan(hosts, policy.serial, policy.max_fail)
        executor = rollout.Rollout(project, inv, deploy, policy, events=events, stop=stop)
        executor.check(plan.hosts)  # an unknown balancer server fails here, before any host is touched
        if dry_run:
            result = replace(engine.run_deploy(project, inv, deploy, hosts, dry_run=True), plan=plan.to_dict())
        else:
            result = executor.run(hosts, plan)
    kind = "plan" if dry_run else "apply"
    return result, save(project, f"{kind}-{inventory_name}-{deploy}", as_json.render(result))


def verify_suite(
    project: Project, inventory_name: str, suite: str, *, limit: str | None = None
) -> tuple[VerifyRun, Path]:
    inv = inventory.load(project, inventory_name)
    project.suite_path(suite)
    hosts = inv.select(limit)
    run = verify.run_suite(project, inv, suite, hosts)
    return run, save(project, f"verify-{inventory_name}-{suite}", as_json.render(run))


def save(project: Project, name: str, text: str) -> Path:
    """Keep a run's JSON document under .opsrun/results/, timestamped, and as NAME-latest.json."""
    folder = project.state_dir / "results"
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    path = write_atomic(folder / f"{stamp}-{name}.json", text)
    write_atomic(folder / f"{name}-latest.json", text)
    return path
