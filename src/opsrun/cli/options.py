"""The options several commands share, and the group's --project and --state handed down to the commands."""

from __future__ import annotations

from collections.abc import Callable
from functools import update_wrapper
from pathlib import Path
from typing import Any, TypeVar

import click

from opsrun.project import Project
from opsrun.reports import REPORT_FORMATS

F = TypeVar("F", bound=Callable[..., Any])


def stack(*options: Callable[[F], F]) -> Callable[[F], F]:
    """Several options as one decorator, listed in `--help` in the order given."""

    def decorate(f: F) -> F:
        for option in reversed(options):
            f = option(f)
        return f

    return decorate


FORMAT = click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="json: one JSON document on stdout.",
)
REPORT_FORMAT = click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", *REPORT_FORMATS]),
    default="text",
    show_default=True,
    help="What goes to stdout: text, or the report as json, md, html (one self-contained file) or junit (XML).",
)
OUT = click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    help="Also write the report to this folder in every format (.json .md .html .xml), each file atomically.",
)
LIMIT = click.option("--limit", metavar="HOSTS", help="Comma-separated host names, groups or globs.")
DEADLINE = click.option(
    "--deadline",
    "deadline",
    multiple=True,
    metavar="STAGE=SECONDS",
    help="Per-host deadline for connect, apply or verify (repeatable), over group_data `deadlines`.",
)
CONCURRENCY = click.option(
    "--concurrency",
    type=click.IntRange(1, 512),
    default=16,
    show_default=True,
    help="Hosts verified at once (each one SSH session).",
)
# who hears of a drift run or a DR test (opsrun.notify); group_data `notify` adds PagerDuty without an option
NOTIFY = stack(
    click.option(
        "--notify",
        "notify_targets",
        multiple=True,
        metavar="sns:ARN|webhook:URL|pagerduty[:ENV]",
        help="Tell this target of the run's outcome (repeatable): SNS and webhooks when the status changed since "
        "the last run, PagerDuty by its open alert (routing key from $ENV, default OPSRUN_PAGERDUTY_ROUTING_KEY).",
    ),
    click.option("--notify-always", is_flag=True, help="Notify after every run, not only on a change."),
)
# the report of a run: to stdout in one format, to a folder in all
REPORTED = stack(REPORT_FORMAT, OUT)
# the options of a command that checks hosts many at once (verify, drift), last in its --help
CHECKING = stack(DEADLINE, CONCURRENCY, REPORTED)


class ProjectRef:
    """The --project and --state options, resolved only by the commands that need an ops repo (not `lab`)."""

    def __init__(self, path: str | None, state: str | None = None):
        self.path = path
        self.state = state

    def get(self) -> Project:
        return Project.find(self.path)


def pass_project(f: F) -> F:
    @click.pass_context
    def wrapper(ctx: click.Context, *args: Any, **kwargs: Any) -> Any:
        return ctx.invoke(f, ctx.ensure_object(ProjectRef).get(), *args, **kwargs)

    return update_wrapper(wrapper, f)  # type: ignore[return-value]


def state_url(ctx: click.Context) -> str | None:
    """The --state URL given to the group (None: SQLite in the project)."""
    return ctx.find_object(ProjectRef).state  # type: ignore[union-attr]
