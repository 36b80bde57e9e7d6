"""Benchmark: verification's SSH transport, side by side in one run on the same lab hosts (issue 24, item 5).

Three ways to verify `verify/nginx` on N lab hosts (default 12), the runs alternated, medians of 5:

- `framed`: `opsrun verify lab nginx` as it is (opsrun-ssh: one remote /bin/sh per host over OpenSSH, each
  command's output in files of its own, sent after a header line with its status and sizes);
- `shell`: the same command run by the code before the transport changed (the same shell, its commands framed by
  markers): a detached git worktree of that commit (`--before`, default the parent of the commit that removed
  the marker framing's `_Stream`), on the same ops content and venv;
- `testinfra`: testinfra's own best run of the same suite on the same hosts, `pytest --hosts=ssh://web1,...`
  (its `ssh` backend, an ssh per command over a ControlMaster per host, hosts one after another) through the
  ssh_config opsrun writes and with opsrun's plugin for the `host_data` fixture; fresh masters each run, ended
  after it (`ssh -O exit`) so that none idles into the next measure.

Then, once each, untimed: the CPU seconds of `framed` and `shell` over all N hosts and over web1 alone, this
side's (opsrun, pytest and what they start: wait4's rusage) and the lab hosts' (their cgroup); the controller
CPU per host verified is (all - web1) / (N - 1). testinfra's CPU is left out: its masters detach (ControlPersist)
and their CPU is nobody's child's.

Run by hand as root from the repository, with nothing else using the lab:
    python bench/verify_transport.py [--hosts N] [--runs 5] [--before REV]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from apply_nochange import ENV, OPSRUN, REPO, demo_token, plain_copy
from scale import lab_cpu_seconds, settled

from opsrun.lab import Lab
from opsrun.model import inventory
from opsrun.model.project import Project
from opsrun.verification import verify
from opsrun.verification.protocol import HOSTDATA_ENV

SUITE = "nginx"


def before_commit() -> str:
    """The last commit with the marker-framed shell: the parent of the one that removed its `_Stream`."""
    found = subprocess.run(
        ["git", "-C", str(REPO), "log", "-1", "--format=%H", "-Sclass _Stream", "--", "src/opsrun/ssh_shell.py"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    if not found:
        sys.exit("no commit removed the marker framing here: name the code to compare with --before REV")
    return f"{found}^"


def timed(cmd: list[str], env: dict[str, str]) -> float:
    """Wall seconds of one whole command from the repository; stops the benchmark if it fails."""
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd)} exited {proc.returncode}:\n{proc.stdout[-3000:]}\n{proc.stderr[-2000:]}")
    return elapsed


def cpu(lab: Lab, cmd: list[str], env: dict[str, str]) -> tuple[float, float]:
    """One untimed run of `cmd`: its CPU seconds (and its children's) and the lab hosts' meanwhile."""
    before = lab_cpu_seconds(lab)
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _pid, status, usage = os.wait4(proc.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"{' '.join(cmd)} exited {os.waitstatus_to_exitcode(status)}")
    return usage.ru_utime + usage.ru_stime, lab_cpu_seconds(lab) - before


class Testinfra:
    """testinfra's own run of the suite: `pytest --hosts=ssh://...` through opsrun's ssh_config."""

    def __init__(self, project: Project, hosts: list[str], base: Path):
        self.project, self.hosts, self.base = project, hosts, base
        self.inventory = inventory.load(project, "lab")
        self.count = 0

    def run(self) -> float:
        self.count += 1
        folder = self.base / f"t{self.count}"  # a fresh ControlPath folder: masters made by this run
        folder.mkdir()
        verify._write_pytest_inputs(folder, self.inventory, self.hosts, connect_timeout=10)
        cmd = verify._pytest_command(self.project, self.project.root / "verify" / SUITE, folder, self.hosts)
        cmd = [f"--hosts={','.join(f'ssh://{h}' for h in self.hosts)}" if a.startswith("--hosts=") else a for a in cmd]
        env = {**ENV, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1", HOSTDATA_ENV: str(folder / "hostdata.json")}
        try:
            return timed(cmd, env)
        finally:
            for h in self.hosts:
                subprocess.run(["ssh", "-F", str(folder / "ssh_config"), "-O", "exit", h], capture_output=True)


def prepared(lab: Lab, n: int, plain: Path) -> list[str]:
    """The lab at `n` hosts, pm2 and nginx converged (a plain parallel apply, untimed), settled: its web hosts."""
    lab.up(n)
    for deploy in ("pm2", "nginx"):
        subprocess.run([OPSRUN, "--project", str(plain), "apply", "lab", deploy], check=True, capture_output=True)
    idle = settled(lab)
    print(f"lab at {n} hosts, converged; idle {idle:.2f} CPU s/s", flush=True)
    return [h for h in inventory.load(Project(REPO), "lab").hosts if h.startswith("web")]


def old_tree(rev: str, base: Path) -> Path:
    """A detached worktree of `rev` (removed at the end by main's cleanup)."""
    tree = base / "before"
    subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(tree), rev], check=True)
    return tree


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hosts", type=int, default=12, help="lab hosts to verify (default 12)")
    parser.add_argument("--runs", type=int, default=5, help="timed runs of each (default 5)")
    parser.add_argument("--before", help="the commit of the marker-framed shell (default: found in git)")
    args = parser.parse_args()
    demo_token()
    lab = Lab()
    rev = args.before or before_commit()
    with tempfile.TemporaryDirectory(prefix="opsrun-vt-") as tmp:
        base = Path(tmp)
        tree = old_tree(rev, base)
        try:
            hosts = prepared(lab, args.hosts, plain_copy(base / "plain"))
            report(lab, hosts, tree, base, args.runs, rev)
        finally:
            subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(tree)], check=False)


