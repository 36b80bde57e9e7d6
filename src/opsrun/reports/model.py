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
from dataclasses import dataclass, field
from typing import Any

from opsrun.reports.charts import TierTrend
from opsrun.results import user_commands

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
    summary: dict[str, int | str]
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


def from_document(doc: dict[str, Any], trend: list[tuple[str, int]] | None = None) -> Report:
    """The report of a run's JSON document (`as_json.render`'s shape)."""
    kind = doc.get("kind", "deploy")
    from opsrun.reports.dr_report import dr_report

    builders = {"drift": _drift, "verify": _verify, "rollout": _apply, "deploy": _apply, "dr-test": dr_report}
    build = builders.get(kind, _apply)
    built = build(doc)
    if kind != "dr-test":  # drift: [when, findings] pairs in the document, or given
        built.trend = trend if trend is not None else [(str(w), int(n)) for w, n in doc.get("trend", [])]
    built.run_id = doc.get("run_id")
    return built


def report(doc: dict[str, Any], *, kind: str, title: str, **rest: Any) -> Report:
    """A report whose status and inventory are the document's, generated now."""
    return Report(
        kind=kind,
        title=title,
        status=doc.get("status", ""),
        inventory=doc.get("inventory", ""),
        generated=_now(),
        **rest,
    )


def canary_line(verdict: dict[str, Any]) -> str:
    """A rollout's canary verdict in a line: its hosts, the outcome and the figures (rollout.canary)."""
    failed = "failed: " if verdict.get("outcome") == "breach" else ""  # the other reasons say what they are
    return f"canary {', '.join(verdict.get('hosts', []))} ({verdict.get('source')}): {failed}{verdict.get('reason')}"


def _host_notes(host: str, h: dict[str, Any]) -> list[str]:
    """What an apply did to a host beside its operations: packages upgraded, a reboot, a note."""
    notes = [f"{host}: upgraded {up['package']} {up['from']} -> {up['to']}" for up in h.get("upgrades", [])]
    if h.get("rebooted"):
        notes.append(f"{host}: rebooted")
    if h.get("note"):
        notes.append(f"{host}: {h['note']}")
    return notes


def _host_outcome(host: str, h: dict[str, Any], deploy: str) -> list[Item]:
    """A rollout's host beside its operations: failed or interrupted at a stage, or not reached."""
    if h.get("outcome") == "interrupted":  # by the operator's stop now: not a failure of the host
        where = "in the balancer" if h.get("in_balancer") else "left out of the balancer"
        detail = [f"{h.get('reason') or 'stopped now'} ({where})"]
        return [Item(host, f"stage {h.get('stage')}", "interrupted", group=deploy, detail=detail, skipped=True)]
    if h.get("outcome") == "failed" or h.get("error"):
        reason = h.get("reason") or h.get("error") or "failed"
        return [Item(host, f"stage {h.get('stage') or 'apply'}", "failed", group=deploy, detail=[reason], failing=True)]
    if h.get("outcome") == "not_reached":
        return [Item(host, "not reached", "skipped", group=deploy, skipped=True)]
    return []


def _apply(doc: dict[str, Any]) -> Report:
    dry = bool(doc.get("dry_run"))
    items: list[Item] = []
    notes: list[str] = []
    for host, h in doc.get("hosts", {}).items():
        for op in h.get("operations", []):
            if not op.get("changed") and op.get("success", True):
                continue
            verdict = "failed" if not op.get("success", True) else ("will_change" if dry else "changed")
            items.append(
                Item(
                    host,
                    op["name"],
                    verdict,
                    group=doc.get("deploy", ""),
                    detail=[op["error"]]
                    if op.get("error")
                    else user_commands(op.get("commands") or op.get("output") or []),
                    diff=list(op.get("diff", [])),
                    note=op.get("unknown") or "",
                    failing=not op.get("success", True),
                )
            )
        items += _host_outcome(host, h, doc.get("deploy", ""))
        notes += _host_notes(host, h)
    if doc.get("left_out_of_balancer"):
        notes.append("left out of the balancer: " + ", ".join(doc["left_out_of_balancer"]))
    if doc.get("canary"):
        notes.append(canary_line(doc["canary"]))
    if doc.get("halted"):
        notes.append(f"halted: {doc['halted']}")
    if doc.get("record_error"):
        notes.append(f"record: {doc['record_error']}")
    notes += rollback_notes(doc.get("rollback"))
    hosts = list(doc.get("hosts", {}))
    per_host = doc.get("hosts", {})
    summary: dict[str, int | str] = {
        "hosts": len(hosts),
        "changed hosts": sum(1 for h in per_host.values() if h.get("changed")),
        "failed hosts": sum(
            1
            for h in per_host.values()
            if h.get("outcome") != "interrupted" and (h.get("outcome") == "failed" or h.get("error"))
        ),
        "operations changed": sum(h.get("changed", 0) for h in per_host.values()),
        "seconds": doc.get("seconds", 0),
    }
    what = "dry run" if dry else ("rolling apply" if doc.get("kind") == "rollout" else "apply")
    return report(
        doc,
        kind="apply",
        title=f"{what} {doc.get('deploy', '')} on {doc.get('inventory', '')}",
        summary=summary,
        hosts=hosts,
        items=items,
        notes=notes,
        quiet_label="with nothing to change" if dry else "unchanged",
    )


