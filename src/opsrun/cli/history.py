"""`opsrun history`: the past runs of a project (`history [INVENTORY]`), or one run's document (`history show`)."""

from __future__ import annotations

import json

import click

from opsrun.checks import history as history_module
from opsrun.cli.options import FORMAT, VERBOSITY, complete_names, pass_project, state_retry, state_url
from opsrun.cli.output import console, echo
from opsrun.model import documents
from opsrun.model.project import Project
from opsrun.reports import as_text


class _ListUnlessShow(click.Group):
    """`opsrun history lab` lists lab's runs: a first word that is no subcommand is `list`'s INVENTORY."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        words = [a for i, a in enumerate(args) if not a.startswith("-") and (i == 0 or args[i - 1] != "--format")]
        if words and words[0] not in self.commands:
            args = ["list", *args]
        return super().parse_args(ctx, args)


@click.group(cls=_ListUnlessShow, invoke_without_command=True)
@FORMAT
@VERBOSITY
@click.pass_context
def history(ctx: click.Context, fmt: str) -> None:
    """List past runs (newest first): `opsrun history [INVENTORY]`; show one: `opsrun history show RUN_ID`."""
    ctx.meta["history.format"] = fmt
    if ctx.invoked_subcommand is None:
        ctx.invoke(list_runs, inventory=None, fmt=fmt)


def _format(ctx: click.Context, fmt: str | None) -> str:
    return fmt or str(ctx.meta.get("history.format", "text"))


FORMAT_HERE = click.option("--format", "fmt", type=click.Choice(["text", "json"]), help="json: one JSON document.")


@history.command("list")
@click.argument("inventory", required=False, shell_complete=complete_names("inventory"))
@FORMAT_HERE
@pass_project
@click.pass_context
def list_runs(ctx: click.Context, /, project: Project, inventory: str | None, fmt: str | None) -> None:
    """The latest runs (newest first), of INVENTORY or of all: apply, verify, drift and dr-test."""
    rows = history_module.runs(project, state_url(ctx), inventory, retry=state_retry(ctx))
    if _format(ctx, fmt) == "json":
        echo(json.dumps({"runs": [vars(r) for r in rows]}, indent=2))
    else:
        as_text.history(rows, console())


@history.command("show")
@click.argument("run_id", type=int)
@FORMAT_HERE
@pass_project
@click.pass_context
def show_run(ctx: click.Context, /, project: Project, run_id: int, fmt: str | None) -> None:
    """One recorded run's document: its hosts, stages, plan, and the --data it was given."""
    doc = history_module.run_document(project, state_url(ctx), run_id, retry=state_retry(ctx))
    if _format(ctx, fmt) == "json":
        echo(json.dumps(documents.dump(doc), indent=2))
    else:
        as_text.run_document(doc, console())
