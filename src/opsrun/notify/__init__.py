"""Notifications of a run's outcome, for the nightly drift run and the monthly DR test.

    --notify sns:TOPIC_ARN       an SNS message (boto3; region from the ARN; credentials as boto3 finds them)
    --notify webhook:URL         a JSON POST: Slack blocks, a plain `text`, and the run's summary under `opsrun`
    --notify pagerduty[:ENV]     a PagerDuty Events API v2 alert per inventory and job (notify.pagerduty); the
                                 routing key from the environment variable ENV (OPSRUN_PAGERDUTY_ROUTING_KEY)
    group_data `notify`          the same PagerDuty target without an option (opsrun.settings.notify_models)

Targets, and the routing key's variable, are checked before anything runs (a typo must not surface at
3 a.m. after the run). A chat or SNS message is sent when the status differs from the previous run of the
same kind on the inventory, or always if asked; PagerDuty keeps its own state (notify.pagerduty). Every
message is delivered with retries (notify.delivery); one that still fails is reported with the message it
would have sent, and makes the command exit 1, never retried forever.
"""

from __future__ import annotations

import os
import re
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from opsrun.errors import ConfigError
from opsrun.model.inventory import Inventory
from opsrun.model.secrets import redact, register, register_url, safe_url
from opsrun.notify import pagerduty
from opsrun.notify.delivery import RETRY, NotifyError, Refused, Retry, Undelivered, aws_failure, deliver, post_json
from opsrun.notify.messages import Links, message, webhook_payload
from opsrun.settings import Checked
from opsrun.settings.notify_models import PAGERDUTY_EU_URL, PAGERDUTY_URL, events_url_problem

__all__ = ["RETRY", "Links", "NotifyError", "Retry", "Sent", "Target", "message", "parse", "send", "should_send"]

KINDS = ("sns", "webhook", "pagerduty")
FIX = "use sns:arn:aws:sns:REGION:ACCOUNT:TOPIC, webhook:https://HOST/PATH or pagerduty[:ENV_NAME]"
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class Target:
    kind: str
    address: str  # the topic ARN, the webhook URL, or the name of the variable holding the routing key
    url: str = ""  # pagerduty: the Events API endpoint

    def __str__(self) -> str:
        """A webhook's URL is a secret (its path is the key of a chat webhook): never shown in full."""
        return f"{self.kind}:{safe_url(self.address) if self.kind == 'webhook' else self.address}"

    @property
    def ident(self) -> str:
        """Names the target in the state store: never the key, nor a webhook's URL."""
        return f"{self} {self.url}".strip()


@dataclass
class Failed:
    """A message that could not be delivered: to whom, why, after how many attempts, and what it said
    (without its routing key or URL), kept beside the run's result."""

    target: str
    error: str
    attempts: int
    message: dict[str, Any]

    @property
    def line(self) -> str:
        return f"notify {self.target}: {self.error}"


@dataclass
class Sent:
    sent: list[str] = field(default_factory=list)  # "pagerduty:ENV: trigger (warning)", "webhook:https://h/..."
    failed: list[Failed] = field(default_factory=list)

    @property
    def errors(self) -> list[str]:
        return [f.line for f in self.failed]


def parse(values: list[str] | tuple[str, ...]) -> list[Target]:
    """The --notify targets; ConfigError (before anything runs) for a bad one or a routing key not set."""
    targets = []
    for value in values:
        kind, _, address = value.partition(":")
        if kind == "pagerduty":
            targets.append(pagerduty_target(address or pagerduty.DEFAULT_ENV, "the command line"))
            continue
        if kind == "webhook" and address:
            register_url(address, path_is_secret=True)  # before any message can show it
        shown = f"{kind}:{safe_url(address)}" if "://" in address else repr(value)
        if kind not in KINDS or not address:
            raise ConfigError("the command line", f"{shown} is not a notification target.", field="--notify", fix=FIX)
        if kind == "sns" and (not address.startswith("arn:") or len(address.split(":")) < 6):
            raise ConfigError("the command line", f"{address!r} is not an SNS topic ARN.", field="--notify", fix=FIX)
        if kind == "webhook" and urllib.parse.urlsplit(address).scheme not in ("http", "https"):
            raise ConfigError(
                "the command line", f"{safe_url(address)} is not an http(s) URL.", field="--notify", fix=FIX
            )
        targets.append(Target(kind, address))
    return targets


