"""Benchmark: `opsrun drift lab nginx` wall time over 3, 6 and 12 converged lab hosts, against a plain
`pyinfra inventories/lab.py deploys/nginx.py --dry` over the same hosts (median of 3 each).

drift does more than pyinfra's --dry: it also runs the verify suite and records the findings. Run by hand as
root from the repository: python bench/drift.py [N ...]  (default 3 6 12; the lab is rebuilt with N hosts).
"""

from __future__ import annotations

import statistics
import sys

from apply_nochange import OPSRUN, PYINFRA, demo_token, timed

from opsrun.lab import Lab

RUNS = 3


def drift_commands(limit: list[str] | None = None) -> dict[str, list[str]]:
    """`opsrun drift lab nginx` and `pyinfra --dry` over the same hosts: all, or those in `limit`."""
    only = ["--limit", ",".join(limit)] if limit else []
    each = [arg for host in limit or [] for arg in ("--limit", host)]  # pyinfra: one --limit per host
    return {
        "drift": [OPSRUN, "drift", "lab", "nginx", *only],
        "dry": [PYINFRA, "inventories/lab.py", "deploys/nginx.py", "--dry", *each],
    }


def main() -> None:
    demo_token()
    sizes = [int(a) for a in sys.argv[1:]] or [3, 6, 12]
    lab = Lab()
    for n in sizes:
        lab.up(n)
        for deploy in ("pm2", "nginx"):
            timed([OPSRUN, "apply", "lab", deploy])
        commands = drift_commands()
        drift = [timed(commands["drift"]) for _ in range(RUNS)]
        dry = [timed(commands["dry"]) for _ in range(RUNS)]
        d, p = statistics.median(drift), statistics.median(dry)
        print(
            f"{n:2} hosts: opsrun drift {d:5.2f}s (dry run + verify suite + history), pyinfra --dry {p:5.2f}s, "
            f"ratio {d / p:.2f}"
        )


if __name__ == "__main__":
    main()
