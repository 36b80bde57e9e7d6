"""The commands that work on an inventory's hosts: apply, rollback, verify, drift and dr-test."""

from __future__ import annotations

import contextlib
import functools
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.console import Console

from opsrun import notify, runs
from opsrun.checks import history as history_module
from opsrun.cli.options import (
    DATA,
    DEADLINE,
    DEPLOY,
    DEPLOYS,
    DR_FORMAT,
    FORKS,
    HOSTS,
    INVENTORY,
    LIMIT,
    NOTIFY,
    OUT,
    REPORTED,
    SUITE,
    VERBOSITY,
    pass_project,
    run_options,
    stack,
    state_retry,
    state_url,
)
from opsrun.cli.output import echo, finish, notifications, show, show_hosts, writable_out
from opsrun.cli.progress import HostsDisplay
from opsrun.cli.signals import stop_on_signals
from opsrun.model.project import Project
from opsrun.model.results import DeployRun, RolloutRun
from opsrun.reports import as_text, render_report, write_reports
from opsrun.runs import rolling_back
from opsrun.runs.notifying import tell_of_change
from opsrun.support import logs
from opsrun.support.waiting import Stop

R = TypeVar("R", bound=DeployRun | RolloutRun)


def _size_list(value: str | None) -> Any:
    """--serial 1 | 25% | 1,50%,100%  ->  1 | "25%" | [1, "50%", "100%"] (checked by the rolling schema)."""
    if value is None:
        return None
    parts: list[Any] = [int(p) if p.strip().isdigit() else p.strip() for p in value.split(",")]
    return parts if len(parts) > 1 else parts[0]


def _note(message: str) -> None:
    echo(f"note: {message}", err=True)


def _session(ctx: click.Context, stop: Stop | None = None) -> runs.Session:
    """What the command line gives every run: --state, --state-retry, the stop of SIGINT/SIGTERM, notes on
    stderr."""
    return runs.Session(state_url(ctx), state_retry(ctx), stop, _note)


@contextlib.contextmanager
def _touching_hosts(out: Path | None) -> Iterator[Stop]:
    """Around a run on hosts: --out checked first (a dry write; the run checks .opsrun itself), then the stop
    that SIGINT/SIGTERM set (waiting.Stop)."""
    writable_out(out)
    stop = Stop()
    with stop_on_signals(stop):
        yield stop


@contextlib.contextmanager
def _checking_hosts(
    project: Project, inventory: str, given: dict[str, Any], fmt: str, out: Path | None, named: Callable[[], object]
) -> Iterator[tuple[runs.Options, Stop]]:
    """Around verify's and drift's run: with --list-hosts, the suite or deploys checked (`named` raises the
    ConfigError of one missing), the hosts listed, and exit; else the run's options and its stop, with each
    host's progress on stderr."""
    options, list_only = run_options(given)
    if list_only:
        named()
        show_hosts(runs.list_hosts(project, inventory, options), fmt)
    with _touching_hosts(out) as stop, _hosts_display():
        yield options, stop


def _hosts_display() -> HostsDisplay:
    """Each host's progress on stderr while a run goes (a table on a terminal, lines otherwise; none with -q)."""
    return HostsDisplay(Console(stderr=True), quiet=logs.level() < 0)


def _rollout_progress() -> as_text.RolloutProgress:
    """A rollout's batches and stages on stderr (none with -q)."""
    return as_text.RolloutProgress(Console(stderr=True), quiet=logs.level() < 0)


def _change_and_tell(
    ctx: click.Context,
    project: Project,
    out: Path | None,
    progress: as_text.RolloutProgress,
    change: Callable[..., tuple[R, Path | None]],
    targets: list[notify.Target],
    *,
    always: bool,
) -> tuple[R, Path | None]:
    """apply's and rollback's run: `change` (runs.apply or rolling_back.rollback, given all but what the CLI
    threads through) with the rollout's `progress` on stderr and SIGINT/SIGTERM's stop, then told to --notify."""
    with _touching_hosts(out) as stop, progress, _hosts_display():
        run, saved = change(session=_session(ctx, stop), events=progress, on_plan=progress.plan)
    told = tell_of_change(project, run, saved, targets, always=always, session=_session(ctx))
    return told, saved


