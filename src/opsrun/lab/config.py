"""Where the lab lives and how it is addressed. One object, built from the environment."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

#: Host i (1-based) of the lab is `web{i}` at SUBNET.{10+i}; the bridge is SUBNET.1.
MAX_HOSTS = 30


@dataclass(frozen=True)
class LabConfig:
    lab_dir: Path  # per-lab state: hosts' upper dirs, keys, known_hosts, pids, logs; removed by `down`
    cache_dir: Path  # the base image and the package caches; kept by `down` (removed by `down --purge`)
    subnet: str = "10.231.7"  # /24; only ever used on the lab bridge and inside the lab's namespaces
    bridge: str = "opsrun0"
    prefix: str = "opsrun-"  # namespaces and cgroups made by the lab start with this
    apt_port: int = 3142
    npm_port: int = 4873
    repo_port: int = 8080

    @classmethod
    def from_env(cls) -> LabConfig:
        return cls(
            lab_dir=Path(os.environ.get("OPSRUN_LAB_DIR", "/var/lib/opsrun/lab")),
            cache_dir=Path(os.environ.get("OPSRUN_LAB_CACHE", "/var/cache/opsrun/lab")),
        )

    @property
    def gateway(self) -> str:
        return f"{self.subnet}.1"

    def address(self, index: int) -> str:
        return f"{self.subnet}.{10 + index}"

    @property
    def key(self) -> Path:
        return self.lab_dir / "keys" / "id_ed25519"

    @property
    def known_hosts(self) -> Path:
        return self.lab_dir / "known_hosts"

    @property
    def state_file(self) -> Path:
        return self.lab_dir / "lab.json"

    def host_dir(self, name: str) -> Path:
        return self.lab_dir / "hosts" / name

    def machine(self, name: str) -> str:
        return f"{self.prefix}{name}"  # nspawn's machine name: its propagate dir and lock are per machine

    def netns(self, name: str) -> str:
        return f"{self.prefix}{name}"

    def veth(self, name: str) -> str:
        return f"v{self.prefix}{name}"[:15]  # IFNAMSIZ


def host_name(index: int) -> str:
    return f"web{index}"
