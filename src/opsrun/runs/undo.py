"""Hosts sent back to an earlier revision through the rollout machinery: the revision checked out aside as a
project of its own (its deploys/, group_data/, apps/ and verify/, with today's inventories/), its settings
and secrets checked before any host is touched, and a Rollout of it (with the failure budget at 0) whose
apply also downgrades the packages later runs upgraded (rollout.downgrade).

`OnFailure` is `rolling.on_failure: "rollback"`: found and prepared before a rollout starts, and run by it
when its failure budget is spent, on the hosts it changed and the host that failed, newest first.
`opsrun rollback` (runs.rolling_back) uses the same pieces.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any

from opsrun import rollout, settings
from opsrun.errors import ConfigError
from opsrun.hosts import probes
from opsrun.model import inventory, revisions, secrets
from opsrun.model.project import Project
from opsrun.model.results import HostOutcome, Rollback, RolloutRun
from opsrun.rollout.downgrade import Downgrades
from opsrun.rollout.rollback import Applied, changed_newest_first, checked
from opsrun.runs.options import Options
from opsrun.settings.deadlines import Deadlines
from opsrun.store import Store

HISTORY = 1000  # the newest runs of an inventory a rollback reads


def history(store: Store, inventory_name: str, deploy: str) -> list[Applied]:
    """The recorded applies of `deploy` on the inventory, newest first."""
    rows = [r for r in store.runs(inventory_name, limit=HISTORY) if r.kind == "apply" and r.deploy == deploy]
    return [Applied.of(r.id, r.revision, r.status, store.run(r.id)) for r in rows]


@dataclass(frozen=True)
class Back:
    """A revision checked out aside: its project (state kept at home) and today's inventory with its settings."""

    project: Project
    inv: inventory.Inventory
    commit: str


def applied_data(store: Store, run_id: int | None) -> dict[str, Any]:
    """The --data run `run_id` was applied with (its result document keeps it): part of the desired state the
    way back returns to, as its revision is. The failing run's own --data (a bad release given as `-e
    version=2`) never goes back with it."""
    if run_id is None:
        return {}
    data = store.run(run_id).get("data")
    return dict(data) if isinstance(data, dict) else {}


@contextlib.contextmanager
def checked_out(project: Project, inventory_name: str, commit: str, options: Options) -> Iterator[Back]:
    """Revision `commit` of the project, aside (removed afterwards); its inventory locked and named as the
    project's own (one lock whichever revision is applied). A file of it that is refused is named as
    "revision COMMIT/group_data/web.py"."""
    with revisions.aside(project.root, commit, project.state_dir) as folder:
        try:
            back = Project(folder, state=project.state_dir)
            inv = inventory.load(back, inventory_name, options.data)
            yield Back(back, replace(inv, path=project.inventory_path(inventory_name)), commit)
        except ConfigError as exc:  # a file of the checkout (gone afterwards) is named by its revision
            named = f"revision {commit[:12]}"
            raise ConfigError(
                exc.path.replace(str(folder), named),
                exc.problem.replace(str(folder), named),
                field=exc.field,
                fix=exc.fix,
            ) from exc


def checked_settings(back: Back, deploy: str, hosts: list[str]) -> settings.Checked:
    """The revision's settings and secrets of `hosts`, checked before any host is touched: what opsrun reads
    of its settings (settings.check_hosts)."""
    checked = settings.check_hosts(back.inv, hosts)
    secrets.require(back.inv, hosts, [deploy])
    return checked


def rollout_back(
    back: Back,
    deploy: str,
    hosts: list[str],
    checked: settings.Checked,
    runners: rollout.StageRunners,
    downgrades: dict[str, dict[str, str]],
    *,
    fallback: rollout.Policy | None = None,
    deadlines: Deadlines | None = None,
) -> rollout.Rollout:
    """The rollout that takes `hosts` back to the revision (their settings `checked_settings`), its suite
    checked, its policy the revision's own (else `fallback`, else one host at a time), halting at the first
    failure."""
    policy = rollout.load_policy(back.inv, hosts, checked, deploy=deploy) or fallback or rollout.Policy()
    policy = replace(policy, max_fail=0, waves=None, on_failure="halt")
    runners = Downgrades(back.inv, downgrades).runners(runners)
    executor = rollout.Rollout(back.project, back.inv, deploy, policy, runners=runners, deadlines=deadlines)
    executor.check(hosts)
    return executor


def plan_back(executor: rollout.Rollout, hosts: list[str]) -> rollout.Plan:
    """The rollback's batches: `hosts` in the order given (newest first), those a role probe says go last
    (a replica set's primary) moved last, sized by the policy's serial, no failure allowed."""
    inv, policy = executor.inv, executor.policy
    if policy.last:
        hosts = probes.order_last(policy.last, hosts, lambda h: str(inv.hosts[h].data.get("ssh_hostname") or h))
    return rollout.make_plan(hosts, policy.serial, 0)


