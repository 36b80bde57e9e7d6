"""The commands' single calls: load and check every input first, then touch hosts, then keep the result.

Everything that can be wrong with the input (inventory, group_data, deploy or suite name, --limit) is
found before the first SSH connection, so a bad command line never touches a host.
"""

from __future__ import annotations

import contextlib
import getpass
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from opsrun import (
    controller,
    deadlines,
    dr,
    engine,
    history,
    inventory,
    leases,
    notify,
    probes,
    rollout,
    secrets,
    settings,
    verify,
)
from opsrun import drift as drift_module
from opsrun.dr import DRRun
from opsrun.drift import DriftRun
from opsrun.errors import ConfigError, LockHeld
from opsrun.project import Project
from opsrun.reports import as_json, write_atomic
from opsrun.results import DeployRun, HostRun, RolloutRun, VerifyRun
from opsrun.store import Store, git_revision, open_store

LEASE_TTL = 300  # seconds a host's lease lives unless renewed; a rollout renews it every third of that


def apply(
    project: Project,
    inventory_name: str,
    deploy: str,
    *,
    limit: str | None = None,
    dry_run: bool = False,
    serial: Any = None,
    max_fail: Any = None,
    resume: int | None = None,
    state_url: str | None = None,
    events: rollout.Events | None = None,
    on_plan: Callable[[rollout.Plan], None] | None = None,
    on_notice: Callable[[str], None] | None = None,
    stop: threading.Event | None = None,
    deadline_overrides: dict[str, float] | None = None,
) -> tuple[DeployRun | RolloutRun, Path]:
    """Apply a deploy: a rolling apply when the hosts have a rolling policy or a balancer (or --serial asks
    for batches), otherwise all hosts in parallel. A dry run touches neither hosts nor the balancer and is
    not recorded; a real run holds the inventory's lock and a lease on each of its hosts, heals what a
    dead earlier run left, and is recorded in the state store as it goes."""
    notice = on_notice or (lambda _m: None)
    inv = inventory.load(project, inventory_name)
    project.deploy_path(deploy)
    if resume is not None and (limit is not None or dry_run):
        raise ConfigError(
            "the command line",
            "--resume continues the hosts the run left, in its order; it takes no "
            + ("--limit." if limit is not None else "--dry-run."),
            field="--resume",
            fix="drop " + ("--limit" if limit is not None else "--dry-run") + ", or start a new run without --resume",
        )
    hosts = inv.select(limit) if resume is None else []
    if resume is None:
        settings.check_hosts(inv, hosts)  # every setting of every host, before anything connects
    store = None if dry_run else open_store(project.state_dir, state_url)
    try:
        if resume is not None:
            hosts = _resume_hosts(store, resume, inv, deploy)
            settings.check_hosts(inv, hosts)
        secrets.require(inv, hosts, [deploy])  # every secret_env variable set, none in plain text
        limits = deadlines.load(inv, hosts, deadline_overrides)
        policy = rollout.load_policy(inv, hosts, deploy=deploy, serial=serial, max_fail=max_fail)
        if policy is not None and policy.last:  # e.g. the replica set's primary after its secondaries
            hosts = probes.order_last(policy.last, hosts, lambda h: str(inv.hosts[h].data.get("ssh_hostname") or h))
        waves = None
        if policy is not None and policy.waves:  # e.g. patch_wave1, then patch_wave2 (opsrun.aws tags)
            waves = rollout.group_waves(hosts, {h: inv.hosts[h].groups for h in hosts}, policy.waves)
        plan = rollout.make_plan(hosts, policy.serial, policy.max_fail, waves) if policy else None
        executor = (
            rollout.Rollout(project, inv, deploy, policy, events=events, stop=stop, deadlines=limits)
            if policy
            else None
        )
        if executor is not None and plan is not None:
            executor.check(plan.hosts)  # an unknown balancer server fails here, before any host is touched
            if on_plan is not None and not dry_run:
                on_plan(plan)
        connect = max(limits.stage("connect", hosts).values(), default=10.0)
        if store is None:
            result: DeployRun | RolloutRun = engine.run_deploy(
                project,
                inv,
                deploy,
                hosts,
                dry_run=True,
                deadlines=limits.stage("apply", hosts),
                connect_timeout=connect,
                stop=stop,
            )
            if plan is not None:
                result = replace(result, plan=plan.to_dict())
            return result, save(project, f"plan-{inventory_name}-{deploy}", as_json.render(result))
        with store.lock(str(inv.path.resolve())):  # one key however the inventory was named
            lock_key = str(inv.path.resolve())
            dead = store.interrupt_dead_runs(inventory_name, found_by=f"{deploy} on {inventory_name}")
            left_out = {
                h: d for run in dead for h, d in run["hosts"].items() if not d["in_balancer"] and h in inv.hosts
            }
            for run in dead:
                out = [h for h, d in run["hosts"].items() if not d["in_balancer"]]
                notice(
                    f"run {run['run_id']} ({run['who']}@{run['machine']}, started {run['started_at']}) did not finish: "
                    f"marked interrupted; it left {', '.join(out) or 'no host'} out of the balancer"
                )
            run_id = store.start_run(
                "apply",
                inventory_name,
                deploy,
                revision=git_revision(project.root),
                plan=plan.to_dict() if plan else {"batches": [hosts]},
                resumed_from=resume,
            )
            store.set_lock_run(lock_key, run_id)
            owner = f"{store.store_id}:{run_id}"
            lease = leases.LeaseRequest(
                "acquire",
                owner,
                f"{getpass.getuser()}@{socket.gethostname()}",
                LEASE_TTL,
                store=store.store_id,
                live=tuple(f"{store.store_id}:{r}" for r in store.live_runs() if r != run_id),
            )
            with store.run_errors(run_id):
                if executor is not None and plan is not None:
                    result = _rolling(
                        project, inv, executor, plan, hosts, lease, connect, left_out, store, run_id, notice
                    )
                else:
                    result = replace(
                        engine.run_deploy(
                            project,
                            inv,
                            deploy,
                            hosts,
                            deadlines=limits.stage("apply", hosts),
                            connect_timeout=connect,
                            lease=lease,
                            stop=stop,
                        ),
                        run_id=run_id,
                    )
                    _refuse_if_leased(result.leases, result.hosts)
                    for host, whose in result.taken_over().items():
                        notice(f"{host}: took over the lease of {whose}")
            store.finish_run(run_id, result.to_dict())
        return result, save(project, f"apply-{inventory_name}-{deploy}", as_json.render(result))
    finally:
        if store is not None:
            store.close()


