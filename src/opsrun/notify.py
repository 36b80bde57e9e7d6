"""Notifications of a run's outcome, for the nightly drift run.

    --notify sns:TOPIC_ARN     an SNS message (boto3; region from the ARN; credentials as boto3 finds them)
    --notify webhook:URL       a JSON POST with a Slack-compatible `text`, and the run's summary under `opsrun`

Targets are checked before anything runs (a typo must not surface at 3 a.m. after the run). A message is
sent when the status differs from the previous run of the same kind on the inventory, or always if asked.
A target that cannot be reached is reported (and makes the command exit 1), never retried forever.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any

from opsrun.errors import ConfigError, OpsrunError
from opsrun.secrets import redact, register_url, safe_url

TIMEOUT = 10.0
KINDS = ("sns", "webhook")


@dataclass(frozen=True)
class Target:
    kind: str
    address: str

    def __str__(self) -> str:
        """A webhook's URL is a secret (its path is the key of a chat webhook): never shown in full."""
        return f"{self.kind}:{safe_url(self.address) if self.kind == 'webhook' else self.address}"


class NotifyError(OpsrunError):
    pass


def parse(values: list[str] | tuple[str, ...]) -> list[Target]:
    targets = []
    for value in values:
        kind, _, address = value.partition(":")
        fix = "use sns:arn:aws:sns:REGION:ACCOUNT:TOPIC or webhook:https://HOST/PATH"
        if kind == "webhook" and address:
            register_url(address, path_is_secret=True)  # before any message can show it
        shown = f"{kind}:{safe_url(address)}" if "://" in address else repr(value)
        if kind not in KINDS or not address:
            raise ConfigError("--notify", f"{shown} is not a notification target.", field="--notify", fix=fix)
        if kind == "sns" and (not address.startswith("arn:") or len(address.split(":")) < 6):
            raise ConfigError("--notify", f"{address!r} is not an SNS topic ARN.", field="--notify", fix=fix)
        if kind == "webhook" and urllib.parse.urlsplit(address).scheme not in ("http", "https"):
            raise ConfigError("--notify", f"{safe_url(address)} is not an http(s) URL.", field="--notify", fix=fix)
        targets.append(Target(kind, address))
    return targets


def should_send(status: str, previous: str | None, always: bool) -> bool:
    return always or status != previous


def message(doc: dict[str, Any], previous: str | None) -> tuple[str, str]:
    """(subject, text) for a run's document: what it is, its status and what it was, the counts."""
    kind, inventory, status = doc.get("kind", "run"), doc.get("inventory", ""), doc.get("status", "")
    subject = f"opsrun {kind} {inventory}: {status}" + (f" (was {previous})" if previous and previous != status else "")
    counts = ", ".join(f"{k} {v}" for k, v in (doc.get("summary") or {}).items())
    lines = [subject, counts] if counts else [subject]
    for f in (doc.get("findings") or [])[:10]:
        if f.get("verdict") != "unknown":
            lines.append(f"- {f['host']} {f['deploy']}: {f['operation']} ({f['verdict']}, {f.get('status') or ''})")
    for host, why in (doc.get("unreachable") or {}).items():
        lines.append(f"- {host}: unreachable: {why}")
    return redact(subject)[:100], redact("\n".join(lines))


def send(targets: list[Target], doc: dict[str, Any], previous: str | None) -> list[str]:
    """Send to every target; the errors, one line each (empty: all sent)."""
    subject, text = message(doc, previous)
    errors = []
    for target in targets:
        try:
            if target.kind == "sns":
                _sns(target.address, subject, text)
            else:
                payload = {
                    "text": text,
                    "opsrun": {
                        k: doc.get(k) for k in ("kind", "inventory", "status", "run_id", "summary", "deploys", "deploy")
                    }
                    | {"previous_status": previous},
                }
                _webhook(target.address, json.loads(redact(json.dumps(payload))))
        except Exception as exc:  # noqa: BLE001 - each target's failure is reported, the others still get theirs
            errors.append(f"notify {target}: {type(exc).__name__}: {redact(str(exc))}")
    return errors


def _sns(arn: str, subject: str, text: str) -> None:
    import boto3
    from botocore.config import Config

    region = arn.split(":")[3]
    client = boto3.client(
        "sns", region_name=region, config=Config(retries={"mode": "standard", "max_attempts": 3}, read_timeout=TIMEOUT)
    )
    client.publish(TopicArn=arn, Subject=subject, Message=text)


def _webhook(url: str, payload: dict[str, Any]) -> None:
    request = urllib.request.Request(  # noqa: S310 - the scheme was checked to be http(s) in parse()
        url, data=json.dumps(payload).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=TIMEOUT) as response:  # noqa: S310 - as above
        if not 200 <= response.status < 300:
            raise NotifyError(f"HTTP {response.status}")
