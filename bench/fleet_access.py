"""Benchmark: the same commands as root straight to each lab host, and as `admin` with sudo through the bastion.

On the running lab's three web hosts (converged first), each command RUNS times per way in, medians printed:
a no-change rolling `opsrun apply lab nginx` (lease, connect, drain, apply, reboot check, health, verify,
enable, host by host), `opsrun verify lab nginx`, and `opsrun apply lab nginx --dry-run`. "root" is this
repo's lab inventory with the lab's own sshd; "admin via bastion" is the same ops content with group_data
saying ssh_user admin, _sudo True and ssh_jump admin@BASTION, and the hosts refusing root and any SSH that
does not come from the bastion (lab.fleet.access), as a fleet does.

Run by hand as root from the repository, with the lab up and nothing else using it:
    python bench/fleet_access.py [RUNS]   (default 3)
"""

from __future__ import annotations

import statistics
import sys
import tempfile
from pathlib import Path

from apply_nochange import OPSRUN, REPO, demo_token, ops_copy, timed

from opsrun.lab import Lab, fleet

COMMANDS = {
    "rolling apply (no change)": ["apply", "lab", "nginx"],
    "verify": ["verify", "lab", "nginx"],
    "dry run": ["apply", "lab", "nginx", "--dry-run"],
}
HOSTS = ["web1", "web2", "web3"]


def medians(project: Path, runs: int) -> dict[str, float]:
    times = {
        name: [timed([OPSRUN, "--project", str(project), *args]) for _ in range(runs)]
        for name, args in COMMANDS.items()
    }
    return {name: statistics.median(t) for name, t in times.items()}


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    demo_token()
    lab = Lab()
    lab.up(3)
    bastion = fleet.bastion_up(lab.cfg)
    timed([OPSRUN, "apply", "lab", "pm2"])
    timed([OPSRUN, "apply", "lab", "nginx"])
    with tempfile.TemporaryDirectory() as tmp:
        ops = ops_copy(Path(tmp) / "ops")
        (ops / "group_data" / "lab.py").write_text(f'ssh_user = "admin"\n_sudo = True\nssh_jump = "admin@{bastion}"\n')
        root = medians(REPO, runs)
        fleet.access(lab.cfg, HOSTS, True)
        try:
            jumped = medians(ops, runs)
        finally:
            fleet.access(lab.cfg, HOSTS, False)
    print(f"{'command (3 hosts, median of ' + str(runs) + ')':40} {'root':>8} {'admin via bastion':>18} {'ratio':>6}")
    for name in COMMANDS:
        print(f"{name:40} {root[name]:7.2f}s {jumped[name]:17.2f}s {jumped[name] / root[name]:6.2f}")


if __name__ == "__main__":
    main()
