"""nginx as the load balancer, on an LB host of the inventory, reached over SSH like any other host.

drain:   mark the server `down` in the upstream block of the LB's config file, `nginx -t`, reload
drained: no worker of the old generation is left ("worker process is shutting down"): they exit once
         their connections have finished
enable:  remove `down`, `nginx -t`, reload
healthy: the server is not marked down (open-source nginx has no active health checks: the rollout's
         health gate is what proves the host serves)

A configuration that fails `nginx -t` is put back before anything is reloaded. The text edits are pure
functions, tested on their own (tests/unit/test_nginx_lb.py).
"""

from __future__ import annotations

import re
import shlex

from opsrun.balancers.base import ServerState
from opsrun.errors import BalancerError
from opsrun.hosts.remote import Remote
from opsrun.model.inventory import Inventory

SERVER_LINE = re.compile(r"^(\s*server\s+)(\S+)((?:\s+[^;]*)?);(.*)$")


def _upstream_span(text: str, upstream: str) -> tuple[int, int]:
    lines = text.splitlines()
    start = next(
        (i for i, line in enumerate(lines) if re.match(rf"^\s*upstream\s+{re.escape(upstream)}\s*{{", line)), None
    )
    if start is None:
        raise BalancerError(f"no `upstream {upstream} {{` block in the nginx configuration")
    end = next((i for i in range(start + 1, len(lines)) if lines[i].strip() == "}"), None)
    if end is None:
        raise BalancerError(f"the `upstream {upstream}` block is not closed")
    return start, end


def parse_upstream(text: str, upstream: str) -> dict[str, list[str]]:
    """Servers of `upstream` with their parameters: {"10.0.0.1:3001": ["down"], ...}."""
    start, end = _upstream_span(text, upstream)
    servers = {}
    for line in text.splitlines()[start + 1 : end]:
        if m := SERVER_LINE.match(line):
            servers[m.group(2)] = m.group(3).split()
    return servers


def set_down(text: str, upstream: str, server: str, down: bool) -> str:
    """The configuration with `server` marked down (or not) in `upstream`; everything else unchanged."""
    start, end = _upstream_span(text, upstream)
    lines = text.splitlines(keepends=True)
    for i in range(start + 1, end):
        m = SERVER_LINE.match(lines[i].rstrip("\n"))
        if m and m.group(2) == server:
            params = [p for p in m.group(3).split() if p != "down"] + (["down"] if down else [])
            newline = "\n" if lines[i].endswith("\n") else ""
            lines[i] = f"{m.group(1)}{server}{''.join(' ' + p for p in params)};{m.group(4)}{newline}"
            return "".join(lines)
    raise BalancerError(f"upstream {upstream} has no server {server}")


class NginxLB:
    needs_inventory = True

    def __init__(self, host: str, upstream: str, config: str, inventory: Inventory, timeout: float = 30):
        if host not in inventory.hosts:
            raise BalancerError(f"the nginx balancer host {host!r} is not in inventory {inventory.name}")
        self.host, self.upstream, self.config = host, upstream, config
        self.name = f"nginx upstream {upstream} on {host}"
        self.remote = Remote(inventory, host, timeout=timeout)

    def _run(self, command: str) -> str:
        rc, out, err = self.remote.run(command)
        if rc != 0:
            raise BalancerError(f"{self.name}: `{command}` exited {rc}: {(err or out).strip()}")
        return out

    def _text(self) -> str:
        return self._run(f"cat {shlex.quote(self.config)}")

    def check(self, servers: list[str]) -> None:
        known = parse_upstream(self._text(), self.upstream)
        missing = [s for s in servers if s not in known]
        if missing:
            raise BalancerError(f"{self.name} has no server {', '.join(missing)} (it has: {', '.join(known)})")

    def _set(self, server: str, down: bool) -> None:
        new = set_down(self._text(), self.upstream, server, down)
        q, cfg = shlex.quote, self.config
        self.remote.put(f"{cfg}.opsrun-new", new)
        self._run(
            f"cp -p {q(cfg)} /tmp/opsrun-lb-old && cat {q(cfg)}.opsrun-new > {q(cfg)} && rm -f {q(cfg)}.opsrun-new"
            f" && if nginx -t -q; then systemctl reload nginx; else cat /tmp/opsrun-lb-old > {q(cfg)}; "
            "echo 'nginx -t failed: the previous configuration was put back' >&2; exit 1; fi"
        )

    def drain(self, server: str) -> None:
        self._set(server, down=True)

    def enable(self, server: str) -> None:
        self._set(server, down=False)

    def state(self, server: str) -> ServerState:
        params = parse_upstream(self._text(), self.upstream).get(server)
        if params is None:
            raise BalancerError(f"{self.name} has no server {server}")
        # [n]ginx: the shell running pgrep has the pattern in its own command line, and must not match it
        old_workers = int(self._run("pgrep -c -f '[n]ginx: worker process is shutting down' || true").strip() or 0)
        down = "down" in params
        return ServerState(server, "drain" if down else "ready", not down, old_workers if down else 0)
