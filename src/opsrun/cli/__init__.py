"""opsrun's command line: parse, make one call, render, exit with the code of the outcome or the error.

Exit codes (the same whatever --format; docs/exit-codes.md): 0 success (drift: clean), 1 a host, check or
verification failed, or a host could not be reached (unless --allow-unreachable), or a drift run could not
see; 2 usage or configuration error (or the inventory or a host is held by another run, or .opsrun/ is
unusable or full), 3 drift found, 4 the run's record could not be kept (the state store did not answer within
--state-retry, or the controller's disk filled: the summary says what is true and where the outcome was kept),
130 interrupted (SIGINT/SIGTERM: stopped at a safe point; a second one stops now).

The group is here; its commands are in `fleet` (apply, rollback, verify, drift, dr-test; `signals` turns
SIGINT and SIGTERM into their stop), `history`, `holds` (hold, release) and `lab`.
"""

from __future__ import annotations

import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any, NoReturn

import click

from opsrun.cli.fleet import apply, dr_test, drift, rollback, verify
from opsrun.cli.history import history
from opsrun.cli.holds import hold, release
from opsrun.cli.lab import lab
from opsrun.cli.options import VERBOSITY, ProjectRef
from opsrun.cli.output import echo
from opsrun.errors import OpsrunError
from opsrun.model.project import Project
from opsrun.model.secrets import redact, register_url
from opsrun.store import RETRY
from opsrun.support import logs


class OpsrunGroup(click.Group):
    """Turns a known error into one line on stderr and its exit code (ConfigError: 2)."""

    def make_context(
        self, info_name: str | None, args: list[str], parent: click.Context | None = None, **extra: Any
    ) -> click.Context:
        logs.set_level(logs.NORMAL)  # each command line starts at the default (-v, -q are read after this)
        return super().make_context(info_name, args, parent, **extra)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            with logs.kept_as_found():
                return super().invoke(ctx)
        except OpsrunError as exc:
            echo(f"error: {exc}", err=True)
            raise click.exceptions.Exit(exc.exit_code) from exc
        except (click.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except Exception:  # noqa: BLE001 - the boundary: anything unexpected goes to the project's debug log
            _internal_error(ctx.find_object(ProjectRef))


@click.group(cls=OpsrunGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--project",
    type=click.Path(file_okay=False),
    envvar="OPSRUN_PROJECT",
    help="The ops repo (inventories/, deploys/, ...). Default: the current folder or a parent.",
)
@click.option(
    "--state",
    metavar="URL",
    envvar="OPSRUN_STATE",
    help="Run history and locks: postgresql://... Default: SQLite in .opsrun/state.db.",
)
@click.option(
    "--state-retry",
    metavar="SECONDS",
    type=click.FloatRange(0, 3600),
    default=RETRY,
    show_default=True,
    envvar="OPSRUN_STATE_RETRY",
    help="How long a state store that stops answering is retried (with backoff) before a run stops safely.",
)
@VERBOSITY
@click.version_option(package_name="opsrun")
@click.pass_context
def cli(ctx: click.Context, project: str | None, state: str | None, state_retry: float) -> None:
    """Runbooks as code: roll pyinfra deploys over a fleet, verify with testinfra, report.

    Shell completion of commands, inventories, deploys and suites (bash; zsh and fish alike):
    eval "$(_OPSRUN_COMPLETE=bash_source opsrun)" in ~/.bashrc."""
    if state:
        register_url(state)  # its password and query are masked in whatever is printed from now on
    ctx.obj = ProjectRef(project, state, state_retry)


cli.add_command(apply)
cli.add_command(rollback)
cli.add_command(verify)
cli.add_command(drift)
cli.add_command(dr_test)
cli.add_command(history)
cli.add_command(hold)
cli.add_command(release)
cli.add_command(lab)


def main() -> None:
    """Entry point: click handles usage errors and exit codes; anything unexpected goes to the debug log."""
    try:
        cli.main(prog_name="opsrun")
    except Exception:  # noqa: BLE001 - raised before a command ran (no options parsed): the same log
        _internal_error(ProjectRef(os.environ.get("OPSRUN_PROJECT")))


def _internal_error(ref: ProjectRef | None) -> NoReturn:
    """The traceback (secrets redacted) appended to the project's .opsrun/debug.log, where --project,
    OPSRUN_PROJECT or the current folder finds the project (the current folder's .opsrun/ when none), and
    one line on stderr saying where it went. Exit 1."""
    try:
        root = Project.find(ref.path if ref else None).root
    except OpsrunError:
        root = Path.cwd()
    log = root / ".opsrun" / "debug.log"
    try:
        log.parent.mkdir(exist_ok=True)
        with log.open("a") as f:
            f.write(f"--- {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} {redact(' '.join(sys.argv))}\n")
            f.write(redact(traceback.format_exc()))
        where = f"details in {log.resolve()}"
    except OSError:
        where = "\n" + redact(traceback.format_exc())
    echo(f"internal error: {sys.exc_info()[1]!r}; {where}", err=True)
    sys.exit(1)
