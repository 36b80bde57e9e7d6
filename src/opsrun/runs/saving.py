"""Keep each run's JSON document under the project's .opsrun/results/ (and, beside it, the notifications
that could not be delivered)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from opsrun.project import Project
from opsrun.reports import write_atomic
from opsrun.secrets import redact


def result_path(project: Project, name: str) -> Path:
    """Where `save` keeps a run's document: .opsrun/results/STAMP-NAME.json (known before it is written, so
    that a notification can say where it will be)."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    return project.state_dir / "results" / f"{stamp}-{name}.json"


def save(project: Project, name: str, text: str, path: Path | None = None) -> Path:
    """Keep a run's document at `path` (default: `result_path`), and as NAME-latest.json."""
    path = write_atomic(path or result_path(project, name), text)
    write_atomic(path.parent / f"{name}-latest.json", text)
    return path


def undelivered_path(result: Path) -> Path:
    return result.with_name(result.stem + ".undelivered.json")


def save_undelivered(result: Path, failed: list[dict[str, Any]]) -> Path:
    """The messages that could not be delivered, beside the run's result, to be read or sent by hand."""
    return write_atomic(undelivered_path(result), redact(json.dumps({"undelivered": failed}, indent=2)) + "\n")
