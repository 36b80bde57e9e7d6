"""One report model for every command: a run's JSON document (apply, rollout, verify, drift) turned into
a title, a summary, per-host items and notes, which the Markdown, HTML and JUnit renderers share.

Items are what a reader checks one by one: an operation that changed (or would), a verify test, a drift
finding. `failing` marks what counts against the run (a JUnit failure); `skipped` what could not be
judged (an unknown, a host not reached).

At fleet scale most hosts have nothing to say: a host whose items are all quiet (none, or only passed
checks) is "quiet", and the renderers fold the quiet hosts into one line (`quiet_line`) instead of a
section each.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from opsrun.model import documents
from opsrun.model.documents.apply import (
    ApplyDocument,
    ApplyHost,
    AutomaticRollback,
    Canary,
    ManualRollback,
    Operation,
    RolloutDocument,
)
from opsrun.model.documents.checks import DriftDocument, VerifyDocument
from opsrun.model.documents.status import CanaryOutcome, FindingStatus, Outcome, TestOutcome, Verdict
from opsrun.model.results import user_commands
from opsrun.reports.charts import TierTrend

QUIET_VERDICTS = frozenset({"passed", "unchanged"})


@dataclass
class Item:
    host: str
    name: str
    verdict: str  # changed | unchanged | failed | passed | skipped | will_change | unknown | verify_failed | ...
    group: str = ""  # the deploy or suite
    detail: list[str] = field(default_factory=list)  # commands, messages, reasons
    diff: list[str] = field(default_factory=list)  # "Will modify PATH", "@@ ... @@", "- old", "+ new", "  same"
    note: str = ""  # new / persisting since ... / intentional ...
    seconds: float | None = None
    failing: bool = False
    skipped: bool = False

    @property
    def quiet(self) -> bool:
        """Nothing for a reader to look at: a check that passed, an operation that changed nothing."""
        return self.verdict in QUIET_VERDICTS and not self.failing and not self.skipped


@dataclass(kw_only=True)
class Report:  # built by keyword only: many of its fields are strings, easy to swap by position
    kind: str
    title: str
    status: str
    inventory: str
    generated: str
    summary: dict[str, float | str]
    hosts: list[str]
    items: list[Item]
    notes: list[str] = field(default_factory=list)
    trend: list[tuple[str, int]] = field(default_factory=list)  # (when, count) of earlier runs, oldest first
    trend_verdicts: list[str] = field(default_factory=list)  # each trend bar's verdict (default: drift when > 0)
    tiers: list[TierTrend] = field(default_factory=list)  # a DR test's RTO and RPO per tier, month by month
    run_id: int | None = None
    first_line: str = ""  # what a reader must see before anything else (a drill left a system degraded)
    trend_label: str = "Drift findings"
    tables: list[tuple[str, list[str], list[list[str]]]] = field(default_factory=list)  # (title, header, rows)
    log: list[str] = field(default_factory=list)  # timestamped steps (a drill's)
    section_label: str = "host"
    quiet_label: str = "with nothing to report"  # "97 hosts clean: ...": what a quiet host is, for this kind
    empty: str = ""  # what a host without any item means, when that is not quiet (verify: no check ran)

    def for_host(self, host: str) -> list[Item]:
        return [i for i in self.items if i.host == host]

    def quiet_hosts(self) -> list[str]:
        """The hosts (in report order) with nothing to look at: only quiet items, or none (unless `empty`
        says that a host without items is news)."""
        loud = {i.host for i in self.items if not i.quiet}
        if self.empty:
            loud |= set(self.hosts) - {i.host for i in self.items}
        return [h for h in self.hosts if h not in loud]

    def loud_hosts(self) -> list[str]:
        """The hosts that get a section of their own."""
        quiet = set(self.quiet_hosts())
        return [h for h in self.hosts if h not in quiet]

    def quiet_line(self) -> str:
        """All quiet hosts on one line: "97 hosts clean: web1, web2, ..." ("" when there are none)."""
        quiet = self.quiet_hosts()
        if not quiet:
            return ""
        noun = "host" if len(quiet) == 1 else "hosts"
        return f"{len(quiet)} {noun} {self.quiet_label}: {', '.join(quiet)}"


def _now() -> str:
    return time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime())


def from_document(doc: documents.Document | Mapping[str, Any], trend: list[tuple[str, int]] | None = None) -> Report:
    """The report of a run's document (its model, or its JSON's dict as written, today or by an older opsrun)."""
    from opsrun.reports.dr_report import dr_report

    doc = documents.load(doc)
    if isinstance(doc, documents.DRDocument):
        built = dr_report(doc)
    elif isinstance(doc, DriftDocument):
        built = _drift(doc)
        built.trend = trend if trend is not None else [(str(w), int(n)) for w, n in doc.trend]
    else:
        built = _verify(doc) if isinstance(doc, VerifyDocument) else _apply(doc)
        built.trend = trend or []
    built.run_id = doc.run_id
    return built


def report(doc: documents.Document, *, kind: str, title: str, **rest: Any) -> Report:
    """A report whose status and inventory are the document's, generated now."""
    return Report(kind=kind, title=title, status=str(doc.status), inventory=doc.inventory, generated=_now(), **rest)