def _rolling(
    project: Project,
    inv: inventory.Inventory,
    executor: rollout.Rollout,
    plan: rollout.Plan,
    hosts: list[str],
    lease: leases.LeaseRequest,
    connect: float,
    left_out: dict[str, dict[str, Any]],
    store: Store,
    run_id: int,
    notice: Callable[[str], None],
) -> RolloutRun:
    """Lease every host of the plan (or touch none), heal what a dead run left drained, then roll; the
    leases are renewed while it runs and given back at the end."""
    check = engine.check_connect(project, inv, plan.hosts, connect_timeout=connect, lease=lease)
    _refuse_if_leased(check.leases, [])
    taken = [h for h, a in check.leases.items() if a.taken]
    for host, answer in check.leases.items():
        if answer.took_over:
            notice(f"{host}: took over the lease of {answer.describe()}")
    executor.record = lambda h: store.record_host(run_id, {**vars(h), "run": None})
    renewing = threading.Event()

    def renew() -> None:
        while not renewing.wait(LEASE_TTL / 3):
            engine.check_connect(project, inv, taken, connect_timeout=connect, lease=lease)

    renewer = threading.Thread(target=renew, name="lease-renewal", daemon=True)
    renewer.start()
    try:
        healed = executor.heal([h for h in plan.hosts if h in left_out])
        for host, what in healed.items():
            notice(f"{host} (left drained by a dead run): {what}")
        result = executor.run(hosts, plan)
        result.healed = healed
        result.leases_taken_over = {h: a.describe() for h, a in check.leases.items() if a.took_over}
        result.run_id = run_id
        return result
    finally:
        renewing.set()
        renewer.join()
        release = leases.LeaseRequest("release", lease.owner, lease.holder)
        with contextlib.suppress(Exception):  # a host that cannot be reached keeps its lease until it expires
            engine.check_connect(project, inv, taken, connect_timeout=connect, lease=release)


def _refuse_if_leased(answers: dict[str, leases.LeaseAnswer], runs: list[HostRun]) -> None:
    """Another controller's live lease on any host: nothing was touched; exit 2 naming the holders."""
    refused = {h: a for h, a in answers.items() if not a.taken and a.previous_owner}
    if refused:
        held = "; ".join(f"{h}: {a.describe()}" for h, a in sorted(refused.items()))
        raise LockHeld(f"hosts leased by another opsrun run: {held}; nothing was touched. Wait for that run.")


