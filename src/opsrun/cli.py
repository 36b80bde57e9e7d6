"""opsrun's command line: parse, make one call, render, exit with the code of the outcome or the error.

Exit codes: 0 success (no drift), 1 a host, check or verification failed (or a drift run that could not see),
2 usage or configuration error (or the inventory or a host is held by another run), 3 drift found,
130 interrupted (SIGINT/SIGTERM: stopped at a safe point).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from functools import update_wrapper
from pathlib import Path
from typing import Any, NoReturn, TextIO, TypeVar, cast

import click
from rich.console import Console

from opsrun import deadlines, runs
from opsrun import history as history_module
from opsrun.errors import ConfigError, OpsrunError
from opsrun.project import Project
from opsrun.reports import REPORT_FORMATS, as_text, render_report, write_reports
from opsrun.results import RolloutRun
from opsrun.secrets import redact, register_url

F = TypeVar("F", bound=Callable[..., Any])
FORMAT = click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="json: one JSON document on stdout.",
)
REPORT_FORMAT = click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", *REPORT_FORMATS]),
    default="text",
    show_default=True,
    help="What goes to stdout: text, or the report as json, md, html (one self-contained file) or junit (XML).",
)
OUT = click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    help="Also write the report to this folder in every format (.json .md .html .xml), each file atomically.",
)
LIMIT = click.option("--limit", metavar="HOSTS", help="Comma-separated host names, groups or globs.")
DEADLINE = click.option(
    "--deadline",
    "deadline",
    multiple=True,
    metavar="STAGE=SECONDS",
    help="Per-host deadline for connect, apply or verify (repeatable), over group_data `deadlines`.",
)
CONCURRENCY = click.option(
    "--concurrency",
    type=click.IntRange(1, 512),
    default=16,
    show_default=True,
    help="Hosts verified at once (each one SSH session).",
)


class ProjectRef:
    """The --project and --state options, resolved only by the commands that need an ops repo (not `lab`)."""

    def __init__(self, path: str | None, state: str | None = None):
        self.path = path
        self.state = state

    def get(self) -> Project:
        return Project.find(self.path)


def pass_project(f: F) -> F:
    @click.pass_context
    def wrapper(ctx: click.Context, *args: Any, **kwargs: Any) -> Any:
        return ctx.invoke(f, ctx.ensure_object(ProjectRef).get(), *args, **kwargs)

    return update_wrapper(wrapper, f)  # type: ignore[return-value]


class _Redacted(io.TextIOBase):
    """stdout with secret values masked (see opsrun.secrets)."""

    def __init__(self, stream: TextIO):
        self.stream = stream

    def write(self, text: str) -> int:
        self.stream.write(redact(text))
        return len(text)

    def flush(self) -> None:
        self.stream.flush()

    def isatty(self) -> bool:
        return self.stream.isatty()


def _console() -> Console:
    return Console(file=cast(TextIO, _Redacted(sys.stdout)), stderr=False, highlight=False, soft_wrap=False)


def echo(text: str, *, err: bool = False, nl: bool = True) -> None:
    """click.echo with secrets masked: every line opsrun prints goes through here or through _Redacted."""
    click.echo(redact(text), err=err, nl=nl)


def _finish(code: int) -> None:
    sys.exit(code)


R = TypeVar("R", bound=Any)


def _show(run: R, saved: Path, fmt: str, as_text_fn: Callable[[R, Console], None], out: Path | None = None) -> None:
    """Print a run as text or as a report (json, md, html, junit), write the report files to `out` when
    asked, and exit with the run's code. Reports are written only for a finished run, each atomically."""
    written = write_reports(run, out) if out is not None else []
    if fmt == "text":
        as_text_fn(run, _console())
        echo(f"result: {saved}")
        for path in written:
            echo(f"report: {path}")
    else:
        echo(render_report(run, fmt), nl=False)
    for error in getattr(run, "notify_errors", []):
        echo(f"error: {error}", err=True)
    _finish(run.exit_code)