def pagerduty_target(env: str, where: str, url: str | None = None, field_name: str = "--notify") -> Target:
    """A PagerDuty target whose key is in the environment variable `env` (read now, and remembered for
    redaction); its endpoint from OPSRUN_PAGERDUTY_URL, else `url`, else PagerDuty's."""
    if not ENV_NAME.fullmatch(env):
        register(env)  # perhaps the key itself, given on the command line: never shown
        raise ConfigError(
            where,
            "pagerduty:... must name an environment variable (the routing key itself is never given here).",
            field=field_name,
            fix=f"export the key as {pagerduty.DEFAULT_ENV}=... and use --notify pagerduty, or name "
            "your variable: --notify pagerduty:ENV_NAME",
        )
    key = os.environ.get(env, "")
    if not key:
        raise ConfigError(
            where,
            f"the environment variable {env} (the PagerDuty routing key) is not set; nothing was touched.",
            field=field_name,
            fix=f"export {env}=... in the environment that runs opsrun (e.g. the systemd unit's EnvironmentFile)",
        )
    register(key)
    override = os.environ.get(pagerduty.URL_ENV)
    problem = events_url_problem(override) if override else None  # a `url` setting was checked by its schema
    if override and problem:
        raise ConfigError(
            pagerduty.URL_ENV,
            f"{safe_url(override)} {problem}.",
            fix=f"set it to PagerDuty's endpoint ({PAGERDUTY_URL}, or {PAGERDUTY_EU_URL} for an EU account), "
            "a test server on loopback, or unset it",
        )
    return Target("pagerduty", env, override or url or PAGERDUTY_URL)


def configured(inv: Inventory, hosts: list[str], checked: Checked, job_kind: str, given: list[Target]) -> list[Target]:
    """`given` (the --notify targets) and the PagerDuty target of group_data `notify` (as settings.check_hosts
    validated it, `checked`) when it pages for `job_kind` (drift, dr-test). One setting for the whole
    inventory: hosts that differ are refused."""
    having = [h for h in hosts if checked[h].notify is not None]
    if not having:
        return given
    first = having[0]
    for host in having[1:]:
        if checked[host].notify != checked[first].notify:
            raise ConfigError(
                inv.where(host, "notify"),
                f"host {host} has other notify settings than {first} (set in {inv.where(first, 'notify')}); "
                "a run pages once, for the inventory.",
                field="notify",
                fix="set notify once, for every host of the inventory (group_data/all.py)",
            )
    where = inv.where(first, "notify")
    setting = checked[first].notify
    pager = setting.pagerduty if setting is not None else None
    if pager is None or job_kind not in pager.jobs:
        return given
    field_name = "notify.pagerduty.secret_env.routing_key"
    target = pagerduty_target(pager.secret_env["routing_key"], where, pager.url, field_name)
    return [*given, target] if target not in given else given


def should_send(status: str, previous: str | None, always: bool) -> bool:
    return always or status != previous


def send(
    targets: list[Target],
    doc: dict[str, Any],
    previous: str | None,
    *,
    always: bool = False,
    job: str | None = None,
    links: Links | None = None,
    alerts: pagerduty.AlertStore | None = None,
    retry: Retry = RETRY,
) -> Sent:
    """Tell every target what it should hear of this run: chat and SNS on a change of status (or
    `always`), PagerDuty as its state in `alerts` says. A failing target does not keep the others from theirs."""
    links = links or Links(run_id=doc.get("run_id"))
    job = job or f"{doc.get('kind', 'run')} {doc.get('inventory', '')}"
    sent = Sent()
    chat = should_send(str(doc.get("status")), previous, always)
    for target in targets:
        if target.kind == "pagerduty":
            _page(target, doc, job, links, alerts, always, retry, sent)
        elif chat:
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


def _page(
    target: Target,
    doc: dict[str, Any],
    job: str,
    links: Links,
    alerts: pagerduty.AlertStore | None,
    always: bool,
    retry: Retry,
    sent: Sent,
) -> None:
    key = pagerduty.dedup_key(job)
    wanted = pagerduty.outcome(doc)
    action = pagerduty.decide(wanted, alerts.alert_state(target.ident, key) if alerts else None, always)
    if action is None:
        return
    copy = pagerduty.event(action, key, doc, wanted, links)

    def attempt() -> Any:
        return post_json(target.url, {"routing_key": pagerduty.routing_key(target.address), **copy})

    severity = f" ({wanted.severity})" if action == "trigger" else ""
    if _deliver(f"{target}: {action}{severity}", attempt, copy, retry, sent) and alerts is not None:
        state = "triggered" if action == "trigger" else "resolved"
        alerts.set_alert_state(target.ident, key, state, wanted.fingerprint, links.run_id)


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
    from opsrun.aws import client, client_config

    clients: list[Any] = []  # made at the first attempt, where a failure is the target's, reported

    def attempt() -> Any:
        if not clients:
            config = client_config(total_max_attempts=1, read_timeout=10, connect_timeout=10)
            clients.append(client("sns", region_name=arn.split(":")[3], config=config))
        try:
            return clients[0].publish(TopicArn=arn, Subject=subject, Message=text)
        except Exception as exc:
            failure = aws_failure(exc)
            if failure is None:
                raise
            raise failure from None

    return attempt
