"""The runs that check and change nothing: drift, the month's DR test, a verify suite; each loads and checks
its input first, then runs, records and keeps its document."""

from __future__ import annotations

import getpass
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from opsrun import dr, notify
from opsrun.checks import drift as drift_module
from opsrun.checks import history, membership
from opsrun.checks.drift import DriftRun
from opsrun.dr import DRRun
from opsrun.errors import ConfigError
from opsrun.model import inventory, secrets
from opsrun.model.documents.status import Cause, Verdict
from opsrun.model.project import Project
from opsrun.model.results import FAILING, VerifyRun
from opsrun.reports import as_json
from opsrun.runs.notifying import announce
from opsrun.runs.options import Options, Session, hosts_of
from opsrun.runs.saving import check_state_dir, result_path, save
from opsrun.settings import deadlines, models
from opsrun.store import Store, git_revision
from opsrun.support import progress
from opsrun.verification import controller, verify


def drift(
    project: Project,
    inventory_name: str,
    deploys: list[str],
    options: Options = Options(),  # noqa: B008 - frozen: one shared default is safe
    *,
    session: Session = Session(),  # noqa: B008 - frozen: one shared default is safe
    notify_targets: list[str] | tuple[str, ...] = (),
    notify_always: bool = False,
    report_dir: Path | None = None,
) -> tuple[DriftRun, Path]:
    """Dry-run the deploys and run their suites on every host; remember the findings; tell the notification
    targets (--notify, group_data `notify`) what they should hear of it."""
    targets = notify.parse(notify_targets)
    inv, hosts, checked = hosts_of(project, inventory_name, options)
    job = " ".join(["drift", inventory_name, *deploys, *(f"--limit={limit}" for limit in options.limit)])
    deploys = _deploys_to_check(project, inv, hosts, deploys)
    secrets.require(inv, hosts, deploys)
    targets = notify.configured(inv, hosts, checked, "drift", targets)
    check_state_dir(project)
    limits = deadlines.load(checked, hosts, dict(options.deadlines))
    store = session.open_store(project)
    try:
        membership.unfinished_notices(store, inv, hosts, session.notice)
        result = _drift_recorded(project, store, inv, deploys, hosts, limits, session.stop, options)
        earlier = store.recent("drift", inventory_name)
        previous = next((d["status"] for d in reversed(earlier) if d["run_id"] != result.run_id), None)
        saved_at = result_path(project, f"drift-{inventory_name}")
        announce(
            store, result, targets, job=job, previous=previous, always=notify_always, saved_at=saved_at,
            report_dir=report_dir,
        )  # fmt: skip
    finally:
        store.close()
    result.trend = [
        (d["started_at"][:16].replace("T", " "), int(d.get("summary", {}).get("drift", 0))) for d in earlier
    ]
    return result, save(project, f"drift-{inventory_name}", as_json.render(result), saved_at)


def _drift_recorded(
    project: Project,
    store: Store,
    inv: inventory.Inventory,
    deploys: list[str],
    hosts: list[str],
    limits: deadlines.Deadlines,
    stop: threading.Event | None,
    options: Options,
) -> DriftRun:
    """The drift run, recorded in the store: started, its findings tracked, finished."""
    revision = git_revision(project.root)
    last_clean = store.last_clean_revision(inv.name)
    run_id = store.start_run("drift", inv.name, ",".join(deploys), revision=revision)
    with store.run_errors(run_id):
        progress.begin(hosts)
        result = drift_module.run_drift(project, inv, deploys, hosts, deadlines=limits, stop=stop, **_forks(options))
        cloud = _cloud_findings(project, inv, hosts, result)
        asked = _membership_findings(store, inv, hosts, result) if result.status != "interrupted" else []
    result.run_id, result.allow_unreachable, result.data = run_id, options.allow_unreachable, dict(options.data)

    def cause(deploy: str) -> str | None:
        changed = drift_module.changed_since(project.root, last_clean, deploy)
        return None if changed is None else (Cause.INTENTIONAL if changed else Cause.CORRECTIVE)

    if result.status != "interrupted":  # an interrupted run concludes nothing: no finding is resolved
        checked = {(h, d) for h in result.checked for d in deploys}
        checked |= {(controller.HOST, suite) for suite in cloud}
        checked |= {(h, drift_module.MEMBERSHIP) for h in asked}
        result.resolved = store.track_findings(inv.name, result.tracked, checked=checked, cause=cause)
    store.finish_run(run_id, result.to_dict())
    return result


def _membership_findings(store: Store, inv: inventory.Inventory, hosts: list[str], result: DriftRun) -> list[str]:
    """Ask each host's balancer whether it serves the host: a host out of it is an `out_of_balancer` finding
    (intentional when held), a balancer that cannot answer an error. Returns the hosts whose answer is known."""
    found, errors = membership.out_of_balancer(store, inv, hosts)
    for out in found:
        detail = [out.state, f"left so by {out.who}"]
        detail += [str(out.held)] if out.held else [f"bring it back: {out.fix}"]
        result.findings.append(
            drift_module.Finding(
                out.host,
                drift_module.MEMBERSHIP,
                out.balancer,
                Verdict.OUT_OF_BALANCER,
                detail,
                cause=Cause.INTENTIONAL if out.held else Cause.CORRECTIVE,
                held=out.held is not None,
            )
        )
    for host, why in errors.items():
        result.findings.append(
            drift_module.Finding(host, drift_module.MEMBERSHIP, "(balancer)", Verdict.ERROR, [f"could not ask: {why}"])
        )
    return [h for h in hosts if h not in errors]


