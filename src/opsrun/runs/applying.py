"""`opsrun apply`'s one call: a rolling or parallel apply (or its dry run) with the inventory lock, the hosts'
leases, healing what a dead run left, and the run recorded as it goes.

A state store that stops answering for longer than its retry window halts the rollout (the hosts in flight
finish, no new host is drained); the run's outcome is then kept under .opsrun/store-missed/ for the next run
to record, and the result says what the store missed (`record_error`, exit 4)."""

from __future__ import annotations

import contextlib
import getpass
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from opsrun import engine, rollout, settings
from opsrun.checks import membership
from opsrun.engine import spare
from opsrun.errors import ConfigError, LockHeld
from opsrun.hosts import leases, probes
from opsrun.model import inventory, revisions, secrets
from opsrun.model.project import Project
from opsrun.model.results import DeployRun, HostRun, Rollback, RolloutRun
from opsrun.runs import undo
from opsrun.runs.options import Options, Session, hosts_of
from opsrun.runs.recording import Recorder, record_outcome
from opsrun.runs.saving import check_state_dir, save_or_say
from opsrun.settings import deadlines
from opsrun.store import Store, open_store
from opsrun.support import progress, waiting

LEASE_TTL = 300  # seconds a host's lease lives unless renewed; a rollout renews it every third of that


def apply(
    project: Project,
    inventory_name: str,
    deploy: str,
    options: Options = Options(),  # noqa: B008 - frozen: one shared default is safe
    *,
    dry_run: bool = False,
    serial: Any = None,
    max_fail: Any = None,
    resume: int | None = None,
    session: Session = Session(),  # noqa: B008 - frozen: one shared default is safe
    events: rollout.Events | None = None,
    on_plan: Callable[[rollout.Plan], None] | None = None,
) -> tuple[DeployRun | RolloutRun, Path | None]:
    """Apply a deploy: a rolling apply when the hosts have a rolling policy or a balancer (or --serial asks
    for batches), otherwise all hosts in parallel. A dry run changes neither hosts nor the balancer and is
    not recorded (it reads the run history to name what a dead run left out); a real run holds the
    inventory's lock and a lease on each of its hosts, heals what a dead earlier run left, and is recorded
    in the state store as it goes. The result document is kept under .opsrun/results/ (None: the
    controller's disk would not take it; the result says so)."""
    notice, stop = session.notice, session.stop
    _refuse_resume_with(resume, options.limit, dry_run)
    if resume is None:
        inv, hosts, checked = hosts_of(project, inventory_name, options)  # every setting, before anything connects
    else:
        inv, hosts, checked = inventory.load(project, inventory_name, options.data), [], {}  # checked below
    project.deploy_path(deploy)
    check_state_dir(project)
    store = None if dry_run else session.open_store(project)
    for run_id in store.reconciled if store is not None else []:
        notice(f"run {run_id}'s outcome, which the state store missed, is recorded in it now")
    try:
        if resume is not None:
            hosts = _resume_hosts(store, resume, inv, deploy)
            checked = settings.check_hosts(inv, hosts)
        secrets.require(inv, hosts, [deploy])  # every secret_env variable set, none in plain text
        limits = deadlines.load(checked, hosts, dict(options.deadlines))
        policy = rollout.load_policy(inv, hosts, checked, deploy=deploy, serial=serial, max_fail=max_fail)
        hosts, plan = plan_of(inv, hosts, policy)
        executor = _executor(project, inv, deploy, policy, options, events, stop, limits)
        if executor is not None and plan is not None:
            executor.check(plan.hosts)  # an unknown balancer server fails here, before any host is touched
            if on_plan is not None and not dry_run:
                on_plan(plan)
        run = Prepared(project, inv, deploy, hosts, plan, executor, limits, options, stop, notice)
        if store is None:
            return save_or_say(project, f"plan-{inventory_name}-{deploy}", _dry_run(run, session.state_url), notice)
        return save_or_say(project, f"apply-{inventory_name}-{deploy}", _applied(run, store, resume), notice)
    finally:
        if store is not None:
            store.close()


