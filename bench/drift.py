"""Benchmark: `opsrun drift lab nginx` wall time over 3, 6 and 12 converged lab hosts, against a plain
`pyinfra inventories/lab.py deploys/nginx.py --dry` over the same hosts (median of 3 each).

drift does more than pyinfra's --dry: it also runs the verify suite and records the findings. Run by hand as
root from the repository: python bench/drift.py [N ...]  (default 3 6 12; the lab is rebuilt with N hosts).
"""

from __future__ import annotations

import os
import secrets
import statistics
import subprocess
import sys
import time
from pathlib import Path

from opsrun.lab import Lab

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
RUNS = 3


def timed(cmd: list[str], ok: tuple[int, ...] = (0,)) -> float:
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, check=False)
    if proc.returncode not in ok:
        sys.exit(f"{' '.join(cmd)} exited {proc.returncode}:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return time.perf_counter() - start


def main() -> None:
    os.environ.setdefault("OPSRUN_DEMO_API_TOKEN", "bench-" + secrets.token_hex(12))  # the demo app's secret
    sizes = [int(a) for a in sys.argv[1:]] or [3, 6, 12]
    lab = Lab()
    for n in sizes:
        lab.up(n)
        for deploy in ("pm2", "nginx"):
            timed([str(BIN / "opsrun"), "apply", "lab", deploy])
        drift = [timed([str(BIN / "opsrun"), "drift", "lab", "nginx"]) for _ in range(RUNS)]
        dry = [timed([str(BIN / "pyinfra"), "inventories/lab.py", "deploys/nginx.py", "--dry"]) for _ in range(RUNS)]
        d, p = statistics.median(drift), statistics.median(dry)
        print(
            f"{n:2} hosts: opsrun drift {d:5.2f}s (dry run + verify suite + history), pyinfra --dry {p:5.2f}s, "
            f"ratio {d / p:.2f}"
        )


if __name__ == "__main__":
    main()
