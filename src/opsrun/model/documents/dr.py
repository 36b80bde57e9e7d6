"""The document of a monthly DR test (`kind: "dr-test"`): targets against measured RTO and RPO per system,
the checks with their evidence, the drill's log, the issues and the months before."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import Field

from opsrun.model.documents.status import CheckStatus, Doc, DRStatus, Recorded, left_out


class Check(Doc):
    """One DR check: a system's PASS, FAIL or SKIP with its evidence and where it came from."""

    system: str
    name: str
    status: CheckStatus
    evidence: list[str] = Field(default_factory=list)
    source: str = ""  # the query, command or API call that produced the evidence
    measured: dict[str, float] = Field(default_factory=dict)  # rto_seconds, rpo_seconds, lag_seconds, ...
    severity: str = "high"  # of the issue a FAIL becomes

    def __init__(self, *given: Any, **named: Any) -> None:
        """The fields by position, in their order above, as opsrun.dr's checks write them
        (`Check("redis", "RPO probe", PASS, evidence)`), or by name, as a document read back gives them."""
        super().__init__(**dict(zip(type(self).model_fields, given, strict=False)), **named)


class System(Doc):
    """A system's targets, its worst measured RTO and RPO (or why there is none) and its result."""

    system: str
    rto_target_seconds: float
    rpo_target_seconds: float
    rto_seconds: float | None = None
    rpo_seconds: float | None = None
    rto_note: str | None = None  # why there is no measured RTO ("not drilled (enable with ...)")
    rpo_note: str | None = None
    result: CheckStatus


class Issue(Doc):
    severity: str
    issue: str


class DRSummary(Doc):
    checks: int = 0
    passed: int = 0
    failed: int = 0
    skipped: int = 0
    issues: int = 0


class Tier(Doc):
    """A system's numbers in one month of the trend."""

    rto: float | None = None
    rpo: float | None = None
    rto_target: float | None = None
    rpo_target: float | None = None
    result: CheckStatus | None = None


def tier_numbers(system: Mapping[str, Any]) -> dict[str, Any]:
    """A system's row of a DR document (`System`, as JSON's dict) as a month of its trend keeps it (`Tier`)."""
    return {
        "rto": system.get("rto_seconds"),
        "rpo": system.get("rpo_seconds"),
        "rto_target": system.get("rto_target_seconds"),
        "rpo_target": system.get("rpo_target_seconds"),
        "result": system.get("result"),
    }


class Month(Doc):
    """The last DR test of an earlier month (checks.history.dr_trend)."""

    month: str
    status: DRStatus | Recorded
    failed: int = 0  # failed checks
    rto: float | None = None  # the worst measured
    rpo: float | None = None
    run_id: int | None = None
    systems: dict[str, Tier] = Field(default_factory=dict)


class DRDocument(Doc):
    """`opsrun dr-test`: one month's DR test of an inventory."""

    kind: Literal["dr-test"] = "dr-test"
    run_id: int | None = None
    status: DRStatus | Recorded = DRStatus.FAILED
    inventory: str = ""
    month: str = ""
    started: str = ""
    who: str = ""
    opsrun_version: str = ""
    revision: str | None = None
    seconds: float = 0.0
    first_line: str = ""  # what a reader must see first (a drill left a system degraded)
    summary: DRSummary = Field(default_factory=DRSummary)
    systems: list[System] = Field(default_factory=list)
    checks: list[Check] = Field(default_factory=list)
    drill_log: list[str] = Field(default_factory=list)  # timestamped drill steps
    issues: list[Issue] = Field(default_factory=list)
    action_items: list[str] = Field(default_factory=list)
    next_test: str = ""
    degraded: list[str] = Field(default_factory=list)  # systems a drill could not put back as they were
    trend: list[Month] = Field(default_factory=list)  # earlier months, oldest first
    notified: list[str] = Field(default_factory=list)
    notify_errors: list[str] = Field(default_factory=list)
    error: str | None = Field(None, exclude_if=left_out)  # the store's: why the run ended without its document