def canary_line(verdict: Canary) -> str:
    """A rollout's canary verdict in a line: its hosts, the outcome and the figures (rollout.canary)."""
    failed = "failed: " if verdict.outcome == CanaryOutcome.BREACH else ""  # the other reasons say what they are
    return f"canary {', '.join(verdict.hosts)} ({verdict.source}): {failed}{verdict.reason}"


def _host_notes(host: str, h: ApplyHost) -> list[str]:
    """What an apply did to a host beside its operations: packages upgraded, a reboot, a note."""
    notes = [f"{host}: upgraded {up.package} {up.came_from} -> {up.to}" for up in h.upgrades]
    if h.rebooted:
        notes.append(f"{host}: rebooted")
    if h.note:
        notes.append(f"{host}: {h.note}")
    return notes


def _host_outcome(host: str, h: ApplyHost, deploy: str) -> list[Item]:
    """A rollout's host beside its operations: failed or interrupted at a stage, or not reached."""
    if h.outcome == Outcome.INTERRUPTED:  # by the operator's stop now: not a failure of the host
        where = "in the balancer" if h.in_balancer else "left out of the balancer"
        detail = [f"{h.reason or 'stopped now'} ({where})"]
        return [Item(host, f"stage {h.stage}", "interrupted", group=deploy, detail=detail, skipped=True)]
    if h.outcome == Outcome.FAILED or h.error:
        reason = h.reason or h.error or "failed"
        return [Item(host, f"stage {h.stage or 'apply'}", "failed", group=deploy, detail=[reason], failing=True)]
    if h.outcome == Outcome.NOT_REACHED:
        return [Item(host, "not reached", "skipped", group=deploy, skipped=True)]
    return []


def _operation(host: str, op: Operation, deploy: str, *, dry: bool) -> Item:
    """An operation that changed (or would), or failed."""
    verdict = "failed" if not op.success else ("will_change" if dry else "changed")
    detail = [op.error] if op.error else user_commands(op.commands or op.output)
    return Item(
        host,
        op.name,
        verdict,
        group=deploy,
        detail=detail,
        diff=list(op.diff),
        note=op.unknown or "",
        failing=not op.success,
    )


def _run_notes(doc: ApplyDocument | RolloutDocument) -> list[str]:
    """What a reader of an apply must know beside its hosts: who is out of the balancer, the canary, why it halted."""
    notes = []
    if doc.left_out_of_balancer:
        notes.append("left out of the balancer: " + ", ".join(doc.left_out_of_balancer))
    if isinstance(doc, RolloutDocument):
        if doc.canary:
            notes.append(canary_line(doc.canary))
        if doc.halted:
            notes.append(f"halted: {doc.halted}")
    if doc.record_error:
        notes.append(f"record: {doc.record_error}")
    return notes + rollback_notes(doc.rollback if isinstance(doc, RolloutDocument) else None)


def _apply(doc: ApplyDocument | RolloutDocument) -> Report:
    dry, deploy = doc.dry_run, doc.deploy or ""
    items: list[Item] = []
    notes: list[str] = []
    for host, h in doc.hosts.items():
        items += [_operation(host, op, deploy, dry=dry) for op in h.operations if op.changed or not op.success]
        items += _host_outcome(host, h, deploy)
        notes += _host_notes(host, h)
    per_host = doc.hosts.values()
    failed = [h for h in per_host if h.outcome != Outcome.INTERRUPTED and (h.outcome == Outcome.FAILED or h.error)]
    counts = {
        "changed hosts": sum(1 for h in per_host if h.changed),
        "failed hosts": len(failed),
        "operations changed": sum(h.changed for h in per_host),
    }
    what = "dry run" if dry else ("rolling apply" if doc.kind == "rollout" else "apply")
    title, quiet = f"{what} {deploy} on {doc.inventory}", "with nothing to change" if dry else "unchanged"
    return _on_hosts(doc, "apply", title, counts, items, notes=notes + _run_notes(doc), quiet_label=quiet)


