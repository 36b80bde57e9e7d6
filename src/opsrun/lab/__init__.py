"""The local lab: real Debian hosts with systemd and sshd, booted by systemd-nspawn on one machine.

    up(n)     build or reuse the base image, make and boot hosts web1..webN, start the lab services;
              N is bounded by what the machine holds (capacity.py: addresses, memory, inotify limits)
    status()  each host's name, address and state
    install() packages from the lab's apt repository on every host: what a fleet runs before opsrun
              manages it (opsrun-demo for patching to upgrade, the mongod stand-in)
    run()     one shell command on one host, as root over the lab's SSH
    down()    remove every process, namespace, interface, cgroup and file that `up` made (the PostgreSQL
              of `opsrun lab postgres` too), and put back the inotify limits `up` raised

`inventories/lab.py` reads `lab.json` to describe the hosts to pyinfra and testinfra.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TypeVar

from opsrun.errors import LabError
from opsrun.lab import aptrepo, capacity, fleet, haproxy, hosts, image, network, postgres, services
from opsrun.lab.config import LabConfig, host_name

Log = Callable[[str], None]
T = TypeVar("T")
R = TypeVar("R")
#: SSH sessions opened at once while hosts boot or report: more only competes with the booting hosts for CPU
SSH_AT_ONCE = 32
REQUIRED_TOOLS = {
    "systemd-nspawn": "systemd-container",
    "debootstrap": "debootstrap",
    "ip": "iproute2",
    "ssh": "openssh-client",
    "ssh-keygen": "openssh-client",
    "setsid": "util-linux",
    "haproxy": "haproxy",
    "dpkg-deb": "dpkg",
}


@dataclass(frozen=True)
class LabHost:
    name: str
    address: str
    state: str  # running | degraded | starting | unreachable | stopped


def _quiet(_msg: str) -> None:
    pass


def _each(fn: Callable[[T], R], items: Iterable[T], at_once: int | None = None) -> list[R]:
    """fn over items in threads (all at once, or at most `at_once`), results in order."""
    todo = list(items)
    with ThreadPoolExecutor(max_workers=max(1, min(at_once or len(todo), len(todo)))) as pool:
        return list(pool.map(fn, todo))


def check_prerequisites() -> None:
    if os.geteuid() != 0:
        raise LabError("the lab needs root (network namespaces, systemd-nspawn). Fix: run as root.")
    missing = sorted({pkg for tool, pkg in REQUIRED_TOOLS.items() if shutil.which(tool) is None})
    if missing:
        raise LabError(f"the lab needs {', '.join(missing)}. Fix: apt-get install {' '.join(missing)}")


class Lab:
    def __init__(self, cfg: LabConfig | None = None):
        self.cfg = cfg or LabConfig.from_env()

    def _read_state(self) -> dict[str, object]:
        try:
            return dict(json.loads(self.cfg.state_file.read_text()))
        except (OSError, ValueError):
            return {}

    def host_names(self) -> list[str]:
        names = self._read_state().get("hosts", [])
        return [str(h["name"]) for h in names] if isinstance(names, list) else []

    def up(self, count: int = 3, log: Log = _quiet) -> list[LabHost]:
        if count < 1:
            raise LabError(f"--hosts must be at least 1, not {count}.")
        check_prerequisites()
        cfg = self.cfg
        started = time.monotonic()
        state = self._read_state()
        wanted = [host_name(i) for i in range(1, count + 1)]
        running = [n for n in wanted if hosts.supervisor_pid(cfg, n)]
        mem_total, mem_available = capacity.read_meminfo()
        room = capacity.plan(
            count,
            running=len(running),
            mem_total_kib=mem_total,
            mem_available_kib=mem_available,
            inotify=capacity.read_inotify(),
            cost=host_cost(state),
        )
        base = image.ensure_base(cfg, log)
        if state.get("base") not in (None, str(base)):
            log("the base image changed: making the hosts again")
            self.down(log=log)
            state, running = {}, []
        image.prune(cfg, keep=base)
        for extra in sorted(set(self.host_names()) - set(wanted)):
            log(f"removing {extra}")
            self._remove_host(extra)

        cfg.lab_dir.mkdir(parents=True, exist_ok=True)
        cfg.key.parent.mkdir(parents=True, exist_ok=True)
        if not cfg.key.exists():
            subprocess.run(
                ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "opsrun-lab", "-f", str(cfg.key)], check=True
            )
        network.ensure_bridge(cfg)
        if not (aptrepo.repo_dir(cfg) / "Packages").exists():
            aptrepo.publish(cfg, "1.0")  # the demo package patching upgrades; `lab publish` adds versions
        services.start_all(cfg)
        addresses = {name: cfg.address(i) for i, name in enumerate(wanted, 1)}
        _each(lambda n: hosts.create(cfg, base, n), wanted, at_once=os.cpu_count())
        for name in wanted:  # serially: the first `ip netns add` sets up /run/netns, which must not race
            network.ensure_host_net(cfg, name, addresses[name])
        self._write_known_hosts(addresses)
        facts: dict[str, Any] = {k: state[k] for k in ("measured",) if k in state}
        limits = raise_limits(room.sysctl, state.get("sysctl"), log)
        facts |= {"sysctl": limits} if limits else {}
        self._write_state(base, addresses, facts)  # before any host boots: `down` knows what to put back
        booting = time.monotonic()
        available_before = capacity.read_meminfo()[1]
        _each(lambda n: hosts.start(cfg, base, n), wanted, at_once=SSH_AT_ONCE)
        states = _each(lambda n: self._ready(base, n, addresses[n], log), wanted, at_once=SSH_AT_ONCE)
        new = len(wanted) - len(running)
        if new:  # `up` of a lab already up keeps the measurement of the boot that made it
            facts["measured"] = self._measure(wanted, new, time.monotonic() - booting, available_before)
            self._write_state(base, addresses, facts)
        haproxy.ensure(cfg, addresses)
        log(f"lab up: {len(wanted)} hosts in {time.monotonic() - started:.1f}s")
        return [LabHost(n, addresses[n], s) for n, s in zip(wanted, states, strict=True)]

    def _ready(self, base: Path, name: str, address: str, log: Log) -> str:
        """wait_ready; a host that does not come up in time is powered off and booted once more (a cloud's
        answer to a failed status check), which its supervisor.log records; not up the second time is the
        error, with the host's boot trace."""
        try:
            return hosts.wait_ready(self.cfg, name, address)
        except LabError as exc:
            note = f"{name} did not come up ({str(exc).splitlines()[0]}): powering it off and booting it again"
            log(note)
            with (self.cfg.host_dir(name) / "supervisor.log").open("a") as f:
                f.write(f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} opsrun lab up: {note}\n")
        hosts.stop(self.cfg, name)
        hosts.start(self.cfg, base, name)
        return hosts.wait_ready(self.cfg, name, address)

    def _measure(self, names: list[str], new: int, boot_seconds: float, available_before_kib: int) -> dict[str, Any]:
        """What the hosts cost, for the next `up` to plan with and for bench/scale.py to report: boot time of
        the hosts this `up` started, the MemAvailable drop per new host, the inotify held per host."""
        instances, watches = capacity.inotify_held(set().union(*(hosts.cgroup_pids(self.cfg, n) for n in names)))
        drop_mib = (available_before_kib - capacity.read_meminfo()[1]) / 1024
        return {
            "hosts": len(names),
            "new_hosts": new,
            "boot_seconds": round(boot_seconds, 2),
            "mib_per_host": round(drop_mib / new, 1) if new else None,
            "inotify_instances_per_host": round(instances / len(names), 1),
            "inotify_watches_per_host": round(watches / len(names), 1),
        }

    def _write_known_hosts(self, addresses: dict[str, str]) -> None:
        lines = [f"{name},{addr} {key}" for name, addr in addresses.items() for key in hosts.host_keys(self.cfg, name)]
        lines += fleet.known_hosts_lines(self.cfg)  # the bastion, when one was made, keeps its place
        tmp = self.cfg.known_hosts.with_suffix(".tmp")
        tmp.write_text("\n".join(lines) + "\n")
        tmp.replace(self.cfg.known_hosts)

    def _write_state(self, base: Path, addresses: dict[str, str], facts: dict[str, Any]) -> None:
        doc = {
            "base": str(base),
            "subnet": self.cfg.subnet,
            "gateway": self.cfg.gateway,
            "key": str(self.cfg.key),
            "known_hosts": str(self.cfg.known_hosts),
            "hosts": [{"name": n, "address": a} for n, a in addresses.items()],
            "apt_repository": aptrepo.source_line(self.cfg),
            "haproxy": {
                "socket": str(haproxy.paths(self.cfg)[1]),
                "backend": haproxy.BACKEND,
                "frontend": f"{self.cfg.gateway}:{haproxy.FRONTEND_PORT}",
                "web_port": haproxy.WEB_PORT,
            },
            **facts,  # sysctl: the inotify limits raised and their old values; measured: what hosts cost
        }
        tmp = self.cfg.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(doc, indent=2) + "\n")
        tmp.replace(self.cfg.state_file)

    def status(self) -> list[LabHost]:
        doc = self._read_state()
        entries = doc.get("hosts", [])
        if not isinstance(entries, list):
            return []

        def one(entry: dict[str, str]) -> LabHost:
            name, addr = entry["name"], entry["address"]
            if not hosts.supervisor_pid(self.cfg, name):
                return LabHost(name, addr, "stopped")
            try:
                out = hosts.ssh(self.cfg, addr, "systemctl", "is-system-running", timeout=10)
            except subprocess.TimeoutExpired:
                return LabHost(name, addr, "unreachable")
            state = out.stdout.strip()
            return LabHost(name, addr, state if out.returncode in (0, 1) and state else "unreachable")

        return _each(one, entries, at_once=SSH_AT_ONCE)

    def address_of(self, name: str) -> str:
        state = self._read_state().get("hosts", [])
        found = [str(h["address"]) for h in state if h.get("name") == name] if isinstance(state, list) else []
        if not found:
            known = ", ".join(self.host_names()) or "none: run `opsrun lab up`"
            raise LabError(f"no lab host named {name!r}. Fix: use one of: {known}")
        return found[0]

    def frontend(self) -> str:
        """HAProxy's frontend, ADDRESS:PORT on the lab bridge."""
        doc = self._read_state().get("haproxy")
        if not isinstance(doc, dict) or "frontend" not in doc:
            raise LabError("no lab is up here. Fix: run `opsrun lab up`")
        return str(doc["frontend"])

    def run(self, name: str, command: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """`command` (one shell line) on lab host `name`, as root."""
        return hosts.ssh(self.cfg, self.address_of(name), command, timeout=timeout)

    def install(self, packages: list[str], log: Log = _quiet) -> dict[str, subprocess.CompletedProcess[str]]:
        """apt-get install `packages` (NAME or NAME=VERSION) from the lab's repository on every host, with
        the repository's source line in /etc/apt/sources.list.d/opsrun.list, as deploys/patching.py writes
        it from `apt_repositories`. The stand-in package is built from this checkout first."""
        bad = [p for p in packages if not re.fullmatch(r"[a-z0-9][a-z0-9.+-]*(=[0-9][A-Za-z0-9.+~:-]*)?", p)]
        if bad or not packages:
            raise LabError(f"{bad[0] if bad else 'nothing'}: name Debian packages, e.g. opsrun-demo or opsrun-demo=1.0")
        if aptrepo.STANDIN in (p.split("=")[0] for p in packages):
            log(f"published {aptrepo.publish_standin(self.cfg).name}")
        line = aptrepo.source_line(self.cfg)
        command = (
            f"printf '%s\\n' {shlex.quote(line)} > /etc/apt/sources.list.d/opsrun.list && apt-get update -qq && "
            f"DEBIAN_FRONTEND=noninteractive apt-get install -y -q {' '.join(shlex.quote(p) for p in packages)}"
        )
        names = self.host_names()
        done = _each(lambda n: self.run(n, command, timeout=600), names, at_once=SSH_AT_ONCE)
        return dict(zip(names, done, strict=True))

    def _remove_host(self, name: str) -> None:
        hosts.stop(self.cfg, name)
        network.remove_host_net(self.cfg, name)
        shutil.rmtree(self.cfg.host_dir(name), ignore_errors=True)

    def down(self, log: Log = _quiet, purge: bool = False) -> None:
        """Remove everything `up` made. Safe to call when no lab (or half a lab) exists."""
        cfg = self.cfg
        limits = self._read_state().get("sysctl")
        names = sorted(set(self.host_names()) | set(network.lab_namespaces(cfg)) | self._host_dirs())
        if names:
            log(f"stopping {', '.join(names)}")
        wait = hosts.poweroff_timeout(len(names))
        _each(lambda n: hosts.stop(cfg, n, wait), names)  # all at once: each only signals and polls /proc
        for name in names:
            network.remove_host_net(cfg, name)
        haproxy.stop(cfg)
        services.stop_all(cfg)
        postgres.stop(cfg)
        network.remove_bridge(cfg)
        hosts.remove_cgroups(cfg, "")  # the lab's parent cgroups
        restore_limits(limits, log)
        shutil.rmtree(cfg.lab_dir, ignore_errors=True)
        if purge:
            image.remove_cache(cfg)

    def _host_dirs(self) -> set[str]:
        root = self.cfg.lab_dir / "hosts"
        return {p.name for p in root.iterdir()} if root.is_dir() else set()


def host_cost(state: dict[str, Any]) -> capacity.HostCost:
    """Our budget for a host, raised to what the last `up` measured here (from 3 new hosts up: fewer are noise)."""
    measured = state.get("measured")
    budget = capacity.HostCost()
    if not isinstance(measured, dict) or (measured.get("new_hosts") or 0) < 3:
        return budget
    return budget.at_least(
        capacity.HostCost(
            float(measured.get("mib_per_host") or 0),
            int(measured.get("inotify_instances_per_host") or 0) + 1,
            int(measured.get("inotify_watches_per_host") or 0) + 1,
        )
    )


def raise_limits(wanted: dict[str, int], recorded: object, log: Log) -> dict[str, dict[str, int]]:
    """Raise the inotify limits in `wanted`; return the lab's record of them, {name: {"was", "set"}},
    merged with the record of an earlier `up` (`recorded`): "was" stays the value from before the lab."""
    limits: dict[str, dict[str, int]] = {}
    if isinstance(recorded, dict):
        limits = {str(k): {"was": int(v["was"]), "set": int(v["set"])} for k, v in recorded.items()}
    for name, value in wanted.items():
        old = capacity.read_sysctl(name)
        capacity.write_sysctl(name, value)
        log(f"{name}: {old} -> {value} (the hosts' systemd need more; `lab down` puts it back)")
        limits[name] = {"was": limits.get(name, {}).get("was", old), "set": value}
    return limits


def restore_limits(limits: object, log: Log) -> None:
    """Put back the inotify limits `up` raised: only where nobody changed them since, and only when what
    still runs (another lab, the machine's services) fits under the old value."""
    if not isinstance(limits, dict):
        return
    held = dict(zip((capacity.INSTANCES, capacity.WATCHES), capacity.inotify_held(), strict=True))
    for name, record in limits.items():
        was, raised = int(record["was"]), int(record["set"])
        try:
            now = capacity.read_sysctl(name)
            if now != raised:
                log(f"{name} is {now}, not the {raised} the lab set: someone changed it since; left as it is")
            elif not capacity.restorable(was, held.get(name, 0)):
                in_use = held.get(name, 0)
                log(f"{name} left at {now}: what still runs holds {in_use} (another lab?), too many for {was}")
            else:
                capacity.write_sysctl(name, was)
                log(f"{name} back to {was}")
        except (OSError, ValueError, LabError) as exc:  # `down` carries on: the rest must still be removed
            log(f"{name} not put back to {was}: {exc}")


def host_dict(h: LabHost) -> dict[str, str]:
    return asdict(h)
