"""The documents of the checking runs that change nothing: a verification (`kind: "verify"`) and a drift run
(`kind: "drift"`)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from opsrun.model.documents.status import (
    Cause,
    Doc,
    DriftStatus,
    FindingStatus,
    Recorded,
    TestOutcome,
    Verdict,
    VerifyStatus,
    left_out,
)


class TestRun(Doc):
    """One test of the suite on one host."""

    __test__ = False  # not a pytest class

    test: str  # the test id without the host part: test_file.py::test_name[param]
    outcome: TestOutcome
    message: str | None = None
    seconds: float = 0.0
    started: float | None = None  # epoch seconds when it started (hosts run in parallel)


class VerifyHost(Doc):
    status: VerifyStatus = VerifyStatus.PASSED  # failed: a test failed or could not run
    tests: list[TestRun] = Field(default_factory=list)


class VerifyDocument(Doc):
    """`opsrun verify`: a suite's tests on each host."""

    kind: Literal["verify"] = "verify"
    run_id: int | None = None
    status: VerifyStatus | Recorded = VerifyStatus.FAILED
    allow_unreachable: bool = False
    data: dict[str, Any] = Field(default_factory=dict)
    inventory: str = ""
    suite: str = ""
    seconds: float = 0.0
    error: str | None = None  # pytest itself could not run (collection error, bad suite)
    hosts: dict[str, VerifyHost] = Field(default_factory=dict)


class Finding(Doc):
    """What differs on one host for one operation of a deploy (opsrun.checks.drift)."""

    host: str
    deploy: str
    operation: str
    verdict: Verdict
    detail: list[str] = Field(
        default_factory=list
    )  # commands that would run, the reason it is unknown, or the failed test's message
    diff: list[str] = Field(default_factory=list)  # files: what each would become
    status: FindingStatus | None = None  # None: not tracked (unknown, error)
    first_seen: str | None = None
    cause: Cause | None = None
    fingerprint: str = ""
    held: bool = False  # out of its balancer on purpose (opsrun hold): listed, tracked, not drift


class Resolved(Doc):
    """A finding of an earlier run that this run no longer saw."""

    host: str
    deploy: str
    operation: str
    first_seen: str | None = None
    resolved_at: str | None = None


class DriftSummary(Doc):
    hosts: int = 0
    checked: int = 0
    errors: int = 0
    drift: int = 0
    new: int = 0
    persisting: int = 0
    resolved: int = 0
    unknown: int = 0
    out_of_balancer: int = 0
    held: int = 0
    unreachable: int = 0


class DriftDocument(Doc):
    """`opsrun drift`: each deploy dry-run and its suite run on every host, findings tracked since first seen."""

    kind: Literal["drift"] = "drift"
    run_id: int | None = None
    status: DriftStatus | Recorded = DriftStatus.ERROR
    inventory: str = ""
    deploys: list[str] = Field(default_factory=list)
    hosts_checked: list[str] = Field(default_factory=list)  # the hosts it was asked to check
    seconds: float = 0.0
    interrupted: str | None = None
    allow_unreachable: bool = False
    data: dict[str, Any] = Field(default_factory=dict)
    summary: DriftSummary = Field(default_factory=DriftSummary)
    findings: list[Finding] = Field(default_factory=list)
    resolved: list[Resolved] = Field(default_factory=list)
    unreachable: dict[str, str] = Field(default_factory=dict)  # host -> why
    trend: list[tuple[str, int]] = Field(default_factory=list)  # (when, drift findings) of the last runs, this one last
    notified: list[str] = Field(default_factory=list)  # the notifications sent
    notify_errors: list[str] = Field(default_factory=list)  # those that could not be delivered
    error: str | None = Field(None, exclude_if=left_out)  # the store's: why the run ended without its document
