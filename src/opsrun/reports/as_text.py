"""Text rendering for the terminal (rich tables)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from rich.console import Console
from rich.live import Live
from rich.markup import escape
from rich.table import Table

from opsrun.checks.drift import DriftRun
from opsrun.model.documents import Document
from opsrun.model.documents.apply import ApplyDocument, Canary, RolloutDocument
from opsrun.model.documents.checks import VerifyDocument
from opsrun.model.results import DeployRun, HostRun, OperationResult, RolloutRun, VerifyRun, user_commands
from opsrun.reports.model import canary_line, rollback_notes
from opsrun.rollout import Plan
from opsrun.rollout.rollback import Target
from opsrun.store import RunRow
from opsrun.support import logs

if TYPE_CHECKING:
    from opsrun.lab import LabHost

MAX_DIFF_LINES = 200  # of an operation's diff (the engine keeps no more)
STYLE = {"ok": "green", "changed": "yellow", "failed": "bold red", "passed": "green"}


def deploy_run(run: DeployRun, console: Console, *, diff: bool = False) -> None:
    verb = "would change" if run.dry_run else "changed"
    title = f"{'dry run' if run.dry_run else 'apply'} {run.deploy} on {run.inventory}"
    table = Table(title=title, title_justify="left")
    table.add_column("host")
    table.add_column("status")
    table.add_column(f"ops {verb}", justify="right")
    for h in run.hosts:
        status = "pending" if run.dry_run and h.status == "changed" else h.status
        table.add_row(h.name, f"[{STYLE.get(h.status, '')}]{status}[/]", str(h.changed_count))
    console.print(table)
    if run.plan is not None:
        _line(console, plan_line(run.plan["batches"], run.plan["max_fail"], canary="canary" in run.plan))
    # details as whole lines under the table: long errors stay readable and greppable
    for h in run.hosts:
        _host_error(console, h)
        if run.dry_run or diff:
            changes(console, h.name, h.operations, verb, diff=diff)
    for host, whose in run.taken_over().items():
        console.print(f"[yellow]{host}[/]: took over the lease of {escape(whose)}", soft_wrap=True)
    if run.interrupted:
        console.print(escape(run.interrupted), soft_wrap=True)
    if run.record_error:
        console.print(f"[bold red]record[/]: {escape(run.record_error)}", soft_wrap=True)
    failed = [h.name for h in run.hosts if h.failed]
    summary = f"{_n(len(run.hosts), 'host')}, {_n(sum(h.changed_count for h in run.hosts), 'operation')} {verb}"
    summary += f", failed: {', '.join(failed)}" if failed else ""
    console.print(f"{run.status}: {summary} in {run.seconds:.1f}s", soft_wrap=True)


def _host_error(console: Console, h: HostRun) -> None:
    """One line for a host that failed: its own error (a deadline, a deploy error) or its failed operation."""
    bad = h.failed_operation()
    if h.error:
        console.print(f"[bold red]{h.name}[/]: {escape(h.error)}", soft_wrap=True)
    elif bad is not None:
        console.print(
            f"[bold red]{h.name}[/]: operation {escape(repr(bad.name))} failed: {escape(bad.error or '')}",
            soft_wrap=True,
        )


def changes(console: Console, host: str, ops: list[OperationResult], verb: str, *, diff: bool) -> None:
    """Each operation that changes the host: its name, the files it writes ("Will modify PATH"; their unified
    diff with --diff) and the commands it runs, opsrun's own steps on the host (its swap folder) only at -vv."""
    for op in (o for o in ops if o.changed):
        tag = " (conditional: depends on an earlier operation)" if op.conditional else ""
        console.print(f"{host}: {verb} {escape(repr(op.name))}{tag}", soft_wrap=True)
        show_diff(console, op.diff if diff else [line for line in op.diff if line.startswith("Will ")])
        for command in _commands(op.commands)[:5]:
            _line(console, f"    {_short(command)}")


def show_diff(console: Console, lines: list[str], limit: int = MAX_DIFF_LINES) -> None:
    for line in lines[:limit]:
        style = {"+": "green", "-": "red", "@": "magenta"}.get(line[:1], "")
        console.print(f"    [{style}]{escape(line)}[/]" if style else f"    {escape(line)}", soft_wrap=True)


def _commands(commands: list[str]) -> list[str]:
    return commands if logs.level() >= logs.RAW else user_commands(commands)


