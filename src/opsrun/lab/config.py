"""Where the lab lives and how it is addressed. One object, built from the environment."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

#: Host i (1-based) of the lab is `web{i}` at SUBNET.{HOST_OFFSET+i}; the bridge is SUBNET.1, .2-.10 stay free.
HOST_OFFSET = 10
#: The /24 has room for this many hosts (.11-.254). How many this machine holds is capacity.plan's answer.
MAX_ADDRESSES = 254 - HOST_OFFSET


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
        """Host `index` (1-based) of the lab: SUBNET.11 for web1 ... SUBNET.254 for web244."""
        if not 1 <= index <= MAX_ADDRESSES:
            raise ValueError(f"lab host index {index} is outside 1..{MAX_ADDRESSES} (the /24 of {self.subnet})")
        return f"{self.subnet}.{HOST_OFFSET + index}"

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
        full = f"v{self.prefix}{name}"
        if len(full) <= 15:  # IFNAMSIZ
            return full
        # cutting it short would give web100 the name of web10: a name of the same length from a hash instead
        return "v" + hashlib.sha256(full.encode()).hexdigest()[:14]


def host_name(index: int) -> str:
    return f"web{index}"
