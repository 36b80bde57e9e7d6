"""Benchmark: a no-change `opsrun apply lab nginx` against `pyinfra inventories/lab.py deploys/nginx.py -y`.

Both run as whole commands on the same converged lab hosts, alternating, 5 times each; prints each
time, the medians and the ratio. opsrun runs on a copy of the ops content without the web group's rolling
policy and balancer, so both do the same thing: one parallel apply. The rolling apply (drain, health gate,
verify, enable, host by host) is timed once more on its own line, for scale. Run by hand as root from the
repository: python bench/apply_nochange.py (it brings the lab up and converges it first if needed).
"""

from __future__ import annotations

import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
OPSRUN = str(BIN / "opsrun")
PYINFRA = str(BIN / "pyinfra")
RUNS = 5


def demo_token() -> None:
    """The demo app's secret (group_data/web.py reads it from the environment): made up unless exported."""
    os.environ.setdefault("OPSRUN_DEMO_API_TOKEN", "bench-" + secrets.token_hex(12))


# As on an operator's machine, Python keeps the compiled modules (__pycache__) of opsrun, the deploys and the
# group_data; a shell with PYTHONDONTWRITEBYTECODE set would compile them again on every run of both commands.
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def timed(cmd: list[str], ok: tuple[int, ...] = (0,)) -> float:
    """Wall time of one whole command run from the repository; stops the benchmark if it exits otherwise."""
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=REPO, env=ENV, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if proc.returncode not in ok:
        sys.exit(f"{' '.join(cmd)} exited {proc.returncode}:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return elapsed


def alternate(commands: dict[str, list[str]], runs: int, ok: tuple[int, ...] = (0,)) -> dict[str, list[float]]:
    """Each command `runs` times, taking turns, so that a slow spell of the machine hits all of them alike."""
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(runs):
        for name, cmd in commands.items():
            times[name].append(timed(cmd, ok))
    return times


def ops_copy(dest: Path) -> Path:
    """The ops content as it is (rolling policy and balancer included), for a change made only there."""
    for folder in ("inventories", "group_data", "deploys", "verify", "apps"):
        shutil.copytree(REPO / folder, dest / folder)
    return dest


def plain_copy(dest: Path) -> Path:
    """The ops content without the web group's rolling policy and balancer: `opsrun apply` is then one plain
    parallel apply, the same work as `pyinfra -y`."""
    ops_copy(dest)
    (dest / "group_data" / "web.py").write_text((dest / "group_data" / "web.py").read_text() + "\nrolling = None\n")
    inv = dest / "inventories" / "lab.py"
    inv.write_text(inv.read_text() + '\nall[1].pop("balancer")\n')
    return dest


def nochange_commands(plain: Path) -> dict[str, list[str]]:
    """A no-change nginx by opsrun (plain parallel apply, from `plain`) and by raw pyinfra, same hosts."""
    return {
        "opsrun": [OPSRUN, "--project", str(plain), "apply", "lab", "nginx"],
        "pyinfra": [PYINFRA, "inventories/lab.py", "deploys/nginx.py", "-y"],
    }


def main() -> None:
    demo_token()
    subprocess.run([OPSRUN, "lab", "up"], cwd=REPO, check=True, capture_output=True)
    for deploy in ("pm2", "nginx"):
        subprocess.run([OPSRUN, "apply", "lab", deploy], cwd=REPO, check=True, capture_output=True)
    plain = plain_copy(Path(tempfile.mkdtemp(prefix="opsrun-bench-")))
    times = alternate(nochange_commands(plain), RUNS)
    for name, values in times.items():
        runs = " ".join(f"{v:.2f}" for v in values)
        print(f"{name:8} median {statistics.median(values):.2f}s  runs: {runs}")
    ratio = statistics.median(times["opsrun"]) / statistics.median(times["pyinfra"])
    print(f"ratio opsrun/pyinfra: {ratio:.2f}")
    rolling = timed([OPSRUN, "apply", "lab", "nginx"])
    print(f"for scale, the rolling no-change apply (3 hosts one by one: drain, health, verify, enable): {rolling:.2f}s")
    shutil.rmtree(plain)


if __name__ == "__main__":
    main()
