"""HAProxy through its runtime API on the admin socket (`stats socket ... level admin`).

drain:   `set server BACKEND/SERVER state drain`  (no new connections; current ones finish)
drained: admin state drain and `scur` (current sessions) 0 in `show stat`
enable:  `set server BACKEND/SERVER state ready`
healthy: operational state running (2) in `show servers state`, health check passing
stats:   `show stat` per server (a canary's figures, balancers.stats): responses (req_tot), 5xx (hrsp_5xx),
         responses that never came (eresp: a timeout or an abort, which HAProxy answers 504 or 502 and counts
         nowhere else), and rtime (the mean response time of the last 512 responses, in ms)

The parsers are pure and tested on recorded output (tests/data/haproxy/).
"""

from __future__ import annotations

import csv
import io
import re
import socket as _socket
from dataclasses import dataclass

from opsrun.balancers.base import Admin, ServerState
from opsrun.balancers.stats import Figures, combine
from opsrun.errors import BalancerError, ConfigError

# srv_admin_state bits (haproxy/include/haproxy/server-t.h)
FMAINT, IMAINT, CMAINT, FDRAIN, IDRAIN, RMAINT, HMAINT = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x80
SRV_ST_RUNNING = 2
ERRORS = ("No such server", "Can't find backend", "Unknown command", "Permission denied", "Require 'backend/server'")


@dataclass(frozen=True)
class ServersStateRow:
    backend: str
    server: str
    address: str
    op_state: int
    admin_state: int
    check_status: int

    @property
    def admin(self) -> Admin:
        if self.admin_state & (FMAINT | IMAINT | CMAINT | RMAINT | HMAINT):
            return "maint"
        if self.admin_state & (FDRAIN | IDRAIN):
            return "drain"
        return "ready"


def parse_servers_state(text: str) -> dict[str, ServersStateRow]:
    """`show servers state [BACKEND]`: a version line, a `#` header, then one row per server."""
    lines = [line for line in text.splitlines() if line.strip()]
    header = next((line[1:].split() for line in lines if line.startswith("#")), None)
    if header is None:
        raise BalancerError(f"unexpected answer to `show servers state`: {text.strip()[:200]!r}")
    rows = {}
    for line in lines:
        if line.startswith("#") or len(line.split()) < len(header) - 1:
            continue
        f = dict(zip(header, line.split(), strict=False))
        row = ServersStateRow(
            f["be_name"],
            f["srv_name"],
            f["srv_addr"],
            int(f["srv_op_state"]),
            int(f["srv_admin_state"]),
            int(f["srv_check_status"]),
        )
        rows[row.server] = row
    return rows


def parse_stat(text: str) -> dict[tuple[str, str], dict[str, str]]:
    """`show stat`: CSV whose header line starts with `# `; keyed by (proxy, server)."""
    body = text.lstrip()
    if not body.startswith("# pxname"):
        raise BalancerError(f"unexpected answer to `show stat`: {text.strip()[:200]!r}")
    reader = csv.DictReader(io.StringIO(body[2:]))
    return {(r["pxname"], r["svname"]): r for r in reader if r.get("pxname")}


PLAIN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,252}")


def plain_name(what: str, name: str) -> str:
    """A backend or server name fit for a runtime API line; BalancerError for anything else. The runtime API
    splits a line on ';' (a second command) and a newline ends it, so such a name is never sent."""
    if not PLAIN_NAME.fullmatch(name):
        raise BalancerError(
            f"haproxy {what} name {name!r} is not a plain name (letters, digits and ._:- only): not sent"
        )
    return name


SAMPLES = 512  # HAProxy's TIME_STATS_SAMPLES: rtime is the mean of the last 512 responses (or of all, while fewer)
HTTP_CODES = ("1xx", "2xx", "3xx", "4xx", "5xx", "other")


@dataclass(frozen=True)
class Counters:
    """A server's counters in `show stat` at one moment (they only grow, until HAProxy reloads)."""

    responses: int  # req_tot: the responses it gave (each timed into rtime)
    errors_5xx: int  # hrsp_5xx
    failed: int  # eresp: responses that never came (a timeout or an abort)
    rtime_ms: float  # the mean response time of the last SAMPLES responses


def counters(row: dict[str, str]) -> Counters:
    """One server's row of `show stat` as its Counters (req_tot, or the hrsp_* sum where it is empty)."""

    def num(key: str) -> int:
        return int(row.get(key) or 0)

    given = row.get("req_tot")
    responses = int(given) if given else sum(num(f"hrsp_{code}") for code in HTTP_CODES)
    return Counters(responses, num("hrsp_5xx"), num("eresp"), float(row.get("rtime") or 0))


