"""The schema of group_data `notify`: who the nightly drift run and the monthly DR test tell, without a
command-line option (what the systemd units use). The secrets it needs come from the environment:

    notify = {"pagerduty": {"secret_env": {"routing_key": "OPSRUN_PAGERDUTY_ROUTING_KEY"}}}
"""

from __future__ import annotations

import ipaddress
import urllib.parse
from typing import Annotated, Literal

from pydantic import Field, StringConstraints, field_validator

from opsrun.settings.values import EnvName, Strict

PAGERDUTY_URL = "https://events.pagerduty.com/v2/enqueue"
PAGERDUTY_EU_URL = "https://events.eu.pagerduty.com/v2/enqueue"
Job = Literal["drift", "dr-test"]
JOBS: tuple[Job, ...] = ("drift", "dr-test")


def events_url_problem(url: str) -> str | None:
    """Why `url` cannot be a PagerDuty Events API endpoint (None: it can). The routing key travels in the
    body: plain http is allowed to a loopback address only (a test server, a local relay)."""
    try:
        parts = urllib.parse.urlsplit(url)
        host = parts.hostname or ""
    except ValueError:
        return "is not a URL"
    if any(c.isspace() or ord(c) < 32 for c in url) or not host:
        return "is not a URL"
    if parts.scheme == "https":
        return None
    if parts.scheme != "http":
        return "is not an https URL"
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    return None if loopback else "is http to a host that is not loopback (the routing key would travel in clear)"


class PagerDuty(Strict):
    secret_env: dict[Literal["routing_key"], EnvName] = Field(
        description='{"routing_key": "ENV_NAME"}: the environment variable that holds the Events API v2 '
        "integration key (never the key itself)"
    )
    url: Annotated[str, StringConstraints(max_length=2000)] | None = Field(
        None, description=f"the Events API v2 endpoint, e.g. {PAGERDUTY_EU_URL} for an EU account"
    )
    jobs: list[Job] = Field(
        default_factory=lambda: list(JOBS),
        description='the jobs that page: ["drift", "dr-test"] or one of them',
    )

    @field_validator("secret_env")
    @classmethod
    def _has_routing_key(cls, value: dict[str, str]) -> dict[str, str]:
        if "routing_key" not in value:
            raise ValueError('secret_env needs "routing_key"')
        return value

    @field_validator("url")
    @classmethod
    def _events_url(cls, value: str | None) -> str | None:
        problem = events_url_problem(value) if value is not None else None
        if problem:
            raise ValueError(f"the URL {problem}")
        return value


class NotifySettings(Strict):
    pagerduty: PagerDuty | None = Field(
        None, description='{"secret_env": {"routing_key": "OPSRUN_PAGERDUTY_ROUTING_KEY"}}'
    )


class NotifySetting(Strict):
    notify: NotifySettings