def _on_hosts(
    doc: ApplyDocument | RolloutDocument | VerifyDocument,
    kind: str,
    title: str,
    counts: dict[str, int],
    items: list[Item],
    **rest: Any,
) -> Report:
    """The report of a run on the document's hosts (an apply's, a verification's): one section a host, in the
    document's order; the summary their number, `counts`, then the run's seconds."""
    summary: dict[str, float | str] = {"hosts": len(doc.hosts), **counts, "seconds": doc.seconds}
    return report(doc, kind=kind, title=title, summary=summary, hosts=list(doc.hosts), items=items, **rest)


def rollback_notes(back: ManualRollback | Mapping[str, Any] | None) -> list[str]:
    """A rollback in a run's document (model.results.Rollback), as lines: where to and from where, and for
    on_failure how it went and where each of its hosts is (the text summary, `history show`, the reports)."""
    back = documents.load_rollback(back)
    if back is None:
        return []
    to_revision = str(back.to_revision or "?")[:12]
    to = f"revision {to_revision}" + (f" (run {back.to_run})" if back.to_run is not None else "")
    came = {h: str(r or "?")[:12] for h, r in back.came_from.items()}
    if not isinstance(back, AutomaticRollback):
        return [f"rolled back to {to}: " + ", ".join(f"{h} from {r}" for h, r in came.items())]
    run = back.run
    if run is None:
        return [f"not rolled back: {back.reason}"]
    lines = [f"rollback to {to} {back.status}" + (f": {run.halted}" if run.halted else "")]
    for h, d in run.hosts.items():
        if d.outcome == Outcome.DONE:
            state = f"back on {to_revision}"
        elif d.outcome == Outcome.FAILED:
            state = f"rollback failed at {d.stage}: {d.reason}"
        else:
            state = f"not rolled back: still on {came.get(h, '?')}"
        went = ", ".join(f"{p} {v}" for p, v in sorted(back.downgrades.get(h, {}).items()))
        where = "in the balancer" if d.in_balancer else "OUT of the balancer"
        lines.append(f"  {h}: {state}{f' ({went})' if went else ''}, {where}")
    return lines


def _verify(doc: VerifyDocument) -> Report:
    items = [
        Item(
            host,
            t.test,
            t.outcome,
            group=doc.suite,
            detail=[t.message] if t.message else [],
            seconds=t.seconds,
            failing=t.outcome in (TestOutcome.FAILED, TestOutcome.ERROR),
            skipped=t.outcome == TestOutcome.SKIPPED,
        )
        for host, h in doc.hosts.items()
        for t in h.tests
    ]
    counts = {
        "checks": len(items),
        "passed": sum(i.verdict == TestOutcome.PASSED for i in items),
        "failed": sum(i.failing for i in items),
        "skipped": sum(i.skipped for i in items),
    }
    return _on_hosts(
        doc,
        "verify",
        f"verify {doc.suite} on {doc.inventory}",
        counts,
        items,
        notes=[f"error: {doc.error}"] if doc.error else [],
        quiet_label="passed every check",
        empty="No check ran on this host.",
    )


def _drift(doc: DriftDocument) -> Report:
    items = []
    for f in doc.findings:
        note = []
        if f.status == FindingStatus.NEW:
            note.append("new")
        elif f.status == FindingStatus.PERSISTING:
            note.append(f"persisting since {f.first_seen}")
        if f.cause:
            note.append(f.cause)
        if f.held:
            note.append("held on purpose, not drift")
        unknown = f.verdict == Verdict.UNKNOWN
        items.append(
            Item(
                f.host,
                f.operation,
                f.verdict,
                group=f.deploy,
                detail=user_commands(list(f.detail)),
                diff=list(f.diff),
                note=", ".join(note),
                failing=not unknown and not f.held,
                skipped=unknown,
            )
        )
    summary: dict[str, float | str] = {**doc.summary.model_dump(exclude_unset=True), "seconds": doc.seconds}
    items += [
        Item(host, "reachable", "unreachable", detail=[why], note="not drift", skipped=True)
        for host, why in doc.unreachable.items()
    ]
    notes = [f"unreachable (not drift): {host}: {why}" for host, why in doc.unreachable.items()]
    notes += [f"resolved: {r.host} {r.deploy} {r.operation}" for r in doc.resolved]
    hosts = doc.hosts_checked or sorted({i.host for i in items})
    return report(
        doc,
        kind="drift",
        title=f"drift of {', '.join(doc.deploys)} on {doc.inventory}",
        summary=summary,
        hosts=list(hosts),
        items=items,
        notes=notes,
        quiet_label="clean",
    )
