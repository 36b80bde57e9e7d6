"""Plain results shared by the engine, verify, the CLI and the reports. No pyinfra types in here."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

from opsrun.model.documents import dump, run_keys
from opsrun.model.documents.apply import (
    ApplyDocument,
    ApplyHost,
    AutomaticRollback,
    ManualRollback,
    RolloutDocument,
    RolloutHost,
)
from opsrun.model.documents.checks import TestRun, VerifyDocument, VerifyHost
from opsrun.model.documents.status import (
    ApplyStatus,
    HostStatus,
    Outcome,
    RollbackStatus,
    TestOutcome,
    VerifyStatus,
)

UNPACKING = re.compile(r"Unpacking (\S+) \((\S+)\) over \((\S+)\)")
OPSRUN_ON_HOST = "/var/lib/opsrun/"  # opsrun's own folders on a host: config swap, secret uploads, leases


def user_commands(commands: list[str]) -> list[str]:
    """A change's commands as a person reads them: opsrun's own steps (its folders on the host) left out."""
    return [c for c in commands if OPSRUN_ON_HOST not in c]


# What an apply's and a rollout's documents take from their runs under the same names, beside documents.run_keys.
CHANGE_KEYS = ("deploy", "record_error", "allow_unreachable", "data", "notified", "notify_errors")
RECORD_LOST = 4  # the exit code of a run whose record could not be kept (its store, the controller's disk)


def exit_code_of(status: ApplyStatus, record_error: str | None, notify_errors: list[str] | None = None) -> int:
    """A run's exit code: 130 interrupted, 4 its record could not be kept, else 0 success or 1 failed (or a
    notification that could not be delivered)."""
    if status == ApplyStatus.INTERRUPTED:
        return 130
    if record_error:
        return RECORD_LOST
    return 1 if notify_errors else {ApplyStatus.SUCCESS: 0, ApplyStatus.FAILED: 1}[status]


class Change:
    """What an apply's run (DeployRun) and a rollout's (RolloutRun) judge alike: interrupted, else failed or
    success by the run's own `failed`, and the exit code that follows with the record and notifications."""

    interrupted: str | bool | None
    record_error: str | None
    notify_errors: list[str]

    @property
    def failed(self) -> bool:
        raise NotImplementedError

    @property
    def status(self) -> ApplyStatus:
        if self.interrupted:
            return ApplyStatus.INTERRUPTED
        return ApplyStatus.FAILED if self.failed else ApplyStatus.SUCCESS

    @property
    def exit_code(self) -> int:
        return exit_code_of(self.status, self.record_error, self.notify_errors)


@dataclass(frozen=True)
class OperationResult:
    name: str
    changed: bool  # applied: it ran commands; dry run: it would
    success: bool
    error: str | None = None
    commands: list[str] = field(default_factory=list)  # dry run: what would run (secrets masked by pyinfra)
    conditional: bool = False  # dry run: whether it changes is only known when applied (`unknown` says why)
    output: list[str] = field(default_factory=list)  # applied and changed: the last lines the commands printed
    unknown: str | None = None  # dry run: why whether it would change cannot be known before applying
    follows: str | None = None  # dry run: it changes because that earlier operation does (`_if=op.did_change`)
    diff: list[str] = field(default_factory=list)  # dry run, files: "Will modify PATH" and unified-diff hunks


@dataclass(frozen=True)
class HostRun:
    name: str
    operations: list[OperationResult]
    error: str | None = None  # connect failure or an error outside any operation
    reached: bool = True  # False: it could not be connected to (its error says why)

    @property
    def failed(self) -> bool:
        return self.error is not None or any(not op.success for op in self.operations)

    @property
    def changed_count(self) -> int:
        return sum(op.changed for op in self.operations)

    @property
    def status(self) -> HostStatus:
        if self.failed:
            return HostStatus.FAILED
        return HostStatus.CHANGED if self.changed_count else HostStatus.OK

    def failed_operation(self) -> OperationResult | None:
        return next((op for op in self.operations if not op.success), None)

    @property
    def upgrades(self) -> list[dict[str, str]]:
        """Packages dpkg upgraded during the run ("Unpacking PKG (NEW) over (OLD)")."""
        found = []
        for op in self.operations:
            for line in op.output:
                if m := UNPACKING.search(line):
                    found.append({"package": m.group(1).split(":")[0], "from": m.group(3), "to": m.group(2)})
        return found

    def document(self) -> ApplyHost:
        """Its part of an apply's document (a rollout's host adds its place in the rollout)."""
        return ApplyHost(
            status=self.status,
            changed=self.changed_count,
            error=self.error,
            upgrades=self.upgrades,
            operations=[asdict(op) for op in self.operations],
        )