def rollback_notes(back: dict[str, Any] | None) -> list[str]:
    """A rollback in a run's document (results.Rollback), as lines: where to and from where, and for
    on_failure how it went and where each of its hosts is (the text summary, `history show`, the reports)."""
    if not back:
        return []
    to_revision = str(back.get("to_revision") or "?")[:12]
    to = f"revision {to_revision}" + (f" (run {back['to_run']})" if back.get("to_run") is not None else "")
    came = {h: str(r or "?")[:12] for h, r in (back.get("from") or {}).items()}
    if not back.get("automatic"):
        return [f"rolled back to {to}: " + ", ".join(f"{h} from {r}" for h, r in came.items())]
    run = back.get("run")
    if run is None:
        return [f"not rolled back: {back.get('reason')}"]
    lines = [f"rollback to {to} {back.get('status')}" + (f": {run['halted']}" if run.get("halted") else "")]
    for h, d in (run.get("hosts") or {}).items():
        if d.get("outcome") == "done":
            state = f"back on {to_revision}"
        elif d.get("outcome") == "failed":
            state = f"rollback failed at {d.get('stage')}: {d.get('reason')}"
        else:
            state = f"not rolled back: still on {came.get(h, '?')}"
        went = ", ".join(f"{p} {v}" for p, v in sorted((back.get("downgrades") or {}).get(h, {}).items()))
        where = "in the balancer" if d.get("in_balancer") else "OUT of the balancer"
        lines.append(f"  {h}: {state}{f' ({went})' if went else ''}, {where}")
    return lines


def _verify(doc: dict[str, Any]) -> Report:
    items = [
        Item(
            host,
            t["test"],
            t["outcome"],
            group=doc.get("suite", ""),
            detail=[t["message"]] if t.get("message") else [],
            seconds=t.get("seconds"),
            failing=t["outcome"] in ("failed", "error"),
            skipped=t["outcome"] == "skipped",
        )
        for host, h in doc.get("hosts", {}).items()
        for t in h.get("tests", [])
    ]
    summary: dict[str, int | str] = {
        "hosts": len(doc.get("hosts", {})),
        "checks": len(items),
        "passed": sum(i.verdict == "passed" for i in items),
        "failed": sum(i.failing for i in items),
        "skipped": sum(i.skipped for i in items),
        "seconds": doc.get("seconds", 0),
    }
    notes = [f"error: {doc['error']}"] if doc.get("error") else []
    return report(
        doc,
        kind="verify",
        title=f"verify {doc.get('suite', '')} on {doc.get('inventory', '')}",
        summary=summary,
        hosts=list(doc.get("hosts", {})),
        items=items,
        notes=notes,
        quiet_label="passed every check",
        empty="No check ran on this host.",
    )


def _drift(doc: dict[str, Any]) -> Report:
    items = []
    for f in doc.get("findings", []):
        note = []
        if f.get("status") == "new":
            note.append("new")
        elif f.get("status") == "persisting":
            note.append(f"persisting since {f.get('first_seen')}")
        if f.get("cause"):
            note.append(f["cause"])
        if f.get("held"):
            note.append("held on purpose, not drift")
        unknown = f["verdict"] == "unknown"
        items.append(
            Item(
                f["host"],
                f["operation"],
                f["verdict"],
                group=f["deploy"],
                detail=user_commands(list(f.get("detail", []))),
                diff=list(f.get("diff", [])),
                note=", ".join(note),
                failing=not unknown and not f.get("held"),
                skipped=unknown,
            )
        )
    summary: dict[str, int | str] = dict(doc.get("summary", {}))
    summary["seconds"] = doc.get("seconds", 0)
    unreachable = doc.get("unreachable") or {}
    items += [
        Item(host, "reachable", "unreachable", detail=[why], note="not drift", skipped=True)
        for host, why in unreachable.items()
    ]
    notes = [f"unreachable (not drift): {host}: {why}" for host, why in unreachable.items()]
    notes += [f"resolved: {r['host']} {r['deploy']} {r['operation']}" for r in doc.get("resolved", [])]
    hosts = doc.get("hosts_checked") or sorted({i.host for i in items})
    return report(
        doc,
        kind="drift",
        title=f"drift of {', '.join(doc.get('deploys', []))} on {doc.get('inventory', '')}",
        summary=summary,
        hosts=list(hosts),
        items=items,
        notes=notes,
        quiet_label="clean",
    )
