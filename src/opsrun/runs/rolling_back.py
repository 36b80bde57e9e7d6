"""`opsrun rollback`'s one call: the hosts that later runs changed, back to the desired state of the last
successful apply (or of the run or revision named), through the same rolling sequence as an apply, under
the same lock and leases, recorded as an apply of that revision.

Every refusal comes before any host is touched (exit 2): the project is not in git, the revision no
longer exists, the revision has no such deploy, no run recorded a state to go back to, or none changed a
host since.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from opsrun import rollout
from opsrun.errors import ConfigError
from opsrun.model import revisions
from opsrun.model.project import Project
from opsrun.model.results import Rollback, RolloutRun
from opsrun.rollout.rollback import Target, choose, target
from opsrun.runs import undo
from opsrun.runs.applying import Prepared, recorded
from opsrun.runs.options import Options, Session, hosts_of
from opsrun.runs.saving import check_state_dir, save_or_say
from opsrun.settings import deadlines
from opsrun.store import Store


def rollback(
    project: Project,
    inventory_name: str,
    deploy: str,
    options: Options = Options(),  # noqa: B008 - frozen: one shared default is safe
    *,
    to_run: int | None = None,
    revision: str | None = None,
    session: Session = Session(),  # noqa: B008 - frozen: one shared default is safe
    events: rollout.Events | None = None,
    on_target: Callable[[Target], None] | None = None,
    on_plan: Callable[[rollout.Plan], None] | None = None,
) -> tuple[RolloutRun, Path | None]:
    """Roll `deploy` on the inventory back (to run `to_run`'s revision, or `revision`, or by default the last
    successful apply's before the newest change); `on_target` hears where to, and from where, first."""
    notice, stop = session.notice, session.stop
    if to_run is not None and revision is not None:
        raise ConfigError("the command line", "--to and --revision both name where to go.", fix="give one of them")
    revisions.prefix(project.root)  # outside git: refused
    inv, selected, today_checked = hosts_of(project, inventory_name, options)  # today's inventory, every setting
    check_state_dir(project)
    store = session.open_store(project)
    for run_id in store.reconciled:
        notice(f"run {run_id}'s outcome, which the state store missed, is recorded in it now")
    try:
        way = _target(project, store, inventory_name, deploy, to_run, revision, selected)
        commit = revisions.resolve(project.root, way.revision, where=_where(way), field="revision")
        revisions.check_deploy(project.root, commit, deploy, where=_where(way), field="revision")
        back_options = replace(options, data={**undo.applied_data(store, way.run_id), **options.data})
        with undo.checked_out(project, inv.name, commit, back_options) as back:
            checked = undo.checked_settings(back, deploy, way.hosts)  # the revision's
            limits = deadlines.load(checked, way.hosts, dict(options.deadlines))
            runners = rollout.StageRunners.real(diff=options.diff, forks=options.forks)
            today = rollout.load_policy(inv, way.hosts, today_checked, deploy=deploy)  # when the revision had none
            executor = undo.rollout_back(
                back, deploy, way.hosts, checked, runners, way.downgrades, fallback=today, deadlines=limits
            )
            executor.events, executor.stop = events or executor.events, stop or executor.stop
            executor.held = set(way.hosts)  # back to serving as they did: each held to its gate
            plan = undo.plan_back(executor, way.hosts)
            if on_target is not None:  # everything checked: where to, and from where, before any host is touched
                on_target(way)
            if on_plan is not None:
                on_plan(plan)
            went = Rollback(way.revision, way.run_id, dict(way.came_from), way.downgrades)
            run = Prepared(
                back.project, back.inv, deploy, plan.hosts, plan, executor, limits, options, stop, notice,
                revision=way.revision, rollback=went,
            )  # fmt: skip
            result = recorded(run, store, None)
    finally:
        store.close()
    assert isinstance(result, RolloutRun)
    return save_or_say(project, f"rollback-{inventory_name}-{deploy}", result, notice)


def _where(way: Target) -> str:
    return f"run {way.run_id}" if way.run_id is not None else "the command line"


def _target(
    project: Project,
    store: Store,
    inventory_name: str,
    deploy: str,
    to_run: int | None,
    revision: str | None,
    hosts: list[str],
) -> Target:
    """Where to go and which hosts go there, from the recorded applies; refused when there is nothing."""
    applied = undo.history(store, inventory_name, deploy)
    commit = None
    if revision is not None:
        commit = revisions.resolve(project.root, revision, where="the command line", field="--revision")
    run, later = choose(applied, where=store.where, to_run=to_run, revision=commit)
    way = target(commit or (run.revision if run else None) or "", run, later, hosts)
    if not way.hosts:
        since = f"since run {run.run_id}" if run else "recorded"
        raise ConfigError(
            store.where,
            f"no apply of {deploy} on {inventory_name} {since} changed a host selected: nothing to roll back.",
            fix="see `opsrun history`; `opsrun apply` re-applies what the work tree says",
        )
    return way
