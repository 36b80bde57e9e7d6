"""A run's record in the state store as it goes: each host's place written as it changes (`Recorder`), the
outcome at the end (`record_outcome`); what a store that stopped answering missed is kept under
.opsrun/store-missed/ for the next run to record, and the result says so (`record_error`, exit 4)."""

from __future__ import annotations

from collections.abc import Callable

from opsrun.errors import StoreUnavailable
from opsrun.model.project import Project
from opsrun.model.results import DeployRun, HostOutcome, RolloutRun
from opsrun.runs.saving import with_record_error
from opsrun.store import Store
from opsrun.store.database import utc_now


class Recorder:
    """The rollout's record listener: each host's place written to the store as it changes. A store that does
    not answer within its window halts the rollout (the hosts in flight finish, no new host is drained) and
    is not asked again until the run's end."""

    def __init__(self, store: Store, run_id: int):
        self.store, self.run_id = store, run_id
        self.lost: StoreUnavailable | None = None
        self.since = ""  # when it stopped answering
        self.halt: Callable[[str], None] = lambda _why: None

    def __call__(self, host: HostOutcome) -> None:
        if self.lost is not None:
            return
        try:
            self.store.record_host(self.run_id, {**vars(host), "run": None})
        except StoreUnavailable as exc:
            self.lost, self.since = exc, utc_now()
            self.halt(
                f"the state store at {exc.where} did not answer for {exc.seconds:g}s: no further host was drained"
            )


def record_outcome(
    project: Project, store: Store, run_id: int, result: DeployRun | RolloutRun, recorder: Recorder
) -> DeployRun | RolloutRun:
    """The run's outcome into the store (one try when it was lost during the run); when the store does not
    take it, kept under .opsrun/store-missed/ for the next run, and the result says what the store missed."""
    lost = recorder.lost
    if lost is not None:
        result = with_record_error(result, _store_said(lost, "by the run's end it answered again and has its outcome"))
    try:
        store.finish_run(run_id, result.to_dict())
        return result
    except StoreUnavailable as exc:
        lost = lost or exc
    missed = f"the places of its hosts since {recorder.since} and its outcome" if recorder.lost else "its outcome"
    folder = project.state_dir / "store-missed"
    result = with_record_error(result, _store_said(lost, f"it missed {missed}, kept in {folder} for the next run"))
    try:
        store.keep_missed(project.state_dir, run_id, result.to_dict())
    except OSError as exc:
        why = f"it missed {missed}, which could not be kept in {folder} either ({exc.strerror or exc})"
        return with_record_error(result, _store_said(lost, why))
    return result


def _store_said(exc: StoreUnavailable, what: str) -> str:
    return f"the state store at {exc.where} did not answer for {exc.seconds:g}s ({exc.last}); {what}. Fix: {exc.fix}"