def _writable_out(out: Path | None) -> None:
    """--out is checked before any host is touched: a report that cannot be written fails now, not after."""
    if out is None:
        return
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".opsrun-write-test-{time.monotonic_ns()}"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise ConfigError(
            out, f"cannot write reports here: {exc.strerror or exc}.", field="--out", fix="use a writable folder"
        ) from None


class OpsrunGroup(click.Group):
    """Turns a known error into one line on stderr and its exit code (ConfigError: 2)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except OpsrunError as exc:
            echo(f"error: {exc}", err=True)
            raise click.exceptions.Exit(exc.exit_code) from exc
        except (click.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except Exception:  # noqa: BLE001 - the boundary: anything unexpected goes to the project's debug log
            _internal_error(ctx.find_object(ProjectRef))


@click.group(cls=OpsrunGroup)
@click.option(
    "--project",
    type=click.Path(file_okay=False),
    envvar="OPSRUN_PROJECT",
    help="The ops repo (inventories/, deploys/, ...). Default: the current folder or a parent.",
)
@click.option(
    "--state",
    metavar="URL",
    envvar="OPSRUN_STATE",
    help="Run history and locks: postgresql://... Default: SQLite in .opsrun/state.db.",
)
@click.version_option(package_name="opsrun")
@click.pass_context
def cli(ctx: click.Context, project: str | None, state: str | None) -> None:
    """Runbooks as code: roll pyinfra deploys over a fleet, verify with testinfra, report."""
    if state:
        register_url(state)  # its password and query are masked in whatever is printed from now on
    ctx.obj = ProjectRef(project, state)


def _size_list(value: str | None) -> Any:
    """--serial 1 | 25% | 1,50%,100%  ->  1 | "25%" | [1, "50%", "100%"] (checked by the planner)."""
    if value is None:
        return None
    parts: list[Any] = [int(p) if p.strip().isdigit() else p.strip() for p in value.split(",")]
    return parts if len(parts) > 1 else parts[0]


@contextlib.contextmanager
def _stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """SIGINT/SIGTERM ask the rollout to stop at its next safe point instead of killing it mid-batch."""

    def handler(signum: int, _frame: object) -> None:
        if not stop.is_set():
            echo(
                f"\n{signal.Signals(signum).name}: stopping at the next safe point "
                "(an apply finishes its current operation or batch; a dry run or a check stops now)",
                err=True,
            )
        stop.set()

    old = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, previous in old.items():
            signal.signal(sig, previous)


@cli.command()
@click.argument("inventory")
@click.argument("deploy")
@LIMIT
@click.option("--dry-run", is_flag=True, help="Change nothing; report what would change on each host.")
@click.option("--serial", metavar="N|N%|LIST", help="Batch sizes, overriding group_data: 1, 25%, or 1,50%,100%.")
@click.option("--max-fail", metavar="N|N%", help="Failure budget for the rollout, overriding group_data.")
@click.option(
    "--resume",
    metavar="RUN_ID",
    type=int,
    help="Continue a halted rollout: its failed hosts first, then those it did not reach.",
)
@DEADLINE
@REPORT_FORMAT
@OUT
@pass_project
@click.pass_context
def apply(
    ctx: click.Context,
    project: Project,
    inventory: str,
    deploy: str,
    limit: str | None,
    dry_run: bool,
    serial: str | None,
    max_fail: str | None,
    resume: int | None,
    deadline: tuple[str, ...],
    fmt: str,
    out: Path | None,
) -> None:
    """Apply deploys/DEPLOY.py to the hosts of inventories/INVENTORY.py (in rolling batches behind the
    load balancer when group_data gives a rolling policy or a balancer)."""
    _writable_out(out)
    stop = threading.Event()
    progress = as_text.RolloutProgress(Console(stderr=True))
    with _stop_on_signals(stop), progress:
        run, saved = runs.apply(
            project,
            inventory,
            deploy,
            limit=limit,
            dry_run=dry_run,
            serial=_size_list(serial),
            max_fail=_size_list(max_fail),
            resume=resume,
            state_url=ctx.find_object(ProjectRef).state,  # type: ignore[union-attr]
            events=progress,
            on_plan=progress.plan,
            on_notice=lambda message: echo(f"note: {message}", err=True),
            stop=stop,
            deadline_overrides=deadlines.parse_overrides(deadline),
        )
    if isinstance(run, RolloutRun):
        _show(run, saved, fmt, as_text.rollout_run, out)
    else:
        _show(run, saved, fmt, as_text.deploy_run, out)


@cli.command()
@click.argument("inventory")
@click.argument("suite")
@LIMIT
@DEADLINE
@CONCURRENCY
@REPORT_FORMAT
@OUT
@pass_project
def verify(
    project: Project,
    inventory: str,
    suite: str,
    limit: str | None,
    deadline: tuple[str, ...],
    concurrency: int,
    fmt: str,
    out: Path | None,
) -> None:
    """Run the testinfra suite verify/SUITE/ against the hosts of inventories/INVENTORY.py, many hosts at once."""
    _writable_out(out)
    stop = threading.Event()
    with _stop_on_signals(stop):
        run, saved = runs.verify_suite(
            project,
            inventory,
            suite,
            limit=limit,
            stop=stop,
            deadline_overrides=deadlines.parse_overrides(deadline),
            concurrency=concurrency,
        )
    _show(run, saved, fmt, as_text.verify_run, out)


@cli.command()
@click.argument("inventory")
@click.argument("deploys", nargs=-1)
@LIMIT
@click.option(
    "--fail-on-unreachable", is_flag=True, help="Exit 1 when a host cannot be reached (default: listed only)."
)
@click.option(
    "--notify",
    "notify_targets",
    multiple=True,
    metavar="sns:ARN|webhook:URL",
    help="Tell this target when the drift status changed since the last run (repeatable).",
)
@click.option("--notify-always", is_flag=True, help="Notify after every run, not only on a change of status.")
@DEADLINE
@CONCURRENCY
@REPORT_FORMAT
@OUT
@pass_project
@click.pass_context
def drift(
    ctx: click.Context,
    project: Project,
    inventory: str,
    deploys: tuple[str, ...],
    limit: str | None,
    fail_on_unreachable: bool,
    notify_targets: tuple[str, ...],
    notify_always: bool,
    deadline: tuple[str, ...],
    concurrency: int,
    fmt: str,
    out: Path | None,
) -> None:
    """Report, host by host, what differs from the desired state: dry-run each deploy (every deploy with
    settings for the hosts when none are named) and run its verify suite. Changes nothing.
    Exit 0 clean (or partial: some hosts unreachable, listed), 3 drift found, 1 error (a deploy or suite
    error on a host, or no host checked), 130 interrupted."""
    _writable_out(out)
    stop = threading.Event()
    with _stop_on_signals(stop):
        run, saved = runs.drift(
            project,
            inventory,
            list(deploys),
            limit=limit,
            fail_on_unreachable=fail_on_unreachable,
            state_url=ctx.find_object(ProjectRef).state,  # type: ignore[union-attr]
            notify_targets=notify_targets,
            notify_always=notify_always,
            stop=stop,
            deadline_overrides=deadlines.parse_overrides(deadline),
            concurrency=concurrency,
        )
    _show(run, saved, fmt, as_text.drift_run, out)


@cli.command("dr-test")
@click.argument("inventory")
@click.option("--month", metavar="YYYY-MM", help="The month the report is for (default: this month).")
@click.option("--drill", is_flag=True, help="Also run the drills: failovers and stepdowns, timed against the RTO.")
@click.option("--history", "show_history", is_flag=True, help="List the past DR tests of the inventory and exit.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json", "md", "html"]),
    default="text",
    show_default=True,
    help="What goes to stdout: text (the Markdown report), json, md or html.",
)
@OUT
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
) -> None:
    """Run the DR checks (and with --drill the drills) of group_data `dr` and write the month's report:
    RTO/RPO targets against measured values, evidence, drill log, issues, next test date, trend.
    Exit 0 all passed, 1 a check failed or a drill left a system degraded."""
    state = ctx.find_object(ProjectRef).state  # type: ignore[union-attr]
    if show_history:
        rows = history_module.dr_tests(project, state, inventory)
        if fmt == "json":
            echo(json.dumps({"dr_tests": rows}, indent=2))
        else:
            for r in rows:
                echo(f"{r['month']}  {r['status']:7}  failed checks {r['failed']}  run {r['run_id']}")
        return
    _writable_out(out)
    run, saved = runs.dr_test(project, inventory, month=month, drill=drill, state_url=state)
    written = write_reports(run, out) if out is not None else []
    echo(render_report(run, "md" if fmt == "text" else fmt), nl=False)
    if fmt == "text":
        echo(f"result: {saved}")
        for path in written:
            echo(f"report: {path}")
    _finish(run.exit_code)


@cli.command()
@click.argument("args", nargs=-1, metavar="[INVENTORY] | show RUN_ID")
@FORMAT
@pass_project
@click.pass_context
def history(ctx: click.Context, project: Project, args: tuple[str, ...], fmt: str) -> None:
    """List past runs (newest first), or show one: `opsrun history show RUN_ID`."""
    state = ctx.find_object(ProjectRef).state  # type: ignore[union-attr]
    if args[:1] == ("show",):
        if len(args) != 2 or not args[1].isdigit():
            raise click.UsageError("usage: opsrun history show RUN_ID")
        doc = history_module.run_document(project, state, int(args[1]))
        if fmt == "json":
            echo(json.dumps(doc, indent=2))
        else:
            as_text.run_document(doc, _console())
        return
    if len(args) > 1:
        raise click.UsageError("usage: opsrun history [INVENTORY] | opsrun history show RUN_ID")
    rows = history_module.runs(project, state, args[0] if args else None)
    if fmt == "json":
        echo(json.dumps({"runs": [vars(r) for r in rows]}, indent=2))
    else:
        as_text.history(rows, _console())


@cli.group()
def lab() -> None:
    """The local lab: real Debian hosts (systemd-nspawn) to run deploys against."""


@lab.command("up")
@click.option(
    "--hosts",
    "count",
    type=click.IntRange(min=1),
    default=3,
    show_default=True,
    help="Number of hosts (web1..webN), up to what this machine holds: the /24's 244 addresses and its memory.",
)
def lab_up(count: int) -> None:
    """Build (once) and boot the lab; running it again gives the same lab. Raises the kernel's inotify
    limits when the hosts need more (`lab down` puts them back)."""
    from opsrun.lab import Lab

    hosts = Lab().up(count, log=lambda m: echo(m, err=True))
    as_text.lab_hosts(hosts, _console())
    bad = [h.name for h in hosts if h.state != "running"]
    _finish(1 if bad else 0)


@lab.command("down")
@click.option("--purge", is_flag=True, help="Also remove the cached base image and package caches.")
def lab_down(purge: bool) -> None:
    """Remove every process, namespace, interface, cgroup and file the lab made."""
    from opsrun.lab import Lab

    Lab().down(log=lambda m: echo(m, err=True), purge=purge)
    echo("lab down")


@lab.command("publish")
@click.argument("version", required=False)
@click.option("--reboot", is_flag=True, help="Its postinst asks for a reboot, like a kernel update.")
def lab_publish(version: str | None, reboot: bool) -> None:
    """Publish VERSION (default: the one after the newest, 1.0 -> 1.1) of the demo package opsrun-demo in
    the lab's apt repository."""
    from opsrun.lab import Lab, aptrepo

    cfg = Lab().cfg
    deb = aptrepo.publish(cfg, version or aptrepo.next_version(cfg), reboot=reboot)
    echo(f"published {deb.name}")