def _executor(
    project: Project,
    inv: inventory.Inventory,
    deploy: str,
    policy: rollout.Policy | None,
    options: Options,
    events: rollout.Events | None,
    stop: threading.Event | None,
    limits: deadlines.Deadlines,
) -> rollout.Rollout | None:
    """The rollout's executor when there is a policy (none: a plain apply of every host at once)."""
    if policy is None:
        return None
    runners = rollout.StageRunners.real(diff=options.diff, forks=options.forks)
    return rollout.Rollout(project, inv, deploy, policy, runners=runners, events=events, stop=stop, deadlines=limits)


def _refuse_resume_with(resume: int | None, limit: tuple[str, ...], dry_run: bool) -> None:
    if resume is not None and (limit or dry_run):
        raise ConfigError(
            "the command line",
            "--resume continues the hosts the run left, in its order; it takes no "
            + ("--limit." if limit else "--dry-run."),
            field="--resume",
            fix="drop " + ("--limit" if limit else "--dry-run") + ", or start a new run without --resume",
        )


def plan_of(
    inv: inventory.Inventory, hosts: list[str], policy: rollout.Policy | None, *, probe: bool = True
) -> tuple[list[str], rollout.Plan | None]:
    """The hosts in the order the policy wants (some last, waves) and their batches; no plan without a policy.
    Without `probe`, the hosts `last` would move (found by asking them) stay where they are."""
    if probe and policy is not None and policy.last:  # e.g. the replica set's primary after its secondaries
        hosts = probes.order_last(policy.last, hosts, lambda h: str(inv.hosts[h].data.get("ssh_hostname") or h))
    waves = None
    if policy is not None and policy.waves:  # e.g. patch_wave1, then patch_wave2 (opsrun.aws tags)
        waves = rollout.group_waves(hosts, {h: inv.hosts[h].groups for h in hosts}, policy.waves)
    plan = policy.plan(hosts, waves) if policy else None
    return hosts, plan


@dataclass(frozen=True)
class Prepared:
    """A real apply's inputs, all checked, handed from `apply` (or `opsrun rollback`) to the part that holds
    the lock."""

    project: Project
    inv: inventory.Inventory
    deploy: str
    hosts: list[str]
    plan: rollout.Plan | None
    executor: rollout.Rollout | None
    limits: deadlines.Deadlines
    options: Options
    stop: threading.Event | None
    notice: Callable[[str], None]
    revision: str | None = None  # what the run records as the ops repo's revision
    rollback: Rollback | None = None  # `opsrun rollback`: where it sends the hosts (kept in the run's plan too)
    on_halt: Callable[[RolloutRun, rollout.Rollout], None] | None = None  # on_failure "rollback"

    @property
    def marker(self) -> dict[str, Any]:
        """What the run's plan says of it from its start (a run that dies still says it was a rollback)."""
        return {"rollback_to": self.rollback.to_revision} if self.rollback is not None else {}

    @property
    def connect(self) -> float:
        return self.limits.connect_timeout(self.hosts)

    def deploy_run(self, *, dry_run: bool = False, lease: leases.LeaseRequest | None = None) -> DeployRun:
        """Every host's apply (or dry run) at once, at most --forks of them, within their deadlines."""
        progress.begin(self.hosts)
        return replace(
            engine.run_deploy(
                self.project,
                self.inv,
                self.deploy,
                self.hosts,
                dry_run=dry_run,
                deadlines=self.limits.stage("apply", self.hosts),
                connect_timeout=self.connect,
                lease=lease,
                stop=self.stop,
                diff=self.options.diff,
                forks=self.options.forks,
            ),
            allow_unreachable=self.options.allow_unreachable,
            data=dict(self.options.data),
        )


