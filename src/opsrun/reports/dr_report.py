"""The monthly DR test's report: targets against measured RTO and RPO per tier first (a number, or "not drilled
(enable with ...)", never a dash), then each check with its evidence (sections are systems), the drill log,
issues and action items, the next test date, the failed checks per month, and each tier's RTO and RPO month
by month (TierTrend: this month after the earlier ones the state store kept)."""

from __future__ import annotations

from opsrun.model.documents.dr import DRDocument, System, Tier, tier_numbers
from opsrun.model.documents.status import CheckStatus
from opsrun.reports.charts import TierTrend
from opsrun.reports.model import Item, Report, report


def seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} s"


def dr_report(doc: DRDocument) -> Report:
    items = _checks(doc)
    summary: dict[str, float | str] = {**doc.summary.model_dump(exclude_unset=True), "next test": doc.next_test}
    notes = [
        f"environment {doc.inventory}, month {doc.month}",
        f"started {doc.started} by {doc.who}",
        f"opsrun {doc.opsrun_version}, ops repository revision {doc.revision or 'unknown'}",
    ]
    built = report(
        doc,
        kind="dr-test",
        title=f"DR test {doc.month} on {doc.inventory}",
        summary=summary,
        hosts=sorted({i.host for i in items}, key=[i.host for i in items].index),
        items=items,
        notes=notes,
        first_line=doc.first_line,
        trend_label="Failed checks per month",
        tables=_tables(doc),
        log=list(doc.drill_log),
        section_label="system",
    )
    built.trend = [(t.month, t.failed) for t in doc.trend]
    built.trend_verdicts = [str(t.status) for t in doc.trend]
    built.tiers = tiers(doc)
    return built


def _checks(doc: DRDocument) -> list[Item]:
    """Each DR check with its evidence and where it came from, under its system."""
    return [
        Item(
            c.system,
            c.name,
            c.status,
            detail=[*c.evidence, *([f"source: {c.source}"] if c.source else [])],
            failing=c.status == CheckStatus.FAIL,
            skipped=c.status == CheckStatus.SKIP,
        )
        for c in doc.checks
    ]


def measured_cell(system: System, what: str) -> str:
    """A tier's measured RTO or RPO, or why there is none ("not drilled (enable with ...)")."""
    value = system.rto_seconds if what == "rto" else system.rpo_seconds
    if value is not None:
        return seconds(value)
    return (system.rto_note if what == "rto" else system.rpo_note) or "not measured"


def _worst(value: float | None) -> str:
    return "none measured" if value is None else seconds(value)


def _tables(doc: DRDocument) -> list[tuple[str, list[str], list[list[str]]]]:
    """RTO and RPO targets against measured values, issues, action items and (when there is one) the trend."""
    targets = [
        [
            s.system,
            seconds(s.rto_target_seconds),
            measured_cell(s, "rto"),
            seconds(s.rpo_target_seconds),
            measured_cell(s, "rpo"),
            s.result,
        ]
        for s in doc.systems
    ]
    issues = [[i.severity, i.issue] for i in doc.issues]
    actions = [[str(n + 1), a] for n, a in enumerate(doc.action_items)]
    tables = [
        (
            "RTO and RPO: targets against measured",
            ["system", "RTO target", "RTO", "RPO target", "RPO", "result"],
            targets,
        ),
        ("Issues found", ["severity", "issue"], issues or [["-", "none"]]),
        ("Action items", ["#", "action"], actions or [["-", "none"]]),
    ]
    if doc.trend:
        trend = [[t.month, t.status, str(t.failed), _worst(t.rto), _worst(t.rpo)] for t in doc.trend]
        tables.append(("Trend", ["month", "status", "failed checks", "worst RTO", "worst RPO"], trend))
    return tables


def _tier(system: System) -> Tier:
    """A system's row of this month as a month of its trend keeps it."""
    return Tier(**tier_numbers(system.model_dump()))


def tiers(doc: DRDocument) -> list[TierTrend]:
    """Each tier of this test, month by month: the earlier months' numbers (the trend), then this month's."""
    months = [(t.month, t.systems) for t in doc.trend] + [(doc.month, {s.system: _tier(s) for s in doc.systems})]
    out = []
    for s in doc.systems:
        rows = [(month, systems[s.system]) for month, systems in months if s.system in systems]
        out.append(
            TierTrend(
                s.system,
                [month for month, _ in rows],
                [row.rto for _, row in rows],
                [row.rpo for _, row in rows],
                [row.rto_target for _, row in rows],
                [row.rpo_target for _, row in rows],
            )
        )
    return out
