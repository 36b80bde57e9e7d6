"""A small caching HTTP proxy for apt, listening on the lab bridge.

Lab hosts have no route out; their apt talks to this proxy (`Acquire::http::Proxy`). It forwards only to
the archive hosts named in the machine's own apt sources, caches package files (`/pool/`, `/by-hash/`:
their content never changes under one URL) on disk and passes index files through. Upstream connections
are kept alive and reused per thread: this machine's egress stalls bursts of new connections.

apt-cacher-ng was tried here and rejected: it hung clients on parallel `apt-get update`.

Run: python -m opsrun.lab.aptproxy --listen ADDR:PORT --cache DIR
"""

from __future__ import annotations

import hashlib
import http.client
import os
import shutil
import sys
import tempfile
import urllib.parse
from http.server import ThreadingHTTPServer
from pathlib import Path

from opsrun.lab.image import machine_sources, source_uris
from opsrun.lab.serving import LoggedHandler, Upstream, address, arguments, serve

PASS_HEADERS = ("Content-Type", "Content-Length", "Last-Modified", "ETag", "Date")
FORWARD_HEADERS = ("If-Modified-Since", "If-None-Match", "Range", "If-Range", "Cache-Control")
CHUNK = 1 << 16


class AptProxy(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, addr: tuple[str, int], cache: Path, allowed: set[str]):
        super().__init__(addr, Handler)
        self.cache = cache
        self.allowed = allowed
        self.upstream = Upstream()


class Handler(LoggedHandler):
    server: AptProxy
    protocol_version = "HTTP/1.1"

    def do_HEAD(self) -> None:  # noqa: N802 - the name http.server calls
        self._serve(head=True)

    def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
        self._serve(head=False)

    def _serve(self, head: bool) -> None:
        url = urllib.parse.urlsplit(self.path)
        if url.scheme not in ("http", "https") or url.hostname not in self.server.allowed:
            self.send_error(403, f"not an allowed archive host: {url.hostname}")
            return
        path = url.path + (f"?{url.query}" if url.query else "")
        cacheable = ("/pool/" in url.path or "/by-hash/" in url.path) and "Range" not in self.headers
        cached = self.server.cache / hashlib.sha256(self.path.encode()).hexdigest()
        if cacheable and cached.exists():
            self._send_file(cached, head)
            return
        headers = {k: v for k in FORWARD_HEADERS if (v := self.headers.get(k))}
        try:
            resp = self.server.upstream.request(url.scheme, url.netloc, path, headers, "HEAD" if head else "GET")
        except (OSError, http.client.HTTPException) as exc:
            self.send_error(502, f"upstream {url.netloc}: {exc}")
            return
        self.send_response(resp.status)
        for name in PASS_HEADERS:
            if (value := resp.getheader(name)) is not None:
                self.send_header(name, value)
        length = resp.getheader("Content-Length")
        if length is None and not head and resp.status not in (204, 304):
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if head or resp.status in (204, 304):
            resp.read()
            return
        if cacheable and resp.status == 200 and length is not None:
            self._copy_and_cache(resp, cached)
        else:
            shutil.copyfileobj(resp, self.wfile, CHUNK)

    def _copy_and_cache(self, resp: http.client.HTTPResponse, cached: Path) -> None:
        # Each request writes its own temp file and renames it into place: parallel fetches never clash.
        fd, tmp = tempfile.mkstemp(dir=self.server.cache, prefix=".part-")
        try:
            with os.fdopen(fd, "wb") as out:
                while chunk := resp.read(CHUNK):
                    out.write(chunk)
                    self.wfile.write(chunk)
            os.replace(tmp, cached)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)

    def _send_file(self, path: Path, head: bool) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(path.stat().st_size))
        self.send_header("Content-Type", "application/vnd.debian.binary-package")
        self.end_headers()
        if not head:
            with path.open("rb") as f:
                shutil.copyfileobj(f, self.wfile, CHUNK)


def allowed_hosts() -> set[str]:
    hosts = {urllib.parse.urlsplit(uri).hostname for uri in source_uris(machine_sources())}
    return {h for h in hosts if h}


def main(argv: list[str] | None = None) -> None:
    args = arguments("opsrun-lab-aptproxy", "--cache").parse_args(argv)
    args.cache.mkdir(parents=True, exist_ok=True)
    server = AptProxy(address(args.listen), args.cache, allowed_hosts())
    print(f"apt proxy on {args.listen} for {sorted(server.allowed)}", file=sys.stderr, flush=True)
    serve(server, args.pidfile)


if __name__ == "__main__":
    main()
