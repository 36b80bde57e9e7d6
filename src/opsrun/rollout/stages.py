"""What the rollout executor calls for its stages: the real stage runners (connect, apply, verify, reboot,
each within the hosts' deadlines; fakes replace them in unit tests), a per-host fan-out, and the timer that
records how long each stage took."""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import Callable, Iterator
from concurrent import futures
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass

from opsrun import engine, reboot
from opsrun import verify as verify_module
from opsrun.balancers.base import Balancer
from opsrun.deadlines import Deadlines
from opsrun.inventory import Inventory
from opsrun.project import Project
from opsrun.results import DeployRun, HostOutcome, RolloutRun, VerifyRun

Events = Callable[[int, str, str], None]  # (batch, host, stage) as each stage starts


def _connect(project: Project, inv: Inventory, hosts: list[str], *, deadlines: Deadlines) -> dict[str, str | None]:
    return engine.check_connect(project, inv, hosts, connect_timeout=deadlines.connect_timeout(hosts)).errors


def _apply(project: Project, inv: Inventory, deploy: str, hosts: list[str], *, deadlines: Deadlines) -> DeployRun:
    return engine.run_deploy(
        project,
        inv,
        deploy,
        hosts,
        deadlines=deadlines.stage("apply", hosts),
        connect_timeout=deadlines.connect_timeout(hosts),
    )


BatchVerify = Callable[[list[str], str], VerifyRun]  # (a batch's hosts, the deploy just applied) -> results


@contextlib.contextmanager
def _verification(
    project: Project, inv: Inventory, suite: str, hosts: list[str], *, deadlines: Deadlines
) -> Iterator[BatchVerify]:
    """The suite's pytest started once for all the rollout's hosts (its imports and collection overlap the
    first batch's drain and apply), then asked for each batch's hosts."""
    with verify_module.Verifier(
        project, inv, suite, hosts, connect_timeout=deadlines.connect_timeout(hosts)
    ) as verifier:
        yield lambda batch, applied: verifier.run(
            batch, deadlines=deadlines.stage("verify", batch), after_apply=applied
        )


def each_batch(verify: Callable[..., VerifyRun]) -> Callable[..., AbstractContextManager[BatchVerify]]:
    """A verification from a function called for each batch as verify(project, inv, suite, hosts,
    deadlines=, after_apply=) (the shape unit tests' fakes have)."""

    @contextlib.contextmanager
    def verification(
        project: Project, inv: Inventory, suite: str, hosts: list[str], *, deadlines: Deadlines
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
        self.end: float | None = None  # when the stage's counted time ended, if before it was left

    def __enter__(self) -> StageTimer:
        self.start = time.monotonic()
        for h in self.hosts:  # recorded first: whoever sees the stage announced finds the store saying so
            h.stage = self.stage
            self.record(h)
        for h in self.hosts:
            self.announce(h)
        return self

    def __exit__(self, *exc: object) -> None:
        took = (self.end or time.monotonic()) - self.start
        self.result.stage_seconds[self.stage] = self.result.stage_seconds.get(self.stage, 0.0) + took
        for h in self.hosts:
            h.seconds.setdefault(self.stage, took)  # unless the stage timed it for each host


class Gates:
    """Waits (health gates) for some hosts, all at once, each reported as it ends."""

    def __init__(self, hosts: list[str], wait: Callable[[str], object]):
        self._pool = ThreadPoolExecutor(max_workers=min(len(hosts), 64) or 1)
        started = time.monotonic()

        def timed(host: str) -> float:
            wait(host)
            return time.monotonic() - started

        self._started = started
        self._futures = {self._pool.submit(timed, h): h for h in hosts}

    @property
    def waiting(self) -> bool:
        return bool(self._futures)

    def ended(self, *, block: bool) -> list[tuple[str, Exception | None, float]]:
        """The hosts whose wait ended (at least one if `block` and any is waited for): (host, what it
        raised or None, seconds it took)."""
        done, _pending = futures.wait(self._futures, timeout=None if block else 0, return_when=futures.FIRST_COMPLETED)
        ended: list[tuple[str, Exception | None, float]] = []
        for f in done:
            host, exc = self._futures.pop(f), f.exception()
            if exc is not None and not isinstance(exc, Exception):
                raise exc
            ended.append((host, exc, f.result() if exc is None else time.monotonic() - self._started))
        return ended

    def __enter__(self) -> Gates:
        return self

    def __exit__(self, *_exc: object) -> None:
        self._pool.shutdown(wait=True)
