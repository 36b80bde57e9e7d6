"""What the commands print: every line with secrets masked, a run as text or as a report, and the exit."""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO, TypeVar, cast

import click
from rich.console import Console

from opsrun.model.results import RECORD_LOST
from opsrun.model.secrets import redact
from opsrun.reports import as_text, render_report, write_reports
from opsrun.runs.options import HostList
from opsrun.runs.saving import check_room

R = TypeVar("R", bound=Any)


class _Redacted(io.TextIOBase):
    """stdout with secret values masked (see opsrun.model.secrets)."""

    def __init__(self, stream: TextIO):
        self.stream = stream

    def write(self, text: str) -> int:
        self.stream.write(redact(text))
        return len(text)

    def flush(self) -> None:
        self.stream.flush()

    def isatty(self) -> bool:
        return self.stream.isatty()


PIPED_WIDTH = 200  # columns of a table written to a pipe or a file: wide enough that no cell is cut


def console() -> Console:
    """stdout for rich, secrets masked; piped, as wide as a table needs (a terminal: its own width)."""
    out = _Redacted(sys.stdout)
    width = None if out.isatty() else PIPED_WIDTH
    return Console(file=cast(TextIO, out), stderr=False, highlight=False, soft_wrap=False, width=width)


def echo(text: str, *, err: bool = False, nl: bool = True) -> None:
    """click.echo with secrets masked: every line opsrun prints goes through here or through _Redacted."""
    click.echo(redact(text), err=err, nl=nl)


def finish(code: int) -> None:
    sys.exit(code)


def show(
    run: R, saved: Path | None, fmt: str, as_text_fn: Callable[[R, Console], None], out: Path | None = None
) -> None:
    """Print a run as text or as a report (json, md, html, junit), write the report files to `out` when
    asked, and exit with the run's code. Reports are written only for a finished run, each atomically; a
    report the disk will not take is said, after the summary, and the exit is 4 (its record is not kept)."""
    written: list[Path] = []
    unwritten = None
    try:
        written = write_reports(run, out) if out is not None else []
    except OSError as exc:
        unwritten = f"the reports could not be written to {out} ({exc.strerror or exc})"
    if fmt == "text":
        as_text_fn(run, console())
        echo(f"result: {saved}" if saved is not None else "result: not written (see above)")
        for path in written:
            echo(f"report: {path}")
    else:
        echo(render_report(run, fmt), nl=False)
    if unwritten:
        echo(f"error: {unwritten}", err=True)
    notifications(run)
    finish(RECORD_LOST if unwritten and run.exit_code in (0, 1, 3) else run.exit_code)


def notifications(run: Any) -> None:
    """On stderr: each notification sent, and each that could not be delivered (the exit code says so too)."""
    for sent in getattr(run, "notified", []):
        echo(f"notified: {sent}", err=True)
    for error in getattr(run, "notify_errors", []):
        echo(f"error: {error}", err=True)


def show_hosts(listed: HostList, fmt: str) -> None:
    """--list-hosts: the hosts, their groups and batches (JSON with --format json), and exit 0."""
    doc = listed.to_dict()
    if fmt == "json":
        echo(json.dumps(doc, indent=2))
        finish(0)
    echo(f"hosts ({len(doc['hosts'])}) of {listed.inventory}:")
    width = max(len(h["name"]) for h in doc["hosts"])
    for h in doc["hosts"]:
        batch = f"  batch {h['batch']}" if h["batch"] else ""
        echo(f"  {h['name']:{width}}{batch}  groups: {', '.join(h['groups'])}")
    if listed.batches:
        echo(as_text.plan_line(listed.batches, listed.max_fail or 0))
    if listed.probed_last:
        echo("note: the rolling policy's `last` moves some hosts to the end once asked, when the apply starts")
    finish(0)


def writable_out(out: Path | None) -> None:
    """--out is checked before any host is touched (a dry write): a report that cannot be written fails now,
    not after."""
    if out is not None:
        check_room(out, "reports", field="--out")
