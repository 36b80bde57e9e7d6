"""The monthly DR test's report: targets against measured RTO and RPO per tier first (a number, or "not drilled
(enable with ...)", never a dash), then each check with its evidence (sections are systems), the drill log,
issues and action items, the next test date, the failed checks per month, and each tier's RTO and RPO month
by month (TierTrend: this month after the earlier ones the state store kept)."""

from __future__ import annotations

from typing import Any

from opsrun.dr.model import tier_numbers
from opsrun.reports.charts import TierTrend
from opsrun.reports.model import Item, Report, report


def seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} s"


def dr_report(doc: dict[str, Any]) -> Report:
    items = _checks(doc)
    summary: dict[str, int | str] = {**doc.get("summary", {}), "next test": doc.get("next_test", "")}
    notes = [
        f"environment {doc.get('inventory')}, month {doc.get('month')}",
        f"started {doc.get('started')} by {doc.get('who')}",
        f"opsrun {doc.get('opsrun_version')}, ops repository revision {doc.get('revision') or 'unknown'}",
    ]
    built = report(
        doc,
        kind="dr-test",
        title=f"DR test {doc.get('month', '')} on {doc.get('inventory', '')}",
        summary=summary,
        hosts=sorted({i.host for i in items}, key=[i.host for i in items].index),
        items=items,
        notes=notes,
        first_line=doc.get("first_line", ""),
        trend_label="Failed checks per month",
        tables=_tables(doc),
        log=list(doc.get("drill_log", [])),
        section_label="system",
    )
    built.trend = [(t["month"], int(t["failed"])) for t in doc.get("trend", [])]
    built.trend_verdicts = [str(t.get("status", "unknown")) for t in doc.get("trend", [])]
    built.tiers = tiers(doc)
    return built


def _checks(doc: dict[str, Any]) -> list[Item]:
    """Each DR check with its evidence and where it came from, under its system."""
    return [
        Item(
            c["system"],
            c["name"],
            c["status"],
            detail=[*c.get("evidence", []), *([f"source: {c['source']}"] if c.get("source") else [])],
            failing=c["status"] == "FAIL",
            skipped=c["status"] == "SKIP",
        )
        for c in doc.get("checks", [])
    ]


def measured_cell(system: dict[str, Any], what: str) -> str:
    """A tier's measured RTO or RPO, or why there is none ("not drilled (enable with ...)")."""
    value = system.get(f"{what}_seconds")
    if value is not None:
        return seconds(value)
    return str(system.get(f"{what}_note") or "not measured")


def _worst(value: float | None) -> str:
    return "none measured" if value is None else seconds(value)


def _tables(doc: dict[str, Any]) -> list[tuple[str, list[str], list[list[str]]]]:
    """RTO and RPO targets against measured values, issues, action items and (when there is one) the trend."""
    targets = [
        [
            s["system"],
            seconds(s["rto_target_seconds"]),
            measured_cell(s, "rto"),
            seconds(s["rpo_target_seconds"]),
            measured_cell(s, "rpo"),
            s["result"],
        ]
        for s in doc.get("systems", [])
    ]
    issues = [[i["severity"], i["issue"]] for i in doc.get("issues", [])]
    actions = [[str(n + 1), a] for n, a in enumerate(doc.get("action_items", []))]
    tables = [
        (
            "RTO and RPO: targets against measured",
            ["system", "RTO target", "RTO", "RPO target", "RPO", "result"],
            targets,
        ),
        ("Issues found", ["severity", "issue"], issues or [["-", "none"]]),
        ("Action items", ["#", "action"], actions or [["-", "none"]]),
    ]
    if doc.get("trend"):
        trend = [
            [t["month"], t["status"], str(t["failed"]), _worst(t.get("rto")), _worst(t.get("rpo"))]
            for t in doc["trend"]
        ]
        tables.append(("Trend", ["month", "status", "failed checks", "worst RTO", "worst RPO"], trend))
    return tables


def tiers(doc: dict[str, Any]) -> list[TierTrend]:
    """Each tier of this test, month by month: the earlier months' numbers (the trend), then this month's."""
    this_month = {s["system"]: tier_numbers(s) for s in doc.get("systems", [])}
    months = [*doc.get("trend", []), {"month": doc.get("month", ""), "systems": this_month}]
    out = []
    for s in doc.get("systems", []):
        name = s["system"]
        rows = [(m["month"], m.get("systems", {}).get(name)) for m in months]
        rows = [(month, row) for month, row in rows if row is not None]
        out.append(
            TierTrend(
                name,
                [month for month, _ in rows],
                [row.get("rto") for _, row in rows],
                [row.get("rpo") for _, row in rows],
                [row.get("rto_target") for _, row in rows],
                [row.get("rpo_target") for _, row in rows],
            )
        )
    return out
