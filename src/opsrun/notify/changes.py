"""What a notification of a change says: an apply (`kind` apply or rollout) or an `opsrun rollback`, from its
run document. The lines a person reads first: why it stopped, which hosts failed and where they are, what
was rolled back, to which revision, and whether that succeeded.

    run                                            PagerDuty  severity
    apply or rollback succeeded                    resolve    (only when this job's alert is open)
    apply failed, its rollback (if any) succeeded  trigger    error
    `opsrun rollback` succeeded                    trigger    warning  (someone had to go back)
    a rollback failed, or hosts left out           trigger    critical
    interrupted                                    nothing    (it concludes nothing)

One alert per inventory and deploy, for apply and rollback alike: a clean apply resolves it.
"""

from __future__ import annotations

from typing import Any

KINDS = ("apply", "rollout")


def is_change(doc: dict[str, Any]) -> bool:
    return doc.get("kind") in KINDS


def by_hand(doc: dict[str, Any]) -> bool:
    """The run is `opsrun rollback`'s (not an apply's on_failure)."""
    back = doc.get("rollback") or {}
    return bool(back) and not back.get("automatic")


def rolled_back(doc: dict[str, Any]) -> bool:
    """The run sent hosts back: `opsrun rollback`, or on_failure "rollback" that was attempted."""
    back = doc.get("rollback") or {}
    return bool(back) and (not back.get("automatic") or back.get("run") is not None)


def back_status(doc: dict[str, Any]) -> str | None:
    """succeeded | failed | interrupted | not attempted; None: no rollback in this run."""
    back = doc.get("rollback")
    if not back:
        return None
    if back.get("automatic"):
        return str(back.get("status"))
    return {"success": "succeeded", "interrupted": "interrupted"}.get(str(doc.get("status")), "failed")


def rollback_line(doc: dict[str, Any]) -> str | None:
    """What was rolled back, to what, and whether that succeeded, in one line."""
    back = doc.get("rollback")
    if not back:
        return None
    hosts = ", ".join(back.get("from") or {}) or "no host"
    to = f"revision {str(back.get('to_revision') or '?')[:12]}"
    to += f" (run {back['to_run']})" if back.get("to_run") is not None else ""
    if back.get("automatic") and back.get("run") is None:
        return f"not rolled back: {back.get('reason') or 'not attempted'}"
    return f"rolled back {hosts} to {to}: {back_status(doc)}"


def subject_of(doc: dict[str, Any]) -> str:
    """The subject of a change's message: "opsrun apply lab pm2: failed, rolled back web1: succeeded"."""
    command = "rollback" if by_hand(doc) else "apply"
    first = f"opsrun {command} {doc.get('inventory', '')} {doc.get('deploy', '')}: {doc.get('status', '')}"
    back = doc.get("rollback")
    if back and back.get("automatic"):
        first += f", rolled back {', '.join(back.get('from') or {}) or 'no host'}: {back_status(doc)}"
    return first


def lines(doc: dict[str, Any]) -> list[str]:
    """Why it stopped, the canary's verdict, the failed hosts and where they are, the rollback."""
    out = [f"halted: {doc['halted']}"] if doc.get("halted") else []
    for host, h in (doc.get("hosts") or {}).items():
        if h.get("outcome") == "failed" or (h.get("outcome") is None and h.get("status") == "failed"):
            where = "" if h.get("in_balancer", True) else ", out of the balancer"
            why = h.get("reason") or h.get("error") or "failed"
            out.append(f"{host}: failed at {h.get('stage') or 'apply'}: {why}{where}")
    line = rollback_line(doc)
    if line:
        out.append(line)
    back_run = (doc.get("rollback") or {}).get("run") or {}
    for host, h in (back_run.get("hosts") or {}).items():
        if h.get("outcome") != "done":
            where = "in the balancer" if h.get("in_balancer") else "OUT of the balancer"
            out.append(f"{host}: rollback {h.get('outcome')} at {h.get('stage')}: {h.get('reason')} ({where})")
    if doc.get("left_out_of_balancer"):
        out.append(f"left out of the balancer: {', '.join(doc['left_out_of_balancer'])}")
    return out


def severity(doc: dict[str, Any]) -> str | None:
    """The PagerDuty severity a change asks for (the module's table); None: resolve, or nothing."""
    status = doc.get("status")
    if status == "interrupted":
        return None
    if back_status(doc) in ("failed", "interrupted") or doc.get("left_out_of_balancer"):
        return "critical"
    if status == "failed":
        return "error"
    return "warning" if by_hand(doc) else None


def fingerprint_parts(doc: dict[str, Any]) -> list[str]:
    """What an open alert says of a change: a trigger is sent again only when these differ."""
    hosts = (doc.get("hosts") or {}).items()
    failed = [f"{host} {h.get('stage')}" for host, h in hosts if h.get("outcome") == "failed"]
    return [*failed, f"rollback {back_status(doc)}", *(doc.get("left_out_of_balancer") or [])]
