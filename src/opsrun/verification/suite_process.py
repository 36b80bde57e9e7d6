"""The controller's side of a suite's pytest: `start` it; and for one served by opsrun.verification.pytest_plugin
(opsrun.verification.verify.Verifier starts it): the pipe its requests go to, and its answers, "done ID" a line, read by
a thread of its own so that each of several requests waiting at once learns when its own is done."""

from __future__ import annotations

import json
import os
import subprocess
import threading
from pathlib import Path
from typing import Any

from opsrun.support import processes


def start(
    command: list[str], cwd: Path, env: dict[str, str], log: Path, pass_fds: tuple[int, ...] = ()
) -> subprocess.Popen[str]:
    """A suite's pytest started in a session of its own (Ctrl-C reaches the controller only, which ends the
    verification itself), its output to `log`, keeping only the file descriptors `pass_fds`."""
    with log.open("w") as out:
        return subprocess.Popen(
            command,
            cwd=cwd,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            pass_fds=pass_fds,
            start_new_session=True,
        )


class SuiteProcess:
    """One started pytest of a Verifier, with the pipes it reads its requests from and writes its answers to."""

    def __init__(self, proc: subprocess.Popen[str], requests: int, answers: int, log: Path):
        self.proc, self.log = proc, log
        self.ended: str | None = None  # why a request's wait ended it (for all of them)
        self._requests: int | None = requests
        self._answered: set[int] = set()
        self._closed = False  # the answer pipe's end: pytest has ended
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, args=(answers,), name="verify-answers", daemon=True)
        self._reader.start()

    def send(self, request: dict[str, Any], *, last: bool) -> None:
        line = (json.dumps(request) + "\n").encode()
        try:
            while line and self._requests is not None:
                line = line[os.write(self._requests, line) :]
        except BrokenPipeError:
            pass  # it has just ended: the wait for the answer says how
        if last:
            self._close_requests()

    def _read(self, fd: int) -> None:
        pending = b""
        try:
            while chunk := os.read(fd, 4096):
                *lines, pending = (pending + chunk).split(b"\n")
                with self._changed:
                    self._answered.update(int(line.split()[1]) for line in lines if line.startswith(b"done "))
                    self._changed.notify_all()
        finally:
            os.close(fd)
            with self._changed:
                self._closed = True
                self._changed.notify_all()

    def ending(self, why: str) -> None:
        self.ended = f"the suite's pytest was ended: {why}"

    def answered_within(self, rid: int, seconds: float) -> bool:
        """Wait up to `seconds` for request `rid`'s answer or pytest's end; whether either came."""
        with self._changed:
            return self._changed.wait_for(lambda: rid in self._answered or self._closed, seconds)

    def answered(self, rid: int) -> bool:
        """Whether request `rid` was answered (once pytest has ended: with everything it wrote read)."""
        if self.proc.poll() is not None:
            self._reader.join(processes.GRACE)
        with self._changed:
            return rid in self._answered

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def _close_requests(self) -> None:
        if self._requests is not None:
            os.close(self._requests)
            self._requests = None

    def end(self) -> None:
        """The request pipe closed (it finishes); past a short wait, its group is ended."""
        self._close_requests()
        processes.supervise(self.proc, backstop=10, stop=None, what="verification", gentle=None)
        self._reader.join(processes.GRACE)