@dataclass(frozen=True)
class DeployRun(Change):
    inventory: str
    deploy: str
    dry_run: bool
    hosts: list[HostRun]
    seconds: float = 0.0
    plan: dict[str, Any] | None = None  # a dry run of a rollout: the batches it would take
    run_id: int | None = None  # the run's id in the state store (real runs only)
    interrupted: str | None = None  # SIGINT/SIGTERM: where it stopped and what did not run
    leases: dict[str, Any] = field(default_factory=dict)  # host -> hosts.leases.LeaseAnswer, when leases were asked for
    allow_unreachable: bool = False  # --allow-unreachable: a host that cannot be reached does not fail the run
    data: dict[str, Any] = field(default_factory=dict)  # --data the run was given
    record_error: str | None = None  # what of the run's record could not be kept, and where it was kept instead
    notified: list[str] = field(default_factory=list)  # --notify: the notifications sent
    notify_errors: list[str] = field(default_factory=list)  # those that could not be delivered (exit 1)

    @property
    def failed(self) -> bool:
        """A host failed (one not reached too, unless --allow-unreachable), or none was reached."""
        counted = [h for h in self.hosts if h.reached or not self.allow_unreachable]  # none reached: failed
        return not counted or any(h.failed for h in counted)

    def taken_over(self) -> dict[str, str]:
        """Hosts whose lease this run took over from a dead controller or run, and whose it was."""
        return {h: a.describe() for h, a in self.leases.items() if a.took_over}

    def host(self, name: str) -> HostRun:
        return next(h for h in self.hosts if h.name == name)

    def document(self) -> ApplyDocument:
        return ApplyDocument(
            **run_keys(self, *CHANGE_KEYS, "dry_run", "interrupted", "plan"),
            leases_taken_over=self.taken_over(),
            hosts={h.name: h.document() for h in self.hosts},
        )

    def to_dict(self) -> dict[str, Any]:
        return dump(self.document())


@dataclass(frozen=True)
class TestResult:
    __test__ = False  # not a pytest class

    host: str
    test: str  # the test id without the host part: test_file.py::test_name[param]
    outcome: TestOutcome
    message: str | None = None
    seconds: float = 0.0
    start: float | None = None  # epoch seconds when it started (hosts run in parallel)


FAILING = (TestOutcome.FAILED, TestOutcome.ERROR)  # the outcomes that fail a verification
UNREACHABLE_TEST = "(connect)"  # the one result of a host a verification could not reach


@dataclass(frozen=True)
class VerifyRun:
    inventory: str
    suite: str
    hosts: list[str]
    results: list[TestResult]
    seconds: float = 0.0
    error: str | None = None  # pytest itself could not run (collection error, bad suite)
    interrupted: str | None = None  # SIGINT/SIGTERM ended it
    allow_unreachable: bool = False  # --allow-unreachable: a host that cannot be reached does not fail the run
    data: dict[str, Any] = field(default_factory=dict)  # --data the run was given
    run_id: int | None = None  # the run's id in the state store

    @property
    def status(self) -> VerifyStatus:
        if self.interrupted:
            return VerifyStatus.INTERRUPTED
        counted = [r for r in self.results if not (self.allow_unreachable and r.test == UNREACHABLE_TEST)]
        bad = self.error or any(r.outcome in FAILING for r in counted)
        return VerifyStatus.FAILED if bad or not counted else VerifyStatus.PASSED

    @property
    def exit_code(self) -> int:
        return {VerifyStatus.PASSED: 0, VerifyStatus.FAILED: 1, VerifyStatus.INTERRUPTED: 130}[self.status]

    def for_host(self, host: str) -> list[TestResult]:
        return [r for r in self.results if r.host == host]

    def host_document(self, host: str) -> VerifyHost:
        tests = self.for_host(host)
        return VerifyHost(
            status=VerifyStatus.FAILED if any(r.outcome in FAILING for r in tests) else VerifyStatus.PASSED,
            tests=[
                TestRun(test=r.test, outcome=r.outcome, message=r.message, seconds=round(r.seconds, 3), started=r.start)
                for r in tests
            ],
        )

    def document(self) -> VerifyDocument:
        return VerifyDocument(
            **run_keys(self, "allow_unreachable", "data", "suite", "error"),
            hosts={h: self.host_document(h) for h in self.hosts},
        )

    def to_dict(self) -> dict[str, Any]:
        return dump(self.document())


@dataclass
class HostOutcome:
    """One host's part in a rollout. Mutable while the rollout runs; read-only after."""

    name: str
    batch: int
    outcome: Outcome = Outcome.NOT_REACHED  # interrupted: by the operator's stop now
    stage: str | None = None  # the stage it failed at, or the last it reached
    reason: str | None = None
    in_balancer: bool = True  # False: opsrun took it out and it stays out (the summary must say so)
    rebooted: bool = False
    note: str | None = None  # something the operator should know about a host that is done
    run: HostRun | None = None
    seconds: dict[str, float] = field(default_factory=dict)
    target: str | None = None  # its name in the balancer (ELBv2: the instance id)

    def add_note(self, note: str) -> None:
        self.note = f"{self.note}; {note}" if self.note else note

    def done(self) -> None:
        """Through every stage of its batch."""
        self.outcome, self.stage = Outcome.DONE, None

    def fail(self, stage: str, reason: str, *, in_balancer: bool) -> None:
        self.outcome, self.stage, self.reason, self.in_balancer = Outcome.FAILED, stage, reason, in_balancer

    def interrupt(self, stage: str, reason: str, *, in_balancer: bool) -> None:
        """Stopped at `stage` by the operator's stop now (the second Ctrl-C)."""
        self.outcome, self.stage, self.reason, self.in_balancer = Outcome.INTERRUPTED, stage, reason, in_balancer

    def document(self) -> RolloutHost:
        applied = self.run.document() if self.run else ApplyHost(status=self.outcome)
        return RolloutHost(
            **applied.model_dump(exclude_unset=True),
            outcome=self.outcome,
            batch=self.batch,
            stage=self.stage,
            reason=self.reason,
            note=self.note,
            in_balancer=self.in_balancer,
            balancer_target=self.target,
            rebooted=self.rebooted,
            seconds={k: round(v, 3) for k, v in self.seconds.items()},
        )


