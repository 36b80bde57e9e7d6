"""Text rendering for the terminal (rich tables)."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from opsrun.lab import LabHost
from opsrun.results import DeployRun, VerifyRun

STYLE = {"ok": "green", "changed": "yellow", "failed": "bold red", "passed": "green"}


def deploy_run(run: DeployRun, console: Console) -> None:
    verb = "would change" if run.dry_run else "changed"
    table = Table(
        title=f"{'dry run' if run.dry_run else 'apply'} {run.deploy} on {run.inventory}", title_justify="left"
    )
    table.add_column("host")
    table.add_column("status")
    table.add_column(f"ops {verb}", justify="right")
    table.add_column("details")
    for h in run.hosts:
        status = h.status if not (run.dry_run and h.status == "changed") else "pending"
        details: list[str] = []
        if h.error and not h.failed_operation():
            details.append(h.error)
        if (bad := h.failed_operation()) is not None:
            details.append(f"operation {bad.name!r} failed: {bad.error}")
        if run.dry_run:
            for op in h.operations:
                if op.changed:
                    tag = " (conditional)" if op.conditional else ""
                    details.append(f"{op.name}{tag}" + "".join(f"\n    {c}" for c in op.commands[:3]))
        table.add_row(h.name, f"[{STYLE.get(h.status, '')}]{status}[/]", str(h.changed_count), "\n".join(details))
    console.print(table)
    failed = [h.name for h in run.hosts if h.failed]
    summary = f"{len(run.hosts)} hosts, {sum(h.changed_count for h in run.hosts)} operations {verb}"
    summary += f", failed: {', '.join(failed)}" if failed else ""
    console.print(f"{run.status}: {summary} in {run.seconds:.1f}s")


def verify_run(run: VerifyRun, console: Console) -> None:
    table = Table(title=f"verify {run.suite} on {run.inventory}", title_justify="left")
    table.add_column("host")
    table.add_column("status")
    table.add_column("passed", justify="right")
    table.add_column("failed", justify="right")
    table.add_column("details")
    for host in run.hosts:
        results = run.for_host(host)
        bad = [r for r in results if r.outcome in ("failed", "error")]
        status = "failed" if bad or not results else "passed"
        details = "\n".join(f"{r.test}: {r.message}" for r in bad) or ("no test ran" if not results else "")
        table.add_row(
            host,
            f"[{STYLE[status]}]{status}[/]",
            str(sum(r.outcome == "passed" for r in results)),
            str(len(bad)),
            details,
        )
    console.print(table)
    if run.error:
        console.print(f"[bold red]{run.error}[/]")
    console.print(f"{run.status}: {len(run.results)} checks on {len(run.hosts)} hosts in {run.seconds:.1f}s")


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
