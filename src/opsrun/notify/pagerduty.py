"""PagerDuty Events API v2: one alert per inventory and job (its `dedup_key`), triggered when a run finds
something, resolved when the same job is clean again, and nothing sent when nothing changed.

    run outcome                          event     severity
    drift: drift found                   trigger   warning
    drift: error (the run could not see) trigger   error
    dr-test: failed                      trigger   the worst issue's: critical -> critical, high -> error,
                                                   medium -> warning, low -> info (a degraded system: critical)
    drift clean, dr-test passed          resolve   (only when this job's alert is open)
    drift partial or interrupted         nothing   (a run that did not see every host concludes nothing)
    apply, rollback                      see notify.changes (failed or rolled back: trigger; clean: resolve)

The last event accepted for (target, dedup_key) is kept in the state store (`Alerts`): a trigger is sent
again only when what it says changed (status, severity, the findings or failed checks), a resolve only
when a trigger is open. An event that could not be delivered changes nothing there, so the next run sends
it again. The routing key is read from the environment when the event is sent and is in no other copy.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from opsrun.model.secrets import redact
from opsrun.notify import changes
from opsrun.notify.messages import Links, counts, top_lines

DEFAULT_ENV = "OPSRUN_PAGERDUTY_ROUTING_KEY"  # `--notify pagerduty` reads the key from here
URL_ENV = "OPSRUN_PAGERDUTY_URL"  # overrides the endpoint (an EU account, a test server)
DR_SEVERITY = {"critical": "critical", "high": "error", "medium": "warning", "low": "info"}
Action = Literal["trigger", "resolve"]


class AlertStore(Protocol):
    """What this module needs of the state store (opsrun.store.alerts.Alerts)."""

    def alert_state(self, target: str, dedup_key: str) -> Any: ...

    def set_alert_state(
        self, target: str, dedup_key: str, state: str, fingerprint: str | None, run_id: int | None
    ) -> None: ...


@dataclass(frozen=True)
class Outcome:
    action: Action | None  # None: this run concludes nothing
    severity: str | None = None
    fingerprint: str | None = None


def outcome(doc: dict[str, Any]) -> Outcome:
    """What a run's document asks of PagerDuty (see the module's table)."""
    status = doc.get("status")
    if changes.is_change(doc):
        severity = changes.severity(doc)
        if severity is None:
            return Outcome("resolve" if status == "success" else None)
        return Outcome("trigger", severity, _fingerprint(status, severity, changes.fingerprint_parts(doc)))
    if status in ("clean", "passed"):
        return Outcome("resolve")
    if doc.get("kind") == "dr-test" and status == "failed":
        worst = "critical" if doc.get("degraded") else _worst([i.get("severity") for i in doc.get("issues") or []])
        failed = [f"{c['system']}: {c['name']}" for c in doc.get("checks") or [] if c.get("status") == "FAIL"]
        return Outcome("trigger", worst, _fingerprint(status, worst, failed + list(doc.get("degraded") or [])))
    if doc.get("kind") == "drift" and status in ("drift", "error"):
        severity = "warning" if status == "drift" else "error"
        found = [
            f"{f['host']} {f['deploy']} {f['operation']} {f.get('fingerprint', '')}"
            for f in doc.get("findings") or []
            if f.get("verdict") != "unknown" and not f.get("held")
        ]
        return Outcome("trigger", severity, _fingerprint(status, severity, found + list(doc.get("unreachable") or {})))
    return Outcome(None)


def _worst(severities: list[str | None]) -> str:
    order = ["critical", "high", "medium", "low"]
    known = [s for s in severities if s in order]
    return DR_SEVERITY[min(known, key=order.index)] if known else "error"


def _fingerprint(*parts: Any) -> str:
    what = json.dumps([parts[0], parts[1], sorted(parts[2])]).encode()
    return hashlib.sha256(what).hexdigest()[:16]


def decide(wanted: Outcome, last: Any, always: bool = False) -> Action | None:
    """The event to send given the last one accepted for this job (an AlertState or None)."""
    if wanted.action is None:
        return None
    open_now = last is not None and last.state == "triggered"
    if always:
        return wanted.action
    if wanted.action == "trigger":
        return None if open_now and last.fingerprint == wanted.fingerprint else "trigger"
    return "resolve" if open_now else None


def dedup_key(job: str) -> str:
    """One alert per inventory and job: "opsrun drift production", "opsrun dr-test production" (a long one
    is cut and ends with a hash of the whole: PagerDuty takes 255 characters)."""
    key = f"opsrun {job}"
    return key if len(key) <= 255 else key[:230] + " " + hashlib.sha256(key.encode()).hexdigest()[:24]


def event(action: Action, key: str, doc: dict[str, Any], wanted: Outcome, links: Links) -> dict[str, Any]:
    """The event without its routing key (the copy that may be kept when it cannot be delivered)."""
    if action == "resolve":
        return {"event_action": "resolve", "dedup_key": key}
    details = {
        "command": key.removeprefix("opsrun "),
        "status": doc.get("status"),
        "run_id": links.run_id,
        "report": links.report,
        "result": links.result,
        "summary": dict(counts(doc)),
        "top": top_lines(doc),
    }
    payload = {
        "summary": summary(doc)[:1024],
        "source": str(doc.get("inventory") or "opsrun"),
        "severity": wanted.severity or "error",
        "component": str(doc.get("kind") or "run"),
        "class": str(doc.get("status") or ""),
        "custom_details": details,
    }
    body = {"event_action": "trigger", "dedup_key": key, "client": "opsrun", "payload": payload}
    return dict(json.loads(redact(json.dumps(body))))


def summary(doc: dict[str, Any]) -> str:
    """The alert's title, as a person reads it on a phone at 3 a.m."""
    inventory, s = doc.get("inventory", ""), doc.get("summary") or {}
    top = top_lines(doc, 3)
    tail = f": {'; '.join(top)}" if top else ""
    if changes.is_change(doc):
        what = "Rollback" if changes.by_hand(doc) else "Apply"
        head = f"{what} of {doc.get('deploy')} on {inventory}: {doc.get('status')}"
        return redact(head + (f": {'; '.join(changes.lines(doc)[:3])}" if changes.lines(doc) else ""))
    if doc.get("kind") == "dr-test":
        first = doc.get("first_line") or f"DR test on {inventory}: FAILED"
        return redact(f"{first}, {s.get('issues', 0)} issue(s){tail}")
    if doc.get("status") == "drift":
        return redact(f"Drift on {inventory}: {s.get('drift', 0)} finding(s), {s.get('new', 0)} new{tail}")
    return redact(
        f"Drift run on {inventory} failed: {s.get('errors', 0)} error(s), {s.get('unreachable', 0)} unreachable, "
        f"{s.get('checked', 0)} of {s.get('hosts', 0)} hosts checked{tail}"
    )


def routing_key(env: str) -> str:
    """The key, from the operator's environment (checked when the target was parsed)."""
    key = os.environ.get(env, "")
    if not key:
        raise KeyError(f"the environment variable {env} is not set")
    return key
