"""A small caching npm registry mirror, listening on the lab bridge (`registry=` in the hosts' /etc/npmrc).

The upstream registry is whatever this machine's npm uses (`npm config get registry`), read at start and
never written into the repo. Tarballs are cached for good; package documents for a few minutes, with
their tarball URLs rewritten to point at the mirror. A few keep-alive upstream connections are reused:
npm behind a CONNECT tunnel opened one per request and took minutes here.

Run: python -m opsrun.lab.npmmirror --listen ADDR:PORT --cache DIR [--upstream URL]
"""

from __future__ import annotations

import hashlib
import http.client
import os
import subprocess
import sys
import tempfile
import time
import urllib.parse
from http.server import ThreadingHTTPServer
from pathlib import Path

from opsrun.lab.serving import LoggedHandler, Upstream, address, arguments, serve

DOC_TTL = 600.0


class NpmMirror(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, addr: tuple[str, int], cache: Path, upstream: str):
        super().__init__(addr, Handler)
        self.cache = cache
        self.base = upstream.rstrip("/") + "/"
        split = urllib.parse.urlsplit(self.base)
        self.scheme, self.netloc, self.prefix = split.scheme, split.netloc, split.path
        self.upstream = Upstream()


class Handler(LoggedHandler):
    server: NpmMirror
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
        accept = self.headers.get("Accept", "*/*")
        tarball = "/-/" in self.path and self.path.endswith(".tgz")
        key = hashlib.sha256(f"{self.path}\0{'' if tarball else accept}".encode()).hexdigest()
        cached = self.server.cache / key
        fresh = cached.exists() and (tarball or time.time() - cached.stat().st_mtime < DOC_TTL)
        if not fresh:
            path = self.server.prefix.rstrip("/") + self.path
            try:
                resp = self.server.upstream.request(
                    self.server.scheme, self.server.netloc, path, {"Accept": accept, "Accept-Encoding": "identity"}
                )
                body = resp.read()
            except (OSError, http.client.HTTPException) as exc:
                self.send_error(502, f"upstream: {exc}")
                return
            if resp.status != 200:
                self._send(resp.status, body, resp.getheader("Content-Type", "application/json"))
                return
            if not tarball:
                mine = f"http://{self.headers.get('Host', '')}/".encode()
                body = body.replace(self.server.base.encode(), mine)
            fd, tmp = tempfile.mkstemp(dir=self.server.cache, prefix=".part-")
            with os.fdopen(fd, "wb") as out:
                out.write(body)
            os.replace(tmp, cached)
        body = cached.read_bytes()
        self._send(200, body, "application/octet-stream" if tarball else "application/json")

    def _send(self, status: int, body: bytes, ctype: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def machine_registry() -> str:
    if url := os.environ.get("OPSRUN_NPM_REGISTRY"):
        return url
    try:
        out = subprocess.run(["npm", "config", "get", "registry"], capture_output=True, text=True, timeout=60)
    except FileNotFoundError:
        sys.exit(
            "npm mirror: no npm on this machine to read the registry from. Fix: install npm "
            "(apt-get install npm) or set OPSRUN_NPM_REGISTRY."
        )
    url = out.stdout.strip()
    if not url.startswith("http"):
        sys.exit(f"npm mirror: `npm config get registry` gave {url!r}. Fix: set OPSRUN_NPM_REGISTRY.")
    return url


def main(argv: list[str] | None = None) -> None:
    parser = arguments("opsrun-lab-npmmirror", "--cache")
    parser.add_argument("--upstream", default=None)
    args = parser.parse_args(argv)
    args.cache.mkdir(parents=True, exist_ok=True)
    server = NpmMirror(address(args.listen), args.cache, args.upstream or machine_registry())
    print(f"npm mirror on {args.listen}", file=sys.stderr, flush=True)
    serve(server, args.pidfile)


if __name__ == "__main__":
    main()
