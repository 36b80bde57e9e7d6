"""What the rollout executor calls for its stages: the real stage runners (connect, apply, verify, reboot,
each within the hosts' deadlines; fakes replace them in unit tests), a per-host fan-out, and the timer that
records how long each stage took."""

from __future__ import annotations

import contextlib
import functools
import threading
import time
from collections.abc import Callable, Iterator
from concurrent import futures
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import NamedTuple

from opsrun import engine
from opsrun.balancers.base import Balancer
from opsrun.hosts import reboot
from opsrun.model.inventory import Inventory
from opsrun.model.project import Project
from opsrun.model.results import DeployRun, HostOutcome, RolloutRun, VerifyRun
from opsrun.settings.deadlines import Deadlines
from opsrun.verification import verify as verify_module

Events = Callable[[int, str, str], None]  # (batch, host, stage) as each stage starts


def _connect(project: Project, inv: Inventory, hosts: list[str], *, deadlines: Deadlines) -> dict[str, str | None]:
    return engine.check_connect(project, inv, hosts, connect_timeout=deadlines.connect_timeout(hosts)).errors


def _apply(
    project: Project,
    inv: Inventory,
    deploy: str,
    hosts: list[str],
    *,
    deadlines: Deadlines,
    diff: bool = False,
    forks: int | None = None,
    stop_now: threading.Event | None = None,
) -> DeployRun:
    """The batch's apply; the operator's first Ctrl-C lets it finish, the second (`stop_now`) ends it."""
    return engine.run_deploy(
        project,
        inv,
        deploy,
        hosts,
        deadlines=deadlines.stage("apply", hosts),
        connect_timeout=deadlines.connect_timeout(hosts),
        diff=diff,
        forks=forks,
        stop_now=stop_now,
    )


BatchVerify = Callable[[list[str], str], VerifyRun]  # (hosts, the deploy just applied) -> results; from any thread


@contextlib.contextmanager
def _verification(
    project: Project,
    inv: Inventory,
    suite: str,
    hosts: list[str],
    *,
    deadlines: Deadlines,
    stop_now: threading.Event | None = None,
) -> Iterator[BatchVerify]:
    """The suite's pytest started once for all the rollout's hosts (its imports and collection overlap the
    first batch's drain and apply), then asked for each host as it passes its gate (the suite's tests of no
    host are left out: no host's verdict rests on them). `stop_now` ends what it is checking."""
    with verify_module.Verifier(
        project, inv, suite, hosts, connect_timeout=deadlines.connect_timeout(hosts), stop=stop_now
    ) as verifier:
        yield lambda batch, applied: verifier.run(
            batch, deadlines=deadlines.stage("verify", batch), after_apply=applied, hostless=False
        )


def each_batch(verify: Callable[..., VerifyRun]) -> Callable[..., AbstractContextManager[BatchVerify]]:
    """A verification from a function called for each request (a host, as it passes its gate) as
    verify(project, inv, suite, hosts, deadlines=, after_apply=) (the shape unit tests' fakes have)."""

    @contextlib.contextmanager
    def verification(
        project: Project, inv: Inventory, suite: str, hosts: list[str], *, deadlines: Deadlines, **_: object
    ) -> Iterator[BatchVerify]:
        yield lambda batch, applied: verify(project, inv, suite, batch, deadlines=deadlines, after_apply=applied)

    return verification


def _reboot(reboot_mode: str, timeout: float, inv: Inventory) -> Callable[[str], object]:
    return functools.partial(reboot.reboot_if_needed, inv, mode=reboot_mode, timeout=timeout)


@dataclass
class StageRunners:
    """The functions the executor calls for its stages; the real ones by default, fakes in unit tests."""

    connect: Callable[..., dict[str, str | None]] = _connect
    apply: Callable[..., DeployRun] = _apply
    verification: Callable[..., AbstractContextManager[BatchVerify]] = _verification  # opened once a rollout
    balancer: Balancer | None = None
    reboot_if_needed: Callable[[str, float, Inventory], Callable[[str], object]] = _reboot
    # before the drain: per host why it must not go on (None: it may), e.g. a rollback's archive check
    check: Callable[[list[str]], dict[str, str | None]] | None = None

    @classmethod
    def real(cls, *, diff: bool = False, forks: int | None = None) -> StageRunners:
        """The real runners, each batch's apply at most `forks` hosts at once and with --diff's diffs."""
        return cls(apply=functools.partial(_apply, diff=diff, forks=forks))


def parallel(hosts: list[str], fn: Callable[[str], object]) -> dict[str, Exception | None]:
    """Run fn for every host at once; per host the exception it raised, or None."""

    def one(host: str) -> Exception | None:
        try:
            fn(host)
        except Exception as exc:  # noqa: BLE001 - reported per host by the caller
            return exc
        return None

    if not hosts:
        return {}
    with ThreadPoolExecutor(max_workers=min(len(hosts), 64)) as pool:
        return dict(zip(hosts, pool.map(one, hosts), strict=True))


class StageTimer:
    def __init__(
        self,
        result: RolloutRun,
        stage: str,
        hosts: list[HostOutcome],
        record: Callable[[HostOutcome], None],
        announce: Callable[[HostOutcome], None],
    ):
        self.result, self.stage, self.hosts = result, stage, hosts
        self.record, self.announce = record, announce

    def __enter__(self) -> StageTimer:
        self.start = time.monotonic()
        for h in self.hosts:  # recorded first: whoever sees the stage announced finds the store saying so
            h.stage = self.stage
            self.record(h)
        for h in self.hosts:
            self.announce(h)
        return self

    def __exit__(self, *exc: object) -> None:
        took = time.monotonic() - self.start
        self.result.stage_seconds[self.stage] = self.result.stage_seconds.get(self.stage, 0.0) + took
        for h in self.hosts:
            h.seconds[self.stage] = took


class Ended(NamedTuple):
    """A host's wait that ended: what it returned, or what it raised, and how long it took."""

    host: str
    step: str
    value: object
    exc: Exception | None
    seconds: float
    at: float  # time.monotonic() when it ended


class Waits:
    """Per-host waits (a reboot, a health gate, a verification) run in threads, each reported as it ends to
    the one thread that asks (the executor's: only it records and announces)."""

    def __init__(self, size: int):
        self._pool = ThreadPoolExecutor(max_workers=max(1, min(size, 64)))
        self._futures: set[futures.Future[Ended]] = set()

    def start(self, host: str, step: str, wait: Callable[[str], object]) -> None:
        def timed() -> Ended:
            started, value, error = time.monotonic(), None, None
            try:
                value = wait(host)
            except Exception as exc:  # noqa: BLE001 - that host's failure at this step
                error = exc
            now = time.monotonic()
            return Ended(host, step, value, error, now - started, now)

        self._futures.add(self._pool.submit(timed))

    @property
    def running(self) -> int:
        return len(self._futures)

    def ended(self, *, block: bool) -> list[Ended]:
        """The waits that ended (at least one if `block` and any is running)."""
        if not self._futures:
            return []
        done, _running = futures.wait(self._futures, None if block else 0, futures.FIRST_COMPLETED)
        self._futures -= done
        return [f.result() for f in done]

    def __enter__(self) -> Waits:
        return self

    def __exit__(self, *_exc: object) -> None:
        # a wait already begun runs to its own timeout (a reboot's, a gate's): an opsrun fault that ends the
        # batch early is reported once they have ended
        self._pool.shutdown(wait=True, cancel_futures=True)
