"""Benchmark: a rolling apply over the lab's web hosts behind HAProxy, under load: a new version of the demo
app (`pm2`: a new APP_VERSION, a PM2 reload), or a real package upgrade (`patching`: a new opsrun-demo
published in the lab repository).

Prints the requests sent through HAProxy during the rollout and how many failed, the rollout's wall
time, and how that time splits between pyinfra (connect checks and applies), drain waits, health waits,
verification, balancer enable waits, and opsrun's own overhead (the rest). Run by hand as root from the
repository: python bench/rolling.py [HOSTS] [pm2|patching]  (default 3 pm2; the lab gets that many hosts).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from opsrun.lab import Lab, aptrepo, hosts
from opsrun.lab.loadgen import LoadGenerator

REPO = Path(__file__).resolve().parents[1]
OPSRUN = [sys.executable, "-m", "opsrun"]


def main() -> None:
    os.environ.setdefault("OPSRUN_DEMO_API_TOKEN", "bench-" + secrets.token_hex(12))  # the demo app's secret
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    deploy = sys.argv[2] if len(sys.argv) > 2 else "pm2"
    lab = Lab()
    lab.up(count)
    frontend = json.loads(lab.cfg.state_file.read_text())["haproxy"]["frontend"]
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp)
        for folder in ("inventories", "group_data", "deploys", "verify", "apps"):
            shutil.copytree(REPO / folder, project / folder)
        web = project / "group_data" / "web.py"
        for converge in ("pm2", "nginx", deploy):
            subprocess.run([*OPSRUN, "--project", tmp, "apply", "lab", converge], check=True, capture_output=True)
        if deploy == "patching":
            aptrepo.publish(lab.cfg, f"{time.time():.0f}")  # a newer opsrun-demo: one real upgrade per host
            for host in lab.host_names():  # installed, so that there is something to upgrade
                hosts.ssh(
                    lab.cfg,
                    lab.cfg.address(int(host[3:])),
                    "DEBIAN_FRONTEND=noninteractive apt-get install -y -q opsrun-demo",
                    timeout=300,
                )
            aptrepo.publish(lab.cfg, f"{time.time():.0f}.1")
        else:
            web.write_text(web.read_text() + f'\npm2_apps[0]["env"]["APP_VERSION"] = "bench-{time.time():.0f}"\n')
        with LoadGenerator(f"http://{frontend}/", threads=8, max_seconds=600) as load:
            proc = subprocess.run(
                [*OPSRUN, "--project", tmp, "apply", "lab", deploy, "--format", "json"],
                capture_output=True,
                text=True,
                check=False,
            )
    doc = json.loads(proc.stdout)
    stages = doc["stage_seconds"]
    pyinfra = stages.get("connect", 0) + stages.get("apply", 0)
    accounted = sum(stages.values())
    print(f"deploy: {deploy}, hosts: {count}, serial 1, status: {doc['status']}")
    upgrades = sum(len(h.get("upgrades", [])) for h in doc["hosts"].values())
    if deploy == "patching":
        print(f"upgrades: {upgrades}, rebooted: {sum(h['rebooted'] for h in doc['hosts'].values())}")
    print(
        f"requests through HAProxy: {load.result.requests} ({load.result.rate:.0f}/s), failed: "
        f"{load.result.failures} {dict(load.result.errors)}"
    )
    print(f"rollout wall time: {doc['seconds']:.2f}s")
    for name, value in (
        ("pyinfra (connect checks + apply)", pyinfra),
        ("reboots", stages.get("reboot", 0)),
        ("drain waits", stages.get("drain", 0)),
        ("health gate waits", stages.get("health", 0)),
        ("verification", stages.get("verify", 0)),
        ("enable + healthy waits", stages.get("enable", 0)),
        ("opsrun overhead (the rest)", doc["seconds"] - accounted),
    ):
        print(f"  {name:34} {value:6.2f}s {100 * value / doc['seconds']:5.1f}%")


if __name__ == "__main__":
    main()
