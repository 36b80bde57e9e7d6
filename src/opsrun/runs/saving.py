"""Keep each run's JSON document under the project's .opsrun/results/ (and, beside it, the notifications
that could not be delivered), and check first that it can."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from opsrun.errors import ConfigError
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


def check_state_dir(project: Project) -> None:
    """The project's .opsrun/ must take the run's result (and history, and debug log): checked before any
    host is touched, so that a run never ends in a traceback after its work is done."""
    folder = project.state_dir
    try:
        if folder.exists() and not folder.is_dir():
            raise NotADirectoryError(20, "it is a file, not a folder")
        (folder / "results").mkdir(parents=True, exist_ok=True)
        probe = folder / "results" / f".opsrun-write-test-{time.monotonic_ns()}"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise ConfigError(
            folder,
            f"opsrun keeps its results, run history and debug log here and cannot: {exc.strerror or exc}.",
            fix=f"make {folder} a folder this user can write to (move a file of that name away; chmod u+rwx)",
        ) from None
