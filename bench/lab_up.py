"""Benchmark: bring up a lab of N hosts from nothing (base image cached), time until every host runs
systemd with SSH answering, the memory that cost, and the time `down` takes.

Run by hand as root: python bench/lab_up.py [N]   (default 12). It replaces any lab that is up.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

from opsrun.lab import Lab, capacity


def mem_available_mib() -> float:
    return capacity.read_meminfo()[1] / 1024


def measured(lab: Lab) -> dict[str, Any]:
    """What the last `up` that booted hosts measured (lab.json): boot time, MiB and inotify per new host."""
    return dict(json.loads(lab.cfg.state_file.read_text()).get("measured") or {})


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
    print(f"as lab.json records it: {measured(lab)}")
    start = time.perf_counter()
    lab.up(count)
    print(f"lab up again (no change): {time.perf_counter() - start:.2f}s")
    start = time.perf_counter()
    lab.down()
    print(f"lab down: {time.perf_counter() - start:.2f}s")


if __name__ == "__main__":
    main()
