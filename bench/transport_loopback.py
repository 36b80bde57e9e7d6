"""Benchmark without the lab: verification's transport over one sshd on loopback, this code against the code
before it (issue 24, item 5's cost must-show, as far as it can be measured off the lab).

An sshd on 127.0.0.2 (tests/ssh/conftest.py's, in a temporary folder; no service of the machine), reached
through the ssh_config opsrun writes. For this code's `opsrun-ssh` backend and for `--before REV`'s (default:
the commit before the one that removed the marker framing's `_Stream`), alternated, `--rounds` times:
- a host: connect, 17 `uname -s` (an nginx suite's count), close; 12 hosts one after another;
- a command: one session of 201 commands minus one of 1, per command.
CPU of this side (this process and its ssh children, rusage) and of the host (the sshd listener's reaped
sessions: /proc/PID/stat cutime + cstime). Medians.

Run as root from the repository (it starts sshd; make test-deps installs it):
    python bench/transport_loopback.py [--before REV] [--rounds 5]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from opsrun.verification import ssh_shell  # noqa: E402
from tests.ssh.conftest import Sshd, start_sshd, stop_sshd, write_config  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")
HOSTS, COMMANDS = 12, 17


def before_commit() -> str:
    found = subprocess.run(
        ["git", "-C", str(REPO), "log", "-1", "--format=%H", "-Sclass _Stream", "--", "src/opsrun/ssh_shell.py"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    if not found:
        sys.exit("no commit removed the marker framing here: name the code to compare with --before REV")
    return f"{found}^"


def old_module(rev: str, folder: Path) -> ModuleType:
    """src/opsrun/ssh_shell.py as it was at `rev`, loaded under another name."""
    source = subprocess.run(
        ["git", "-C", str(REPO), "show", f"{rev}:src/opsrun/ssh_shell.py"], capture_output=True, check=True
    ).stdout
    # Its imports, pointed at where those modules live now (src/opsrun/hosts/, src/opsrun/verification/).
    source = source.replace(b"from opsrun import sudo\n", b"from opsrun.hosts import sudo\n")
    source = source.replace(b"from opsrun.transport import", b"from opsrun.verification.protocol import")
    path = folder / "ssh_shell_before.py"
    path.write_bytes(source)
    spec = importlib.util.spec_from_file_location("ssh_shell_before", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def here() -> float:
    return sum(
        (u.ru_utime + u.ru_stime)
        for u in (resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN))
    )


def host_cpu(server: Sshd) -> float:
    fields = Path(f"/proc/{server.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[14]) + int(fields[15])) / TICK


def sessions(backend_class: type, config: Path, server: Sshd, hosts: int, commands: int) -> tuple[float, float]:
    """CPU seconds here and on the host for `hosts` sessions of `commands` commands each."""
    time.sleep(0.2)  # let the previous sessions' sshd processes be reaped
    here0, host0 = here(), host_cpu(server)
    for _ in range(hosts):
        backend = backend_class("web1", ssh_config=str(config))
        for _ in range(commands):
            assert backend.run("uname -s").stdout == "Linux\n"
        backend.close()
    time.sleep(0.2)
    return here() - here0, host_cpu(server) - host0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", help="the commit to compare with (default: found in git)")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    rev = args.before or before_commit()
    with tempfile.TemporaryDirectory(prefix="opsrun-tl-") as tmp:
        folder = Path(tmp)
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(folder / "id")], check=True)
        server = start_sshd(folder / "host", "127.0.0.2", folder / "id")
        try:
            (folder / "c").mkdir()
            config = write_config(folder / "c", server, [server])
            ways = {"this code": ssh_shell.ShellSshBackend, f"before ({rev})": old_module(rev, folder).ShellSshBackend}
            report(ways, config, server, args.rounds)
        finally:
            stop_sshd(server)


def report(ways: dict[str, type], config: Path, server: Sshd, rounds: int) -> None:
    figures: dict[str, dict[str, list[float]]] = {name: {} for name in ways}
    for _ in range(rounds):
        for name, backend_class in ways.items():
            start = time.perf_counter()
            here_s, host_s = sessions(backend_class, config, server, HOSTS, COMMANDS)
            wall = time.perf_counter() - start - 0.4
            many = sessions(backend_class, config, server, 1, 201)
            one = sessions(backend_class, config, server, 1, 1)
            for key, value in (
                ("here/host", here_s / HOSTS),
                ("lab/host", host_s / HOSTS),
                ("wall/host", wall / HOSTS),
                ("here/cmd", (many[0] - one[0]) / 200),
                ("lab/cmd", (many[1] - one[1]) / 200),
            ):
                figures[name].setdefault(key, []).append(value * 1000)
    print(f"\nloopback sshd, {HOSTS} hosts × {COMMANDS} `uname -s`, medians of {rounds} (ms)\n")
    print("| | this side a host | this side a command | host a host | host a command | wall a host |")
    print("|---|---|---|---|---|---|")
    for name, f in figures.items():
        cells = [statistics.median(f[k]) for k in ("here/host", "here/cmd", "lab/host", "lab/cmd", "wall/host")]
        print(f"| {name} | " + " | ".join(f"{c:.1f}" for c in cells) + " |")


if __name__ == "__main__":
    main()
