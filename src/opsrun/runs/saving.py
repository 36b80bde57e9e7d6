"""Keep each run's JSON document under the project's .opsrun/results/ (and, beside it, the notifications
that could not be delivered), and find out before any host is touched whether the controller's own disk can
take it (a dry write: a full or read-only .opsrun or --out)."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

from opsrun.errors import ConfigError
from opsrun.model.project import Project
from opsrun.model.results import DeployRun, RolloutRun
from opsrun.model.secrets import redact
from opsrun.reports import as_json, write_atomic

ROOM = 1 << 20  # bytes a dry write asks for: a run's result document, reports and store journal fit in it
R = TypeVar("R", bound=DeployRun | RolloutRun)


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


def save_or_say(project: Project, name: str, run: R, notice: Callable[[str], None]) -> tuple[R, Path | None]:
    """`save` the run's document; when the controller's disk will not take it (it filled during the run), the
    run goes on to its summary, which says so (`record_error`): the path is then None."""
    try:
        return run, save(project, name, as_json.render(run))
    except OSError as exc:
        folder = project.state_dir / "results"
        why = f"the result document could not be written to {folder} ({exc.strerror or exc}): the summary is its record"
        notice(why)
        return with_record_error(run, f"{run.record_error}; {why}" if run.record_error else why), None


def with_record_error(run: R, error: str) -> R:
    """The run, saying what of its record could not be kept (exit 4)."""
    if isinstance(run, RolloutRun):
        run.record_error = error
        return run
    return replace(run, record_error=error)


def check_state_dir(project: Project) -> None:
    """The project's .opsrun/ must take the run's result (and history, and debug log): a dry write, before
    any host is touched, so that a run never ends in a traceback after its work is done."""
    folder = project.state_dir
    try:
        if folder.exists() and not folder.is_dir():
            raise NotADirectoryError(20, "it is a file, not a folder")
        dry_write(folder / "results")
    except OSError as exc:
        raise ConfigError(
            folder,
            f"opsrun keeps its results, run history and debug log here and cannot: {exc.strerror or exc}.",
            fix=f"make {folder} a folder this user can write to (move a file of that name away; chmod u+rwx) "
            f"with {ROOM >> 20} MiB free on its filesystem (df -h {folder}; is it mounted read-only?)",
        ) from None


def check_room(folder: Path, what: str, *, field: str | None = None) -> None:
    """A dry write in `folder` (made when missing): a full or read-only filesystem is a ConfigError naming
    the folder and the fix, before any host is touched."""
    try:
        dry_write(folder)
    except OSError as exc:
        raise ConfigError(
            folder,
            f"cannot write {what} here: {exc.strerror or exc}.",
            field=field,
            fix=f"free at least {ROOM >> 20} MiB on its filesystem (df -h {folder}), or make it writable "
            "(mount: is it read-only?)",
        ) from None


def dry_write(folder: Path) -> None:
    """ROOM bytes written in `folder` (made when missing), flushed to its disk and removed: OSError when its
    filesystem is full, read-only or not writable by this user."""
    probe = folder / f".opsrun-room-{os.getpid()}"
    folder.mkdir(parents=True, exist_ok=True)
    try:
        with probe.open("wb") as f:
            f.write(bytes(ROOM))
            f.flush()
            os.fsync(f.fileno())
    finally:
        probe.unlink(missing_ok=True)