def _dry_run(run: Prepared, state_url: str | None) -> DeployRun:
    """Every host's dry run at once (nothing leased, locked or recorded), with the plan it would follow; first
    the hosts a run that did not finish left out of their balancer, named as a real apply names them."""
    if state_url or (run.project.state_dir / "state.db").exists():  # no history yet: no run left a host out
        with contextlib.closing(open_store(run.project.state_dir, state_url)) as store:
            membership.unfinished_notices(
                store, run.inv, run.hosts, run.notice, heals=run.executor is not None, dry_run=True
            )
    spare.last_run()
    result = run.deploy_run(dry_run=True)
    if run.plan is not None:
        result = replace(result, plan=run.plan.to_dict())
    return result


def _applied(run: Prepared, store: Store, resume: int | None) -> DeployRun | RolloutRun:
    """The run, its revision recorded (an uncommitted state too, exactly), with on_failure "rollback"'s way
    back checked out and checked before any host is touched."""
    run = replace(run, revision=revisions.record(run.project.root))
    policy = run.executor.policy if run.executor is not None else None
    if policy is None or policy.on_failure != "rollback" or run.plan is None:
        return recorded(run, store, resume)
    way_back = undo.OnFailure(
        run.project,
        run.inv,
        run.deploy,
        run.plan.hosts,
        options=run.options,
        store=store,
        revision=run.revision,
        notice=run.notice,
        policy=policy,
    )
    with way_back:
        return recorded(replace(run, on_halt=way_back.after_halt), store, resume)


def recorded(run: Prepared, store: Store, resume: int | None) -> DeployRun | RolloutRun:
    """Under the inventory's lock: mark dead runs interrupted, record the run, lease the hosts, apply."""
    inv, deploy, hosts, plan, notice = run.inv, run.deploy, run.hosts, run.plan, run.notice
    inventory_name = inv.name
    # one key however the inventory was named; a stop now also ends a wait for the store
    with waiting.abandon_when(waiting.now_of(run.stop)), store.lock(str(inv.path.resolve())):
        lock_key = str(inv.path.resolve())
        _interrupt_dead_runs(store, inv, deploy, notice)
        left_out = membership.unfinished_notices(store, inv, hosts, notice, heals=run.executor is not None)
        run_id = store.start_run(
            "apply",
            inventory_name,
            deploy,
            revision=run.revision,
            plan={**plan.to_dict(), **run.marker} if plan else {"batches": [hosts]},
            resumed_from=resume,
        )
        store.set_lock_run(lock_key, run_id)
        recorder = Recorder(store, run_id)
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
            result: DeployRun | RolloutRun
            if run.executor is not None and plan is not None:
                result = _rolling(run, lease, left_out, recorder)
                result.allow_unreachable, result.data = run.options.allow_unreachable, dict(run.options.data)
            else:
                result = _parallel(run, lease, run_id)
        return record_outcome(run.project, store, run_id, result, recorder)


def _interrupt_dead_runs(store: Store, inv: inventory.Inventory, deploy: str, notice: Callable[[str], None]) -> None:
    """Mark the runs that died on this inventory interrupted, and say so (the hosts they left out of the
    balancer are then named, and healed, from the store: membership.unfinished_notices)."""
    inventory_name = inv.name
    dead = store.interrupt_dead_runs(inventory_name, found_by=f"{deploy} on {inventory_name}")
    for run in dead:
        out = [h for h, d in run["hosts"].items() if not d["in_balancer"]]
        notice(
            f"run {run['run_id']} ({run['who']}@{run['machine']}, started {run['started_at']}) did not finish: "
            f"marked interrupted; it left {', '.join(out) or 'no host'} out of the balancer"
        )


def _parallel(run: Prepared, lease: leases.LeaseRequest, run_id: int) -> DeployRun:
    """Every host at once, each holding its lease while the deploy runs."""
    spare.last_run()
    result = replace(run.deploy_run(lease=lease), run_id=run_id)
    _refuse_if_leased(result.leases, result.hosts)
    for host, whose in result.taken_over().items():
        run.notice(f"{host}: took over the lease of {whose}")
    return result