def _resume_hosts(store: Store | None, run_id: int, inv: inventory.Inventory, deploy: str) -> list[str]:
    """A halted rollout's failed hosts first, then those it did not reach, in plan order."""
    assert store is not None
    inventory_name = inv.name
    doc = store.run(run_id)
    if (doc.get("inventory"), doc.get("deploy")) != (inventory_name, deploy):
        raise ConfigError(
            store.where,
            f"run {run_id} applied {doc.get('deploy')} to {doc.get('inventory')}, not {deploy} to {inventory_name}.",
            field="--resume",
            fix=f"opsrun apply {doc.get('inventory')} {doc.get('deploy')} --resume {run_id}",
        )
    order = [h for batch in (doc.get("plan") or {}).get("batches", []) for h in batch]
    outcome = {h: d.get("outcome") for h, d in doc.get("hosts", {}).items()}
    if not outcome:  # the run died before it could record its hosts: all of its plan again
        return order
    hosts = [h for h in order if outcome.get(h) == "failed"] + [h for h in order if outcome.get(h) == "not_reached"]
    if not hosts:
        raise ConfigError(
            store.where,
            f"run {run_id} has no failed or unreached host to resume.",
            field="--resume",
            fix="nothing to do; see `opsrun history show " + str(run_id) + "`",
        )
    gone = [h for h in hosts if h not in inv.hosts]
    if gone:
        raise ConfigError(
            inv.path,
            f"run {run_id} left {', '.join(gone)} to do, no longer in inventory {inventory_name}.",
            field="--resume",
            fix="put the hosts back in the inventory, or start a new run without --resume",
        )
    return hosts


def drift(
    project: Project,
    inventory_name: str,
    deploys: list[str],
    *,
    limit: str | None = None,
    fail_on_unreachable: bool = False,
    state_url: str | None = None,
    notify_targets: list[str] | tuple[str, ...] = (),
    notify_always: bool = False,
    stop: threading.Event | None = None,
    deadline_overrides: dict[str, float] | None = None,
    concurrency: int = verify.DEFAULT_CONCURRENCY,
) -> tuple[DriftRun, Path]:
    """Dry-run the deploys and run their suites on every host; remember the findings; tell the notification
    targets when the status changed since the last run (or always)."""
    targets = notify.parse(notify_targets)
    inv = inventory.load(project, inventory_name)
    hosts = inv.select(limit)
    settings.check_hosts(inv, hosts)
    deploys = deploys or drift_module.deploys_for(project, inv, hosts)
    if not deploys:
        raise ConfigError(
            project.group_data_dir,
            f"no deploy has settings for the hosts of {inventory_name}.",
            fix="name the deploys: opsrun drift INVENTORY DEPLOY...",
        )
    for d in deploys:
        project.deploy_path(d)
    secrets.require(inv, hosts, deploys)
    limits = deadlines.load(inv, hosts, deadline_overrides)
    store = open_store(project.state_dir, state_url)
    try:
        revision = git_revision(project.root)
        last_clean = store.last_clean_revision(inventory_name)
        run_id = store.start_run("drift", inventory_name, ",".join(deploys), revision=revision)
        with store.run_errors(run_id):
            result = drift_module.run_drift(
                project, inv, deploys, hosts, deadlines=limits, stop=stop, concurrency=concurrency
            )
            cloud = controller.suites_for(project, inv, hosts)  # e.g. verify/aws: its failures are findings
            for suite in cloud:
                checked_once = verify.run_suite(project, inv, suite, hosts)
                if checked_once.error:
                    raise ConfigError(project.suite_path(suite), f"the suite could not run: {checked_once.error}")
                result.findings += [
                    drift_module.Finding(t.host, suite, t.test, "verify_failed", [t.message or t.outcome])
                    for t in checked_once.results
                    if t.outcome in ("failed", "error")
                ]
        result.run_id, result.fail_on_unreachable = run_id, fail_on_unreachable

        def cause(deploy: str) -> str | None:
            changed = drift_module.changed_since(project.root, last_clean, deploy)
            return None if changed is None else ("intentional" if changed else "corrective")

        if result.status != "interrupted":  # an interrupted run concludes nothing: no finding is resolved
            checked = {(h, d) for h in result.checked for d in deploys}
            checked |= {(controller.HOST, suite) for suite in cloud}
            result.resolved = store.track_findings(inventory_name, result.drifted, checked=checked, cause=cause)
        store.finish_run(run_id, result.to_dict())
        earlier = store.recent("drift", inventory_name)
    finally:
        store.close()
    result.trend = [
        (d["started_at"][:16].replace("T", " "), int(d.get("summary", {}).get("drift", 0))) for d in earlier
    ]
    previous = next((d["status"] for d in reversed(earlier) if d["run_id"] != run_id), None)
    if targets and notify.should_send(result.status, previous, notify_always):
        result.notify_errors = notify.send(targets, result.to_dict(), previous)
    return result, save(project, f"drift-{inventory_name}", as_json.render(result))


