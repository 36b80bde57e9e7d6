"""`opsrun history`: the past runs of a project, or one run's document."""

from __future__ import annotations

import json

import click

from opsrun import history as history_module
from opsrun.cli.options import FORMAT, pass_project, state_url
from opsrun.cli.output import console, echo
from opsrun.project import Project
from opsrun.reports import as_text


@click.command()
@click.argument("args", nargs=-1, metavar="[INVENTORY] | show RUN_ID")
@FORMAT
@pass_project
@click.pass_context
def history(ctx: click.Context, project: Project, args: tuple[str, ...], fmt: str) -> None:
    """List past runs (newest first), or show one: `opsrun history show RUN_ID`."""
    state = state_url(ctx)
    if args[:1] == ("show",):
        if len(args) != 2 or not args[1].isdigit():
            raise click.UsageError("usage: opsrun history show RUN_ID")
        doc = history_module.run_document(project, state, int(args[1]))
        if fmt == "json":
            echo(json.dumps(doc, indent=2))
        else:
            as_text.run_document(doc, console())
        return
    if len(args) > 1:
        raise click.UsageError("usage: opsrun history [INVENTORY] | opsrun history show RUN_ID")
    rows = history_module.runs(project, state, args[0] if args else None)
    if fmt == "json":
        echo(json.dumps({"runs": [vars(r) for r in rows]}, indent=2))
    else:
        as_text.history(rows, console())
