"""What a real fleet has that the lab's hosts alone have not: a bastion, and hosts reached only through it.

The bastion is one more lab host (SUBNET.5, among the addresses web hosts never take), made and booted on
demand: `up` keeps it as it is, `down` removes it with the rest. Every host has the `admin` user of Debian's
cloud images (passwordless sudo, the lab key; lab.image). `access(cfg, True)` gives the web hosts a fleet's
SSH: root logins refused, and no login at all unless it comes from the bastion's address (sshd's own
`AllowUsers *@ADDRESS`), so a connection that skips the bastion fails instead of passing unnoticed.
`console` is the lab's way in that needs no SSH at all (nsenter into the host's namespaces): what a cloud
console is to a fleet, and how `access(cfg, False)` gets back in.
"""

from __future__ import annotations

import json
import shlex
import subprocess
from pathlib import Path

from opsrun.errors import LabError
from opsrun.lab import hosts, network
from opsrun.lab.config import LabConfig

BASTION = "bastion"
BASTION_OFFSET = 5
FLEET_SSHD = "/etc/ssh/sshd_config.d/00-fleet.conf"


def bastion_address(cfg: LabConfig) -> str:
    return f"{cfg.subnet}.{BASTION_OFFSET}"


def bastion_up(cfg: LabConfig) -> str:
    """The bastion made (once), booted and answering; its host keys in the lab's known_hosts. Its address."""
    state = json.loads(cfg.state_file.read_text()) if cfg.state_file.exists() else {}
    if "base" not in state:
        raise LabError("no lab is up here. Fix: run `opsrun lab up` first")
    base, address = Path(state["base"]), bastion_address(cfg)
    hosts.create(cfg, base, BASTION)
    network.ensure_host_net(cfg, BASTION, address)
    known = cfg.known_hosts.read_text() if cfg.known_hosts.exists() else ""
    missing = [line for line in known_hosts_lines(cfg) if line not in known.splitlines()]
    if missing:
        with cfg.known_hosts.open("a") as f:
            f.write("".join(f"{line}\n" for line in missing))
    hosts.start(cfg, base, BASTION)
    hosts.wait_ready(cfg, BASTION, address)
    return address


def known_hosts_lines(cfg: LabConfig) -> list[str]:
    """The bastion's known_hosts lines when it exists (lab.up rewrites the file: they must stay in it)."""
    if not (cfg.host_dir(BASTION) / "identity.done").exists():
        return []
    return [f"{BASTION},{bastion_address(cfg)} {key}" for key in hosts.host_keys(cfg, BASTION)]


def console(cfg: LabConfig, name: str, command: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """`command` as root inside lab host `name`'s namespaces, without SSH (a cloud console's way in)."""
    nspawn = hosts._read_pid(cfg.host_dir(name) / "nspawn.pid")
    children = Path(f"/proc/{nspawn}/task/{nspawn}/children").read_text().split() if nspawn else []
    if not children:
        raise LabError(f"lab host {name} is not running. Fix: `opsrun lab up`")
    return subprocess.run(
        ["nsenter", "-t", children[0], "-m", "-u", "-i", "-n", "-p", "--", "/bin/sh", "-c", command],
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        check=False,
        env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"},
    )


def access(cfg: LabConfig, names: list[str], fleet: bool) -> None:
    """Give hosts `names` a fleet's SSH (root refused, only through the bastion), or the lab's again."""
    if fleet:
        text = f"# opsrun lab: as a fleet behind a bastion\nPermitRootLogin no\nAllowUsers *@{bastion_address(cfg)}\n"
        change = f"printf %s {shlex.quote(text)} > {FLEET_SSHD}"
    else:
        change = f"rm -f {FLEET_SSHD}"
    for name in names:
        proc = console(cfg, name, f"{change} && sshd -t && systemctl reload ssh")
        if proc.returncode != 0:
            raise LabError(f"{name}: changing its sshd for fleet={fleet} failed: {proc.stderr.strip()}")
