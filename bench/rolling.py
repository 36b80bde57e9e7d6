"""Benchmark: a rolling apply of the lab app over the web hosts behind HAProxy, under load.

Prints the requests sent through HAProxy during the rollout and how many failed, the rollout's wall
time, and how that time splits between pyinfra (connect checks and applies), drain waits, health waits,
verification, balancer enable waits, and opsrun's own overhead (the rest). Run by hand as root from the
repository: python bench/rolling.py [HOSTS]  (default 3; the lab is brought up with that many hosts).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from opsrun.lab import Lab
from opsrun.lab.loadgen import LoadGenerator

REPO = Path(__file__).resolve().parents[1]
OPSRUN = [sys.executable, "-m", "opsrun"]


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    lab = Lab()
    lab.up(count)
    frontend = json.loads(lab.cfg.state_file.read_text())["haproxy"]["frontend"]
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp)
        for folder in ("inventories", "group_data", "deploys", "verify"):
            shutil.copytree(REPO / folder, project / folder)
        web = project / "group_data" / "web.py"
        subprocess.run([*OPSRUN, "--project", tmp, "apply", "lab", "webapp"], check=True, capture_output=True)
        web.write_text(web.read_text() + f'\nwebapp_version = "bench-{time.time():.0f}"\n')
        with LoadGenerator(f"http://{frontend}/", threads=8, max_seconds=600) as load:
            proc = subprocess.run(
                [*OPSRUN, "--project", tmp, "apply", "lab", "webapp", "--format", "json"],
                capture_output=True,
                text=True,
                check=False,
            )
    doc = json.loads(proc.stdout)
    stages = doc["stage_seconds"]
    pyinfra = stages.get("connect", 0) + stages.get("apply", 0)
    accounted = sum(stages.values())
    print(f"hosts: {count}, serial 1, status: {doc['status']}")
    print(
        f"requests through HAProxy: {load.result.requests} ({load.result.rate:.0f}/s), failed: "
        f"{load.result.failures} {dict(load.result.errors)}"
    )
    print(f"rollout wall time: {doc['seconds']:.2f}s")
    for name, value in (
        ("pyinfra (connect checks + apply)", pyinfra),
        ("drain waits", stages.get("drain", 0)),
        ("health gate waits", stages.get("health", 0)),
        ("verification", stages.get("verify", 0)),
        ("enable + healthy waits", stages.get("enable", 0)),
        ("opsrun overhead (the rest)", doc["seconds"] - accounted),
    ):
        print(f"  {name:34} {value:6.2f}s {100 * value / doc['seconds']:5.1f}%")


if __name__ == "__main__":
    main()
