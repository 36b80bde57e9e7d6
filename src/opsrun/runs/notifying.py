"""Telling people what a checking run (drift, the DR test) found, or what a change (apply, rollback) did, once
it is recorded: each target what it should hear (opsrun.notify), with the places of the run's result and
report; what could not be delivered is kept beside the result, named in the run's document, and makes the
command exit 1."""

from __future__ import annotations

from dataclasses import asdict, replace
from pathlib import Path
from typing import Any, Protocol, TypeVar

from opsrun import notify
from opsrun.model.project import Project
from opsrun.model.results import DeployRun, RolloutRun
from opsrun.notify import changes
from opsrun.reports import as_json, report_name
from opsrun.runs.options import Session
from opsrun.runs.saving import save, save_undelivered
from opsrun.store import Store

R = TypeVar("R", bound=DeployRun | RolloutRun)
HISTORY = 200  # the newest runs of the inventory read for the previous apply's status


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


def tell_of_change(
    project: Project,
    run: R,
    saved: Path | None,
    targets: list[notify.Target],
    *,
    always: bool = False,
    session: Session = Session(),  # noqa: B008 - frozen: one shared default is safe
) -> R:
    """An apply's or a rollback's outcome told to `targets` once it is recorded: chat and SNS when its status
    differs from the previous apply of the deploy on the inventory, or it rolled hosts back (or `always`);
    PagerDuty by its one alert per inventory and deploy (notify.changes). The result document at `saved` is
    written again with what was sent."""
    if not targets or run.run_id is None:
        return run
    doc = run.to_dict()
    store = session.open_store(project)
    try:
        rows = store.runs(run.inventory, limit=HISTORY)
        applies = [r for r in rows if (r.kind, r.deploy) == ("apply", run.deploy) and r.id < run.run_id]
        previous = applies[0].status if applies else None
        links = notify.Links(run.run_id, str(saved.resolve()) if saved else None)
        job = f"apply {run.inventory} {run.deploy}"  # apply and rollback alike: a clean apply resolves
        pager = [t for t in targets if t.kind == "pagerduty"]  # its own dedup: a rollback pages once
        chat = [t for t in targets if t.kind != "pagerduty"]  # told of every rollback
        sent = notify.send(pager, doc, previous, always=always, job=job, links=links, alerts=store)
        told = notify.send(chat, doc, previous, always=always or changes.rolled_back(doc), job=job, links=links)
        sent.sent, sent.failed = sent.sent + told.sent, sent.failed + told.failed
        errors = sent.errors
        if sent.failed and saved is not None:
            kept = save_undelivered(saved, [asdict(f) for f in sent.failed])
            errors = [f"{error}; the message is kept in {kept}" for error in sent.errors]
        run = _told(run, sent.sent, errors)
        if sent.sent or sent.failed:
            store.update_document(run.run_id, run.to_dict())  # type: ignore[arg-type]
    finally:
        store.close()
    if saved is not None:
        save(project, saved.stem.split("-", 1)[1], as_json.render(run), saved)
    return run


def _told(run: R, sent: list[str], errors: list[str]) -> R:
    if isinstance(run, RolloutRun):
        run.notified, run.notify_errors = sent, errors
        return run
    return replace(run, notified=sent, notify_errors=errors)
