"""The command reference page, read from opsrun's click command tree: every command, its usage, its help
text and each option as `--help` prints it (hidden options stay hidden)."""

from __future__ import annotations

from collections.abc import Iterator

import click

from opsrun.docgen.markdown import cell, paragraphs

INTRO = """\
Every command and option of `opsrun`, as `opsrun COMMAND --help` prints them. Options of `opsrun` itself
(`--project`, `--state`) go before the command: `opsrun --state postgresql://... history`. `-h` is `--help`
everywhere.

Shell completion of commands, inventories, deploys and suites: add
`eval "$(_OPSRUN_COMPLETE=bash_source opsrun)"` to `~/.bashrc` (zsh: `zsh_source`, fish: `fish_source`).
Exit codes are in [Exit codes](../exit-codes.md)."""


def contexts(command: click.Command, name: str, parent: click.Context | None = None) -> Iterator[click.Context]:
    """A context for `command` and for every command under it, depth first, in `--help`'s order."""
    ctx = click.Context(command, info_name=name, parent=parent, **command.context_settings)
    yield ctx
    if isinstance(command, click.Group):
        for sub in command.list_commands(ctx):
            found = command.get_command(ctx, sub)
            if found is not None and not found.hidden:
                yield from contexts(found, sub, ctx)


def options(ctx: click.Context) -> list[tuple[str, str]]:
    """(names and value, help) of each option `--help` shows, with the environment variable that sets it."""
    rows = []
    for param in ctx.command.get_params(ctx):
        record = param.get_help_record(ctx)
        if record is None:
            continue
        names, text = record
        if isinstance(param, click.Option) and isinstance(param.envvar, str):
            text = f"{text} Environment: `{param.envvar}`."
        rows.append((names, text))
    return rows


def section(ctx: click.Context) -> str:
    """One command's section: heading, help, usage, its subcommands, its options."""
    command = ctx.command
    usage = " ".join([ctx.command_path, *command.collect_usage_pieces(ctx)])
    out = [f"## {ctx.command_path}", "", paragraphs(command.help or ""), "", "```text", usage, "```", ""]
    if isinstance(command, click.Group):
        out += ["| command | what it does |", "|---|---|"]
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            if sub is not None and not sub.hidden:
                path = f"{ctx.command_path} {name}"
                summary = sub.get_short_help_str(limit=1000)
                out.append(f"| [`{path}`](#{path.replace(' ', '-')}) | {cell(summary)} |")
        out.append("")
    rows = options(ctx)
    if rows:
        out += ["| option | what it does |", "|---|---|"]
        out += [f"| `{names}` | {cell(text)} |" for names, text in rows]
        out.append("")
    return "\n".join(out)


def page(root: click.Command, name: str = "opsrun") -> str:
    """The whole page, Markdown."""
    sections = [section(ctx) for ctx in contexts(root, name)]
    return "\n".join(["# Command reference", "", INTRO, "", *sections]).rstrip("\n") + "\n"


def commands(root: click.Command, name: str = "opsrun") -> dict[str, list[str]]:
    """Each command's path and the option strings it offers (hidden ones left out): what the page must name."""
    found = {}
    for ctx in contexts(root, name):
        found[ctx.command_path] = [
            opt
            for param in ctx.command.get_params(ctx)
            if isinstance(param, click.Option) and not param.hidden
            for opt in (*param.opts, *param.secondary_opts)
        ]
    return found
