"""`opsrun hold` and `opsrun release`: mark a host as out of its balancer on purpose, and remove the mark."""

from __future__ import annotations

import click

from opsrun.checks import membership
from opsrun.cli.options import pass_project, state_url
from opsrun.cli.output import echo
from opsrun.model.project import Project


@click.command()
@click.argument("inventory")
@click.argument("host")
@click.option("--reason", required=True, help="Why the host is out of its balancer (shown in drift reports).")
@pass_project
@click.pass_context
def hold(ctx: click.Context, project: Project, inventory: str, host: str, reason: str) -> None:
    """Mark HOST as drained on purpose: drift reports it as intentional, not drift, until `opsrun release`.
    Only the mark: drain the host yourself."""
    held = membership.hold(project, inventory, host, reason, state_url(ctx))
    echo(f"{host} of {inventory}: {held}")


@click.command()
@click.argument("inventory")
@click.argument("host")
@pass_project
@click.pass_context
def release(ctx: click.Context, project: Project, inventory: str, host: str) -> None:
    """Remove HOST's hold mark: drift reports it again when it is out of its balancer."""
    was = membership.release(project, inventory, host, state_url(ctx))
    echo(f"{host} of {inventory}: released (was {was})" if was else f"{host} of {inventory}: was not held")
