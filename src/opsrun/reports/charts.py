"""The geometry of the HTML report's inline SVG charts: the count per run (drift findings, a DR test's failed
checks) and, per DR tier, its RTO and RPO month by month against the target. Each bar carries its verdict,
which picks its colour (reports.verdicts)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

BAR, GAP, TALLEST, ABOVE = 34, 10, 120, 16  # ABOVE: room for the number over the tallest bar


@dataclass(frozen=True)
class TierTrend:
    """One DR tier month by month, oldest first: measured RTO and RPO (None: not measured) and their targets."""

    system: str
    months: list[str]
    rto: list[float | None]
    rpo: list[float | None]
    rto_target: list[float | None]
    rpo_target: list[float | None]


def human(seconds: float | None) -> str:
    """12.3 s, 4.5 min, 20.1 h; "n/d" (not drilled) for None."""
    if seconds is None:
        return "n/d"
    if seconds < 100:
        return f"{seconds:.1f} s"
    if seconds < 6000:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def trend_labels(whens: list[str]) -> list[tuple[str, ...]]:
    """The chart's label lines under each bar: the day ("11-23"), and for a run with a time its time of day
    ("05:00"); runs of the same minute are told apart by a count ("05:00 #2"). A month ("2026-10") or any
    other text is shown as it is."""
    labels: list[tuple[str, ...]] = []
    seen: dict[str, int] = {}
    for when in whens:
        day, _, clock = when.partition(" ")
        if len(day) != 10 or day[4] != "-":  # not YYYY-MM-DD...: a month, or a free-form label
            labels.append((when,))
            continue
        clock = clock[:5]
        seen[when[:16]] = seen.get(when[:16], 0) + 1
        if seen[when[:16]] > 1:
            clock = f"{clock} #{seen[when[:16]]}"
        labels.append((day[5:], clock) if clock else (day[5:],))
    return labels


def count_chart(trend: list[tuple[str, int]], verdicts: list[str]) -> dict[str, Any]:
    """Bars of a count per run; `verdicts` colour them (by default: drift when the count is above 0)."""
    top = max([n for _, n in trend] + [1])
    labels = trend_labels([when for when, _ in trend])
    bars = []
    for k, ((when, n), label) in enumerate(zip(trend, labels, strict=True)):
        h = round(TALLEST * n / top) if n else 2
        verdict = verdicts[k] if k < len(verdicts) else ("drift" if n else "clean")
        bars.append(
            {"x": GAP + k * (BAR + GAP), "y": ABOVE + TALLEST - h, "h": h, "n": n, "when": when}
            | {"label": label, "verdict": verdict}
        )
    return {"bar": BAR, "height": ABOVE + TALLEST, "width": GAP + len(trend) * (BAR + GAP), "bars": bars}


def tier_chart(what: str, months: list[str], values: list[float | None], targets: list[float | None]) -> dict[str, Any]:
    """`what` (RTO or RPO) of one tier per month: a bar each, passed at or under that month's target, failed
    over it, unknown when not measured; the target as a dashed step over the bars."""
    tallest = 100
    top = max([v for v in values if v] + [t for t in targets if t] + [1e-9]) * 1.1
    bars = []
    for k, (month, value, target) in enumerate(zip(months, values, targets, strict=True)):
        h = 2 if value is None else max(2, round(tallest * value / top))
        verdict = "unknown" if value is None else ("failed" if target is not None and value > target else "passed")
        bars.append(
            {
                "x": GAP + k * (BAR + GAP),
                "y": ABOVE + tallest - h,
                "h": h,
                "text": human(value),
                "month": month,
                "verdict": verdict,
                "target_y": None if target is None else ABOVE + tallest - round(tallest * target / top),
                "title": f"{month}: {what} {human(value)}, target {human(target)}",
            }
        )
    latest = next((t for t in reversed(targets) if t is not None), None)
    return {
        "what": what,
        "target": human(latest),
        "bar": BAR,
        "gap": GAP,
        "height": ABOVE + tallest,
        "width": GAP + len(months) * (BAR + GAP),
        "bars": bars,
    }
