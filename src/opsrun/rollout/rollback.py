"""Rollback planning, pure: from the recorded applies of a deploy (newest first), the revision to go back
to, the hosts that later runs changed (newest first, each with the revision it is on) and the packages
those runs upgraded on them (back to the versions they had). No I/O: the store's documents come in.

By default the way back is the last good state before the newest change: the newest apply that changed a
host (a rollback's own run never counts as a change to undo) is undone by going back to the newest
successful apply before it, whatever its revision (a patch changes hosts without changing the repo).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from opsrun.errors import ConfigError
from opsrun.model.results import RolloutRun
from opsrun.model.revisions import commit_of

# a stage a host got to that may have changed it (connect, check and drain change nothing on a host)
CHANGING_STAGES = frozenset({"apply", "reboot", "health", "verify", "enable"})
PACKAGE = re.compile(r"^[a-z0-9][a-z0-9.+-]+$")  # Debian's package names
VERSION = re.compile(r"^[0-9][A-Za-z0-9.+~:-]*$")  # Debian's versions (epoch:upstream-revision)


def _changed(h: dict[str, Any]) -> bool:
    """Whether a host's entry in a run's document says the run may have changed it."""
    if h.get("changed") or h.get("rebooted") or h.get("upgrades"):
        return True
    if h.get("outcome") == "failed":
        return h.get("stage") in CHANGING_STAGES
    if h.get("outcome") is None:  # a parallel apply's host: it failed after operations ran
        return h.get("status") == "failed" and bool(h.get("operations"))
    return h.get("outcome") == "done" and "changed" not in h  # a dead run's record keeps no counts: assume so


@dataclass(frozen=True)
class Applied:
    """One recorded apply of a deploy, as a rollback reads it."""

    run_id: int
    revision: str | None
    status: str
    rollback: bool = False  # a run of `opsrun rollback`
    changed: tuple[str, ...] = ()  # the hosts it changed, in the order it went through them
    upgrades: dict[str, list[dict[str, str]]] = field(default_factory=dict)  # host -> [{package, from, to}]

    @classmethod
    def of(cls, run_id: int, revision: str | None, status: str, doc: dict[str, Any]) -> Applied:
        hosts: dict[str, dict[str, Any]] = doc.get("hosts") or {}
        order = sorted(hosts, key=lambda h: hosts[h].get("batch") or 0)  # stable: plan order within a batch
        marked = doc.get("rollback") or {}
        manual = bool(marked and not marked.get("automatic")) or bool((doc.get("plan") or {}).get("rollback_to"))
        return cls(
            run_id,
            revision,
            status,
            manual,
            tuple(h for h in order if _changed(hosts[h])),
            {h: list(d.get("upgrades") or []) for h, d in hosts.items() if d.get("upgrades")},
        )


@dataclass(frozen=True)
class Target:
    """Where a rollback goes: a revision (and the run that recorded it), and the hosts it changes."""

    revision: str
    run_id: int | None
    hosts: list[str]  # newest changed first
    came_from: dict[str, str | None]  # host -> the revision the newest run that changed it applied
    from_run: dict[str, int]  # host -> that run
    downgrades: dict[str, dict[str, str]]  # host -> package -> the version it had before

    def plan_lines(self) -> list[str]:
        """What the plan printed first says: to which revision, and each host from which."""
        to = f"revision {self.revision[:12]}" + (f" (run {self.run_id})" if self.run_id is not None else "")
        lines = [f"rollback to {to}: {len(self.hosts)} host(s), newest changed first"]
        for h in self.hosts:
            went = ", ".join(f"{p} back to {v}" for p, v in sorted(self.downgrades.get(h, {}).items()))
            if h in self.from_run:
                was = (self.came_from.get(h) or "an unrecorded revision")[:12]
                lines.append(f"  {h}: from {was} (run {self.from_run[h]})" + (f"; {went}" if went else ""))
            else:
                lines.append(f"  {h}: no recorded run changed it")
        return lines


def choose(
    applied: list[Applied], *, where: str, to_run: int | None = None, revision: str | None = None
) -> tuple[Applied | None, list[Applied]]:
    """The run to go back to (None: `revision`, which no run recorded) and the runs after it, newest first.
    `revision` is a full commit id; a recorded "+dirty" revision matches its snapshot commit."""
    if to_run is not None:
        found = next((a for a in applied if a.run_id == to_run), None)
        if found is None:
            raise ConfigError(
                where,
                f"no apply of this deploy on this inventory is run {to_run}.",
                field="--to",
                fix="pick a run id that `opsrun history` lists for this inventory and deploy",
            )
        if found.revision is None:
            raise ConfigError(
                where,
                f"run {to_run} recorded no revision (it was applied from outside git).",
                field="--to",
                fix="pick a run that recorded one, or --revision REV",
            )
        target: Applied | None = found
    elif revision is not None:
        target = next((a for a in applied if a.revision and commit_of(a.revision) == revision), None)
    else:
        target = _last_good(applied, where)
    later = applied if target is None else applied[: applied.index(target)]
    return target, later


def _last_good(applied: list[Applied], where: str) -> Applied:
    """The newest successful apply before the newest change."""
    newest = next((a for a in applied if a.changed and not a.rollback), None)
    if newest is None:
        raise ConfigError(
            where,
            "no recorded apply of this deploy on this inventory changed a host: there is nothing to roll back.",
            fix="see `opsrun history`; --revision REV applies a revision",
        )
    older = applied[applied.index(newest) + 1 :]
    good = next((a for a in older if a.status == "success" and a.revision), None)
    if good is None:
        raise ConfigError(
            where,
            f"no successful apply with a recorded revision before run {newest.run_id}: there is no good state "
            "recorded to go back to.",
            fix="name one with --revision REV (a commit of the ops repo)",
        )
    return good


def target(revision: str, run: Applied | None, later: list[Applied], hosts: list[str]) -> Target:
    """The rollback of the hosts `later` runs changed (among `hosts`, the inventory's; every one of those
    when no recorded run is the target) to `revision`."""
    order: list[str] = []
    came_from: dict[str, str | None] = {}
    from_run: dict[str, int] = {}
    for a in later:  # newest first; within a run, the host it changed last first
        for h in reversed(a.changed):
            if h in hosts and h not in came_from:
                order.append(h)
                came_from[h], from_run[h] = a.revision, a.run_id
    if run is None:  # a revision no run recorded: every host may differ from it
        order += [h for h in hosts if h not in came_from]
    return Target(revision, run.run_id if run else None, order, came_from, from_run, downgrades(later, order))


def downgrades(later: list[Applied], hosts: list[str]) -> dict[str, dict[str, str]]:
    """Per host, each package the `later` runs upgraded, at the version it had before the first of them."""
    wanted: dict[str, dict[str, str]] = {}
    for a in reversed(later):  # oldest first: the first "from" of a package is the version it had
        for h in hosts:
            for up in a.upgrades.get(h, []):
                wanted.setdefault(h, {}).setdefault(str(up["package"]), str(up["from"]))
    return {h: checked(v) for h, v in wanted.items()}


def checked(versions: dict[str, str]) -> dict[str, str]:
    """Package names and versions as Debian writes them, or refused (they become an apt command line)."""
    bad = {p: v for p, v in versions.items() if not PACKAGE.match(p) or not VERSION.match(v)}
    if bad:
        raise ConfigError(
            "the run history",
            f"recorded package versions that are not Debian names and versions: {bad}.",
            fix="roll back with --revision REV and downgrade those packages by hand",
        )
    return versions


def changed_newest_first(run: RolloutRun) -> list[str]:
    """The hosts a rollout changed and the hosts that failed in it (unless never reached), the newest first:
    later batches first, and within a batch the later host first."""
    order = list(run.hosts.values())
    touched = [
        h
        for h in order
        if (h.outcome == "done" and (h.run is None or h.run.changed_count or h.rebooted))
        or (h.outcome == "failed" and h.stage != "connect")  # the failed host, unless it was never reached
    ]
    return [h.name for h in sorted(touched, key=lambda h: (-h.batch, -order.index(h)))]
