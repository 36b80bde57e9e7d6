"""The local lab: real Debian hosts with systemd and sshd, booted by systemd-nspawn on one machine.

    up(n)     build or reuse the base image, make and boot hosts web1..webN, start the lab services
    status()  each host's name, address and state
    down()    remove every process, namespace, interface, cgroup and file that `up` made

`inventories/lab.py` reads `lab.json` to describe the hosts to pyinfra and testinfra.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

from opsrun.errors import LabError
from opsrun.lab import aptrepo, haproxy, hosts, image, network, services
from opsrun.lab.config import MAX_HOSTS, LabConfig, host_name

Log = Callable[[str], None]
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
        if not 1 <= count <= MAX_HOSTS:
            raise LabError(f"--hosts must be between 1 and {MAX_HOSTS}, not {count}.")
        check_prerequisites()
        cfg = self.cfg
        started = time.monotonic()
        base = image.ensure_base(cfg, log)
        state = self._read_state()
        if state.get("base") not in (None, str(base)):
            log("the base image changed: making the hosts again")
            self.down(log=log)
            state = {}
        image.prune(cfg, keep=base)
        wanted = [host_name(i) for i in range(1, count + 1)]
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
        for name in wanted:
            hosts.create(cfg, base, name)
            network.ensure_host_net(cfg, name, addresses[name])
        self._write_known_hosts(addresses)
        self._write_state(base, addresses)
        for name in wanted:
            hosts.start(cfg, base, name)
        with ThreadPoolExecutor(max_workers=len(wanted)) as pool:
            states = list(pool.map(lambda n: hosts.wait_ready(cfg, n, addresses[n]), wanted))
        haproxy.ensure(cfg, addresses)
        log(f"lab up: {len(wanted)} hosts in {time.monotonic() - started:.1f}s")
        return [LabHost(n, addresses[n], s) for n, s in zip(wanted, states, strict=True)]

    def _write_known_hosts(self, addresses: dict[str, str]) -> None:
        lines = [f"{name},{addr} {key}" for name, addr in addresses.items() for key in hosts.host_keys(self.cfg, name)]
        tmp = self.cfg.known_hosts.with_suffix(".tmp")
        tmp.write_text("\n".join(lines) + "\n")
        tmp.replace(self.cfg.known_hosts)

    def _write_state(self, base: Path, addresses: dict[str, str]) -> None:
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

        with ThreadPoolExecutor(max_workers=max(1, len(entries))) as pool:
            return list(pool.map(one, entries))

    def _remove_host(self, name: str) -> None:
        hosts.stop(self.cfg, name)
        network.remove_host_net(self.cfg, name)
        shutil.rmtree(self.cfg.host_dir(name), ignore_errors=True)

    def down(self, log: Log = _quiet, purge: bool = False) -> None:
        """Remove everything `up` made. Safe to call when no lab (or half a lab) exists."""
        cfg = self.cfg
        names = sorted(set(self.host_names()) | set(network.lab_namespaces(cfg)) | self._host_dirs())
        if names:
            log(f"stopping {', '.join(names)}")
        with ThreadPoolExecutor(max_workers=max(1, len(names))) as pool:
            list(pool.map(lambda n: hosts.stop(cfg, n), names))
        for name in names:
            network.remove_host_net(cfg, name)
        haproxy.stop(cfg)
        services.stop_all(cfg)
        network.remove_bridge(cfg)
        hosts.remove_cgroups(cfg, "")  # the lab's parent cgroups
        shutil.rmtree(cfg.lab_dir, ignore_errors=True)
        if purge:
            image.remove_cache(cfg)

    def _host_dirs(self) -> set[str]:
        root = self.cfg.lab_dir / "hosts"
        return {p.name for p in root.iterdir()} if root.is_dir() else set()


def host_dict(h: LabHost) -> dict[str, str]:
    return asdict(h)
