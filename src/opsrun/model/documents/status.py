"""The words a run document uses for how things went: statuses and outcomes as `StrEnum`s, so that a
document's JSON holds the same strings it always did, and the code compares against names, not literals."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict


class Doc(BaseModel):
    """The base of every part of a run document. Keys it does not know are kept (a document written by a later
    opsrun still reads); keys are read by their JSON name (`from`) or their field name; the schema of what is
    written (serialization mode) requires every key that is always written."""

    model_config = ConfigDict(
        extra="allow",
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
        json_schema_serialization_defaults_required=True,
    )


def left_out(value: Any) -> bool:
    """`exclude_if` of a key written only when it has a value (a dry run's plan, a rollback's run)."""
    return value is None


class ApplyStatus(StrEnum):
    """An apply's or a rollout's status."""

    SUCCESS = "success"
    FAILED = "failed"
    INTERRUPTED = "interrupted"


class Recorded(StrEnum):
    """The statuses the state store gives a run that did not write its own document: still running, or ended
    by an error its controller raised. (An apply a later run found dead is `interrupted`, an ApplyStatus.)"""

    RUNNING = "running"
    ERROR = "error"


class HostStatus(StrEnum):
    """What an apply did to one host."""

    OK = "ok"
    CHANGED = "changed"
    FAILED = "failed"


class Outcome(StrEnum):
    """A host's part in a rollout. interrupted: by the operator's stop now."""

    DONE = "done"
    FAILED = "failed"
    INTERRUPTED = "interrupted"
    NOT_REACHED = "not_reached"


class RollbackStatus(StrEnum):
    """How an on_failure rollback went."""

    SUCCEEDED = "succeeded"
    FAILED = "failed"
    INTERRUPTED = "interrupted"
    NOT_ATTEMPTED = "not attempted"


class CanaryOutcome(StrEnum):
    """A canary's verdict."""

    PASS = "pass"  # noqa: S105 - a verdict, not a password
    BREACH = "breach"
    NO_VERDICT = "no_verdict"
    INTERRUPTED = "interrupted"


class VerifyStatus(StrEnum):
    """A verification's status, and each of its hosts' (passed or failed)."""

    PASSED = "passed"
    FAILED = "failed"
    INTERRUPTED = "interrupted"


class TestOutcome(StrEnum):
    """One verify test on one host."""

    __test__ = False  # not a pytest class

    PASSED = "passed"
    FAILED = "failed"
    SKIPPED = "skipped"
    ERROR = "error"


class DriftStatus(StrEnum):
    """A drift run's status (opsrun.checks.drift says what each means)."""

    CLEAN = "clean"
    PARTIAL = "partial"
    DRIFT = "drift"
    ERROR = "error"
    INTERRUPTED = "interrupted"


class Verdict(StrEnum):
    """A drift finding's kind (opsrun.checks.drift says what each means)."""

    WILL_CHANGE = "will_change"
    UNKNOWN = "unknown"
    VERIFY_FAILED = "verify_failed"
    ERROR = "error"
    OUT_OF_BALANCER = "out_of_balancer"


class FindingStatus(StrEnum):
    """A tracked drift finding: first seen in this run, or seen before."""

    NEW = "new"
    PERSISTING = "persisting"


class Cause(StrEnum):
    """Why a drift finding is there: the ops repo's desired state changed, or the host did."""

    INTENTIONAL = "intentional"
    CORRECTIVE = "corrective"


class DRStatus(StrEnum):
    """A DR test's status."""

    PASSED = "passed"
    FAILED = "failed"
    DEGRADED = "degraded"


class CheckStatus(StrEnum):
    """A DR check's status, and a system's result."""

    PASS = "PASS"  # noqa: S105 - a check status, not a password
    FAIL = "FAIL"
    SKIP = "SKIP"
    DEGRADED = "DEGRADED"
