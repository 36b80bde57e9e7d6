"""The `opsrun` command's entry point: for a command that runs pyinfra workers, start the first one before
anything else (it imports pyinfra while the command line loads and checks the settings), then hand over to
the command line (opsrun.cli)."""

from __future__ import annotations

import sys
from collections.abc import Sequence

WORKER_COMMANDS = {"apply", "drift"}  # the commands whose work runs in pyinfra workers (opsrun.engine)
GROUP_OPTIONS_WITH_VALUE = {"--project", "--state", "--state-retry"}  # opsrun's own options before the command


def command_of(args: Sequence[str]) -> str | None:
    """The command that `args` (argv without the program) names, or None: the first word that is neither an
    option of the group nor such an option's value."""
    words = iter(args)
    for word in words:
        if word in GROUP_OPTIONS_WITH_VALUE:
            next(words, None)
        elif not word.startswith("-"):
            return word
    return None


def main() -> None:
    args = sys.argv[1:]
    if command_of(args) in WORKER_COMMANDS and not {"--help", "-h", "--list-hosts"} & set(args):
        from opsrun.engine import spare

        spare.prestart()
    from opsrun.cli import main as cli_main

    cli_main()