def _forks(options: Options) -> dict[str, Any]:
    """--forks as a drift's caps: hosts dry-run at once, and hosts verified at once (16 without it)."""
    if options.forks is None:
        return {}
    return {"forks": options.forks, "concurrency": options.forks}


def _deploys_to_check(project: Project, inv: inventory.Inventory, hosts: list[str], deploys: list[str]) -> list[str]:
    """The deploys named, or those with settings for the hosts; each must exist."""
    deploys = deploys or drift_module.deploys_for(project, inv, hosts)
    if not deploys:
        raise ConfigError(
            project.group_data_dir,
            f"no deploy has settings for the hosts of {inv.name}.",
            fix="name the deploys: opsrun drift INVENTORY DEPLOY...",
        )
    for d in deploys:
        project.deploy_path(d)
    return deploys


def _cloud_findings(project: Project, inv: inventory.Inventory, hosts: list[str], result: DriftRun) -> list[str]:
    """Run the controller-scoped suites (e.g. verify/aws) and add their failures to `result` as findings;
    returns the suites run."""
    cloud = controller.suites_for(project, inv, hosts)  # e.g. verify/aws: its failures are findings
    for suite in cloud:
        checked_once = verify.run_suite(project, inv, suite, hosts)
        if checked_once.error:
            raise ConfigError(project.suite_path(suite), f"the suite could not run: {checked_once.error}")
        result.findings += [
            drift_module.Finding(t.host, suite, t.test, Verdict.VERIFY_FAILED, [t.message or t.outcome])
            for t in checked_once.results
            if t.outcome in FAILING
        ]
    return cloud


def dr_test(
    project: Project,
    inventory_name: str,
    *,
    month: str | None = None,
    drill: bool = False,
    session: Session = Session(),  # noqa: B008 - frozen: one shared default is safe
    notify_targets: list[str] | tuple[str, ...] = (),
    notify_always: bool = False,
    report_dir: Path | None = None,
) -> tuple[DRRun, Path]:
    """The month's DR test: the checks and (with `drill`) the drills of group_data `dr`, recorded in the
    state store with the earlier months' results as its trend; the notification targets told of it."""
    targets = notify.parse(notify_targets)
    month = dr.month_of(month)
    inv, hosts, checked = hosts_of(project, inventory_name, Options())
    dr_settings = dr.settings(inv, hosts, checked)
    if drill:
        dr.refuse_in_production(inv, hosts, dr_settings)  # before the store and any system is touched
    uses = [
        "dr",
        *(d for key, d in (("redis", "redis_cluster"), ("mongo", "mongo_replicaset")) if getattr(dr_settings, key)),
    ]
    secrets.require(inv, hosts, uses)
    targets = notify.configured(inv, hosts, checked, "dr-test", targets)
    check_state_dir(project)
    name = f"dr-test-{inventory_name}-{month}"
    store = session.open_store(project)
    try:
        run = _dr_run(project, inventory_name, month, dr_settings)
        run_id = store.start_run("dr-test", inventory_name, month, revision=run.revision)
        with store.run_errors(run_id):
            dr.run_dr_test(inv, hosts, dr_settings, run, drill)
            for suite in controller.suites_for(project, inv, hosts):  # cloud-side checks in the report
                run.checks += dr_checks(verify.run_suite(project, inv, suite, hosts))
        run.run_id = run_id
        earlier = store.recent("dr-test", inventory_name, limit=100)
        run.trend = history.dr_trend(earlier, exclude=run_id)
        store.finish_run(run_id, run.to_dict())
        previous = next((d["status"] for d in reversed(earlier) if d["run_id"] != run_id), None)
        saved_at = result_path(project, name)
        announce(
            store, run, targets, job=f"dr-test {inventory_name}", previous=previous, always=notify_always,
            saved_at=saved_at, report_dir=report_dir,
        )  # fmt: skip
    finally:
        store.close()
    return run, save(project, name, as_json.render(run), saved_at)


def _dr_run(project: Project, inventory_name: str, month: str, dr_settings: models.DRSettings) -> DRRun:
    from importlib.metadata import version

    return DRRun(
        inventory_name,
        month,
        time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        getpass.getuser(),
        version("opsrun"),
        git_revision(project.root),
        dr.targets(dr_settings, dr.systems_of(dr_settings)),
    )


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
    options: Options = Options(),  # noqa: B008 - frozen: one shared default is safe
    *,
    session: Session = Session(),  # noqa: B008 - frozen: one shared default is safe
) -> tuple[VerifyRun, Path]:
    """Run verify/SUITE on the hosts (at most --forks at once, 16 without it), recorded in the run history;
    first name the hosts a run that did not finish left out of their balancer."""
    inv, hosts, checked = hosts_of(project, inventory_name, options)
    project.suite_path(suite)
    check_state_dir(project)
    limits = deadlines.load(checked, hosts, dict(options.deadlines))
    concurrency = options.forks or verify.DEFAULT_CONCURRENCY
    store = session.open_store(project)
    try:
        membership.unfinished_notices(store, inv, hosts, session.notice)
        run_id = store.start_run("verify", inventory_name, suite, revision=git_revision(project.root))
        with store.run_errors(run_id):
            progress.begin(hosts)
            run = verify.run_suite_within(
                project, inv, suite, hosts, limits, concurrency=concurrency, stop=session.stop
            )
        run = replace(run, run_id=run_id, allow_unreachable=options.allow_unreachable, data=dict(options.data))
        store.finish_run(run_id, run.to_dict())
    finally:
        store.close()
    return run, save(project, f"verify-{inventory_name}-{suite}", as_json.render(run))