class OnFailure:
    """`on_failure: "rollback"` of one rollout: the last successful apply's revision checked out and its
    rollout prepared on entering (before any host is touched), run by `after_halt`. When there is no way
    back (no successful run recorded, its revision gone, its settings refused), the rollout still runs and
    halts as without it, and the result says why nothing was rolled back."""

    def __init__(
        self,
        project: Project,
        inv: inventory.Inventory,
        deploy: str,
        hosts: list[str],
        *,
        options: Options,
        store: Store,
        revision: str | None,
        notice: Callable[[str], None],
        policy: rollout.Policy | None = None,
    ):
        self.project, self.inv, self.deploy, self.hosts = project, inv, deploy, hosts
        self.options, self.store, self.revision, self.notice = options, store, revision, notice
        self.policy = policy  # the rollout's own: the way back's when its revision has none
        self.stack = contextlib.ExitStack()
        self.back: Back | None = None
        self.executor: rollout.Rollout | None = None
        self.good: Applied | None = None
        self.reason: str | None = None

    def __enter__(self) -> OnFailure:
        revisions.prefix(self.project.root)  # outside git there is never a way back: refused here
        rows = self.store.runs(self.inv.name, limit=HISTORY)
        good = next((r for r in rows if (r.kind, r.deploy, r.status) == ("apply", self.deploy, "success")), None)
        self.good = Applied(good.id, good.revision, good.status) if good else None
        if self.good is None or self.good.revision is None:
            self.reason = f"no successful apply of {self.deploy} on {self.inv.name} recorded a revision to go back to"
        else:
            try:
                where, field = f"run {self.good.run_id}", "rolling.on_failure"
                commit = revisions.resolve(self.project.root, self.good.revision, where=where, field=field)
                revisions.check_deploy(self.project.root, commit, self.deploy, where=where, field=field)
                options = replace(self.options, data=applied_data(self.store, self.good.run_id))
                self.back = self.stack.enter_context(checked_out(self.project, self.inv.name, commit, options))
                checked = checked_settings(self.back, self.deploy, self.hosts)
                self.executor = rollout_back(
                    self.back, self.deploy, self.hosts, checked, rollout.StageRunners(), {}, fallback=self.policy
                )
            except ConfigError as exc:
                self.reason = f"the way back cannot be prepared: {exc}"
                self.stack.close()
        if self.reason:
            self.notice(f"on_failure is rollback, but {self.reason}: a failure will halt the rollout")
        return self

    def __exit__(self, *exc: object) -> None:
        self.stack.close()

    def after_halt(self, result: RolloutRun, forward: rollout.Rollout) -> None:
        """The hosts `result` changed and its failed host, back to the last good revision, newest first,
        through the same stages (with the forward rollout's stage runners, events and record)."""
        hosts = changed_newest_first(result)
        downgrades = {h: checked(v) for h in hosts if (v := _went_from(result.hosts[h]))}
        to_run = self.good.run_id if self.good else None
        to = self.good.revision if self.good else None
        rolled = Rollback(to, to_run, dict.fromkeys(hosts, self.revision), downgrades, automatic=True)
        result.rollback = rolled
        if self.executor is None or self.back is None or not hosts:
            rolled.reason = self.reason or "the rollout changed no host"
            return
        self.notice(f"{result.halted}: rolling back {', '.join(hosts)} to {str(to)[:12]} (run {to_run})")
        executor = self.executor
        executor.runners = Downgrades(self.back.inv, downgrades).runners(forward.runners)
        executor.balancer = forward.runners.balancer or executor.balancer  # a fake's, in unit tests
        executor.events = lambda b, h, s: forward.events(b, h, f"rollback: {s}")
        executor.stop, executor.now, executor.deadlines = forward.stop, forward.now, forward.deadlines
        executor.record = forward.record
        executor.held = {h for h in hosts if forward.was_held.get(h, True)}  # the failed host served before
        rolled.run = executor.run(hosts, plan_back(executor, hosts))
        for h in rolled.run.hosts.values():
            result.hosts[h.name].in_balancer = h.in_balancer
            if h.outcome == "done":
                result.hosts[h.name].add_note(f"rolled back to {str(to)[:12]}")
            elif h.outcome == "failed":
                result.hosts[h.name].add_note(f"rollback failed at {h.stage}: {h.reason}")
            else:
                result.hosts[h.name].add_note("not rolled back: the rollback stopped before it")


def _went_from(out: HostOutcome) -> dict[str, str]:
    """The version each package had before this run upgraded it on the host."""
    ups = out.run.upgrades if out.run is not None else []
    return {str(u["package"]): str(u["from"]) for u in reversed(ups)}  # the first upgrade's "from" wins
