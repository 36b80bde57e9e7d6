"""The operator's second Ctrl-C, on the controller's side: the signal handler (the first asks for a stop at
the next safe point and says a second stops now; the second, SIGINT or SIGTERM, stops now), and the wait on
a child (the pyinfra worker): told to end its running commands (its urgent signal), given a few seconds to
answer, then ended."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading

from opsrun.cli.signals import stop_on_signals
from opsrun.support import processes
from opsrun.support.waiting import Stop

# A child like the worker: SIGUSR1 is noted (stop between operations), SIGUSR2 ends what it runs, and it
# answers "ended" (unless told to ignore it).
CHILD = """import signal, sys, time
ignore = sys.argv[1] == "ignore"
signal.signal(signal.SIGUSR1, lambda *_: print("between", flush=True))
signal.signal(signal.SIGUSR2, signal.SIG_IGN if ignore else (lambda *_: sys.exit(0)))
print("ready", flush=True)
time.sleep(600)
"""


def child(mode: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, mode], stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    return proc


def test_a_child_told_to_stop_now_ends_its_commands_and_answers():
    proc, stop = child("obey"), Stop()
    stop.set()
    stop.now.set()
    try:
        ended = processes.supervise(
            proc, backstop=600, stop=stop, what="the worker", gentle=signal.SIGUSR1, now=stop.now, urgent=signal.SIGUSR2
        )
    finally:
        proc.stdout.close()
    assert ended is None and proc.returncode == 0  # it ended by itself, its result to be read


def test_a_child_that_does_not_answer_the_stop_now_is_ended_after_its_grace(monkeypatch):
    monkeypatch.setattr(processes, "NOW_GRACE", 0.5)
    proc, stop = child("ignore"), Stop()
    threading.Timer(0.3, stop.now.set).start()
    try:
        ended = processes.supervise(
            proc, backstop=600, stop=stop, what="the worker", gentle=signal.SIGUSR1, now=stop.now, urgent=signal.SIGUSR2
        )
    finally:
        proc.stdout.close()
    assert ended == "interrupted: stopped now; the worker was ended" and proc.returncode is not None


def test_the_second_signal_stops_now_and_each_says_what_it_does(capsys):
    stop, before = Stop(), signal.getsignal(signal.SIGINT)  # pytest's, or SIG_IGN when started in the background
    with stop_on_signals(stop):
        os.kill(os.getpid(), signal.SIGINT)
        assert stop.is_set() and not stop.now.is_set()
        os.kill(os.getpid(), signal.SIGTERM)  # SIGTERM after SIGINT is the second
        assert stop.now.is_set()
    err = capsys.readouterr().err
    assert "SIGINT: stopping at the next safe point" in err and "Press Ctrl-C again to stop now." in err
    assert "SIGTERM again: stopping now (the commands running are ended;" in err
    assert signal.getsignal(signal.SIGINT) is before  # put back after the block


def test_a_second_signal_that_comes_while_the_first_notice_is_printed_stops_now(monkeypatch, capsys):
    """The operator (or a test) answers the notice as soon as it is read: the second SIGINT's handler then
    runs inside the first's, before it returns. It must count as the second, not be taken for the first."""
    from opsrun.cli import signals

    printed: list[str] = []

    def echo(text: str, *, err: bool = False) -> None:
        printed.append(text)
        if len(printed) == 1:  # the notice is out; the answer comes before the first handler returns
            os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(signals, "echo", echo)
    stop = Stop()
    with stop_on_signals(stop):
        os.kill(os.getpid(), signal.SIGINT)
    assert stop.is_set() and stop.now.is_set()
    assert [p.split(":")[0].strip() for p in printed] == ["SIGINT", "SIGINT again"]
