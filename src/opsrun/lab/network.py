"""The lab network: one bridge in the root namespace, one network namespace and veth pair per host.

IP forwarding is never switched on: the hosts reach only the bridge address, where the lab's proxies
listen. Every step checks before it acts, so `up` twice gives the same network.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from opsrun.errors import LabError
from opsrun.lab.config import LabConfig

NETNS_DIR = Path("/run/netns")


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if check and proc.returncode != 0:
        raise LabError(f"`ip {' '.join(args)}` failed: {proc.stderr.strip()}")
    return proc


def link_exists(name: str, netns: str | None = None) -> bool:
    args = ["-n", netns] if netns else []
    return ip(*args, "link", "show", "dev", name, check=False).returncode == 0


def ensure_bridge(cfg: LabConfig) -> None:
    if not link_exists(cfg.bridge):
        owner = ip("-o", "-4", "addr", "show", check=False).stdout
        if f" {cfg.gateway}/" in owner:
            raise LabError(
                f"the lab address {cfg.gateway} is already used by another interface here. "
                "Fix: free it, or run the lab on another machine."
            )
        ip("link", "add", cfg.bridge, "type", "bridge")
        ip("addr", "add", f"{cfg.gateway}/24", "dev", cfg.bridge)
    ip("link", "set", cfg.bridge, "up")


def ensure_host_net(cfg: LabConfig, name: str, address: str) -> None:
    ns, veth = cfg.netns(name), cfg.veth(name)
    if not (NETNS_DIR / ns).exists():
        ip("netns", "add", ns)
    if not link_exists(veth):
        if link_exists("eth0", ns):
            ip("-n", ns, "link", "del", "eth0")
        ip("link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns)
    ip("link", "set", veth, "master", cfg.bridge, "up")
    addrs = ip("-n", ns, "-o", "-4", "addr", "show", "dev", "eth0").stdout
    if f" {address}/24" not in addrs:
        ip("-n", ns, "addr", "add", f"{address}/24", "dev", "eth0")
    ip("-n", ns, "link", "set", "eth0", "up")
    ip("-n", ns, "link", "set", "lo", "up")
    routes = ip("-n", ns, "route", "show", "default").stdout
    if not routes.strip():
        ip("-n", ns, "route", "add", "default", "via", cfg.gateway)  # harmless: nothing forwards


def remove_host_net(cfg: LabConfig, name: str) -> None:
    if link_exists(cfg.veth(name)):
        ip("link", "del", cfg.veth(name), check=False)
    if (NETNS_DIR / cfg.netns(name)).exists():
        ip("netns", "del", cfg.netns(name), check=False)


def lab_namespaces(cfg: LabConfig) -> list[str]:
    """Host names of every namespace the lab made, whether or not lab.json still knows them."""
    if not NETNS_DIR.is_dir():
        return []
    return sorted(p.name[len(cfg.prefix) :] for p in NETNS_DIR.iterdir() if p.name.startswith(cfg.prefix))


def remove_bridge(cfg: LabConfig) -> None:
    if link_exists(cfg.bridge):
        ip("link", "del", cfg.bridge, check=False)
