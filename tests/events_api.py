"""A PagerDuty Events API v2 endpoint on loopback, for the tests: it checks each event as PagerDuty
documents it (routing key, event_action, dedup_key, a trigger's payload with summary, source and
severity), answers 202 {"status": "success", "dedup_key": ...}, keeps the alerts' state per dedup_key,
and can be told to answer the next requests otherwise (429 with Retry-After, 500, 400)."""

from __future__ import annotations

import json
import secrets
import threading
from dataclasses import dataclass, field
from typing import Any

from tests.conftest import QuietHandler

SEVERITIES = ("critical", "error", "warning", "info")
ACTIONS = ("trigger", "acknowledge", "resolve")


@dataclass
class EventsAPI:
    routing_key: str = field(default_factory=lambda: secrets.token_hex(16))  # 32 characters, as PagerDuty's
    received: list[dict[str, Any]] = field(default_factory=list)  # every body POSTed, answered or not
    accepted: list[dict[str, Any]] = field(default_factory=list)  # the events answered 202
    alerts: dict[str, str] = field(default_factory=dict)  # dedup_key -> triggered | resolved
    script: list[tuple[int, dict[str, str]]] = field(default_factory=list)  # the next answers: (status, headers)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, body: bytes) -> tuple[int, dict[str, str], dict[str, Any]]:
        with self.lock:
            try:
                event = json.loads(body)
            except ValueError:
                return 400, {}, {"status": "invalid event", "message": "Event object is invalid"}
            self.received.append(event)
            if self.script:  # the message echoes the key, as a careless gateway might: opsrun must mask it
                status, headers = self.script.pop(0)
                said = f"try again later (routing key {event.get('routing_key')})"
                return status, headers, {"status": "throttled" if status == 429 else "error", "message": said}
            errors = self.problems(event)
            if errors:
                return 400, {}, {"status": "invalid event", "message": "Event object is invalid", "errors": errors}
            key = event.get("dedup_key") or secrets.token_hex(16)
            self.accepted.append(event)
            self.alerts[key] = "resolved" if event["event_action"] == "resolve" else "triggered"
            return 202, {}, {"status": "success", "message": "Event processed", "dedup_key": key}

    def problems(self, event: dict[str, Any]) -> list[str]:
        errors = []
        if event.get("routing_key") != self.routing_key:
            errors.append("'routing_key' is invalid")
        if event.get("event_action") not in ACTIONS:
            errors.append("'event_action' is invalid")
        key = event.get("dedup_key")
        if (key is not None and (not isinstance(key, str) or len(key) > 255)) or (
            event.get("event_action") != "trigger" and not key
        ):
            errors.append("'dedup_key' is invalid")
        if event.get("event_action") == "trigger":
            payload = event.get("payload") or {}
            if not isinstance(payload.get("summary"), str) or not 0 < len(payload["summary"]) <= 1024:
                errors.append("'payload.summary' is invalid")
            if not payload.get("source"):
                errors.append("'payload.source' is missing")
            if payload.get("severity") not in SEVERITIES:
                errors.append("'payload.severity' is invalid")
        return errors

    def handler(self) -> type[QuietHandler]:
        """The request handler that serves this API (tests/conftest.py's serve_in_thread runs it)."""
        api = self

        class Handler(QuietHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.path != "/v2/enqueue":
                    status, headers, answer = 404, {}, {"status": "not found"}
                else:
                    status, headers, answer = api.answer(body)
                headers = {"Content-Type": "application/json", **headers}
                self.reply(status, json.dumps(answer).encode(), list(headers.items()))

        return Handler