@lab.command("install")
@click.argument("packages", nargs=-1, required=True)
def lab_install(packages: tuple[str, ...]) -> None:
    """apt-get install PACKAGES from the lab's repository on every lab host: what a fleet runs before opsrun
    manages it (opsrun-demo, for patching to upgrade; opsrun-mongod-standin, mongod as MongoDB's package
    installs it, played by the stand-in of tests/standins/mongod.py)."""
    from opsrun.lab import Lab

    done = Lab().install(list(packages), log=echo)
    failed = {h: p for h, p in done.items() if p.returncode != 0}
    for host, proc in done.items():
        if proc.returncode == 0:
            echo(f"{host}: installed {' '.join(packages)}")
        else:
            echo(f"{host}: apt-get failed ({proc.returncode}): {proc.stderr.strip()[-300:]}", err=True)
    _finish(1 if failed else 0)


@lab.command("ssh", context_settings={"ignore_unknown_options": True})
@click.argument("host")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
def lab_ssh(host: str, command: tuple[str, ...]) -> None:
    """Run COMMAND (one shell line; several words are joined with spaces) on lab host HOST as root, as
    someone logged in there would: its output, its exit code."""
    from opsrun.lab import Lab

    proc = Lab().run(host, " ".join(command))
    echo(proc.stdout, nl=False)
    echo(proc.stderr, nl=False, err=True)
    _finish(proc.returncode)


