"""How many lab hosts this machine holds, and the kernel settings that N hosts need.

Three things bound the lab, each read from the machine, none a constant of ours:

- addresses: host i is SUBNET.(10+i) in the lab's /24 (config.HOST_OFFSET), so .11-.254: at most 244 hosts;
- memory: MemAvailable, less a reserve for the controller and the lab's services, divided by what a host
  costs (measured on this machine: 10.5-19 MiB an idle host, 20 MiB PSS with nginx and redis; the larger of
  our budget and what this machine measured at the last `up` is used);
- inotify: every booted host's systemd takes several inotify instances and watches, all counted against
  root's `fs.inotify.max_user_instances` (128 by default: the 20th host fails with "Failed to create control
  group inotify object: Too many open files") and `fs.inotify.max_user_watches`. These are raised when the
  hosts need more (the lab runs as root already); the old values are kept in lab.json and `down` puts them
  back, unless something still running needs the higher ones.

`plan()` and the parsers are pure (unit-tested on given numbers); `read_*` and `write_sysctl` touch /proc.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from opsrun.errors import LabError
from opsrun.lab.config import MAX_ADDRESSES

PROC = Path("/proc")
INSTANCES = "fs.inotify.max_user_instances"
WATCHES = "fs.inotify.max_user_watches"
RESERVE_MIB = 1024  # at least this much stays available: opsrun, pyinfra and its workers, proxies, HAProxy
RESERVE_SHARE = 0.10  # ... or this share of the machine's memory, whichever is larger


@dataclass(frozen=True)
class HostCost:
    """What one booted lab host costs the machine."""

    mib: float = 32.0  # memory, with room for nginx (measured: 17-19 MiB idle, 20 MiB PSS with nginx+redis)
    inotify_instances: int = 8  # measured: 128 instances held 19 hosts, about 6.5 a host
    inotify_watches: int = 4096  # not yet measured per host: generous, a limit costs nothing until used

    def at_least(self, other: HostCost) -> HostCost:
        """The larger of two costs, field by field: a measurement can raise our budget, never lower it."""
        return HostCost(
            max(self.mib, other.mib),
            max(self.inotify_instances, other.inotify_instances),
            max(self.inotify_watches, other.inotify_watches),
        )


@dataclass(frozen=True)
class Inotify:
    """Root's inotify limits and what root's processes hold now."""

    max_instances: int
    max_watches: int
    instances: int = 0
    watches: int = 0


@dataclass(frozen=True)
class Plan:
    count: int
    max_hosts: int  # what this machine holds once the inotify limits are raised
    limited_by: str  # "addresses" | "memory"
    sysctl: dict[str, int] = field(default_factory=dict)  # settings to raise before booting: name -> new value


def parse_meminfo(text: str) -> tuple[int, int]:
    """(MemTotal, MemAvailable) in KiB from /proc/meminfo."""
    values = {}
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        if key in ("MemTotal", "MemAvailable") and rest.split():
            values[key] = int(rest.split()[0])
    if set(values) != {"MemTotal", "MemAvailable"}:
        raise LabError("/proc/meminfo has no MemTotal or MemAvailable (kernel older than 3.14?): cannot size the lab.")
    return values["MemTotal"], values["MemAvailable"]


def reserve_mib(mem_total_kib: int) -> float:
    return max(RESERVE_MIB, RESERVE_SHARE * mem_total_kib / 1024)


def _next_power_of_two(n: int) -> int:
    return 1 << max(0, n - 1).bit_length()


def wanted_limit(in_use: int, new_hosts: int, per_host: int, current: int) -> int | None:
    """The value to raise an inotify limit to for `new_hosts` more hosts, or None when `current` is enough.

    What is in use now (other hosts already booted included), plus the new hosts, plus half again for what
    the deploys start on the hosts (services, restarts), rounded up to a power of two."""
    wanted = (in_use + new_hosts * per_host) * 3 // 2
    return None if current >= wanted else _next_power_of_two(wanted)


def plan(
    count: int,
    *,
    running: int,
    mem_total_kib: int,
    mem_available_kib: int,
    inotify: Inotify,
    cost: HostCost,
) -> Plan:
    """Whether `count` hosts fit (`running` of them are already up and in MemAvailable), and the inotify
    settings to raise first. Raises LabError naming the limit and the fix when they do not fit."""
    if count < 1:
        raise LabError(f"--hosts must be at least 1, not {count}.")
    spare_mib = mem_available_kib / 1024 - reserve_mib(mem_total_kib)
    by_memory = running + max(0, int(spare_mib // cost.mib))
    max_hosts, limited_by = min((MAX_ADDRESSES, "addresses"), (by_memory, "memory"), key=lambda m: m[0])
    if count > max_hosts:
        if limited_by == "addresses":
            why = f"the lab's /24 has addresses for {MAX_ADDRESSES} hosts (.11-.254)"
            fix = f"ask for at most {MAX_ADDRESSES}, or run a second lab with its own subnet"
        else:
            why = (
                f"{mem_available_kib // 1024} MiB are available and {reserve_mib(mem_total_kib):.0f} MiB stay for "
                f"the controller; a host takes about {cost.mib:.0f} MiB"
            )
            fix = f"ask for at most {max_hosts} hosts, or free memory"
        raise LabError(f"{count} lab hosts do not fit on this machine: {why}. Fix: {fix}.")
    new = max(0, count - running)
    sysctl = {}
    for name, in_use, per_host, current in (
        (INSTANCES, inotify.instances, cost.inotify_instances, inotify.max_instances),
        (WATCHES, inotify.watches, cost.inotify_watches, inotify.max_watches),
    ):
        value = wanted_limit(in_use, new, per_host, current)
        if value is not None:
            sysctl[name] = value
    return Plan(count, max_hosts, limited_by, sysctl)


def restorable(was: int, in_use: int) -> bool:
    """Whether an inotify limit can go back to `was` with `in_use` of it held by what still runs (another
    lab, the machine's own services): only with the same headroom `up` asks for."""
    return wanted_limit(in_use, 0, 0, was) is None


# ------------------------------------------------------------------------------------------ the machine
def sysctl_path(name: str) -> Path:
    return PROC / "sys" / name.replace(".", "/")


def read_sysctl(name: str) -> int:
    return int(sysctl_path(name).read_text().split()[0])


def write_sysctl(name: str, value: int) -> None:
    try:
        sysctl_path(name).write_text(f"{value}\n")
    except OSError as exc:
        raise LabError(
            f"could not set {name}={value} ({exc.strerror}; it is {read_sysctl(name)}). "
            f"Fix: run `sysctl -w {name}={value}` as root on the machine itself (not in a container), or ask "
            "for fewer hosts."
        ) from exc


def read_meminfo() -> tuple[int, int]:
    return parse_meminfo((PROC / "meminfo").read_text())


def inotify_held(pids: set[int] | None = None) -> tuple[int, int]:
    """(instances, watches) held by root's processes, or by `pids` only. An instance shared by several
    processes (inherited across fork) is counted for each: an overcount, on the safe side."""
    instances = watches = 0
    for proc in (PROC / str(p) for p in pids) if pids is not None else PROC.iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if proc.stat().st_uid != 0:  # the kernel counts instances per (effective) user: root's only
                continue
            fds = list((proc / "fd").iterdir())
        except OSError:  # gone, or not ours to read
            continue
        for fd in fds:
            try:
                if os.readlink(fd) != "anon_inode:inotify":
                    continue
                info = (proc / "fdinfo" / fd.name).read_text()
            except OSError:
                continue
            instances += 1
            watches += sum(1 for line in info.splitlines() if line.startswith("inotify wd:"))
    return instances, watches


def read_inotify() -> Inotify:
    instances, watches = inotify_held()
    return Inotify(read_sysctl(INSTANCES), read_sysctl(WATCHES), instances, watches)