def report(lab: Lab, hosts: list[str], tree: Path, base: Path, runs: int, rev: str) -> None:
    """The timed runs, the CPU split, one Markdown table."""
    shell_env = {**ENV, "PYTHONPATH": str(tree / "src")}  # the old opsrun first on the path, same venv
    verify_cmd = [sys.executable, "-m", "opsrun", "--project", str(REPO), "verify", "lab", SUITE]
    ways = {
        "framed": lambda: timed([OPSRUN, "verify", "lab", SUITE], ENV),
        "shell": lambda: timed(verify_cmd, shell_env),
        "testinfra": Testinfra(Project(REPO), hosts, base).run,
    }
    seconds: dict[str, list[float]] = {name: [] for name in ways}
    for _ in range(runs):
        for name, way in ways.items():
            seconds[name].append(way())
    one = ["--limit", "web1"]
    split = {
        "framed": (
            cpu(lab, [OPSRUN, "verify", "lab", SUITE], ENV),
            cpu(lab, [OPSRUN, "verify", "lab", SUITE, *one], ENV),
        ),
        "shell": (cpu(lab, verify_cmd, shell_env), cpu(lab, [*verify_cmd, *one], shell_env)),
    }
    medians = {name: statistics.median(values) for name, values in seconds.items()}
    n = len(hosts)
    print(f"\n{n} hosts, `verify/{SUITE}`, medians of {runs} (alternated); `shell` is commit {rev}\n")
    print("| | framed (this code) | shell (before) | testinfra `ssh` + ControlMaster |")
    print("|---|---|---|---|")
    print(f"| `opsrun verify lab {SUITE}`, {n} hosts | " + " | ".join(f"{medians[k]:.2f} s" for k in ways) + " |")
    print(
        f"| ÷ testinfra's | {medians['framed'] / medians['testinfra']:.2f} | "
        f"{medians['shell'] / medians['testinfra']:.2f} | 1 |"
    )
    for label, index in (("this side", 0), ("the lab hosts", 1)):
        cells = []
        for k in ("framed", "shell"):
            (all_hosts, web1) = split[k]
            cells.append(
                f"{all_hosts[index]:.2f} s / {web1[index]:.2f} s; "
                f"{(all_hosts[index] - web1[index]) / (n - 1) * 1000:.0f} ms a host"
            )
        print(f"| CPU, {label}: all / web1; per added host | {cells[0]} | {cells[1]} | - |")
    print("\nruns (s): " + "; ".join(f"{k} " + ", ".join(f"{v:.2f}" for v in vs) for k, vs in seconds.items()))


if __name__ == "__main__":
    main()
