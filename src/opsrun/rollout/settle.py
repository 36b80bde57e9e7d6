"""A batch after its apply: each host goes on by itself through reboot (where needed) → health gate →
verification, instead of the batch waiting at each stage for its slowest host. Each step is waited for in a
thread (stages.Waits; a host's verification is its own request to the rollout's one pytest, served beside
the others'); the thread that runs Settle (the executor's) alone records and announces each host's stage.
Settle is given what it touches (the rollout's result, its recorder and announcer), so it never imports the
executor that calls it."""

from __future__ import annotations

import time
from collections.abc import Callable

from opsrun.errors import Interrupted
from opsrun.model.results import HostOutcome, RolloutRun
from opsrun.rollout.stages import Ended, Waits


class StepFailed(Exception):
    """A host's step failed (a verification with a failing test, or none): its message is the reason."""


class Settle:
    """One batch's hosts through `steps` (some of "reboot", "health", "verify", in that order). `work` waits
    for a host's step and returns what it learnt (rebooted or not; a gate's note) or raises its failure
    (Interrupted: the operator's stop now). Each host's outcome is in `result`, `record`ed as it changes;
    `announce(host, step)` as a host starts a step. A host that fails stays `in_balancer` (True: there is no
    balancer to take it out of).
    The time of a stage in the rollout is how long the batch waited on it after the earlier stages' last
    host (the stages overlap across hosts); each host keeps its own times."""

    def __init__(
        self,
        steps: list[str],
        work: dict[str, Callable[[str], object]],
        result: RolloutRun,
        record: Callable[[HostOutcome], None],
        announce: Callable[[str, str], None],
        *,
        in_balancer: bool,
    ):
        self.steps, self.work, self.result, self.record, self.announce = steps, work, result, record, announce
        self.in_balancer = in_balancer
        self.at: dict[str, int] = {}  # the hosts not through yet -> the index of their step
        self.last: dict[str, float] = {}  # step -> when a host last ended it
        self.ends: dict[str, float] = {}  # step -> when the batch's last host was through it

    def run(self, live: list[str]) -> None:
        started, order = time.monotonic(), {h: n for n, h in enumerate(live)}
        with Waits(len(live)) as self.waits:
            for h in live:
                self._begin(h, 0)
            while self.at:
                if not self.waits.running:
                    raise RuntimeError(f"hosts at no step: {sorted(self.at)}")
                for ended in sorted(self.waits.ended(block=True), key=lambda e: order[e.host]):
                    self._ended(ended)
                self._stages_through()
        for step in self.steps:
            if step in self.last:  # a stage no host reached took no time
                took = self.ends[step] - started
                self.result.stage_seconds[step] = self.result.stage_seconds.get(step, 0.0) + took
                started = self.ends[step]

    def _stages_through(self) -> None:
        """A stage's wait ends when the batch's last host at it or before it is through it."""
        before = 0.0
        for k, step in enumerate(self.steps):
            if step not in self.ends and min(self.at.values(), default=k + 1) > k:
                self.ends[step] = max(self.last.get(step, 0.0), before)
            before = self.ends.get(step, before)

    def _begin(self, host: str, k: int) -> None:
        out = self.result.hosts[host]
        self.at[host] = k
        if k == len(self.steps):  # through all of them
            del self.at[host]
        else:
            out.stage = self.steps[k]
            self.record(out)
            self.announce(host, self.steps[k])
            self.waits.start(host, self.steps[k], self.work[self.steps[k]])

    def _ended(self, ended: Ended) -> None:
        host, step, value, exc, took, at = ended
        out = self.result.hosts[host]
        out.seconds[step], self.last[step] = took, max(at, self.last.get(step, 0.0))
        if exc is not None:
            end = out.interrupt if isinstance(exc, Interrupted) else out.fail  # the operator's stop now
            end(step, str(exc), in_balancer=self.in_balancer)
            self.record(out)
            del self.at[host]
            return
        if step == "reboot":
            out.rebooted = bool(value)
        elif value and step == "health":
            out.add_note(str(value))
        self._begin(host, self.steps.index(step) + 1)
