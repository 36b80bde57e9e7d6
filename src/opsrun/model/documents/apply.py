"""The documents of an apply (`kind: "apply"`: every host at once, or a dry run) and of a rollout (`kind:
"rollout"`: batches behind a balancer), with the rollback a rollout may carry."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Discriminator, Field, Tag, field_validator

from opsrun.model.documents.status import (
    ApplyStatus,
    CanaryOutcome,
    Doc,
    HostStatus,
    Outcome,
    Recorded,
    RollbackStatus,
    left_out,
)


class Operation(Doc):
    """One operation of a deploy on one host (model.results.OperationResult)."""

    name: str
    changed: bool  # applied: it ran commands; dry run: it would
    success: bool = True
    error: str | None = None
    commands: list[str] = Field(default_factory=list)  # dry run: what would run
    conditional: bool = False  # dry run: whether it changes is only known when applied
    output: list[str] = Field(default_factory=list)  # applied and changed: the last lines the commands printed
    unknown: str | None = None  # dry run: why whether it would change cannot be known
    follows: str | None = None  # dry run: the earlier operation it changes because of
    diff: list[str] = Field(default_factory=list)  # dry run, files: "Will modify PATH" and unified-diff hunks


class Upgrade(Doc):
    """A package dpkg upgraded during the run."""

    package: str
    came_from: str = Field(alias="from")
    to: str


class ApplyHost(Doc):
    """A host of an apply. The keys of a rollout's host are written only when known: an apply the state store
    found dead says where the rollout left each host."""

    status: HostStatus | Outcome | None = None  # a rollout's host not applied: its outcome
    outcome: Outcome | None = Field(None, exclude_if=left_out)
    batch: int | None = Field(None, exclude_if=left_out)
    stage: str | None = Field(None, exclude_if=left_out)  # the stage it failed at, or the last it reached
    reason: str | None = Field(None, exclude_if=left_out)
    note: str | None = Field(None, exclude_if=left_out)
    in_balancer: bool | None = Field(None, exclude_if=left_out)
    balancer_target: str | None = Field(None, exclude_if=left_out)
    rebooted: bool | None = Field(None, exclude_if=left_out)
    changed: int = 0  # operations that changed (or would)
    error: str | None = None  # connect failure or an error outside any operation
    upgrades: list[Upgrade] = Field(default_factory=list)
    operations: list[Operation] = Field(default_factory=list)
    seconds: dict[str, float] | None = Field(None, exclude_if=left_out)


class RolloutHost(ApplyHost):
    """A host's part in a rollout: its outcome, batch, the stage it reached, in the balancer or not."""

    outcome: Outcome = Outcome.NOT_REACHED
    batch: int = 0
    stage: str | None = None
    reason: str | None = None
    note: str | None = None  # something the operator should know about a host that is done
    in_balancer: bool = True  # False: opsrun took it out and it stays out
    balancer_target: str | None = None  # its name in the balancer (ELBv2: the instance id)
    rebooted: bool = False
    seconds: dict[str, float] = Field(default_factory=dict)  # stage -> seconds


class Plan(Doc):
    """A rollout's batches (rollout.plan.Plan), as the run and the state store keep them."""

    batches: list[list[str]] = Field(default_factory=list)
    max_fail: int | None = Field(None, exclude_if=left_out)  # hosts that may fail; one more halts the rollout
    waves: list[str] | None = Field(None, exclude_if=left_out)  # with a `waves` policy: each batch's wave
    canary: list[str] | None = Field(None, exclude_if=left_out)  # the canary's hosts (the first batch)
    rollback_to: str | None = Field(None, exclude_if=left_out)  # `opsrun rollback`: the revision it goes back to


class Canary(Doc):
    """A rollout's canary: its hosts, the verdict and the figures it was judged on (rollout.canary)."""

    hosts: list[str] = Field(default_factory=list)
    source: str | None = None  # the balancer the statistics came from
    scope: str | None = None
    outcome: CanaryOutcome | None = None
    reason: str | None = None
    seconds: float = 0.0  # how long it was baked
    canary: dict[str, Any] | None = None  # the canary's figures (balancers.stats.Figures)
    unchanged: dict[str, Any] | None = None  # the unchanged hosts' figures
    thresholds: dict[str, Any] = Field(default_factory=dict)


