"""Benchmark: opsrun at fleet scale (issue 15), one Markdown table for bench/RESULTS.md.

For each N (default 12 50 100) the lab is brought to N hosts (grown, not rebuilt: the boot figures are those of
the hosts this `up` added, as lab.json measured them), pm2 and nginx are converged once with a plain parallel
apply (untimed), the lab is left to settle (its CPU use steady: npm, PM2 and first-boot jobs done), then, side
by side on the same hosts, medians of 5 (3 from 100 hosts on):

- a no-change `opsrun apply lab nginx` (plain parallel apply: bench/apply_nochange.py's copy of the ops content
  without rolling policy and balancer) against raw `pyinfra inventories/lab.py deploys/nginx.py -y`;
- `opsrun verify lab nginx` over the N hosts against the same suite on web1 alone;
- `opsrun drift lab nginx` against `pyinfra --dry`, and drift over web1..web3 (`--limit`) for its growth from
  3 hosts to N;
- once: a rolling `patching` with `--serial 25%` (a real opsrun-demo upgrade per host that asks for a reboot,
  so each host reboots inside its batch) while 8 threads send requests through HAProxy: wall time, the share
  outside pyinfra, drain, reboot and health waits (verification and opsrun's own work), failed requests;
- once each, untimed: the peak memory of apply, verify and drift: the summed RSS of opsrun and every process
  under it (sampled from /proc every 0.1 s; forked processes' shared pages count once per process, so this is
  an upper bound), the summed PSS of the same processes (shared pages divided among them: what they use
  together) and the largest single process (wait4's ru_maxrss);
- once each, untimed: the CPU time of `opsrun verify` over all hosts and over web1, and of `opsrun drift` over
  all hosts and over web1..web3, split into this side's (opsrun, its workers, pytest, ssh: wait4's rusage) and
  the lab hosts' own (sshd, the checked commands: the lab's cgroup). The lab's hosts run on this machine's
  cores, so their work competes with the controller's: all of it divided by the cores is the least wall time
  the larger run could take here, and over the smaller run's wall time a floor for the ratio.

Run by hand as root from the repository, with nothing else using the lab:
    python bench/scale.py [N ...] [--no-rolling | --only-rolling]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from apply_nochange import ENV, OPSRUN, REPO, alternate, demo_token, nochange_commands, ops_copy, plain_copy
from drift import drift_commands
from lab_up import measured
from rolling import outside_waits, prepare, roll, split

from opsrun.lab import Lab
from opsrun.lab.hosts import cgroup_dirs

PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024


def runs_for(hosts: int) -> int:
    """Medians of 5; of 3 from 100 hosts on, where one run of each costs tens of seconds."""
    return 3 if hosts >= 100 else 5


def median(values: list[float]) -> float:
    if not values:
        raise ValueError("no runs to take the median of")
    return statistics.median(values)


# ------------------------------------------------------------------------------------------ memory
def tree_pids(root: int, procs: dict[int, tuple[int, int]]) -> list[int]:
    """`root` and all its descendants that are in {pid: (ppid, rss_kib)}."""
    children: dict[int, list[int]] = {}
    for pid, (ppid, _rss) in procs.items():
        children.setdefault(ppid, []).append(pid)
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        if pid in procs:
            found.append(pid)
        todo += children.get(pid, [])
    return found


def tree_rss_kib(root: int, procs: dict[int, tuple[int, int]]) -> int:
    """Summed RSS (KiB) of `root` and all its descendants, from {pid: (ppid, rss_kib)}. A page that forked
    processes share counts once per process: an upper bound."""
    return sum(procs[pid][1] for pid in tree_pids(root, procs))


def pss_kib(pid: int) -> int:
    """The process's proportional set size (KiB): each shared page divided among the processes that map it,
    so the sum over processes is the memory they use together. 0 for a process gone meanwhile."""
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return 0
    return parse_pss(text)


def parse_pss(text: str) -> int:
    for line in text.splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1])
    return 0


def parse_stat(text: str) -> tuple[int, int]:
    """(ppid, rss_kib) from the text of /proc/PID/stat (the command name may hold spaces and parentheses)."""
    fields = text.rsplit(")", 1)[1].split()
    return int(fields[1]), int(fields[21]) * PAGE_KIB


def read_procs() -> dict[int, tuple[int, int]]:
    procs = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                procs[int(entry.name)] = parse_stat(Path(entry.path, "stat").read_text())
            except (OSError, IndexError, ValueError):  # gone meanwhile
                continue
    return procs


@dataclass
class Peak:
    tree_mib: float  # opsrun and everything under it at once (workers, ssh, pytest), sampled: summed RSS
    largest_mib: float  # the largest single process, exact (the kernel's high-water mark)
    pss_mib: float | None = None  # the same tree's summed PSS, sampled: shared pages counted once


def peak_memory(cmd: list[str], ok: tuple[int, ...] = (0,)) -> Peak:
    """Run `cmd` once; its peak memory. Sampling costs CPU, so this run is never one of the timed ones."""
    proc = subprocess.Popen(cmd, cwd=REPO, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    peak = [0, 0]  # summed RSS, summed PSS
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.1):
            procs = read_procs()
            peak[0] = max(peak[0], tree_rss_kib(proc.pid, procs))
            peak[1] = max(peak[1], sum(pss_kib(pid) for pid in tree_pids(proc.pid, procs)))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _pid, status, usage = os.wait4(proc.pid, 0)
    done.set()
    sampler.join()
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode not in ok:
        raise SystemExit(f"{' '.join(cmd)} exited {proc.returncode}")
    return Peak(peak[0] / 1024, usage.ru_maxrss / 1024, peak[1] / 1024)


# ------------------------------------------------------------------------------------------ CPU
def settled(lab: Lab, timeout: float = 240.0, window: float = 3.0) -> float:
    """Wait until the lab's hosts are done with what their boot and convergence started (npm, PM2 starting
    the apps, systemd's first-boot jobs), which otherwise runs on the cores during the first measures: until
    their CPU use in one window is within 10 % (or 0.05 CPU s/s) of the window before. That idle rate."""
    deadline = time.monotonic() + timeout
    last: float | None = None
    while True:
        before = lab_cpu_seconds(lab)
        time.sleep(window)  # the measuring window itself
        rate = (lab_cpu_seconds(lab) - before) / window
        if last is not None and abs(rate - last) <= max(0.05, 0.1 * last):
            return rate
        if time.monotonic() > deadline:
            print(f"the lab did not settle in {timeout:g} s (last {rate:.2f} CPU s/s); measuring anyway", flush=True)
            return rate
        last = rate


def lab_cpu_seconds(lab: Lab) -> float:
    """CPU time used so far by the lab's hosts (their cgroup; cgroup v2's cpu.stat, hybrid or pure)."""
    for top in cgroup_dirs(lab.cfg, ""):  # the lab's parent cgroup, as `lab down` removes it
        if (top / "cpu.stat").exists():
            fields = dict(line.split() for line in (top / "cpu.stat").read_text().splitlines())
            return int(fields["usage_usec"]) / 1e6
    raise SystemExit("no cpu.stat for the lab's cgroup")


@dataclass
class Cpu:
    controller: float  # opsrun and everything under it: user + system seconds
    hosts: float  # the lab hosts' own


def cpu_split(lab: Lab, cmd: list[str]) -> Cpu:
    """Run `cmd` once: its CPU seconds and those of the lab's hosts meanwhile (untimed run)."""
    before = lab_cpu_seconds(lab)
    proc = subprocess.Popen(cmd, cwd=REPO, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _pid, status, usage = os.wait4(proc.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(cmd)} exited {os.waitstatus_to_exitcode(status)}")
    return Cpu(usage.ru_utime + usage.ru_stime, lab_cpu_seconds(lab) - before)


# ------------------------------------------------------------------------------------------ one size
@dataclass
class Size:
    hosts: int
    boot: dict[str, object] = field(default_factory=dict)  # lab.json's `measured`
    seconds: dict[str, float] = field(default_factory=dict)  # medians, by measure
    runs: int = 0
    rolling: dict[str, float] = field(default_factory=dict)  # wall, outside share, requests, failed
    peaks: dict[str, Peak] = field(default_factory=dict)  # apply, verify, drift
    cpu: dict[str, Cpu] = field(default_factory=dict)  # verify, verify_one
    idle: float | None = None  # the lab's own CPU use (s per s) once settled, before the measures


def measure(lab: Lab, n: int, plain: Path, rolling: bool, only_rolling: bool = False) -> Size:
    lab.up(n)
    size = Size(n, boot=measured(lab), runs=runs_for(n))
    for deploy in ("pm2", "nginx"):  # a plain parallel apply: converging 100 hosts one batch at a time takes long
        subprocess.run([OPSRUN, "--project", str(plain), "apply", "lab", deploy], check=True, capture_output=True)
    size.idle = settled(lab)
    if not only_rolling:
        timings(lab, size, plain)
    if rolling:
        with tempfile.TemporaryDirectory() as tmp:
            project = ops_copy(Path(tmp))
            patient_health_gate(project, n)
            prepare(lab, project, "patching", converge=plain, reboot=True)
            doc, load = roll(lab, project, "patching", serial="25%")
        for stage, seconds in split(doc):  # where the rollout's time went, for the note
            print(f"  rolling at {n} hosts, {stage}: {seconds:.1f} s", file=sys.stderr)
        if load.failures:  # what the failed requests got (HAProxy's status, a refused connection)
            print(f"  rolling at {n} hosts, failed requests: {dict(load.errors)}", file=sys.stderr)
        size.rolling = {
            "wall": doc["seconds"],
            "outside": outside_waits(doc),
            "requests": load.requests,
            "failed": load.failures,
            "ok": float(doc["status"] == "success"),
        }
    return size


def patient_health_gate(project: Path, hosts: int) -> None:
    """From 50 hosts on, a quarter of the lab reboots at once on this machine's 2 cores, which the other hosts'
    idle Node processes already half use (1.1 CPU s/s at 100 hosts): their apps answer the health gate later
    than the 30 s group_data gives a real host (at 100 hosts 8 of the first 25 had not, and the rollout
    stopped there). The gate's timeout becomes 5 minutes in the bench's copy. It is a wait that ends when the
    host answers: the time counts as the health wait it is, never as opsrun's."""
    if hosts >= 50:
        web = project / "group_data" / "web.py"
        web.write_text(web.read_text() + '\nrolling["healthy_timeout"] = rolling["health"]["timeout"] = 300\n')


def timings(lab: Lab, size: Size, plain: Path) -> None:
    """Apply, verify and drift side by side, their peak memory and verify's CPU, into `size`."""
    apply = alternate(nochange_commands(plain), size.runs)
    verify = alternate(
        {
            "verify": [OPSRUN, "verify", "lab", "nginx"],
            "verify_one": [OPSRUN, "verify", "lab", "nginx", "--limit", "web1"],
        },
        size.runs,
    )
    drift = alternate(drift_commands(), size.runs)
    drift3 = alternate(drift_commands(["web1", "web2", "web3"]), size.runs)
    size.seconds = {name: median(v) for name, v in {**apply, **verify, **drift}.items()}
    size.seconds |= {f"{name}3": median(v) for name, v in drift3.items()}
    size.peaks = {
        "apply": peak_memory(nochange_commands(plain)["opsrun"]),
        "verify": peak_memory([OPSRUN, "verify", "lab", "nginx"]),
        "drift": peak_memory(drift_commands()["drift"]),
    }
    size.cpu = {
        "verify": cpu_split(lab, [OPSRUN, "verify", "lab", "nginx"]),
        "verify_one": cpu_split(lab, [OPSRUN, "verify", "lab", "nginx", "--limit", "web1"]),
        "drift": cpu_split(lab, drift_commands()["drift"]),
        "drift3": cpu_split(lab, drift_commands(["web1", "web2", "web3"])["drift"]),
    }


# ------------------------------------------------------------------------------------------ the table
Cell = Callable[[Size], str]


def _ratio(s: Size, a: str, b: str) -> str:
    """seconds[a] / seconds[b], or "-" where one was not measured."""
    return f"{s.seconds[a] / s.seconds[b]:.2f}" if s.seconds.get(a) and s.seconds.get(b) else "-"


def table(sizes: list[Size]) -> str:
    """One Markdown table: a row per measure, a column per fleet size, and the issue's target."""
    rows: list[tuple[str, list[str], str]] = []

    def row(label: str, cell: Cell, target: str = "") -> None:
        rows.append((label, [cell(s) for s in sizes], target))

    def secs(key: str) -> Cell:
        return lambda s: f"{s.seconds[key]:.2f} s" if key in s.seconds else "-"

    def boot(key: str, fmt: str) -> Cell:
        return lambda s: fmt.format(s.boot[key]) if s.boot.get(key) is not None else "-"

    row("lab: hosts booted by this `up`", boot("new_hosts", "{}"))
    row("lab: boot time of those hosts", boot("boot_seconds", "{:.1f} s"))
    row("lab: memory per booted host (MemAvailable drop)", boot("mib_per_host", "{:.1f} MiB"))
    row("lab: inotify instances / watches per host", _inotify)
    row("lab: its CPU use when settled, before the measures", lambda s: "-" if s.idle is None else f"{s.idle:.2f} s/s")
    row("no-change nginx: opsrun (plain parallel apply)", secs("opsrun"))
    row("no-change nginx: raw `pyinfra -y`", secs("pyinfra"))
    row("**ratio opsrun / pyinfra**", lambda s: _ratio(s, "opsrun", "pyinfra"), "≤ 1.10")
    row("`opsrun verify lab nginx`: all hosts", secs("verify"))
    row("`opsrun verify lab nginx`: web1 alone", secs("verify_one"))
    row(
        "**ratio verify all / one**",
        lambda s: _ratio(s, "verify", "verify_one"),
        "≤ 1.3 at 12",
    )
    row("verify CPU, all hosts: opsrun + pytest + ssh / the lab hosts' own", lambda s: _cpu(s, "verify"))
    row("verify CPU, web1 alone: opsrun + pytest + ssh / the lab host's own", lambda s: _cpu(s, "verify_one"))
    row("floor of the ratio here: all hosts' CPU ÷ cores ÷ web1's wall", _floor("verify", "verify_one"), "reported")
    row("`opsrun drift lab nginx`", secs("drift"))
    row("`pyinfra --dry`", secs("dry"))
    row("**ratio drift / pyinfra --dry**", lambda s: _ratio(s, "drift", "dry"), "reported")
    row("`opsrun drift` on web1..web3", secs("drift3"))
    row(
        "**drift growth from 3 hosts**",
        lambda s: _ratio(s, "drift", "drift3"),
        "≤ 1.5 at 12",
    )
    row("`pyinfra --dry` growth from 3 hosts", lambda s: _ratio(s, "dry", "dry3"))
    row("drift CPU, all hosts: opsrun + workers + ssh / the lab hosts' own", lambda s: _cpu(s, "drift"))
    row("drift CPU, web1..web3: opsrun + workers + ssh / the lab hosts' own", lambda s: _cpu(s, "drift3"))
    row("floor of the growth here: all hosts' drift CPU ÷ cores ÷ 3 hosts' wall", _floor("drift", "drift3"), "reported")
    row("rolling `patching`, `--serial 25%`: wall", lambda s: _rolling(s, "wall", "{:.1f} s"))
    row(
        "**share outside pyinfra, drain, reboot, health waits**",
        lambda s: _rolling(s, "outside", "{:.1%}"),
        "≤ 10 %",
    )
    row("requests through HAProxy: failed / sent", _requests, "0 failed")
    for what in ("apply", "verify", "drift"):
        row(f"peak RSS, {what}: opsrun + workers (largest process)", lambda s, w=what: _peak(s, w), "reported")
        row(f"peak PSS, {what}: opsrun + workers (shared pages once)", lambda s, w=what: _pss(s, w), "reported")
    header = "| measure | " + " | ".join(f"{s.hosts} hosts" for s in sizes) + " | target |"
    lines = [header, "|---|" + "---|" * len(sizes) + "---|"]
    lines += [f"| {label} | " + " | ".join(cells) + f" | {target} |" for label, cells, target in rows]
    runs = ", ".join(f"{s.runs} at {s.hosts} hosts" for s in sizes)
    return "\n".join(lines) + f"\n\nMedians of {runs}; ratios measured side by side in one run.\n"


def _inotify(s: Size) -> str:
    i, w = s.boot.get("inotify_instances_per_host"), s.boot.get("inotify_watches_per_host")
    return f"{i} / {w}" if i is not None else "-"


def _rolling(s: Size, key: str, fmt: str) -> str:
    if not s.rolling:
        return "-"
    text = fmt.format(s.rolling[key])
    return text if s.rolling["ok"] else f"{text} (rollout failed)"


def _requests(s: Size) -> str:
    return f"{s.rolling['failed']:.0f} / {s.rolling['requests']:.0f}" if s.rolling else "-"


def _cpu(s: Size, what: str) -> str:
    c = s.cpu.get(what)
    return f"{c.controller:.2f} s / {c.hosts:.2f} s" if c else "-"


def _floor(all_hosts: str, few: str) -> Cell:
    """The least ratio all_hosts / few that this machine allows: all the CPU the run over all hosts used (here
    and on the lab's hosts, which share these cores) divided by the cores, over the smaller run's wall time."""

    def cell(s: Size) -> str:
        c = s.cpu.get(all_hosts)
        if c is None or not s.seconds.get(few):
            return "-"
        return f"{(c.controller + c.hosts) / (os.cpu_count() or 1) / s.seconds[few]:.2f}"

    return cell


def _pss(s: Size, what: str) -> str:
    p = s.peaks.get(what)
    return f"{p.pss_mib:.0f} MiB" if p and p.pss_mib is not None else "-"


def _peak(s: Size, what: str) -> str:
    p = s.peaks.get(what)
    return f"{p.tree_mib:.0f} MiB ({p.largest_mib:.0f} MiB)" if p else "-"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sizes", metavar="N", type=int, nargs="*", default=[12, 50, 100], help="fleet sizes")
    parser.add_argument("--no-rolling", action="store_true", help="skip the rolling patching under load")
    parser.add_argument("--only-rolling", action="store_true", help="only the rolling patching (and the lab's figures)")
    args = parser.parse_args()
    demo_token()
    lab = Lab()
    sizes = []
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="opsrun-scale-") as tmp:
        plain = plain_copy(Path(tmp))
        for n in sorted(args.sizes):
            sizes.append(measure(lab, n, plain, rolling=not args.no_rolling, only_rolling=args.only_rolling))
            print(f"{n} hosts measured ({time.monotonic() - started:.0f} s so far)\n", flush=True)
            print(table(sizes), flush=True)  # the sizes so far: a long run that stops keeps what it measured


if __name__ == "__main__":
    main()
