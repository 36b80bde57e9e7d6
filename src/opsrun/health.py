"""Health gates: poll a host until it serves (HTTP status, or a TCP port that accepts), with a deadline.

A gate comes from the rolling policy (`health` in group_data):
    {"http": "http://{address}:3001/health", "status": 200, "timeout": 60}
    {"tcp": 6379, "timeout": 30}
`{address}` is the host's ssh_hostname (or its name), `{host}` its inventory name.
"""

from __future__ import annotations

import socket
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

from opsrun.errors import ConfigError
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
        )
        return last[0]


def parse_gate(value: Any, *, where: str, field: str = "rolling.health") -> HealthGate | None:
    if value is None:
        return None
    fix = 'write {"http": "http://{address}:PORT/health", "status": 200, "timeout": 60} or {"tcp": PORT}'
    if not isinstance(value, dict) or ("http" in value) == ("tcp" in value):
        raise ConfigError(where, "a health gate needs exactly one of http or tcp.", field=field, fix=fix)
    unknown = set(value) - {"http", "tcp", "status", "timeout", "interval"}
    if unknown:
        raise ConfigError(where, f"unknown setting {', '.join(sorted(unknown))}.", field=field, fix=fix)
    if "http" in value and not str(value["http"]).startswith(("http://", "https://")):
        raise ConfigError(where, f"{value['http']!r} is not an http(s) URL.", field=f"{field}.http", fix=fix)
    if "tcp" in value and not (isinstance(value["tcp"], int) and 0 < value["tcp"] < 65536):
        raise ConfigError(where, f"{value['tcp']!r} is not a port.", field=f"{field}.tcp", fix=fix)
    timeout = value.get("timeout", 60)
    if not isinstance(timeout, int | float) or timeout <= 0:
        raise ConfigError(where, f"{timeout!r} is not a number of seconds.", field=f"{field}.timeout", fix=fix)
    return HealthGate(
        http=value.get("http"),
        tcp=value.get("tcp"),
        status=int(value.get("status", 200)),
        timeout=float(timeout),
        interval=float(value.get("interval", 0.25)),
    )
