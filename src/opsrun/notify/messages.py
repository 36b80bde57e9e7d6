"""What a notification says, from a run's document (drift, DR test, or a change: notify.changes): a subject
and plain text (SNS, chat tools), Slack blocks (status, counts, the top findings, where the report is), and
the lines a person reads first. Every text is redacted before it leaves."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from opsrun.model.secrets import redact
from opsrun.notify import changes

TOP = 5  # findings or issues shown in a chat message (the text lists up to 10)


@dataclass(frozen=True)
class Links:
    """Where a run's outputs are, for the reader of a message."""

    run_id: int | None = None
    result: str | None = None  # the JSON document under .opsrun/results
    report: str | None = None  # the HTML report in --out, when the command writes one

    def lines(self) -> list[str]:
        return [
            line
            for line in (
                f"report: {self.report}" if self.report else "",
                f"result: {self.result}" if self.result else "",
                f"run: {self.run_id}" if self.run_id is not None else "",
            )
            if line
        ]


def subject(doc: dict[str, Any], previous: str | None) -> str:
    kind, inventory, status = doc.get("kind", "run"), doc.get("inventory", ""), doc.get("status", "")
    was = f" (was {previous})" if previous and previous != status else ""
    if changes.is_change(doc):
        return redact(changes.subject_of(doc) + was)[:100]
    return redact(f"opsrun {kind} {inventory}: {status}{was}")[:100]


def counts(doc: dict[str, Any]) -> list[tuple[str, Any]]:
    return list((doc.get("summary") or {}).items())


def top_lines(doc: dict[str, Any], limit: int = 10) -> list[str]:
    """The findings (drift: not the unknowns), unreachable hosts and DR issues, most telling first."""
    lines = changes.lines(doc) if changes.is_change(doc) else []
    for f in doc.get("findings") or []:
        if f.get("verdict") == "out_of_balancer" and not f.get("held"):
            left_by = (f.get("detail") or ["", ""])[1:2] or [""]
            lines.append(f"{f['host']} out of the balancer ({f['operation']}; {left_by[0]}; {f.get('status') or ''})")
        elif f.get("verdict") != "unknown" and not f.get("held"):
            lines.append(f"{f['host']} {f['deploy']}: {f['operation']} ({f['verdict']}, {f.get('status') or ''})")
    lines += [f"{host}: unreachable: {why}" for host, why in (doc.get("unreachable") or {}).items()]
    lines += [f"{i['issue']} ({i['severity']})" for i in doc.get("issues") or []]
    return [redact(line) for line in lines[:limit]]


def message(doc: dict[str, Any], previous: str | None, links: Links | None = None) -> tuple[str, str]:
    """(subject, text) for a run's document: what it is, its status and what it was, the counts, the top
    findings, and where the report is."""
    first = subject(doc, previous)
    summary = ", ".join(f"{k} {v}" for k, v in counts(doc))
    lines = [first, summary] if summary else [first]
    lines += [f"- {line}" for line in top_lines(doc)]
    lines += links.lines() if links else []
    return first, redact("\n".join(lines))


def webhook_payload(doc: dict[str, Any], previous: str | None, links: Links | None = None) -> dict[str, Any]:
    """A webhook's JSON body: Slack blocks, the same message as plain `text` (for chat tools that read only
    that, and Slack's notifications), and the run's summary under `opsrun` for tools."""
    _first, text = message(doc, previous, links)
    keys = ("kind", "inventory", "status", "run_id", "summary", "deploys", "deploy", "month")
    tools: dict[str, Any] = {k: doc.get(k) for k in keys if k in doc} | {"previous_status": previous}
    if links:
        tools |= {"report": links.report, "result": links.result}
    payload = {"text": text, "blocks": slack_blocks(doc, previous, links), "opsrun": tools}
    return dict(json.loads(redact(json.dumps(payload))))


def slack_blocks(doc: dict[str, Any], previous: str | None, links: Links | None = None) -> list[dict[str, Any]]:
    """Slack Block Kit: a header, the status and counts as fields, the top findings, the report's place."""
    status = str(doc.get("status", ""))
    was = f" (was {previous})" if previous and previous != status else ""
    fields = [_mrkdwn(f"*status*\n{_escape(status + was)}")]
    fields += [_mrkdwn(f"*{_escape(str(k))}*\n{_escape(str(v))}") for k, v in counts(doc)]
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": subject(doc, None)[:150]}},
        {"type": "section", "fields": fields[:10]},  # Slack's limit: 10 fields
    ]
    top = top_lines(doc, TOP)
    if top:
        title = "Top issues" if doc.get("kind") == "dr-test" else "Top findings"
        listed = "\n".join(f"• {_escape(line)}" for line in top)
        blocks.append({"type": "section", "text": _mrkdwn(f"*{title}*\n{listed}"[:3000])})
    if links and links.lines():
        blocks.append({"type": "context", "elements": [_mrkdwn(_escape(line)[:2000]) for line in links.lines()]})
    return blocks


def _mrkdwn(text: str) -> dict[str, str]:
    return {"type": "mrkdwn", "text": text[:2000]}


def _escape(text: str) -> str:
    """Slack's three control characters in mrkdwn (a host name or a message must not become a link)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