def verify_run(run: VerifyRun, console: Console) -> None:
    table = Table(title=f"verify {run.suite} on {run.inventory}", title_justify="left")
    table.add_column("host")
    table.add_column("status")
    table.add_column("passed", justify="right")
    table.add_column("failed", justify="right")
    for host in run.hosts:
        results = run.for_host(host)
        bad = [r for r in results if r.outcome in ("failed", "error")]
        status = "failed" if bad or not results else "passed"
        table.add_row(
            host,
            f"[{STYLE[status]}]{status}[/]",
            str(sum(r.outcome == "passed" for r in results)),
            str(len(bad)),
        )
    console.print(table)
    for r in run.results:
        if r.outcome in ("failed", "error"):
            console.print(
                f"[bold red]{r.host}[/]: {escape(r.test)} {r.outcome}: {escape(r.message or '')}", soft_wrap=True
            )
    for host in run.hosts:
        if not run.for_host(host):
            console.print(f"[bold red]{host}[/]: no test ran", soft_wrap=True)
    if run.error:
        console.print(f"[bold red]{escape(run.error)}[/]")
    console.print(
        f"{run.status}: {_n(len(run.results), 'check')} on {_n(len(run.hosts), 'host')} in {run.seconds:.1f}s"
    )


def lab_hosts(hosts: list[LabHost], console: Console) -> None:
    if not hosts:
        console.print("no lab (run `opsrun lab up`)")
        return
    table = Table(title="lab", title_justify="left")
    for col in ("host", "address", "state"):
        table.add_column(col)
    for h in hosts:
        style = "green" if h.state == "running" else "yellow" if h.state in ("starting", "degraded") else "red"
        table.add_row(h.name, h.address, f"[{style}]{h.state}[/]")
    console.print(table)


def plan_line(batches: list[list[str]], max_fail: int, *, canary: bool = False) -> str:
    listed = " | ".join(f"{i}: {', '.join(b)}" for i, b in enumerate(batches, 1))
    baked = "; batch 1 is a canary, baked and judged before the next" if canary and batches else ""
    return f"plan: {len(batches)} batches ({listed}); failure budget {max_fail}{baked}"


def _line(console: Console, text: str) -> None:
    """A plain line: no markup (host output may hold brackets), no highlighting, never wrapped mid-word."""
    console.print(text, soft_wrap=True, markup=False, highlight=False)


def _short(line: str, width: int = 160) -> str:
    return line if len(line) <= width else line[: width - 3] + "..."


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


class RolloutProgress:
    """Live progress of a rollout: batch, host, stage, elapsed. A live table on a terminal, one line per
    stage otherwise (logs, CI)."""

    def __init__(self, console: Console, *, quiet: bool = False):
        self.console = console
        self.quiet = quiet  # -q: nothing until the result
        self.rows: dict[str, tuple[int, str, float]] = {}
        self.started = time.monotonic()
        self.live: Live | None = None

    def __enter__(self) -> RolloutProgress:
        return self  # the live table starts with the rollout's first stage: an apply that rolls nothing shows none

    def __exit__(self, *exc: object) -> None:
        if self.live is not None:
            self.live.__exit__(None, None, None)

    def plan(self, plan: Plan) -> None:
        """Printed before anything happens."""
        if not self.quiet:
            _line(self.console, plan_line([list(b) for b in plan.batches], plan.max_fail, canary=plan.canary))

    def lines(self, target: Target) -> None:
        """A rollback's plan, printed first: to which revision, and each host from which."""
        if not self.quiet:
            for line in target.plan_lines():
                _line(self.console, line)

    def __call__(self, batch: int, host: str, stage: str) -> None:
        now = time.monotonic()
        self.rows[host] = (batch, stage, now)
        if self.live is None and self.console.is_terminal and not self.quiet:
            self.live = Live(self._table(), console=self.console, refresh_per_second=4, transient=True)
            self.live.__enter__()
        if self.live is not None:
            self.live.update(self._table())
        elif not self.quiet:
            _line(self.console, f"[{now - self.started:6.1f}s] batch {batch}: {host}: {stage}")

    def _table(self) -> Table:
        table = Table(title="rollout", title_justify="left")
        for col in ("batch", "host", "stage", "for"):
            table.add_column(col)
        now = time.monotonic()
        for host, (batch, stage, since) in self.rows.items():
            table.add_row(str(batch), host, stage, f"{now - since:.1f}s")
        return table


