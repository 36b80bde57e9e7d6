"""Serves the lab's flat apt repository (lab/aptrepo.py) over HTTP on the bridge.

Run: python -m opsrun.lab.reposerver --listen ADDR:PORT --dir DIR [--pidfile FILE]
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


class Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        sys.stderr.write(f"{self.address_string()} {format % args}\n")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="opsrun-lab-reposerver")
    parser.add_argument("--listen", required=True, help="ADDR:PORT")
    parser.add_argument("--dir", required=True, type=Path)
    parser.add_argument("--pidfile", type=Path)
    args = parser.parse_args(argv)
    addr, port = args.listen.rsplit(":", 1)
    args.dir.mkdir(parents=True, exist_ok=True)
    server = ThreadingHTTPServer((addr, int(port)), functools.partial(Quiet, directory=str(args.dir)))
    if args.pidfile:
        args.pidfile.write_text(f"{os.getpid()}\n")
    server.serve_forever()


if __name__ == "__main__":
    main()
