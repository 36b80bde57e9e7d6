"""Benchmark: bring up a lab of N hosts from nothing (base image cached), time until every host runs
systemd with SSH answering, the memory that cost, and the time `down` takes.

Run by hand as root: python bench/lab_up.py [N]   (default 12). It replaces any lab that is up.
"""

from __future__ import annotations

import sys
import time

from opsrun.lab import Lab


def mem_available_mib() -> float:
    for line in open("/proc/meminfo"):
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no MemAvailable in /proc/meminfo")


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 12
    lab = Lab()
    lab.down()
    lab.up(1)  # make sure the base image is built, so only host creation and boot are timed
    lab.down()
    before = mem_available_mib()
    start = time.perf_counter()
    hosts = lab.up(count)
    up = time.perf_counter() - start
    after = mem_available_mib()
    states = {h.state for h in hosts}
    print(f"lab up --hosts {count}: {up:.2f}s until all {len(hosts)} hosts answer SSH with systemd {states}")
    print(f"MemAvailable drop: {before - after:.0f} MiB ({(before - after) / count:.1f} MiB a host)")
    start = time.perf_counter()
    lab.up(count)
    print(f"lab up again (no change): {time.perf_counter() - start:.2f}s")
    start = time.perf_counter()
    lab.down()
    print(f"lab down: {time.perf_counter() - start:.2f}s")


if __name__ == "__main__":
    main()
