"""What the lab's HTTP servers share: their command line, their log lines, keep-alive upstream connections,
and the pidfile written once they listen.

Each server (aptproxy, npmmirror, reposerver) runs as `python -m opsrun.lab.NAME --listen ADDR:PORT
--pidfile FILE FOLDER-OPTION DIR ...`, started and stopped by opsrun.lab.services.
"""

from __future__ import annotations

import argparse
import http.client
import os
import sys
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path


class LoggedHandler(BaseHTTPRequestHandler):
    """A request handler that logs each request as one line on stderr (the server's log file)."""

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        sys.stderr.write(f"{self.address_string()} {format % args}\n")


class Upstream(threading.local):
    """Keep-alive connections to the upstream hosts, one set per server thread."""

    def __init__(self) -> None:
        self.conns: dict[tuple[str, str], http.client.HTTPConnection] = {}

    def request(
        self, scheme: str, netloc: str, path: str, headers: dict[str, str], method: str = "GET"
    ) -> http.client.HTTPResponse:
        last: Exception | None = None
        for _attempt in range(3):
            conn = self.conns.get((scheme, netloc))
            if conn is None:
                cls = http.client.HTTPSConnection if scheme == "https" else http.client.HTTPConnection
                conn = self.conns[(scheme, netloc)] = cls(netloc, timeout=30)
            try:
                conn.request(method, path, headers=headers)
                return conn.getresponse()
            except (OSError, http.client.HTTPException) as exc:  # stale keep-alive or a stalled connect
                last = exc
                conn.close()
                del self.conns[(scheme, netloc)]
        assert last is not None
        raise last


def arguments(prog: str, folder: str) -> argparse.ArgumentParser:
    """The options every lab server takes: --listen ADDR:PORT, its folder (`folder`, e.g. --cache) and
    --pidfile. A server adds its own to the parser it gets."""
    parser = argparse.ArgumentParser(prog=prog)
    parser.add_argument("--listen", required=True, help="ADDR:PORT")
    parser.add_argument(folder, required=True, type=Path)
    parser.add_argument("--pidfile", type=Path, help="write the process id here once listening")
    return parser


def address(listen: str) -> tuple[str, int]:
    """ADDR:PORT -> (ADDR, PORT)."""
    addr, port = listen.rsplit(":", 1)
    return addr, int(port)


def serve(server: HTTPServer, pidfile: Path | None) -> None:
    """Write the pidfile (the server listens by now: services.py waits for it) and serve until killed."""
    if pidfile:
        pidfile.write_text(f"{os.getpid()}\n")
    server.serve_forever()