@dataclass
class Rollback:
    """Hosts sent back to an earlier revision: `opsrun rollback` (the run is the rollback), or a rollout's
    `on_failure: rollback` (`run`: the rollback's own rollout inside the run that failed)."""

    to_revision: str | None  # None: nothing to go back to (`reason` says why)
    to_run: int | None  # the run that had recorded it (None: a revision no run recorded)
    came_from: dict[str, str | None] = field(default_factory=dict)  # host -> the revision it was on, newest first
    downgrades: dict[str, dict[str, str]] = field(default_factory=dict)  # host -> package -> version to go back to
    automatic: bool = False  # on_failure "rollback", inside the run that failed
    run: RolloutRun | None = None  # automatic: the rollback's rollout (None: not attempted)
    reason: str | None = None  # automatic and not attempted: why

    @property
    def status(self) -> RollbackStatus:
        """succeeded | failed | interrupted | not attempted (automatic); `opsrun rollback`'s is its run's."""
        if self.run is None:
            return RollbackStatus.NOT_ATTEMPTED
        went = {ApplyStatus.SUCCESS: RollbackStatus.SUCCEEDED, ApplyStatus.INTERRUPTED: RollbackStatus.INTERRUPTED}
        return went.get(self.run.status, RollbackStatus.FAILED)

    def document(self) -> ManualRollback:
        where = {"to_revision": self.to_revision, "to_run": self.to_run, "came_from": self.came_from}
        if not self.automatic:
            return ManualRollback(**where, downgrades=self.downgrades)
        run = self.run.document() if self.run else None
        return AutomaticRollback(**where, downgrades=self.downgrades, status=self.status, reason=self.reason, run=run)


@dataclass
class RolloutRun(Change):
    inventory: str
    deploy: str
    plan: dict[str, Any]
    policy: dict[str, Any]
    hosts: dict[str, HostOutcome]
    halted: str | None = None  # why the rollout stopped early
    interrupted: bool = False
    seconds: float = 0.0
    stage_seconds: dict[str, float] = field(default_factory=dict)  # wall time per stage, all batches
    run_id: int | None = None
    healed: dict[str, str] = field(default_factory=dict)  # hosts a dead run left drained: what became of them
    leases_taken_over: dict[str, str] = field(default_factory=dict)  # host -> the dead run's lease it had
    allow_unreachable: bool = False  # --allow-unreachable: a host unreachable at its batch does not fail the run
    data: dict[str, Any] = field(default_factory=dict)  # --data the run was given
    stopped_now: bool = False  # the operator's second Ctrl-C: hosts in flight were interrupted, not finished
    record_error: str | None = None  # what of the run's record could not be kept, and where it was kept instead
    canary: dict[str, Any] | None = None  # the canary's verdict and figures (rollout.canary), when baked
    rollback: Rollback | None = None  # this run is `opsrun rollback`'s, or its on_failure rolled hosts back
    notified: list[str] = field(default_factory=list)  # --notify: the notifications sent
    notify_errors: list[str] = field(default_factory=list)  # those that could not be delivered (exit 1)

    @property
    def failed(self) -> bool:
        """Halted, or a host not done (one not reached at its batch too, unless --allow-unreachable and
        another was)."""
        unreachable = [h for h in self.hosts.values() if h.outcome == Outcome.FAILED and h.stage == "connect"]
        allowed = unreachable if self.allow_unreachable and len(unreachable) < len(self.hosts) else []
        return bool(self.halted) or any(h.outcome != Outcome.DONE and h not in allowed for h in self.hosts.values())

    def left_out(self) -> list[str]:
        return [h.name for h in self.hosts.values() if not h.in_balancer]

    def document(self) -> RolloutDocument:
        return RolloutDocument(
            **run_keys(
                self, *CHANGE_KEYS, "plan", "policy", "halted", "stopped_now", "canary", "healed", "leases_taken_over"
            ),
            left_out_of_balancer=self.left_out(),
            stage_seconds={k: round(v, 3) for k, v in self.stage_seconds.items()},
            hosts={h.name: h.document() for h in self.hosts.values()},
            rollback=self.rollback.document() if self.rollback else None,
        )

    def to_dict(self) -> dict[str, Any]:
        return dump(self.document())
