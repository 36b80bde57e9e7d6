"""Processes on this machine: whether one is alive (a lock holder, a lab service); the controller's child
processes (the pyinfra worker, the verification's pytest) waited for with a backstop and a stop flag, and
their whole process group ended when they must go."""

from __future__ import annotations

import contextlib
import ctypes
import os
import select
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

STOP_POLL = 0.2  # how often the controller looks at its stop flag while a child runs
GRACE = 5.0  # seconds a child has after SIGTERM to end what it started before SIGKILL
NOW_GRACE = 3.0  # seconds a child told to stop now (its `urgent` signal) has to end its commands and answer
_PR_SET_PDEATHSIG = 1  # linux/prctl.h


def die_with_parent(parent: int) -> None:
    """In a process just forked from `parent`: be killed (SIGKILL) when `parent` dies, however it dies (the
    OOM killer, SIGKILL), and end at once if it already has. Outside Linux, nothing."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:
        os._exit(1)


def alive(pid: int) -> bool:
    """Whether process `pid` exists and is not a zombie (exited, not yet reaped: it holds nothing). A
    process of another user counts as alive. Without /proc (not Linux), existence alone decides."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it exists; it is someone else's
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return not Path("/proc/self").exists()  # gone since os.kill, unless there is no /proc at all
    except OSError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] != "Z"  # the state field follows the command name's ")"


def supervise(
    proc: subprocess.Popen[Any],
    *,
    backstop: float,
    stop: threading.Event | None,
    what: str,
    gentle: int | None,
    ready: int | Callable[[float], bool] | None = None,
    ending: Callable[[str], None] | None = None,
    now: threading.Event | None = None,
    urgent: int | None = None,
) -> str | None:
    """Wait for `proc`, or with `ready` until the child answers: a file descriptor that can then be read, or
    a function that waits up to the seconds it is given and says whether the answer came. None when it
    ended by itself or answered; else why it was ended.

    On `stop`: with `gentle` (a signal the child handles at its next safe point) that signal is sent once and
    the wait goes on; without, the child is ended now. On `now` (stop now): with `urgent` (a signal on which
    the child ends what it runs and answers) that signal is sent once and the child has NOW_GRACE seconds;
    without, or past them, it is ended. Past `backstop` seconds it is ended whatever it does.
    `ending` is told why before the child is ended (others waiting on the same child learn it)."""
    deadline = time.monotonic() + backstop
    urged: float | None
    asked, urged = False, None  # the gentle signal sent; when the urgent one was
    while True:
        if _exited(proc, STOP_POLL, ready):
            return None
        why = None
        if stop is not None and stop.is_set() and not asked:
            if gentle is None:
                why = f"interrupted: {what} stopped before it finished"
            else:
                os.kill(proc.pid, gentle)
                asked = True
        if why is None and now is not None and now.is_set():
            if urgent is None or (urged is not None and time.monotonic() > urged + NOW_GRACE):
                why = f"interrupted: stopped now; {what} was ended"
            elif urged is None:
                os.kill(proc.pid, urgent)
                urged = time.monotonic()
        if why is None and time.monotonic() > deadline:
            why = f"timed out after {backstop:g}s: {what} no longer answered and was ended"
        if why is not None:
            if ending is not None:
                ending(why)
            end_group(proc)
            return why


def _exited(proc: subprocess.Popen[Any], timeout: float, ready: int | Callable[[float], bool] | None = None) -> bool:
    """Wait up to `timeout` for `proc` to end or `ready` to be readable (or to say so); whether either
    happened (an ended `proc` is reaped). Woken by its pidfd the moment it ends (proc.wait(timeout) polls
    with sleeps of up to 50 ms)."""
    if proc.poll() is not None:
        return True
    if callable(ready):
        return ready(timeout) or proc.poll() is not None
    watched = [] if ready is None else [ready]
    try:
        pidfd = os.pidfd_open(proc.pid)
    except OSError:  # gone already, or no pidfd here
        if watched and select.select(watched, [], [], 0)[0]:
            return True
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return False
        return True
    try:
        readable, _w, _x = select.select([pidfd, *watched], [], [], timeout)
    finally:
        os.close(pidfd)
    return proc.poll() is not None or bool(set(readable) & set(watched))


def end_group(proc: subprocess.Popen[Any]) -> None:
    """SIGTERM to the child's process group (it ends what it started), SIGKILL if it is still there."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=GRACE)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