@lab.command("load", context_settings={"ignore_unknown_options": True})
@click.option("--threads", type=click.IntRange(1, 64), default=8, show_default=True, help="Client threads.")
@click.option("--rate", type=click.FloatRange(1, 300), default=300, show_default=True, help="Requests/s at most.")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
def lab_load(threads: int, rate: float, command: tuple[str, ...]) -> None:
    """Run COMMAND while THREADS clients send GET / through the lab's HAProxy; then print how many
    requests went through and how many failed. Exits with COMMAND's exit code, or 1 if a request failed."""
    import subprocess

    from opsrun.lab import Lab
    from opsrun.lab.loadgen import LoadGenerator

    frontend = Lab().frontend()
    with LoadGenerator(f"http://{frontend}/", threads=threads, max_seconds=3600, max_rate=rate) as load:
        code = subprocess.run(list(command), check=False).returncode
    got = load.result
    errors = f" {dict(got.errors)}" if got.errors else ""
    echo(f"load: {got.requests} requests through HAProxy ({got.rate:.0f}/s), failed: {got.failures}{errors}")
    _finish(code or (1 if got.failures else 0))


@lab.command("postgres")
def lab_postgres() -> None:
    """Start the PostgreSQL primary and streaming replica of the DR checks on this machine's loopback, at
    the URLs of OPSRUN_PG_PRIMARY_URL and OPSRUN_PG_REPLICA_URL (their password too), with the demo tables,
    and write the night's pg_dump. `lab down` removes them."""
    from opsrun.lab import Lab, postgres

    dumps = postgres.ensure(Lab().cfg, log=echo)
    echo(f"postgres: {len(dumps)} dump(s) in {dumps[-1].parent}")


