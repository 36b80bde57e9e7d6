"""How loud opsrun is (-q, -v, -vv), and the one road for pyinfra's and paramiko's log lines to a person.

The pyinfra worker writes each log record as one tagged JSON line (`record_line`) and anything else it prints
as it is. `worker_output` takes that output after each run: every line goes to `.opsrun/debug.log` (secrets
masked), and to stderr only what a person needs, once:

    -q      nothing of it
    (none)  warnings and errors that no result line says already, and what a deploy prints; never a host's
            own error (its result names it once: `could not connect to web1 (...)`), nor known noise
            ("Failed to load host keys from ~/.ssh/known_hosts")
    -v      also pyinfra's progress (connected, each operation on each host), tidied: `web1: Success`
    -vv     every line as pyinfra wrote it, opsrun's own commands on hosts too

Each shown line is said once per process, however many workers a rollout starts.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from opsrun.model.secrets import redact

QUIET, NORMAL, VERBOSE, RAW = -1, 0, 1, 2
TAG = "\x1eopsrun-log "  # starts a worker's log record line (a record separator: no print starts with it)
ANSI = re.compile(r"\x1b\[[0-9;]*m")
HOST_PREFIX = re.compile(r"^\[([^\]]+)\] ")
NOISE = (
    re.compile(r"Failed to load host keys from"),  # paramiko without ~/.ssh/known_hosts: opsrun passes its own
)
MAX_DEBUG_LOG = 10 * 1024 * 1024  # bytes: past this, debug.log becomes debug.log.1 and a new one starts

_level = NORMAL
_seen: set[str] = set()


def set_level(level: int) -> None:
    global _level
    _level = max(QUIET, min(RAW, level))


def level() -> int:
    return _level


def record_line(record: logging.LogRecord) -> str:
    """A log record as the worker writes it: the tag, then its level, logger and message as JSON."""
    message = record.getMessage()
    if record.exc_info:
        message += "\n" + logging.Formatter().formatException(record.exc_info)
    return TAG + json.dumps({"level": record.levelno, "logger": record.name, "message": message}) + "\n"


def worker_output(text: str, debug_log: Path | None) -> None:
    """A worker's output: all of it to the debug log, and to stderr what this verbosity shows."""
    if debug_log is not None:
        append_debug_log(debug_log, plain(text))
    for line in shown(text, _level):
        if _level >= RAW or line not in _seen:
            _seen.add(line)
            sys.stderr.write(redact(line) + "\n")
    sys.stderr.flush()


class Routed(logging.Handler):
    """The controller's own log records (paramiko, botocore, ...) on the same road as a worker's."""

    def __init__(self, debug_log: Path | None):
        super().__init__(logging.DEBUG)
        self.debug_log = debug_log

    def emit(self, record: logging.LogRecord) -> None:
        worker_output(record_line(record), self.debug_log)


@contextmanager
def kept_as_found() -> Iterator[None]:
    """The root logger's level and handlers put back afterwards: a command line run in-process (a test, a
    library caller) does not leave -vv's DEBUG routing to whoever runs next."""
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    try:
        yield
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)


def setup(debug_log: Path | None) -> None:
    """Route this process's log records (from WARNING; INFO at -v, everything at -vv) as a worker's are."""
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, Routed)]:
        root.removeHandler(handler)
    root.addHandler(Routed(debug_log))
    root.setLevel({RAW: logging.DEBUG, VERBOSE: logging.INFO}.get(_level, logging.WARNING))


def shown(text: str, verbosity: int) -> list[str]:
    """The lines of a worker's output that a person sees at `verbosity` (pure: tested on recorded output)."""
    out: list[str] = []
    for line in text.split("\n"):
        record = _record(line)
        if record is None:
            if line.strip() and verbosity > QUIET:
                out.append(line)  # a deploy's own print
        elif verbosity >= RAW:
            out.append(ANSI.sub("", str(record.get("message", ""))))
        elif verbosity > QUIET and _wanted(record, verbosity):
            out.append(_tidy(record))
    return out


def _record(line: str) -> dict[str, Any] | None:
    if not line.startswith(TAG):
        return None
    try:
        record = json.loads(line[len(TAG) :])
    except ValueError:
        return None
    return record if isinstance(record, dict) else None


def _wanted(record: dict[str, Any], verbosity: int) -> bool:
    message = ANSI.sub("", str(record.get("message", "")))
    if any(n.search(message) for n in NOISE) or not message.strip() or message.startswith("  "):
        return False  # noise, or a diff line (diffs are in the result, shown with --diff)
    if int(record.get("level", 0)) >= logging.ERROR and HOST_PREFIX.match(message):
        return False  # a host's own error: its result says it, once
    return int(record.get("level", 0)) >= (logging.INFO if verbosity >= VERBOSE else logging.WARNING)


def _tidy(record: dict[str, Any]) -> str:
    message = ANSI.sub("", str(record["message"])).strip()
    host = HOST_PREFIX.match(message)
    if host:
        message = f"{host.group(1)}: {message[host.end() :]}"
    if int(record.get("level", 0)) >= logging.WARNING:
        return f"{logging.getLevelName(int(record['level'])).lower()}: {message}"
    return message


def plain(text: str) -> str:
    """A worker's output as lines of text (its records as `logger: message`), for the debug log."""
    lines = []
    for line in text.rstrip("\n").split("\n") if text.strip() else []:
        record = _record(line)
        lines.append(line if record is None else f"{record.get('logger')}: {record.get('message')}")
    return "\n".join(lines) + ("\n" if lines else "")


def append_debug_log(path: Path, text: str) -> None:
    """Append to .opsrun/debug.log (secrets masked), starting a new file past MAX_DEBUG_LOG; a log that cannot
    be written is no reason to fail a run (check_state_dir refused an unusable .opsrun/ before it began)."""
    if not text:
        return
    try:
        if path.exists() and path.stat().st_size > MAX_DEBUG_LOG:
            path.replace(path.with_name(path.name + ".1"))
        with path.open("a", encoding="utf-8") as f:
            f.write(f"--- {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} {redact(' '.join(sys.argv))}\n")
            f.write(redact(text))
    except OSError:
        pass
