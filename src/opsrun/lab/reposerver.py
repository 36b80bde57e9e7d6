"""Serves the lab's flat apt repository (lab/aptrepo.py) over HTTP on the bridge.

Run: python -m opsrun.lab.reposerver --listen ADDR:PORT --dir DIR [--pidfile FILE]
"""

from __future__ import annotations

import functools
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

from opsrun.lab.serving import LoggedHandler, address, arguments, serve


class Quiet(LoggedHandler, SimpleHTTPRequestHandler):
    """The repository's files, each request one line on stderr."""


def main(argv: list[str] | None = None) -> None:
    args = arguments("opsrun-lab-reposerver", "--dir").parse_args(argv)
    args.dir.mkdir(parents=True, exist_ok=True)
    server = ThreadingHTTPServer(address(args.listen), functools.partial(Quiet, directory=str(args.dir)))
    serve(server, args.pidfile)


if __name__ == "__main__":
    main()