@lab.command("status")
@FORMAT
def lab_status(fmt: str) -> None:
    """Each lab host's name, address and state."""
    from opsrun.lab import Lab, host_dict

    hosts = Lab().status()
    if fmt == "json":
        echo(json.dumps({"hosts": [host_dict(h) for h in hosts]}, indent=2))
    else:
        as_text.lab_hosts(hosts, _console())


def main() -> None:
    """Entry point: click handles usage errors and exit codes; anything unexpected goes to the debug log."""
    try:
        cli.main(prog_name="opsrun")
    except Exception:  # noqa: BLE001 - raised before a command ran (no options parsed): the same log
        _internal_error(ProjectRef(os.environ.get("OPSRUN_PROJECT")))


def _internal_error(ref: ProjectRef | None) -> NoReturn:
    """The traceback (secrets redacted) appended to the project's .opsrun/debug.log, where --project,
    OPSRUN_PROJECT or the current folder finds the project (the current folder's .opsrun/ when none), and
    one line on stderr saying where it went. Exit 1."""
    try:
        root = Project.find(ref.path if ref else None).root
    except OpsrunError:
        root = Path.cwd()
    log = root / ".opsrun" / "debug.log"
    try:
        log.parent.mkdir(exist_ok=True)
        with log.open("a") as f:
            f.write(f"--- {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} {redact(' '.join(sys.argv))}\n")
            f.write(redact(traceback.format_exc()))
        where = f"details in {log.resolve()}"
    except OSError:
        where = "\n" + redact(traceback.format_exc())
    echo(f"internal error: {sys.exc_info()[1]!r}; {where}", err=True)
    sys.exit(1)
