"""HAProxy in the lab's root namespace, in front of the web hosts' nginx (port WEB_PORT), with an admin socket.

It listens on the bridge address only. Servers are named after the hosts; health checks poll `/health`.
`haproxy -c` validates every configuration before it is used.
"""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

from opsrun.errors import LabError
from opsrun.lab.config import LabConfig
from opsrun.support import processes
from opsrun.support.waiting import poll_until

WEB_PORT = 80  # nginx on each web host, in front of the app's PM2 cluster
FRONTEND_PORT = 8000
BACKEND = "web"


def paths(cfg: LabConfig) -> tuple[Path, Path, Path]:
    d = cfg.lab_dir / "haproxy"
    return d / "haproxy.cfg", d / "admin.sock", d / "haproxy.pid"


def render(cfg: LabConfig, hosts: dict[str, str]) -> str:
    _cfg, sock, _pid = paths(cfg)
    servers = "\n".join(f"    server {name} {addr}:{WEB_PORT}" for name, addr in hosts.items())
    return f"""# Written by `opsrun lab up`.
global
    stats socket {sock} mode 600 level admin
    stats timeout 10s

defaults
    mode http
    timeout connect 2s
    timeout client 10s
    timeout server 10s
    retries 2

frontend fe
    bind {cfg.gateway}:{FRONTEND_PORT}
    default_backend {BACKEND}

backend {BACKEND}
    balance roundrobin
    option httpchk GET /health
    default-server check inter 500ms fall 2 rise 2
{servers}
"""


def _pid(cfg: LabConfig) -> int | None:
    try:
        pid = int(paths(cfg)[2].read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return pid if processes.alive(pid) else None


def ensure(cfg: LabConfig, hosts: dict[str, str]) -> None:
    """Run HAProxy with a configuration for `hosts`; reload it (no dropped connections) if that changed."""
    conf, sock, pidfile = paths(cfg)
    conf.parent.mkdir(parents=True, exist_ok=True)
    text = render(cfg, hosts)
    running = _pid(cfg)
    if running and conf.exists() and conf.read_text() == text:
        return
    new = conf.with_suffix(".new")
    new.write_text(text)
    check = subprocess.run(["haproxy", "-c", "-q", "-f", str(new)], capture_output=True, text=True, check=False)
    if check.returncode != 0:
        raise LabError(f"haproxy rejected the lab configuration {new}: {check.stderr.strip() or check.stdout.strip()}")
    new.replace(conf)
    cmd = ["haproxy", "-D", "-f", str(conf), "-p", str(pidfile)]
    if running:
        cmd += ["-sf", str(running)]  # new process takes over, the old one finishes its connections
    proc = subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL, check=False)
    if proc.returncode != 0:
        raise LabError(f"haproxy did not start: {proc.stderr.strip()}")
    poll_until(lambda: sock.exists() and _pid(cfg) not in (None, running), timeout=10,
               what="haproxy to start with its admin socket")  # fmt: skip


def stop(cfg: LabConfig) -> None:
    pid = _pid(cfg)
    if pid:
        os.kill(pid, signal.SIGTERM)
        poll_until(lambda: _pid(cfg) is None, timeout=10, what="haproxy to exit")
