"""The options several commands share, and the group's --project, --state and --state-retry handed down to the
commands."""

from __future__ import annotations

from collections.abc import Callable
from functools import update_wrapper
from pathlib import Path
from typing import Any, TypeVar

import click
from click.shell_completion import CompletionItem

from opsrun.errors import ConfigError
from opsrun.model.inventory import data_overrides
from opsrun.model.project import Project
from opsrun.reports import REPORT_FORMATS
from opsrun.runs.options import Options
from opsrun.settings import deadlines
from opsrun.store import RETRY
from opsrun.support import logs

F = TypeVar("F", bound=Callable[..., Any])


def stack(*options: Callable[[F], F]) -> Callable[[F], F]:
    """Several options as one decorator, listed in `--help` in the order given."""

    def decorate(f: F) -> F:
        for option in reversed(options):
            f = option(f)
        return f

    return decorate


def complete_names(kind: str) -> Callable[[click.Context, click.Parameter, str], list[CompletionItem]]:
    """Shell completion of the project's inventories, deploys or suites (the project as --project finds it)."""

    def complete(ctx: click.Context, _param: click.Parameter, incomplete: str) -> list[CompletionItem]:
        try:
            project = Project.find(ctx.find_root().params.get("project"))
        except ConfigError:
            return []
        names = {"inventory": project.inventories, "deploy": project.deploys, "suite": project.suites}[kind]()
        return [CompletionItem(n) for n in names if n.startswith(incomplete)]

    return complete


INVENTORY = click.argument("inventory", shell_complete=complete_names("inventory"))
DEPLOY = click.argument("deploy", shell_complete=complete_names("deploy"))
DEPLOYS = click.argument("deploys", nargs=-1, shell_complete=complete_names("deploy"))
SUITE = click.argument("suite", shell_complete=complete_names("suite"))


def _verbose(_ctx: click.Context, _param: click.Parameter, value: int) -> None:
    if value:
        logs.set_level(max(logs.level(), 0) + value)


def _quiet(_ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value:
        logs.set_level(logs.QUIET)


VERBOSITY = stack(
    click.option(
        "-v",
        "--verbose",
        count=True,
        expose_value=False,
        callback=_verbose,
        help="More output: -v pyinfra's progress per host, -vv every log line as written (also in "
        ".opsrun/debug.log), opsrun's own commands on hosts too.",
    ),
    click.option(
        "-q", "--quiet", is_flag=True, expose_value=False, callback=_quiet, help="Only the result and errors."
    ),
)


def format_option(choices: list[str], help_text: str) -> Callable[[F], F]:
    """--format: what goes to stdout, `text` unless it says otherwise."""
    return click.option(
        "--format", "fmt", type=click.Choice(choices), default="text", show_default=True, help=help_text
    )


FORMAT = format_option(["text", "json"], "json: one JSON document on stdout.")
REPORT_FORMAT = format_option(
    ["text", *REPORT_FORMATS],
    "What goes to stdout: text, or the report as json, md, html (one self-contained file) or junit (XML).",
)
DR_FORMAT = format_option(
    ["text", *REPORT_FORMATS], "What goes to stdout: text (the Markdown report), json, md, html or junit (XML)."
)
OUT = click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    help="Also write the report to this folder in every format (.json .md .html .xml), each file atomically.",
)
LIMIT = click.option(
    "-l",
    "--limit",
    multiple=True,
    metavar="PATTERN",
    help="The hosts, as Ansible writes them: names, groups, globs (web*), !exclude, &intersect, ~regex, @FILE; "
    "comma-separated or repeated (a union). Default: every host.",
)
LIST_HOSTS = click.option(
    "--list-hosts", is_flag=True, help="Print the hosts this would work on, their groups and batches; connect to none."
)
DATA = click.option(
    "-e",
    "--data",
    multiple=True,
    metavar="KEY=VALUE",
    help="Over group_data for this run (repeatable), checked by the same schema and kept in the run's history. "
    'VALUE is JSON or a Python literal (512, true, ["a"]), else a string.',
)
FORKS = click.option(
    "-f",
    "--forks",
    "--concurrency",
    "forks",
    type=click.IntRange(1, 1024),
    metavar="N",
    help="At most N hosts at once (pyinfra's --parallel). Default: every host of a batch; verify 16.",
)
DEADLINE = click.option(
    "--deadline",
    "deadline",
    multiple=True,
    metavar="STAGE=SECONDS",
    help="Per-host deadline for connect, apply or verify (repeatable), over group_data `deadlines`.",
)
ALLOW_UNREACHABLE = click.option(
    "--allow-unreachable",
    is_flag=True,
    help="Hosts that cannot be reached are listed, not failed (default: any such host fails the run, exit 1).",
)
# who hears of a drift run, a DR test, an apply or a rollback (opsrun.notify); group_data `notify` adds PagerDuty
# (drift, dr-test) without an option
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
# what every command on an inventory's hosts takes (see `run_options`)
HOSTS = stack(LIMIT, LIST_HOSTS, DATA, FORKS, DEADLINE, ALLOW_UNREACHABLE)
# the report of a run: to stdout in one format, to a folder in all
REPORTED = stack(REPORT_FORMAT, OUT)

HOSTS_KEYS = ("limit", "list_hosts", "data", "forks", "deadline", "allow_unreachable")


def run_options(given: dict[str, Any], *, diff: bool = False) -> tuple[Options, bool]:
    """HOSTS' values as the run's Options, and whether --list-hosts was asked."""
    return (
        Options(
            limit=tuple(given["limit"]),
            data=data_overrides(given["data"]),
            forks=given["forks"],
            deadlines=deadlines.parse_overrides(given["deadline"]),
            allow_unreachable=given["allow_unreachable"],
            diff=diff,
        ),
        bool(given["list_hosts"]),
    )


class ProjectRef:
    """The --project, --state and --state-retry options, resolved only by the commands that need an ops repo
    (not `lab`)."""

    def __init__(self, path: str | None, state: str | None = None, state_retry: float = RETRY):
        self.path = path
        self.state = state
        self.state_retry = state_retry

    def get(self) -> Project:
        project = Project.find(self.path)
        logs.setup(project.state_dir / "debug.log")
        return project


def pass_project(f: F) -> F:
    @click.pass_context
    def wrapper(ctx: click.Context, *args: Any, **kwargs: Any) -> Any:
        return ctx.invoke(f, ctx.ensure_object(ProjectRef).get(), *args, **kwargs)

    return update_wrapper(wrapper, f)  # type: ignore[return-value]


def state_url(ctx: click.Context) -> str | None:
    """The --state URL given to the group (None: SQLite in the project)."""
    return ctx.find_object(ProjectRef).state  # type: ignore[union-attr]


def state_retry(ctx: click.Context) -> float:
    """The --state-retry seconds given to the group: how long a store that stopped answering is retried."""
    return ctx.find_object(ProjectRef).state_retry  # type: ignore[union-attr]
