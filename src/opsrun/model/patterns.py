"""Host patterns as Ansible writes them, resolved against an inventory's hosts and real groups.

A pattern is terms joined by `,` or `:` (each --limit given adds its terms, so repeated --limit is a union):

    web1          a host            web       a group (one the inventory puts hosts in)
    web*          a glob over host and group names      ~web[0-9]+   a regular expression, likewise
    all, *        every host        @FILE     the patterns of FILE, one a line (# comments)
    !web2         leave these out   &staging  keep only the hosts also in these

As in Ansible, the plain terms are joined first, then each `&` narrows them and each `!` takes hosts
away; only `!` and `&` terms start from every host. A term that matches nothing is an error (a typo in an
exclusion must not widen a run), as is a pattern that leaves no host; the fix lists the inventory's
hosts and groups. The hosts come back in inventory order.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from opsrun.errors import ConfigError

if TYPE_CHECKING:
    from opsrun.model.inventory import Inventory

GLOB = re.compile(r"[*?\[]")
LISTED = 12  # hosts named in an error's fix before "and N more"


def terms(limits: Iterable[str]) -> list[str]:
    """Every term of the given --limit values, in order, `@FILE` read in place."""
    out: list[str] = []
    for limit in limits:
        for part in re.split(r"[,:]", limit):
            term = part.strip()
            if term.startswith("@"):
                out += terms(_read(term[1:]))
            elif term:
                out.append(term)
    return out


def _read(name: str) -> list[str]:
    path = Path(name).expanduser()
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(
            path,
            f"cannot read the host patterns: {getattr(exc, 'strerror', None) or exc}.",
            field="--limit",
            fix="give @FILE of a readable text file, one host or pattern a line",
        ) from None
    return [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]


def groups(inv: Inventory) -> dict[str, list[str]]:
    """The groups the inventory puts hosts in (a group_data file of a group it lacks is none of them)."""
    return {name: [_name(h) for h in hosts] for name, (hosts, _data) in inv.groups.items() if hosts}


def _name(entry: object) -> str:
    return entry[0] if isinstance(entry, tuple) else str(entry)


def choices(inv: Inventory) -> str:
    """What a --limit of this inventory can name: its hosts (the first few) and its groups."""
    names = list(inv.hosts)
    shown = ", ".join(names[:LISTED]) + (f" and {len(names) - LISTED} more" if len(names) > LISTED else "")
    return f"name hosts ({shown}), groups ({', '.join(groups(inv))}) or patterns (NAME*, !HOST, GROUP:&GROUP, @FILE)"


def select(inv: Inventory, limits: Iterable[str]) -> list[str]:
    """The hosts the --limit values name, in inventory order; ConfigError for a term that names nothing."""
    limits = list(limits)
    found = terms(limits)
    shown = ",".join(limits)
    if not found:
        raise ConfigError(inv.path, f"{shown!r} names no host or group.", field="--limit", fix=choices(inv))
    plain = [t for t in found if t[0] not in "!&"]
    chosen = set(inv.hosts) if not plain else set().union(*(_match(inv, t) for t in plain))
    for term in (t for t in found if t[0] == "&"):
        chosen &= _match(inv, term[1:])
    for term in (t for t in found if t[0] == "!"):
        chosen -= _match(inv, term[1:])
    if not chosen:
        raise ConfigError(inv.path, f"{shown!r} leaves no host.", field="--limit", fix=choices(inv))
    return [h for h in inv.hosts if h in chosen]


def _match(inv: Inventory, term: str) -> set[str]:
    """The hosts one term (without its `!` or `&`) names."""
    real = groups(inv)
    if term in ("all", "*"):
        return set(inv.hosts)
    if term in real:
        return set(real[term])
    if term in inv.hosts:
        return {term}
    if term.startswith("~"):
        try:
            pattern = re.compile(term[1:])
        except re.error as exc:
            raise ConfigError(
                inv.path,
                f"{term!r} is not a regular expression: {exc}.",
                field="--limit",
                fix="write a Python regular expression after ~, e.g. ~web[0-9]+",
            ) from None
        hit = pattern.search
    elif GLOB.search(term):
        hit = re.compile(fnmatch.translate(term)).match
    else:
        hit = None
    found = set() if hit is None else {h for h in inv.hosts if hit(h)}
    found |= {h for g, members in real.items() if hit is not None and hit(g) for h in members}
    if not found:
        empty = f" (group {term} has no hosts in {inv.name})" if term in inv.groups else ""
        raise ConfigError(inv.path, f"{term!r} matches no host or group{empty}.", field="--limit", fix=choices(inv))
    return found