def _rolling(run: Prepared, lease: leases.LeaseRequest, left_out: list[str], recorder: Recorder) -> RolloutRun:
    """Lease every host of the plan (or touch none), heal what a dead run left drained, then roll; past the
    failure budget, on_failure "rollback" sends hosts back. The leases are renewed while it runs and given
    back at the end."""
    executor, plan, notice = run.executor, run.plan, run.notice
    assert executor is not None and plan is not None
    check = engine.check_connect(run.project, run.inv, plan.hosts, connect_timeout=run.connect, lease=lease)
    _refuse_if_leased(check.leases, [])
    for host, answer in check.leases.items():
        if answer.took_over:
            notice(f"{host}: took over the lease of {answer.describe()}")
    executor.record, recorder.halt = recorder, executor.halt
    with _renewing(run, [h for h, a in check.leases.items() if a.taken], lease):
        healed = executor.heal([h for h in plan.hosts if h in left_out])
        for host, what in healed.items():
            notice(f"{host} (left drained by a dead run): {what}")
        result = executor.run(run.hosts, plan)
        result.rollback = run.rollback
        if (
            run.on_halt is not None
            and result.halted
            and not result.interrupted
            and not executor.stop.is_set()
            and executor.halting is None
        ):
            run.on_halt(result, executor)  # past the failure budget (a store that stopped answering: not)
        result.healed = healed
        result.leases_taken_over = {h: a.describe() for h, a in check.leases.items() if a.took_over}
        result.run_id = recorder.run_id
        return result


@contextlib.contextmanager
def _renewing(run: Prepared, taken: list[str], lease: leases.LeaseRequest) -> Iterator[None]:
    """The leases taken renewed every third of their life while the block runs, then given back."""

    def renew() -> None:
        engine.check_connect(run.project, run.inv, taken, connect_timeout=run.connect, lease=lease)

    try:
        with waiting.every(LEASE_TTL / 3, renew, name="lease-renewal"):
            yield
    finally:
        release = leases.LeaseRequest("release", lease.owner, lease.holder)
        with contextlib.suppress(Exception):  # a host that cannot be reached keeps its lease until it expires
            engine.check_connect(run.project, run.inv, taken, connect_timeout=run.connect, lease=release)


def _refuse_if_leased(answers: dict[str, leases.LeaseAnswer], runs: list[HostRun]) -> None:
    """Another controller's live lease on any host: nothing was touched; exit 2 naming the holders."""
    refused = {h: a for h, a in answers.items() if not a.taken and a.previous_owner}
    if refused:
        held = "; ".join(f"{h}: {a.describe()}" for h, a in sorted(refused.items()))
        raise LockHeld(f"hosts leased by another opsrun run: {held}; nothing was touched. Wait for that run.")


def _resume_hosts(store: Store | None, run_id: int, inv: inventory.Inventory, deploy: str) -> list[str]:
    """A halted rollout's failed (and interrupted) hosts first, then those it did not reach, in plan order."""
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
    went_back_to = (doc.get("plan") or {}).get("rollback_to")
    if went_back_to:
        raise ConfigError(
            store.where,
            f"run {run_id} was a rollback to {str(went_back_to)[:12]}: --resume would apply today's revision instead.",
            field="--resume",
            fix=f"opsrun rollback {inventory_name} {deploy} --revision {went_back_to}",
        )
    order = [h for batch in (doc.get("plan") or {}).get("batches", []) for h in batch]
    outcome = {h: d.get("outcome") for h, d in doc.get("hosts", {}).items()}
    if not outcome:  # the run died before it could record its hosts: all of its plan again
        return order
    first = ("failed", "interrupted")  # then those it did not reach
    hosts = [h for h in order if outcome.get(h) in first] + [h for h in order if outcome.get(h) == "not_reached"]
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