@click.command()
@INVENTORY
@DEPLOY
@HOSTS
@click.option("--dry-run", "--check", "dry_run", is_flag=True, help="Change nothing; report what would change.")
@click.option("--diff", is_flag=True, help="Show each file a change writes as a unified diff (with --dry-run too).")
@click.option("--serial", metavar="N|N%|LIST", help="Batch sizes, overriding group_data: 1, 25%, or 1,50%,100%.")
@click.option("--max-fail", metavar="N|N%", help="Failure budget for the rollout, overriding group_data.")
@click.option(
    "--resume",
    metavar="RUN_ID",
    type=int,
    help="Continue a halted rollout: its failed hosts first, then those it did not reach.",
)
@NOTIFY
@REPORTED
@VERBOSITY
@pass_project
@click.pass_context
def apply(
    ctx: click.Context,
    /,
    project: Project,
    inventory: str,
    deploy: str,
    dry_run: bool,
    diff: bool,
    serial: str | None,
    max_fail: str | None,
    resume: int | None,
    notify_targets: tuple[str, ...],
    notify_always: bool,
    fmt: str,
    out: Path | None,
    **given: Any,
) -> None:
    """Apply deploys/DEPLOY.py to the hosts of inventories/INVENTORY.py (in rolling batches behind the
    load balancer when group_data gives a rolling policy or a balancer)."""
    options, list_only = run_options(given, diff=diff)
    if dry_run and notify_targets:
        raise click.UsageError("--notify tells of a change; a --dry-run changes nothing (drift is the one to tell)")
    targets = notify.parse(notify_targets)  # before any host is touched
    if list_only:
        listed = runs.list_hosts(
            project, inventory, options, deploy=deploy, serial=_size_list(serial), max_fail=_size_list(max_fail)
        )
        show_hosts(listed, fmt)
    progress = _rollout_progress()
    change = functools.partial(
        runs.apply,
        project,
        inventory,
        deploy,
        options,
        dry_run=dry_run,
        serial=_size_list(serial),
        max_fail=_size_list(max_fail),
        resume=resume,
    )
    run, saved = _change_and_tell(ctx, project, out, progress, change, targets, always=notify_always)
    text = as_text.rollout_run if isinstance(run, RolloutRun) else as_text.deploy_run
    show(run, saved, fmt, functools.partial(text, diff=diff), out)


@click.command()
@INVENTORY
@DEPLOY
@click.option("--to", "to_run", metavar="RUN_ID", type=int, help="Go back to what this apply run applied.")
@click.option("--revision", metavar="REV", help="Go back to this revision of the ops repo (a commit, a tag).")
@stack(LIMIT, DATA, FORKS, DEADLINE)
@NOTIFY
@REPORTED
@VERBOSITY
@pass_project
@click.pass_context
def rollback(
    ctx: click.Context,
    /,
    project: Project,
    inventory: str,
    deploy: str,
    to_run: int | None,
    revision: str | None,
    notify_targets: tuple[str, ...],
    notify_always: bool,
    fmt: str,
    out: Path | None,
    **given: Any,
) -> None:
    """Send the hosts that later runs changed back to the desired state of the last successful apply of
    DEPLOY on INVENTORY (or of --to RUN_ID, or --revision REV), checked out aside from git, newest changed
    host first, through the same rolling sequence as apply; packages those runs upgraded go back to the
    versions they had. Exit 0 all back, 1 a host failed (the rollback stops there), 2 refused before any
    host was touched, 4 its record could not be kept, 130 interrupted."""
    options, _list = run_options({**given, "list_hosts": False, "allow_unreachable": False})
    targets = notify.parse(notify_targets)  # before any host is touched
    progress = _rollout_progress()
    change = functools.partial(
        rolling_back.rollback,
        project,
        inventory,
        deploy,
        options,
        to_run=to_run,
        revision=revision,
        on_target=progress.lines,
    )
    run, saved = _change_and_tell(ctx, project, out, progress, change, targets, always=notify_always)
    show(run, saved, fmt, as_text.rollout_run, out)


