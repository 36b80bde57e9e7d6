"""What re-applying a deploy cannot undo, undone by the rollback itself: the packages later runs upgraded
are installed again at the versions those runs recorded (apt, downgrades allowed, configuration files kept)
and held there, so that the next patch run does not bring the bad version straight back
(`apt-mark unhold PACKAGE` once a fixed version is published).

Before a host's drain, its archive is asked for those versions (`apt-cache madison`, after refreshing the
package lists): a version it no longer has refuses that host at stage "check", untouched and serving.
After the deploy's own apply, the downgrade is one more operation in that host's result.
"""

from __future__ import annotations

import re
import shlex
import subprocess
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from opsrun.hosts.remote import Remote
from opsrun.model.inventory import Inventory
from opsrun.model.results import DeployRun, OperationResult
from opsrun.rollout.stages import StageRunners, parallel
from opsrun.settings.deadlines import Deadlines

MADISON_LINE = re.compile(r"^\s*(\S+)\s*\|\s*(\S+)\s*\|")
APT = (
    "DEBIAN_FRONTEND=noninteractive NEEDRESTART_MODE=a apt-get install -y -q --allow-downgrades "
    "-o Dpkg::Options::=--force-confold -o Dpkg::Options::=--force-confdef"
)
CHECK_TIMEOUT = 300.0  # seconds for a host's package lists to refresh and its archive to answer
OUTPUT_LINES = 40


def available(output: str) -> dict[str, set[str]]:
    """`apt-cache madison` output as package -> the versions its archives offer."""
    found: dict[str, set[str]] = {}
    for line in output.splitlines():
        if m := MADISON_LINE.match(line):
            found.setdefault(m.group(1), set()).add(m.group(2))
    return found


def missing(wanted: dict[str, str], offered: dict[str, set[str]]) -> str | None:
    """Why a host cannot go back (the versions its archive lacks, and what it offers), or None."""
    lacking = {p: v for p, v in sorted(wanted.items()) if v not in offered.get(p, set())}
    if not lacking:
        return None
    said = "; ".join(
        f"{p} {v} (it offers {', '.join(sorted(offered.get(p, set()))) or 'no version'})" for p, v in lacking.items()
    )
    return f"the archive no longer has {said}: left untouched (publish that version again, or go back by hand)"


def install_command(versions: dict[str, str]) -> str:
    pins = " ".join(shlex.quote(f"{p}={v}") for p, v in sorted(versions.items()))
    names = " ".join(shlex.quote(p) for p in sorted(versions))
    return f"{APT} {pins} && apt-mark hold {names}"


class Downgrades:
    """The packages each host goes back to (host -> package -> version), checked and installed over SSH."""

    def __init__(
        self, inv: Inventory, versions: dict[str, dict[str, str]], remote: Callable[..., Any] = Remote
    ) -> None:
        self.inv, self.versions, self.remote = inv, {h: v for h, v in versions.items() if v}, remote

    def runners(self, base: StageRunners) -> StageRunners:
        """`base` with the check before the drain and the downgrade after the apply (nothing to do: `base`)."""
        if not self.versions:
            return base
        return replace(base, check=self.check, apply=self._after(base.apply))

    def check(self, hosts: list[str]) -> dict[str, str | None]:
        problems: dict[str, str | None] = {}

        def one(host: str) -> None:
            wanted = self.versions.get(host)
            if not wanted:
                problems[host] = None
                return
            names = " ".join(shlex.quote(p) for p in sorted(wanted))
            command = f"apt-get update -qq >/dev/null 2>&1; LC_ALL=C apt-cache madison {names}"
            rc, out, err = self.remote(self.inv, host, timeout=CHECK_TIMEOUT).run(command)
            problems[host] = f"apt-cache madison failed: {err.strip()}" if rc != 0 else missing(wanted, available(out))

        for host, exc in parallel(hosts, one).items():
            if exc is not None:
                problems[host] = f"could not ask its archive for the versions to go back to: {exc}"
        return problems

    def install(self, host: str, timeout: float) -> OperationResult:
        wanted = self.versions[host]
        name = "Downgrade " + ", ".join(f"{p} to {v}" for p, v in sorted(wanted.items())) + " (held there)"
        command = install_command(wanted)
        try:
            rc, out, err = self.remote(self.inv, host, timeout=timeout).run(command)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return OperationResult(name, False, False, f"{type(exc).__name__}: {exc}", [command])
        lines = (out + err).splitlines()
        error = None if rc == 0 else "\n".join(lines[-10:]) or f"exit {rc}"
        changed = any(line.startswith("Unpacking ") for line in lines)
        return OperationResult(
            name, changed, rc == 0, error, [command], output=lines[-OUTPUT_LINES:] if changed else []
        )

    def _after(self, apply: Callable[..., DeployRun]) -> Callable[..., DeployRun]:
        def apply_then_downgrade(*args: Any, deadlines: Deadlines, **kwargs: Any) -> DeployRun:
            run = apply(*args, deadlines=deadlines, **kwargs)
            todo = [h.name for h in run.hosts if not h.failed and h.name in self.versions]
            done: dict[str, OperationResult] = {}
            parallel(todo, lambda h: done.__setitem__(h, self.install(h, deadlines.of(h, "apply"))))
            return replace(
                run,
                hosts=[
                    replace(h, operations=[*h.operations, done[h.name]]) if h.name in done else h for h in run.hosts
                ],
            )

        return apply_then_downgrade
