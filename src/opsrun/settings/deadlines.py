"""Per-host deadlines for the stages that touch a host: connect, apply (a dry run too) and verify.

    deadlines = {"connect": 10, "apply": 1800, "verify": 300}     # group_data, seconds, any of the three

`--deadline STAGE=SECONDS` on the command line overrides it for every host. A host past its deadline
fails with "timed out after N s in stage S" while the other hosts finish: the engine's worker closes that
host's connection, the verifier kills that host's test process.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from opsrun.errors import ConfigError

if TYPE_CHECKING:
    from opsrun.settings import Checked

DEFAULTS = {"connect": 10.0, "apply": 1800.0, "verify": 300.0}


def timed_out(seconds: float, stage: str) -> str:
    """The one wording of a missed deadline, shared by the engine, the verifier and the reports."""
    return f"timed out after {seconds:g}s in stage {stage}"


def stopped_now(stage: str) -> str:
    """The one wording of a host whose running command the operator's second Ctrl-C ended (as a deadline would)."""
    return f"interrupted: stopped now (a second Ctrl-C) in stage {stage}"


@dataclass(frozen=True)
class Deadlines:
    per_host: dict[str, dict[str, float]]

    def of(self, host: str, stage: str) -> float:
        return self.per_host.get(host, DEFAULTS)[stage]

    def stage(self, stage: str, hosts: Iterable[str]) -> dict[str, float]:
        return {h: self.of(h, stage) for h in hosts}

    def connect_timeout(self, hosts: Iterable[str]) -> float:
        """One connect timeout for a set of hosts: the longest of their connect deadlines (10 s for none)."""
        return max(self.stage("connect", hosts).values(), default=10.0)


def _seconds(value: float, *, field: str) -> float:
    if not 0 < value <= 7 * 86400:
        raise ConfigError(
            "the command line",
            "not a number of seconds above 0 and at most a week.",
            field=field,
            fix="use --deadline STAGE=SECONDS, e.g. --deadline apply=600",
        )
    return value


def parse_overrides(values: Iterable[str]) -> dict[str, float]:
    """`--deadline apply=600` (repeatable) as {"apply": 600.0}."""
    out: dict[str, float] = {}
    for value in values:
        stage, _, number = value.partition("=")
        if stage not in DEFAULTS:
            raise ConfigError(
                "the command line",
                f"unknown stage {stage!r}.",
                field="--deadline",
                fix="use connect=S, apply=S or verify=S",
            )
        try:
            seconds = float(number)
        except ValueError:
            seconds = -1.0
        out[stage] = _seconds(seconds, field=f"--deadline {stage}")
    return out


def load(checked: Checked, hosts: Iterable[str], overrides: dict[str, float] | None = None) -> Deadlines:
    """Each host's deadlines: the defaults, group_data `deadlines` as settings.check_hosts validated it (its
    schema in opsrun.settings.models), then the command line's."""
    per_host = {}
    for host in hosts:
        given = checked[host].deadlines
        per_host[host] = {
            **DEFAULTS,
            **(given.model_dump(exclude_none=True) if given is not None else {}),
            **(overrides or {}),
        }
    return Deadlines(per_host)
