"""The pyinfra worker processes, started one ahead of need: a worker imports pyinfra (about half a second)
while the controller still reads its settings, or checks a batch, instead of after.

`prestart` (the command line calls it first thing for a command that will run workers: apply, drift) starts
one worker and asks for a spare after every run from then on (a rolling apply runs one per stage of each
batch). A spare that nobody takes is ended at exit: it has only imported pyinfra, and reads its request
from stdin, so it has touched nothing. Without `prestart` (the tests' CliRunner, a library caller) each run
starts its own worker, as before.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

COMMAND = [sys.executable, "-m", "opsrun.engine"]
_lock = threading.Lock()
_spare: Worker | None = None
_wanted = False


@dataclass
class Worker:
    """One worker process, waiting for its request on stdin; its output goes to `log`, its result (pickled)
    to `result_path`, both in its own temporary folder."""

    proc: subprocess.Popen[bytes]
    folder: Path
    log: IO[bytes]

    @property
    def result_path(self) -> Path:
        return self.folder / "result.pickle"

    def close(self) -> None:
        """End the process if it still runs (a spare nobody took) and remove its folder."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        if self.proc.stdin is not None:
            with contextlib.suppress(OSError):
                self.proc.stdin.close()
        self.log.close()
        shutil.rmtree(self.folder, ignore_errors=True)


def start() -> Worker:
    folder = Path(tempfile.mkdtemp(prefix="opsrun-engine-"))
    log = (folder / "worker.log").open("w+b")
    env = dict(os.environ)
    src = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [src, os.environ.get("PYTHONPATH")]))
    proc = subprocess.Popen(
        COMMAND,
        stdin=subprocess.PIPE,
        stdout=log,  # the worker's output is pyinfra's log and deploy prints: passed on to stderr
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,  # Ctrl-C reaches the controller only; it decides what the worker does
    )
    return Worker(proc, folder, log)


def prestart() -> None:
    """Start a worker now, and keep one spare after every run until this process exits."""
    global _wanted
    if not _wanted:
        _wanted = True
        atexit.register(end)
    replenish()


def take() -> Worker:
    """The spare worker if one is ready (and still alive), else a new one; the caller closes it."""
    global _spare
    with _lock:
        worker, _spare = _spare, None
    if worker is not None and worker.proc.poll() is None:
        return worker
    if worker is not None:
        worker.close()
    return start()


def replenish() -> None:
    """After a run (or at `prestart`): start the next spare, if spares are wanted and there is none."""
    global _spare
    with _lock:
        if _wanted and _spare is None:
            _spare = start()


def last_run() -> None:
    """The next run is the last one (a plain apply, a dry run): no spare after it, none importing pyinfra on
    the cores the controller needs for the results."""
    global _wanted
    with _lock:
        _wanted = False


def end(*_args: Any) -> None:
    """End the spare nobody took (at exit)."""
    global _spare, _wanted
    with _lock:
        worker, _spare, _wanted = _spare, None, False
    if worker is not None:
        worker.close()