@click.command()
@INVENTORY
@SUITE
@HOSTS
@REPORTED
@VERBOSITY
@pass_project
@click.pass_context
def verify(
    ctx: click.Context, /, project: Project, inventory: str, suite: str, fmt: str, out: Path | None, **given: Any
) -> None:
    """Run the testinfra suite verify/SUITE/ against the hosts of inventories/INVENTORY.py, many hosts at once."""
    with _checking_hosts(project, inventory, given, fmt, out, lambda: project.suite_path(suite)) as (options, stop):
        run, saved = runs.verify_suite(project, inventory, suite, options, session=_session(ctx, stop))
    show(run, saved, fmt, as_text.verify_run, out)


@click.command()
@INVENTORY
@DEPLOYS
@HOSTS
@click.option("--fail-on-unreachable", is_flag=True, hidden=True, help="The default now (see --allow-unreachable).")
@NOTIFY
@REPORTED
@VERBOSITY
@pass_project
@click.pass_context
def drift(
    ctx: click.Context,
    /,
    project: Project,
    inventory: str,
    deploys: tuple[str, ...],
    fail_on_unreachable: bool,
    notify_targets: tuple[str, ...],
    notify_always: bool,
    fmt: str,
    out: Path | None,
    **given: Any,
) -> None:
    """Report, host by host, what differs from the desired state: dry-run each deploy (every deploy with
    settings for the hosts when none are named) and run its verify suite. Changes nothing.
    Exit 0 clean, 3 drift found, 1 error (a deploy or suite error on a host, no host checked, or a host
    unreachable unless --allow-unreachable), 130 interrupted."""
    if fail_on_unreachable and given["allow_unreachable"]:
        raise click.UsageError("--fail-on-unreachable (the default) and --allow-unreachable say opposite things")

    def named() -> None:
        for name in deploys:
            project.deploy_path(name)

    with _checking_hosts(project, inventory, given, fmt, out, named) as (options, stop):
        run, saved = runs.drift(
            project,
            inventory,
            list(deploys),
            options,
            session=_session(ctx, stop),
            notify_targets=notify_targets,
            notify_always=notify_always,
            report_dir=out,
        )
    show(run, saved, fmt, as_text.drift_run, out)


@click.command("dr-test")
@INVENTORY
@click.option("--month", metavar="YYYY-MM", help="The month the report is for (default: this month).")
@click.option("--drill", is_flag=True, help="Also run the drills: failovers and stepdowns, timed against the RTO.")
@click.option("--history", "show_history", is_flag=True, help="List the past DR tests of the inventory and exit.")
@DR_FORMAT
@OUT
@NOTIFY
@VERBOSITY
@pass_project
@click.pass_context
def dr_test(
    ctx: click.Context,
    project: Project,
    inventory: str,
    month: str | None,
    drill: bool,
    show_history: bool,
    fmt: str,
    out: Path | None,
    notify_targets: tuple[str, ...],
    notify_always: bool,
) -> None:
    """Run the DR checks (and with --drill the drills) of group_data `dr` and write the month's report:
    RTO/RPO targets against measured values, evidence, drill log, issues, next test date, trend.
    Exit 0 all passed, 1 a check failed or a drill left a system degraded."""
    session = _session(ctx)
    if show_history:
        _show_dr_tests(history_module.dr_tests(project, session.state_url, inventory, retry=session.state_retry), fmt)
        return
    writable_out(out)
    run, saved = runs.dr_test(
        project,
        inventory,
        month=month,
        drill=drill,
        session=session,
        notify_targets=notify_targets,
        notify_always=notify_always,
        report_dir=out,
    )
    written = write_reports(run, out) if out is not None else []
    echo(render_report(run, "md" if fmt == "text" else fmt), nl=False)
    if fmt == "text":
        echo(f"result: {saved}")
        for path in written:
            echo(f"report: {path}")
    notifications(run)
    finish(run.exit_code)


def _show_dr_tests(rows: list[dict[str, Any]], fmt: str) -> None:
    """`dr-test --history`: one line a month, or one JSON document."""
    if fmt == "json":
        echo(json.dumps({"dr_tests": rows}, indent=2))
        return
    for r in rows:
        echo(f"{r['month']}  {r['status']:7}  failed checks {r['failed']}  run {r['run_id']}")
