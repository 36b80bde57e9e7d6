"""Markdown rendering of a report: its banner line and status with their verdict's marker (🟢 passed or
clean, 🟡 drift, 🟠 degraded, 🔴 failed, ⚪ unknown: reports.verdicts), the summary table, notes, the quiet
hosts on one line, then one section per host that has something to say, each verdict marked the same way; a
file change as a diff block with the operation's commands folded under it (`<details>`, which GitHub and
GitLab render)."""

from __future__ import annotations

from opsrun.reports.model import Report
from opsrun.reports.verdicts import MARKERS, is_verdict, marker, verdict_of


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _badged(cell: object) -> str:
    text = _cell(cell)
    return marker(text) if is_verdict(text) else text


def render(report: Report) -> str:
    sign = MARKERS[verdict_of(report.status)]
    out = [f"{sign} **{report.first_line or report.title + ': ' + report.status.upper()}**", ""]
    out += [f"# {report.title}", ""]
    run = f", run {report.run_id}" if report.run_id is not None else ""
    out += [f"**Status: {sign} {report.status}** · generated {report.generated}{run}", ""]
    out += ["| " + " | ".join(report.summary) + " |", "|" + "---|" * len(report.summary)]
    out += ["| " + " | ".join(_cell(v) for v in report.summary.values()) + " |", ""]
    if report.trend:
        out += [f"{report.trend_label}: " + ", ".join(f"{when}: {n}" for when, n in report.trend), ""]
    if report.notes:
        out += ["## Notes", "", *(f"- {_cell(n)}" for n in report.notes), ""]
    for title, header, rows in report.tables:
        out += [f"## {title}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        out += ["| " + " | ".join(_badged(c) for c in row) + " |" for row in rows] + [""]
    if report.log:
        out += ["## Drill log", "", "```", *report.log, "```", ""]
    if report.quiet_line():
        out += [report.quiet_line(), ""]
    for host in report.loud_hosts():
        items = report.for_host(host)
        out += [f"## {host}", ""]
        if not items:
            out += [report.empty or "Nothing to report.", ""]
            continue
        out += ["| what | verdict | note | detail |", "|---|---|---|---|"]
        for i in items:
            name = f"{i.group}: {i.name}" if i.group else i.name
            detail = "the diff below" if i.diff else "; ".join(i.detail[:5])
            out.append(f"| {_cell(name)} | {marker(i.verdict)} | {_cell(i.note)} | {_cell(detail)} |")
        out.append("")
        for i in items:
            if i.diff:
                out += [f"{i.name}:", "", "```diff", *_unified(i.diff), "```", ""]
                if i.detail:
                    noun = "command" if len(i.detail) == 1 else "commands"
                    out += [f"<details><summary>{len(i.detail)} {noun}</summary>", "", "```", *i.detail, "```", ""]
                    out += ["</details>", ""]
    return "\n".join(out).rstrip() + "\n"


def _unified(diff: list[str]) -> list[str]:
    """pyinfra's diff lines ("- x", "+ y", "  z") as a diff block understands them ("-x", "+y", " z")."""
    lines = []
    for line in diff:
        if line[:2] in ("- ", "+ ", "  "):
            lines.append(line[0] + line[2:] if line[0] in "+-" else " " + line[2:])
        else:
            lines.append(line)
    return lines
