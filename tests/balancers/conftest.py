"""A real HAProxy, started here on 127.0.0.1 with its own admin socket in a temp dir, in front of small HTTP
servers on loopback (one per host). Each server answers as its `release` says: "good" answers everything;
"errors" answers /health but every fifth other request 500, as the demo app's FAIL_ONE_IN=5 release does;
"slow" answers /health at once and every other request after `SLOW` seconds."""

from __future__ import annotations

import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest

from opsrun.balancers.base import NOT_ANSWERING
from opsrun.balancers.haproxy import HAProxy
from opsrun.support.waiting import poll_until
from tests.conftest import QuietHandler, _free_port

HOSTS = ["web1", "web2", "web3"]
SLOW = 0.3  # seconds a "slow" release takes to answer


@dataclass
class Backends:
    balancer: HAProxy
    frontend: str  # the URL clients use
    release: dict[str, str] = field(default_factory=lambda: dict.fromkeys(HOSTS, "good"))
    served: dict[str, int] = field(default_factory=lambda: dict.fromkeys(HOSTS, 0))  # requests, /health aside
    lock: threading.Lock = field(default_factory=threading.Lock)


def _handler(name: str, backends: list[Backends]) -> type[QuietHandler]:
    class Release(QuietHandler):
        def do_GET(self) -> None:
            if self.path == "/health":
                return self.reply(200, b"ok\n")
            state = backends[0]
            with state.lock:
                state.served[name] += 1
                nth, release = state.served[name], state.release[name]
            if release == "slow":
                time.sleep(SLOW)  # the release's own slowness, what the canary must see
            self.reply(500 if release == "errors" and nth % 5 == 0 else 200, f"{name} {release}\n".encode())

    return Release


def _config(sock: Path, port: int, servers: list[ThreadingHTTPServer]) -> str:
    lines = [
        "global",
        f"  stats socket {sock} mode 600 level admin",
        "defaults",
        "  mode http",
        "  timeout connect 2s",
        "  timeout client 5s",
        "  timeout server 5s",
        "frontend web",
        f"  bind 127.0.0.1:{port}",
        "  default_backend web",
        "backend web",
        "  option httpchk GET /health",
        *(
            f"  server {h} 127.0.0.1:{s.server_address[1]} check inter 200ms fall 2 rise 1"
            for h, s in zip(HOSTS, servers, strict=True)
        ),
    ]
    return "\n".join(lines) + "\n"


@pytest.fixture
def haproxy_backends(tmp_path: Path) -> Iterator[Backends]:
    """HAProxy with backend `web` of three servers (HOSTS), health-checked on /health, all up and "good"."""
    assert shutil.which("haproxy"), "haproxy is not installed"
    holder: list[Backends] = []
    servers = [ThreadingHTTPServer(("127.0.0.1", 0), _handler(h, holder)) for h in HOSTS]
    for s in servers:
        threading.Thread(target=s.serve_forever, daemon=True).start()
    sock, port = tmp_path / "admin.sock", _free_port()
    cfg = tmp_path / "haproxy.cfg"
    cfg.write_text(_config(sock, port, servers))
    proc = subprocess.Popen(["haproxy", "-db", "-f", str(cfg)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        bal = HAProxy(str(sock), "web")
        holder.append(Backends(bal, f"http://127.0.0.1:{port}/"))
        poll_until(
            lambda: sock.exists() and all(bal.state(h).in_service for h in HOSTS),
            timeout=15,
            interval=0.1,
            what="haproxy to report every server healthy",
            retry_on=NOT_ANSWERING,
        )
        yield holder[0]
    finally:
        proc.terminate()
        proc.communicate(timeout=10)
        for s in servers:
            s.shutdown()
            s.server_close()
