"""The rolling plan, pure arithmetic: which hosts go in which batch, and how many may fail before the
rollout stops. No I/O, and no checks: the sizes come checked by the rolling policy's schema
(settings.models.RollingPolicy), from group_data or the command line (rollout.policy).

`serial` is a count (`2`), a percentage of the rollout's hosts (`"25%"`), or a ramp
(`[1, "50%", "100%"]`): entry i sizes batch i, the last entry repeats. A percentage is rounded down, and a
batch is never empty. `max_fail` is the failure budget for the whole rollout, in hosts (`1`) or percent
(`"10%"`, rounded down); the rollout halts once more hosts than that have failed. A ramp that starts with
1 is a canary: one host alone first. With `rolling.canary` (`canary`: its `hosts`), the first batch is the
canary that is baked and judged (rollout.canary): `hosts` hosts alone when given, the rest batched as
`serial` says (percentages of the rest).

`waves` (a group-name prefix such as `"patch_"`) orders a rollout wave by wave: the hosts of each group
starting with the prefix (patch_wave1, patch_wave2, ..., in natural order) form a wave, hosts in none
form a last wave, and each wave is batched on its own (`serial` applies within the wave, so a batch never
spans two waves). The failure budget is the whole rollout's: a rollout that halts in wave 1 never starts
wave 2.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

PERCENT = re.compile(r"^(\d+(?:\.\d+)?)%$")

Size = int | str  # a count, or "N%" (checked by settings.models.RollingPolicy, group_data's and the command line's)


def resolve(size: Size, total: int) -> int:
    """A size as a number of hosts out of `total` (percentages rounded down)."""
    if isinstance(size, int):
        return size
    m = PERCENT.match(size)
    assert m is not None
    return int(total * float(m.group(1)) / 100)


def batch_sizes(serial: tuple[Size, ...], total: int) -> list[int]:
    sizes: list[int] = []
    left = total
    i = 0
    while left > 0:
        want = max(1, resolve(serial[min(i, len(serial) - 1)], total))
        sizes.append(min(want, left))
        left -= sizes[-1]
        i += 1
    return sizes


@dataclass(frozen=True)
class Plan:
    batches: tuple[tuple[str, ...], ...]
    max_fail: int  # hosts that may fail; one more halts the rollout
    waves: tuple[str, ...] = ()  # with a `waves` policy: the wave of each batch
    canary: bool = False  # the first batch is a canary, baked and judged before the next

    @property
    def hosts(self) -> list[str]:
        return [h for batch in self.batches for h in batch]

    def to_dict(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"batches": [list(b) for b in self.batches], "max_fail": self.max_fail}
        if self.waves:
            doc["waves"] = list(self.waves)
        if self.canary and self.batches:
            doc["canary"] = list(self.batches[0])
        return doc


def make_plan(
    hosts: list[str],
    serial: tuple[Size, ...],
    max_fail: Size = 0,
    waves: list[tuple[str, list[str]]] | None = None,
    *,
    canary: bool = False,
    canary_hosts: int | None = None,
) -> Plan:
    """Batches in inventory order (already narrowed by --limit); with `waves` (from `group_waves`), each
    wave batched on its own, in wave order. `canary`: the first batch is a canary, of the first
    `canary_hosts` hosts alone when given."""
    batches: list[tuple[str, ...]] = []
    labels: list[str] = []
    for label, members in waves if waves is not None else [("", hosts)]:
        if canary and canary_hosts and not batches and members:  # the canary's own batch, then the rest
            batches.append(tuple(members[:canary_hosts]))
            labels.append(label)
            members = members[canary_hosts:]
        start = 0
        for size in batch_sizes(serial, len(members)):
            batches.append(tuple(members[start : start + size]))
            labels.append(label)
            start += size
    waved = tuple(labels) if waves is not None else ()
    return Plan(tuple(batches), resolve(max_fail, len(hosts)), waved, canary=canary and bool(batches))


NO_WAVE = "(no wave)"


def _natural(name: str) -> list[Any]:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def group_waves(hosts: list[str], groups: dict[str, tuple[str, ...]], prefix: str) -> list[tuple[str, list[str]]]:
    """The waves of `hosts`: (group, its hosts in `hosts` order) for each group of `groups` (host -> its
    groups) that starts with `prefix`, in natural order (wave2 before wave10); hosts in none last, as
    NO_WAVE. A host in two wave groups goes with the first."""
    found: dict[str, list[str]] = {}
    for h in hosts:
        mine = sorted((g for g in groups.get(h, ()) if g.startswith(prefix)), key=_natural)
        found.setdefault(mine[0] if mine else NO_WAVE, []).append(h)
    order = sorted((w for w in found if w != NO_WAVE), key=_natural) + ([NO_WAVE] if NO_WAVE in found else [])
    return [(w, found[w]) for w in order]
