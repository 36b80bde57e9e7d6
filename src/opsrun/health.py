"""Health gates: poll a host until it serves (HTTP status, or a TCP port that accepts), with a deadline.

A gate comes from the rolling policy (`health` in group_data):
    {"http": "http://{address}:3001/health", "status": 200, "timeout": 60}
    {"tcp": 6379, "timeout": 30}
`{address}` is the host's ssh_hostname (or its name), `{host}` its inventory name.
"""

from __future__ import annotations

import http.client
import socket
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

from opsrun.waiting import poll_until

# Probes go straight to the host, never through a proxy from the environment.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))
PROBE_TIMEOUT = 2.0


@dataclass(frozen=True)
class HealthGate:
    http: str | None = None
    tcp: int | None = None
    status: int = 200
    timeout: float = 60.0
    interval: float = 0.25

    def target(self, host: str, address: str) -> str:
        if self.http:
            return self.http.format(host=host, address=address)
        return f"tcp://{address}:{self.tcp}"

    def probe(self, host: str, address: str) -> tuple[bool, str]:
        """One attempt: (passed, what was seen)."""
        if self.http:
            url = self.target(host, address)
            try:
                with _OPENER.open(url, timeout=PROBE_TIMEOUT) as resp:
                    code = resp.status
            except urllib.error.HTTPError as exc:
                code = exc.code
            except (OSError, urllib.error.URLError) as exc:
                return False, f"{type(exc).__name__}: {getattr(exc, 'reason', exc)}"
            return code == self.status, f"HTTP {code}"
        try:
            with socket.create_connection((address, int(self.tcp or 0)), timeout=PROBE_TIMEOUT):
                return True, "port open"
        except OSError as exc:
            return False, f"{type(exc).__name__}: {exc.strerror or exc}"

    def wait(self, host: str, address: str) -> str:
        """Poll until the gate passes; raise WaitTimeout naming the gate and the last answer seen."""
        last = ["no answer yet"]

        def passed() -> bool:
            ok, seen = self.probe(host, address)
            last[0] = seen
            return ok

        expect = f" to answer {self.status}" if self.http else " to accept connections"
        poll_until(
            passed,
            timeout=self.timeout,
            interval=self.interval,
            what=f"health gate {self.target(host, address)}{expect}",
            describe=lambda _v: last[0],
            retry_on=(OSError, http.client.HTTPException),  # a reply cut short while the service restarts
        )
        return last[0]


def parse_gate(value: Any, *, where: str, field: str = "rolling.health") -> HealthGate | None:
    """A gate from group_data, checked by its schema (opsrun.settings.models.HealthGate)."""
    from opsrun import settings
    from opsrun.settings import models

    if value is None:
        return None
    parent, _, key = field.rpartition(".")
    wrapped = settings.validate_key(models.RollingSetting, parent or "rolling", {key or "health": value}, where=where)
    gate = wrapped.health if wrapped is not None else None
    return HealthGate(**gate.model_dump()) if gate is not None else None
