"""Telling people what a checking run (drift, the DR test) found, once it is recorded: each target what it
should hear (opsrun.notify), with the places of the run's result and report; what could not be delivered
is kept beside the result, named in the run's document, and makes the command exit 1."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any, Protocol

from opsrun import notify
from opsrun.reports import report_name
from opsrun.runs.saving import save_undelivered
from opsrun.store import Store


class Notified(Protocol):
    """A run's result that notifications are recorded on (DriftRun, DRRun)."""

    run_id: int | None
    notified: list[str]
    notify_errors: list[str]

    def to_dict(self) -> dict[str, Any]: ...


def announce(
    store: Store,
    result: Notified,
    targets: list[notify.Target],
    *,
    job: str,
    previous: str | None,
    always: bool,
    saved_at: Path,
    report_dir: Path | None,
) -> None:
    """Send, and record on `result` (and in the store's copy of its document) what was sent and what was not."""
    if not targets:
        return
    doc = result.to_dict()
    report = report_dir.resolve() / f"{report_name(doc)}.html" if report_dir is not None else None
    links = notify.Links(result.run_id, str(saved_at.resolve()), str(report) if report else None)
    sent = notify.send(targets, doc, previous, always=always, job=job, links=links, alerts=store)
    result.notified = sent.sent
    if sent.failed:
        kept = save_undelivered(saved_at, [asdict(f) for f in sent.failed])
        result.notify_errors = [f"{error}; the message is kept in {kept}" for error in sent.errors]
    if result.run_id is not None and (sent.sent or sent.failed):
        store.update_document(result.run_id, result.to_dict())  # the stored document says who was told
