"""Notifications of a run's outcome, for the nightly drift run.

    --notify sns:TOPIC_ARN     an SNS message (boto3; region from the ARN; credentials as boto3 finds them)
    --notify webhook:URL       a JSON POST: Slack blocks, a plain `text`, and the run's summary under `opsrun`

Targets are checked before anything runs (a typo must not surface at 3 a.m. after the run). A message is
sent when the status differs from the previous run of the same kind on the inventory, or always if asked.
Every message is delivered with retries (notify.delivery); one that still fails is reported with the
message it would have sent, and makes the command exit 1, never retried forever.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from opsrun.errors import ConfigError
from opsrun.notify.delivery import RETRY, NotifyError, Refused, Retry, Undelivered, aws_failure, deliver, post_json
from opsrun.notify.messages import Links, message, webhook_payload
from opsrun.secrets import redact, register_url, safe_url

__all__ = ["RETRY", "Links", "NotifyError", "Retry", "Sent", "Target", "message", "parse", "send", "should_send"]

KINDS = ("sns", "webhook")
FIX = "use sns:arn:aws:sns:REGION:ACCOUNT:TOPIC or webhook:https://HOST/PATH"


@dataclass(frozen=True)
class Target:
    kind: str
    address: str  # the topic ARN or the webhook URL

    def __str__(self) -> str:
        """A webhook's URL is a secret (its path is the key of a chat webhook): never shown in full."""
        return f"{self.kind}:{safe_url(self.address) if self.kind == 'webhook' else self.address}"


@dataclass
class Failed:
    """A message that could not be delivered: to whom, why, after how many attempts, and what it said
    (without its URL), kept beside the run's result."""

    target: str
    error: str
    attempts: int
    message: dict[str, Any]

    @property
    def line(self) -> str:
        return f"notify {self.target}: {self.error}"


@dataclass
class Sent:
    sent: list[str] = field(default_factory=list)  # "sns:arn:...", "webhook:https://h/..."
    failed: list[Failed] = field(default_factory=list)

    @property
    def errors(self) -> list[str]:
        return [f.line for f in self.failed]


def parse(values: list[str] | tuple[str, ...]) -> list[Target]:
    """The --notify targets; ConfigError (before anything runs) for a bad one."""
    targets = []
    for value in values:
        kind, _, address = value.partition(":")
        if kind == "webhook" and address:
            register_url(address, path_is_secret=True)  # before any message can show it
        shown = f"{kind}:{safe_url(address)}" if "://" in address else repr(value)
        if kind not in KINDS or not address:
            raise ConfigError("--notify", f"{shown} is not a notification target.", field="--notify", fix=FIX)
        if kind == "sns" and (not address.startswith("arn:") or len(address.split(":")) < 6):
            raise ConfigError("--notify", f"{address!r} is not an SNS topic ARN.", field="--notify", fix=FIX)
        if kind == "webhook" and urllib.parse.urlsplit(address).scheme not in ("http", "https"):
            raise ConfigError("--notify", f"{safe_url(address)} is not an http(s) URL.", field="--notify", fix=FIX)
        targets.append(Target(kind, address))
    return targets


def should_send(status: str, previous: str | None, always: bool) -> bool:
    return always or status != previous


def send(
    targets: list[Target],
    doc: dict[str, Any],
    previous: str | None,
    *,
    always: bool = False,
    links: Links | None = None,
    retry: Retry = RETRY,
) -> Sent:
    """Tell every target of this run when its status changed (or `always`). A failing target does not keep
    the others from theirs."""
    links = links or Links(run_id=doc.get("run_id"))
    sent = Sent()
    if should_send(str(doc.get("status")), previous, always):
        for target in targets:
            _chat(target, doc, previous, links, retry, sent)
    return sent


def _chat(target: Target, doc: dict[str, Any], previous: str | None, links: Links, retry: Retry, sent: Sent) -> None:
    if target.kind == "sns":
        subject, text = message(doc, previous, links)
        copy: dict[str, Any] = {"subject": subject, "message": text}
        attempt = _sns_attempt(target.address, subject, text)
    else:
        copy = webhook_payload(doc, previous, links)

        def attempt() -> Any:
            return post_json(target.address, copy)

    _deliver(str(target), attempt, copy, retry, sent)


def _deliver(what: str, attempt: Callable[[], Any], copy: dict[str, Any], retry: Retry, sent: Sent) -> bool:
    """Deliver with retries; the outcome goes into `sent`. True when the target took the message."""
    try:
        _answer, tries = deliver(attempt, retry)
    except Undelivered as exc:
        sent.failed.append(Failed(what, str(exc), exc.attempts, copy))
        return False
    except Refused as exc:
        sent.failed.append(Failed(what, f"{exc} (refused: not retried)", exc.attempts, copy))
        return False
    except Exception as exc:  # noqa: BLE001 - not retried, but reported: the other targets still get theirs
        sent.failed.append(Failed(what, redact(f"{type(exc).__name__}: {exc}"), 1, copy))
        return False
    sent.sent.append(what + (f" after {tries} attempts" if tries > 1 else ""))
    return True


def _sns_attempt(arn: str, subject: str, text: str) -> Callable[[], Any]:
    """One SNS publish, its failures classified: botocore's own retries are off, `deliver` does them."""
    import boto3
    from botocore.config import Config

    clients: list[Any] = []  # made at the first attempt, where a failure is the target's, reported

    def attempt() -> Any:
        if not clients:
            config = Config(retries={"mode": "standard", "total_max_attempts": 1}, read_timeout=10, connect_timeout=10)
            clients.append(boto3.client("sns", region_name=arn.split(":")[3], config=config))
        try:
            return clients[0].publish(TopicArn=arn, Subject=subject, Message=text)
        except Exception as exc:
            failure = aws_failure(exc)
            if failure is None:
                raise
            raise failure from None

    return attempt