class ManualRollback(Doc):
    """`opsrun rollback`: the run is the rollback; where it sent the hosts and from where."""

    to_revision: str | None = None  # None: nothing to go back to
    to_run: int | None = None  # the run that had recorded it
    came_from: dict[str, str | None] = Field(default_factory=dict, alias="from")  # host -> revision it was on
    downgrades: dict[str, dict[str, str]] = Field(default_factory=dict)  # host -> package -> version to go back to
    automatic: Literal[False] = False


class AutomaticRollback(ManualRollback):
    """A rollout's `on_failure: rollback`: the rollback's own rollout inside the run that failed."""

    automatic: Literal[True] = True  # type: ignore[assignment]
    status: RollbackStatus = RollbackStatus.NOT_ATTEMPTED
    reason: str | None = None  # not attempted: why
    run: RolloutDocument | None = None  # None: not attempted


def _rollback_kind(value: Any) -> str:
    automatic = value.get("automatic") if isinstance(value, dict) else getattr(value, "automatic", False)
    return "automatic" if automatic else "manual"


Rollback = Annotated[
    Annotated[ManualRollback, Tag("manual")] | Annotated[AutomaticRollback, Tag("automatic")],
    Discriminator(_rollback_kind),
]


def _apply_kind(value: Any) -> Any:
    """The kind of an apply's document: "apply" as written ("deploy", or none, as some older ones read)."""
    return "apply" if value in (None, "deploy") else value


class Change(Doc):
    """The keys an apply's and a rollout's documents open with (each names its own `kind`)."""

    kind: str
    run_id: int | None = None
    status: ApplyStatus | Recorded = ApplyStatus.FAILED
    inventory: str = ""
    deploy: str | None = None
    dry_run: bool = False


class ApplyDocument(Change):
    """`opsrun apply` without batches (every host at once), or a dry run (with the plan it would follow)."""

    kind: Literal["apply"] = "apply"
    seconds: float = 0.0
    interrupted: str | None = None  # SIGINT/SIGTERM: where it stopped and what did not run
    record_error: str | None = None  # what of the run's record could not be kept, and where it was kept instead
    leases_taken_over: dict[str, str] = Field(default_factory=dict)  # host -> whose lease this run took over
    allow_unreachable: bool = False
    data: dict[str, Any] = Field(default_factory=dict)  # --data the run was given
    notified: list[str] = Field(default_factory=list)  # --notify: the notifications sent
    notify_errors: list[str] = Field(default_factory=list)  # those that could not be delivered (exit 1)
    hosts: dict[str, ApplyHost] = Field(default_factory=dict)
    plan: Plan | None = Field(None, exclude_if=left_out)  # a dry run of a rollout: the batches it would take
    error: str | None = Field(None, exclude_if=left_out)  # the store's: why the run ended without its document
    left_out_of_balancer: list[str] | None = Field(None, exclude_if=left_out)  # the store's, of a dead run

    _kind = field_validator("kind", mode="before")(_apply_kind)


class RolloutDocument(Change):
    """`opsrun apply` in batches behind a balancer (and `opsrun rollback`, which is one)."""

    kind: Literal["rollout"] = "rollout"
    plan: Plan = Field(default_factory=Plan)
    policy: dict[str, Any] = Field(default_factory=dict)  # rollout.policy.Policy
    halted: str | None = None  # why the rollout stopped early
    stopped_now: bool = False  # the operator's second Ctrl-C
    record_error: str | None = None
    canary: Canary | None = None  # when a canary was baked
    left_out_of_balancer: list[str] = Field(default_factory=list)
    healed: dict[str, str] = Field(default_factory=dict)  # hosts a dead run left drained: what became of them
    leases_taken_over: dict[str, str] = Field(default_factory=dict)
    allow_unreachable: bool = False
    data: dict[str, Any] = Field(default_factory=dict)
    seconds: float = 0.0
    stage_seconds: dict[str, float] = Field(default_factory=dict)  # wall time per stage, all batches
    hosts: dict[str, RolloutHost] = Field(default_factory=dict)
    rollback: Rollback | None = None  # this run is `opsrun rollback`'s, or its on_failure rolled hosts back
    notified: list[str] = Field(default_factory=list)  # --notify: the notifications sent
    notify_errors: list[str] = Field(default_factory=list)  # those that could not be delivered (exit 1)
    error: str | None = Field(None, exclude_if=left_out)


AutomaticRollback.model_rebuild()