def dr_test(
    project: Project,
    inventory_name: str,
    *,
    month: str | None = None,
    drill: bool = False,
    state_url: str | None = None,
) -> tuple[DRRun, Path]:
    """The month's DR test: the checks and (with `drill`) the drills of group_data `dr`, recorded in the
    state store with the earlier months' results as its trend."""
    import getpass
    from importlib.metadata import version

    month = dr.month_of(month)
    inv = inventory.load(project, inventory_name)
    hosts = inv.select(None)
    settings.check_hosts(inv, hosts)
    dr_settings = dr.settings(inv, hosts)
    uses = [
        "dr",
        *(d for key, d in (("redis", "redis_cluster"), ("mongo", "mongo_replicaset")) if dr_settings.get(key)),
    ]
    secrets.require(inv, hosts, uses)
    store = open_store(project.state_dir, state_url)
    try:
        revision = git_revision(project.root)
        run = DRRun(
            inventory_name,
            month,
            time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            getpass.getuser(),
            version("opsrun"),
            revision,
            dr.targets(dr_settings, dr.systems_of(dr_settings)),
        )
        run_id = store.start_run("dr-test", inventory_name, month, revision=revision)
        with store.run_errors(run_id):
            dr.run_dr_test(inv, hosts, run, drill)
            for suite in controller.suites_for(project, inv, hosts):  # cloud-side checks in the report
                run.checks += dr_checks(verify.run_suite(project, inv, suite, hosts))
        run.run_id = run_id
        run.trend = history.dr_trend(store.recent("dr-test", inventory_name, limit=100), exclude=run_id)
        store.finish_run(run_id, run.to_dict())
    finally:
        store.close()
    return run, save(project, f"dr-test-{inventory_name}-{month}", as_json.render(run))


def dr_checks(checked: VerifyRun) -> list[dr.Check]:
    """A controller-scoped suite's results as DR checks (system = the suite), each test one check."""
    if checked.error:
        return [dr.Check(checked.suite, "suite", dr.FAIL, [checked.error], f"verify/{checked.suite}")]
    status = {"passed": dr.PASS, "failed": dr.FAIL, "error": dr.FAIL, "skipped": dr.SKIP}
    return [
        dr.Check(
            checked.suite,
            t.test,
            status[t.outcome],
            [t.message] if t.message else [],
            f"verify/{checked.suite}/{t.test}",
            severity="high",
        )
        for t in checked.results
    ]


def verify_suite(
    project: Project,
    inventory_name: str,
    suite: str,
    *,
    limit: str | None = None,
    stop: threading.Event | None = None,
    deadline_overrides: dict[str, float] | None = None,
    concurrency: int = verify.DEFAULT_CONCURRENCY,
) -> tuple[VerifyRun, Path]:
    inv = inventory.load(project, inventory_name)
    project.suite_path(suite)
    hosts = inv.select(limit)
    settings.check_hosts(inv, hosts)
    limits = deadlines.load(inv, hosts, deadline_overrides)
    run = verify.run_suite(
        project,
        inv,
        suite,
        hosts,
        deadlines=limits.stage("verify", hosts),
        concurrency=concurrency,
        stop=stop,
        connect_timeout=max(limits.stage("connect", hosts).values(), default=10.0),
    )
    return run, save(project, f"verify-{inventory_name}-{suite}", as_json.render(run))


def save(project: Project, name: str, text: str) -> Path:
    """Keep a run's JSON document under .opsrun/results/, timestamped, and as NAME-latest.json."""
    folder = project.state_dir / "results"
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    path = write_atomic(folder / f"{stamp}-{name}.json", text)
    write_atomic(folder / f"{name}-latest.json", text)
    return path