def rollout_run(run: RolloutRun, console: Console, *, diff: bool = False) -> None:
    what = "rollback" if run.rollback is not None and not run.rollback.automatic else "rolling apply"
    table = Table(title=f"{what} {run.deploy} on {run.inventory}", title_justify="left")
    for col in ("batch", "host", "outcome", "stage", "balancer", "ops changed"):
        table.add_column(col)
    for h in run.hosts.values():
        style = {"done": "green", "failed": "bold red", "interrupted": "bold yellow", "not_reached": "yellow"}[
            h.outcome
        ]
        where = "in" if h.in_balancer else "[bold red]OUT[/]"
        stage = h.stage if h.outcome in ("failed", "interrupted") else ""
        changed = str(h.run.changed_count) if h.run else "-"
        table.add_row(str(h.batch), h.name, f"[{style}]{h.outcome}[/]", stage or "", where, changed)
    console.print(table)
    for host, what in run.healed.items():
        console.print(f"[yellow]{host}[/] (left drained by a dead run): {escape(what)}", soft_wrap=True)
    for host, whose in run.leases_taken_over.items():
        console.print(f"[yellow]{host}[/]: took over the lease of {escape(whose)}", soft_wrap=True)
    for h in run.hosts.values():
        if diff and h.run is not None:
            changes(console, h.name, h.run.operations, "changed", diff=True)
        for up in h.run.upgrades if h.run else []:
            console.print(f"{h.name}: upgraded {up['package']} {up['from']} -> {up['to']}", soft_wrap=True)
        if h.rebooted:
            console.print(f"{h.name}: rebooted", soft_wrap=True)
        if h.note:
            console.print(f"[yellow]{h.name}[/]: {escape(h.note)}", soft_wrap=True)
        if h.outcome == "failed":
            out = "it is left out of the balancer" if not h.in_balancer else "it is in the balancer"
            console.print(
                f"[bold red]{h.name}[/]: failed at {h.stage}: {escape(h.reason or '')} ({out})", soft_wrap=True
            )
        elif h.outcome == "interrupted":
            out = "it is in the balancer" if h.in_balancer else "it is left out of the balancer"
            console.print(
                f"[bold yellow]{h.name}[/]: interrupted at {h.stage}: {escape(h.reason or '')} ({out})", soft_wrap=True
            )
    if run.left_out():
        console.print(f"[bold red]left out of the balancer[/]: {', '.join(run.left_out())}", soft_wrap=True)
    not_reached = [h.name for h in run.hosts.values() if h.outcome == "not_reached"]
    if run.canary:
        _line(console, canary_line(Canary.model_validate(run.canary)))
    if run.interrupted:
        how = "stopped now (a second Ctrl-C)" if run.stopped_now else "stopped at a safe point"
        console.print(f"interrupted: {how}", soft_wrap=True)
    if run.halted:
        console.print(f"halted: {escape(run.halted)}", soft_wrap=True)
    if run.record_error:
        console.print(f"[bold red]record[/]: {escape(run.record_error)}", soft_wrap=True)
    if not_reached:
        console.print(f"not reached (untouched): {', '.join(not_reached)}", soft_wrap=True)
    for line in rollback_notes(run.rollback.document() if run.rollback else None):
        _line(console, line)
    done = sum(h.outcome == "done" for h in run.hosts.values())
    stages = ", ".join(f"{k} {v:.1f}s" for k, v in run.stage_seconds.items())
    console.print(
        f"{run.status}: {done} of {_n(len(run.hosts), 'host')} done in {run.seconds:.1f}s ({stages})", soft_wrap=True
    )


def history(rows: list[RunRow], console: Console) -> None:
    if not rows:
        console.print("no runs recorded yet")
        return
    table = Table(title="runs", title_justify="left")
    for col in ("id", "started", "who", "kind", "inventory", "deploy or suite", "status", "revision", "resumes"):
        table.add_column(col)
    for r in rows:
        style = {"success": "green", "passed": "green", "clean": "green", "running": "yellow"}.get(r.status, "bold red")
        table.add_row(
            str(r.id),
            r.started_at,
            f"{r.who}@{r.machine}",
            r.kind,
            r.inventory,
            r.deploy or "",
            f"[{style}]{r.status}[/]",
            (r.revision or "")[:12],
            str(r.resumed_from or ""),
        )
    console.print(table)


