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
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from apply_nochange import OPSRUN, demo_token, ops_copy

from opsrun.lab import Lab, aptrepo, hosts
from opsrun.lab.loadgen import LoadGenerator, LoadResult


def prepare(lab: Lab, project: Path, deploy: str, converge: Path | None = None, reboot: bool = False) -> None:
    """Converge pm2, nginx and `deploy` (from `converge`, default `project`), then make the change the
    rollout will carry: a new opsrun-demo for `patching` (installed first on every host, so each has one
    real upgrade; with `reboot`, one that asks for a reboot), a new APP_VERSION for `pm2` (in `project` only)."""
    for deploy_name in ("pm2", "nginx", deploy):
        subprocess.run(
            [OPSRUN, "--project", str(converge or project), "apply", "lab", deploy_name],
            check=True,
            capture_output=True,
        )
    if deploy == "patching":
        aptrepo.publish(lab.cfg, f"{time.time():.0f}")
        install = "DEBIAN_FRONTEND=noninteractive apt-get install -y -q opsrun-demo"
        addresses = [lab.cfg.address(int(host[3:])) for host in lab.host_names()]
        with ThreadPoolExecutor(max_workers=16) as pool:  # dpkg is CPU-bound: more only queue on the cores
            list(pool.map(lambda addr: hosts.ssh(lab.cfg, addr, install, timeout=300), addresses))
        aptrepo.publish(lab.cfg, f"{time.time():.0f}.1", reboot=reboot)
    else:
        web = project / "group_data" / "web.py"
        web.write_text(web.read_text() + f'\npm2_apps[0]["env"]["APP_VERSION"] = "bench-{time.time():.0f}"\n')


def roll(lab: Lab, project: Path, deploy: str, serial: str | None = None) -> tuple[dict[str, Any], LoadResult]:
    """The rolling apply of `deploy` from `project` while 8 threads send requests through HAProxy: the
    run's JSON document and the load's result."""
    frontend = json.loads(lab.cfg.state_file.read_text())["haproxy"]["frontend"]
    batches = ["--serial", serial] if serial else []
    with LoadGenerator(f"http://{frontend}/", threads=8, max_seconds=1800) as load:
        proc = subprocess.run(
            [OPSRUN, "--project", str(project), "apply", "lab", deploy, *batches, "--format", "json"],
            capture_output=True,
            text=True,
            check=False,
        )
    doc = json.loads(proc.stdout)
    if doc["status"] != "success":
        print(f"the rollout of {deploy} ended {doc['status']}:", *failures(doc), sep="\n  ", flush=True)
    return doc, load.result


def failures(doc: dict[str, Any], most: int = 10) -> list[str]:
    """Why hosts were not done: each distinct (outcome, stage, reason's first line) once, with how many hosts."""
    seen: dict[tuple[str, str, str], list[str]] = {}
    for name, host in doc["hosts"].items():
        if host.get("outcome") != "done":
            reason = str(host.get("reason") or host.get("error") or "").partition("\n")[0]
            seen.setdefault((str(host.get("outcome")), str(host.get("stage")), reason), []).append(name)
    lines = [f"{len(h)} host(s), {h[0]} first: {out} in {stage}: {why}" for (out, stage, why), h in seen.items()]
    return lines[:most]


def split(doc: dict[str, Any]) -> list[tuple[str, float]]:
    """The rollout's wall time by stage, and what is left: opsrun's own overhead."""
    stages = doc["stage_seconds"]
    return [
        ("pyinfra (connect checks + apply)", stages.get("connect", 0) + stages.get("apply", 0)),
        ("reboots", stages.get("reboot", 0)),
        ("drain waits", stages.get("drain", 0)),
        ("health gate waits (and the verification of hosts that passed first)", stages.get("health", 0)),
        ("verification after a batch's last gate passed", stages.get("verify", 0)),
        ("enable + healthy waits", stages.get("enable", 0)),
        ("opsrun overhead (the rest)", doc["seconds"] - sum(stages.values())),
    ]


def outside_waits(doc: dict[str, Any]) -> float:
    """The share of the wall time outside pyinfra, drain, reboot and health waits (the gate's and the
    balancer's): verification and opsrun's own work, the part opsrun can make small (issue 15: <= 10 %)."""
    # every stage but verify is one of those waits; a batch's verification that overlapped its gate waits is
    # counted in "health" by the executor, so what is left is the verification tail and opsrun's own work
    inside = sum(v for stage, v in doc["stage_seconds"].items() if stage != "verify")
    return (doc["seconds"] - inside) / doc["seconds"] if doc["seconds"] else 0.0


def main() -> None:
    demo_token()
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    deploy = sys.argv[2] if len(sys.argv) > 2 else "pm2"
    lab = Lab()
    lab.up(count)
    with tempfile.TemporaryDirectory() as tmp:
        project = ops_copy(Path(tmp))
        prepare(lab, project, deploy)
        doc, load = roll(lab, project, deploy)
    print(f"deploy: {deploy}, hosts: {count}, serial 1, status: {doc['status']}")
    upgrades = sum(len(h.get("upgrades", [])) for h in doc["hosts"].values())
    if deploy == "patching":
        print(f"upgrades: {upgrades}, rebooted: {sum(h['rebooted'] for h in doc['hosts'].values())}")
    print(f"requests through HAProxy: {load.requests} ({load.rate:.0f}/s), failed: {load.failures} {dict(load.errors)}")
    print(f"rollout wall time: {doc['seconds']:.2f}s")
    for name, value in split(doc):
        print(f"  {name:34} {value:6.2f}s {100 * value / doc['seconds']:5.1f}%")


if __name__ == "__main__":
    main()
