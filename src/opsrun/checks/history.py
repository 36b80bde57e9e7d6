"""The run history, read back from the state store: the runs of a project, one run's document, and the DR
tests of an inventory month by month (the trend a DR report carries)."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from opsrun.errors import ConfigError
from opsrun.model.documents import Document, load
from opsrun.model.documents.dr import tier_numbers
from opsrun.model.project import Project
from opsrun.store import RETRY, RunRow, open_store


def runs(
    project: Project, state_url: str | None, inventory: str | None = None, *, retry: float = RETRY
) -> list[RunRow]:
    """The latest runs (newest first), of one inventory or of all."""
    store = open_store(project.state_dir, state_url, retry=retry)
    try:
        return store.runs(inventory)
    finally:
        store.close()


def run_document(project: Project, state_url: str | None, run_id: int, *, retry: float = RETRY) -> Document:
    """The document of run `run_id`, as it was recorded (by this opsrun or an older one)."""
    store = open_store(project.state_dir, state_url, retry=retry)
    try:
        return load(store.run(run_id))
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise ConfigError(
            store.where,
            f"run {run_id}: its document does not read: {first['msg']}.",
            field=where,
            fix="see it whole with the state store's own client (the runs table's document)",
        ) from None
    finally:
        store.close()


def dr_tests(project: Project, state_url: str | None, inventory: str, *, retry: float = RETRY) -> list[dict[str, Any]]:
    """The last DR test of each month on `inventory`, oldest first (dr_trend of every recorded one)."""
    store = open_store(project.state_dir, state_url, retry=retry)
    try:
        docs = [d for d in store.recent("dr-test", inventory, limit=100) if d.get("kind") == "dr-test"]
    finally:
        store.close()
    return dr_trend(docs, exclude=-1)


def dr_trend(docs: list[dict[str, Any]], exclude: int) -> list[dict[str, Any]]:
    """The last DR test of each earlier month: status, failed checks, worst measured RTO and RPO, and each
    system's RTO and RPO against its targets (the per-tier trend chart)."""
    by_month: dict[str, dict[str, Any]] = {}
    for d in docs:
        if d["run_id"] != exclude and d.get("kind") == "dr-test":
            by_month[d["month"]] = d
    trend = []
    for month in sorted(by_month):
        d = by_month[month]
        rto = [s["rto_seconds"] for s in d.get("systems", []) if s.get("rto_seconds") is not None]
        rpo = [s["rpo_seconds"] for s in d.get("systems", []) if s.get("rpo_seconds") is not None]
        trend.append(
            {
                "month": month,
                "status": d["status"],
                "failed": d.get("summary", {}).get("failed", 0),
                "rto": max(rto, default=None),
                "rpo": max(rpo, default=None),
                "run_id": d["run_id"],
                "systems": {s["system"]: tier_numbers(s) for s in d.get("systems", [])},
            }
        )
    return trend