def _host_rows(doc: Document) -> list[tuple[str, ...]]:
    """A recorded run's hosts: outcome, stage, in the balancer or not, reason, seconds per stage."""
    if isinstance(doc, VerifyDocument):
        return [(name, h.status, "", "in", "", "") for name, h in doc.hosts.items()]
    if not isinstance(doc, ApplyDocument | RolloutDocument):
        return []
    rows: list[tuple[str, ...]] = []
    for name, h in doc.hosts.items():
        secs = ", ".join(f"{k} {v:.1f}" for k, v in (h.seconds or {}).items())
        balancer = "OUT" if h.in_balancer is False else "in"
        rows.append((name, h.outcome or h.status or "", h.stage or "", balancer, escape(h.reason or ""), secs))
    return rows


def run_document(doc: Document, console: Console) -> None:
    """One recorded run, from its stored document."""
    deploy = doc.deploy if isinstance(doc, ApplyDocument | RolloutDocument) else None
    console.print(f"run {doc.run_id}: {doc.kind} {deploy or ''} on {doc.inventory}: {doc.status}", soft_wrap=True)
    error = getattr(doc, "error", None)
    if error:
        console.print(f"error: {escape(str(error))}", soft_wrap=True)
    if isinstance(doc, ApplyDocument | RolloutDocument) and doc.plan:
        batches = " | ".join(", ".join(b) for b in doc.plan.batches)
        console.print(f"plan: {batches}", soft_wrap=True)
    data = getattr(doc, "data", None)
    if data:
        given = ", ".join(f"{k}={v!r}" for k, v in data.items())
        console.print(f"data: {escape(given)}", soft_wrap=True, highlight=False)
    table = Table(title_justify="left")
    for col in ("host", "outcome", "stage", "balancer", "reason", "seconds"):
        table.add_column(col)
    for row in _host_rows(doc):
        table.add_row(*row)
    console.print(table)
    if isinstance(doc, RolloutDocument):
        if doc.canary:
            _line(console, canary_line(doc.canary))
        if doc.halted:
            console.print(f"halted: {escape(doc.halted)}", soft_wrap=True)
        for line in rollback_notes(doc.rollback):
            _line(console, line)


def drift_run(run: DriftRun, console: Console) -> None:
    table = Table(title=f"drift on {run.inventory} ({', '.join(run.deploys)})", title_justify="left")
    for col in ("host", "deploy", "operation", "verdict", "status", "since", "cause"):
        table.add_column(col)
    for f in run.drifted:
        table.add_row(
            f.host,
            f.deploy,
            escape(f.operation),
            f"[bold red]{f.verdict}[/]",
            f.status,
            f.first_seen or "",
            f.cause or "",
        )
    if run.drifted:
        console.print(table)
    for f in run.drifted:
        for line in _commands(f.detail)[:5]:
            _line(console, f"{f.host} {f.deploy} {f.operation}: {_short(line)}")
        show_diff(console, f.diff, 40)
    for f in run.findings:
        if f.held:
            _line(console, f"held (intentional, not drift): {f.host} out of {f.operation}: {'; '.join(f.detail)}")
        elif not f.counts:
            _line(console, f"unknown (not drift): {f.host} {f.deploy} {f.operation!r}: {f.detail[0]}")
    for r in run.resolved:
        _line(console, f"resolved: {r['host']} {r['deploy']} {r['operation']!r} (seen since {r['first_seen']})")
    for f in run.errors:
        console.print(
            f"[bold red]error[/] (drift not known): {f.host} {f.deploy} {escape(f.operation)}: {escape(f.detail[0])}",
            soft_wrap=True,
        )
    for host, error in run.unreachable.items():
        _line(console, f"unreachable (not drift): {host}: {error}")
    if run.interrupted:
        console.print(escape(run.interrupted), soft_wrap=True)
    n = run.summary()
    console.print(
        f"{run.status}: {n.drift} findings ({n.new} new, {n.persisting} persisting), "
        f"{n.resolved} resolved, {n.unknown} unknown, {n.errors} errors, "
        f"{n.unreachable} unreachable; {n.checked} of {n.hosts} hosts checked in {run.seconds:.1f}s",
        soft_wrap=True,
    )
