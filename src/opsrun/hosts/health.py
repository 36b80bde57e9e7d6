"""Health gates: poll a host until it serves (HTTP status, or a TCP port that accepts), with a deadline.

A gate is the rolling policy's `health` as its schema validated it (settings.models.HealthGate):
    {"http": "http://{address}:3001/health", "status": 200, "timeout": 60}
    {"tcp": 6379, "timeout": 30}
`{address}` is the host's ssh_hostname (or its name), `{host}` its inventory name. A rollout asks a `Gate`
(`HealthCheck`, or a fake in unit tests) for one probe or for a wait until it passes.
"""

from __future__ import annotations

import http.client
import socket
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Protocol

from opsrun.settings.models import HealthGate
from opsrun.support.waiting import poll_until

# Probes go straight to the host, never through a proxy from the environment.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))
PROBE_TIMEOUT = 2.0


class Gate(Protocol):
    """What a rollout asks of a health gate: one probe (passed, what was seen), or a wait until it passes."""

    def probe(self, host: str, address: str) -> tuple[bool, str]: ...
    def wait(self, host: str, address: str) -> str: ...


@dataclass(frozen=True)
class HealthCheck:
    """The gate its validated setting describes."""

    setting: HealthGate

    def __str__(self) -> str:
        return self.setting.http or f"tcp:{self.setting.tcp}"

    def target(self, host: str, address: str) -> str:
        if self.setting.http:
            return self.setting.http.format(host=host, address=address)
        return f"tcp://{address}:{self.setting.tcp}"

    def probe(self, host: str, address: str) -> tuple[bool, str]:
        """One attempt: (passed, what was seen)."""
        if self.setting.http:
            url = self.target(host, address)
            try:
                with _OPENER.open(url, timeout=PROBE_TIMEOUT) as resp:
                    code = resp.status
            except urllib.error.HTTPError as exc:
                code = exc.code
            except (OSError, urllib.error.URLError) as exc:
                return False, f"{type(exc).__name__}: {getattr(exc, 'reason', exc)}"
            return code == self.setting.status, f"HTTP {code}"
        try:
            with socket.create_connection((address, int(self.setting.tcp or 0)), timeout=PROBE_TIMEOUT):
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

        expect = f" to answer {self.setting.status}" if self.setting.http else " to accept connections"
        poll_until(
            passed,
            timeout=self.setting.timeout,
            interval=self.setting.interval,
            what=f"health gate {self.target(host, address)}{expect}",
            describe=lambda _v: last[0],
            retry_on=(OSError, http.client.HTTPException),  # a reply cut short while the service restarts
        )
        return last[0]