def window_figures(start: Counters, end: Counters) -> Figures:
    """The requests a server passed between two readings. Counters that went down were reset (a reload):
    the window then counts from zero. The window's mean response time is recovered from rtime, a running
    mean whose older part is the start's rtime with the weight its responses keep among the last SAMPLES."""
    if end.responses < start.responses or end.errors_5xx < start.errors_5xx or end.failed < start.failed:
        start = Counters(0, 0, 0, 0.0)
    new, failed = end.responses - start.responses, end.failed - start.failed
    mean = None
    if new > 0:
        if end.responses <= SAMPLES:
            kept = start.responses / end.responses
        else:
            kept = (
                min(start.responses, SAMPLES)
                / SAMPLES
                * (1 - 1 / SAMPLES) ** (end.responses - max(start.responses, SAMPLES))
            )
        mean = max(0.0, (end.rtime_ms - start.rtime_ms * kept) / (1 - kept)) / 1000
    return Figures(new + failed, end.errors_5xx - start.errors_5xx + failed, mean)


class HAProxy:
    takes_where = True  # balancers.make passes the group_data file, for ConfigError messages

    def __init__(self, socket: str, backend: str, timeout: float = 5.0, where: str = "group_data balancer"):
        plain_name("backend", backend)
        self.socket_path = socket
        self.backend = backend
        self.timeout = timeout
        self.where = where
        self.name = f"haproxy backend {backend}"

    def command(self, line: str) -> str:
        if any(c in line for c in ";\n\r\x00"):
            raise BalancerError(f"refused to send {line!r} to haproxy: ';' or a line break would add a command")
        try:
            with _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM) as s:
                s.settimeout(self.timeout)
                s.connect(self.socket_path)
                s.sendall(line.encode() + b"\n")
                chunks = []
                while chunk := s.recv(65536):
                    chunks.append(chunk)
        except OSError as exc:
            raise BalancerError(f"haproxy admin socket {self.socket_path}: {exc.strerror or exc}") from exc
        answer = b"".join(chunks).decode(errors="replace")
        if any(answer.strip().startswith(e) for e in ERRORS):
            raise BalancerError(f"haproxy refused `{line}`: {answer.strip()}")
        return answer

    def _rows(self) -> dict[str, ServersStateRow]:
        return parse_servers_state(self.command(f"show servers state {self.backend}"))

    def check(self, servers: list[str]) -> None:
        known = self._rows()
        missing = [s for s in servers if s not in known]
        if missing:
            raise BalancerError(
                f"{self.name} has no server {', '.join(missing)} (it has: {', '.join(known) or 'none'})"
            )

    def drain(self, server: str) -> None:
        self.command(f"set server {self.backend}/{plain_name('server', server)} state drain")

    def enable(self, server: str) -> None:
        self.command(f"set server {self.backend}/{plain_name('server', server)} state ready")

    def state(self, server: str) -> ServerState:
        row = self._rows().get(server)
        if row is None:
            raise BalancerError(f"{self.name} has no server {server}")
        stat = parse_stat(self.command("show stat")).get((self.backend, server), {})
        sessions = int(stat.get("scur") or 0)
        healthy = row.op_state == SRV_ST_RUNNING and not stat.get("status", "UP").startswith(("DOWN", "NOLB"))
        return ServerState(server, row.admin, healthy, sessions)

    def counters(self, servers: list[str]) -> dict[str, Counters]:
        """The servers' counters from one `show stat`."""
        rows = parse_stat(self.command("show stat"))
        missing = [s for s in servers if (self.backend, s) not in rows]
        if missing:
            raise BalancerError(f"{self.name} has no server {', '.join(missing)} in `show stat`")
        return {s: counters(rows[(self.backend, s)]) for s in servers}

    def stats_check(self, servers: list[str]) -> None:
        """A canary's figures are HTTP ones: a backend in TCP mode has none."""
        mode = parse_stat(self.command("show stat")).get((self.backend, "BACKEND"), {}).get("mode")
        if mode != "http":
            raise ConfigError(
                self.where,
                f"{self.name} is in {mode or 'an unknown'} mode: HAProxy counts no HTTP status or response time "
                "for it, and a canary is judged by them.",
                field="balancer.backend",
                fix=f"use `mode http` in HAProxy's backend {self.backend}, or remove the rolling policy's canary",
            )
        self.counters(servers)

    def stats_window(self, canary: list[str], others: list[str]) -> HAProxyWindow:
        return HAProxyWindow(self, canary, others)


class HAProxyWindow:
    """The canary servers' and the others' figures since it opened (balancers.stats.Window)."""

    def __init__(self, haproxy: HAProxy, canary: list[str], others: list[str]):
        self.haproxy, self.canary, self.others = haproxy, canary, others
        self.source = f"haproxy show stat (backend {haproxy.backend})"
        self.scope = "server" + ("s " if len(canary) > 1 else " ") + ", ".join(canary)
        self.start = haproxy.counters([*canary, *others])

    def read(self) -> tuple[Figures, Figures | None]:
        now = self.haproxy.counters([*self.canary, *self.others])

        def over(servers: list[str]) -> Figures:
            return combine(window_figures(self.start[s], now[s]) for s in servers)

        return over(self.canary), over(self.others) if self.others else None
