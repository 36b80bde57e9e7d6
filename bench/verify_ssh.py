"""Benchmark: what one verified host costs in SSH, on this side and on the host, by the way commands travel.

Against the running lab's web hosts (as many as it has), through the ssh_config `opsrun verify` writes:

- a new connection (`ssh HOST true`, no shared master) with OpenSSH's own choice of key exchange (the
  post-quantum sntrup761 hybrid) and with the ssh_config's (curve25519 first, as pyinfra's paramiko): CPU
  seconds here (this process, its children: rusage and /proc) and on the hosts (the lab's cgroup, minus its
  idle use);
- a command (`uname -s`, the cheapest a suite runs) sent the way testinfra's `ssh` backend sends it (a local
  /bin/sh and an ssh client joining the host's shared connection) and the way opsrun's `opsrun-ssh` backend
  does (written to one remote shell): CPU seconds here and on the host, wall seconds, per command.

Run by hand as root from the repository, with the lab up and nothing else using it:
    python bench/verify_ssh.py [COMMANDS_PER_HOST]   (default 20)
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import testinfra
from apply_nochange import REPO, demo_token
from scale import lab_cpu_seconds

from opsrun.hosts import sshconfig
from opsrun.lab import Lab
from opsrun.model import inventory
from opsrun.model.project import Project
from opsrun.verification.ssh_shell import NAME

TICK = os.sysconf("SC_CLK_TCK")


def here_cpu() -> float:
    """CPU seconds of this process, its ended children, and its live ssh processes (the remote shells')."""
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == os.getpid():  # ppid: a live child
            total += (int(fields[11]) + int(fields[12])) / TICK
    return total


def idle_rate(lab: Lab, seconds: float = 3.0) -> float:
    """The lab's own CPU use per second while nothing is asked of it (PM2 and the demo apps)."""
    before = lab_cpu_seconds(lab)
    time.sleep(seconds)
    return (lab_cpu_seconds(lab) - before) / seconds


def measured(lab: Lab, idle: float, count: int, work: Callable[[], None]) -> tuple[float, float, float]:
    """Run `work` (which does `count` things): per thing, CPU here, CPU on the hosts, wall seconds."""
    here, there, start = here_cpu(), lab_cpu_seconds(lab), time.monotonic()
    work()
    wall = time.monotonic() - start
    return (here_cpu() - here) / count, (lab_cpu_seconds(lab) - there - idle * wall) / count, wall / count


def main() -> None:
    demo_token()
    per_host = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    lab = Lab()
    inv = inventory.load(Project.find(REPO), "lab")
    hosts = [h for h in inv.hosts if h.startswith("web")]
    idle = idle_rate(lab)
    rows: list[tuple[str, tuple[float, float, float]]] = []
    with tempfile.TemporaryDirectory(prefix="opsrun-b-", dir="/tmp") as tmp:
        config = Path(tmp) / "ssh_config"
        config.write_text(sshconfig.ssh_config(inv, hosts, Path(tmp)))
        alone = ["ssh", "-F", str(config), "-o", "ControlMaster=no", "-o", "ControlPath=none"]

        def connect(extra: list[str]) -> Callable[[], None]:
            def work() -> None:
                for h in hosts:
                    subprocess.run([*alone, *extra, h, "true"], check=True)

            return work

        rows.append(
            (
                "new connection, OpenSSH's default key exchange",
                measured(
                    lab,
                    idle,
                    len(hosts),
                    connect(["-o", "KexAlgorithms=-curve25519-sha256,curve25519-sha256@libssh.org"]),
                ),
            )
        )
        rows.append(
            ("new connection, the ssh_config's (curve25519 first)", measured(lab, idle, len(hosts), connect([])))
        )
        for backend in ("ssh", NAME):
            targets = [testinfra.get_host(f"{backend}://{h}", ssh_config=str(config)) for h in hosts]
            for target in targets:
                target.run("true")  # connected (a shared master, or the remote shell) before timing

            def commands(targets: list = targets) -> None:  # type: ignore[type-arg]
                for _ in range(per_host):
                    for target in targets:
                        assert target.run("uname -s").rc == 0

            label = "testinfra `ssh` (sh + ssh via ControlMaster)" if backend == "ssh" else "opsrun-ssh (one shell)"
            rows.append((f"a command, {label}", measured(lab, idle, per_host * len(hosts), commands)))
            for target in targets:
                if backend == NAME:
                    target.backend.close()
                else:
                    subprocess.run(
                        ["ssh", "-F", str(config), "-O", "exit", target.backend.host.name], capture_output=True
                    )
    print(f"{len(hosts)} hosts, {per_host} commands each; the lab's idle use ({idle:.3f} CPU s/s) taken out\n")
    print("| per connection or command | CPU here | CPU on the host | wall |")
    print("|---|---|---|---|")
    for label, (here, there, wall) in rows:
        print(f"| {label} | {here * 1000:.1f} ms | {there * 1000:.1f} ms | {wall * 1000:.1f} ms |")


if __name__ == "__main__":
    main()
