"""The lab itself: hosts that survive reboots, `up` twice gives the same lab, packages from inside the
hosts through the bridge, and `down` leaves nothing behind."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from opsrun.lab import Lab
from opsrun.lab.config import LabConfig
from opsrun.lab.hosts import cgroup_dirs
from opsrun.support.waiting import poll_until
from tests.conftest import opsrun

pytestmark = pytest.mark.lab


def test_status_lists_each_host_with_address_and_state(lab):
    proc = opsrun("lab", "status", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    hosts = json.loads(proc.stdout)["hosts"]
    assert [(h["name"], h["state"]) for h in hosts] == [("web1", "running"), ("web2", "running"), ("web3", "running")]
    assert [h["address"] for h in hosts] == [lab.cfg.address(i) for i in (1, 2, 3)]


def test_host_comes_back_after_a_reboot_inside_it(lab, on_host):
    before = on_host("web2", "cat /proc/sys/kernel/random/boot_id").stdout.strip()
    on_host("web2", "systemctl reboot", check=False)

    def new_boot() -> str:  # ssh refused while it reboots: not yet
        answer = on_host("web2", "cat /proc/sys/kernel/random/boot_id", check=False)
        now = answer.stdout.strip() if answer.returncode == 0 else before
        return now if now != before else ""

    poll_until(new_boot, timeout=60, interval=0.3, what="web2 to come back with a new boot_id")
    assert on_host("web2", "systemctl is-system-running --wait").stdout.strip() == "running"
    log = (lab.cfg.host_dir("web2") / "supervisor.log").read_text()
    assert "nspawn exited 133" in log


def test_up_twice_gives_the_same_lab(lab, on_host):
    boot_ids = {h: on_host(h, "cat /proc/sys/kernel/random/boot_id").stdout for h in ("web1", "web3")}
    known_hosts = lab.cfg.known_hosts.read_text()
    hosts = lab.up(3)
    assert [h.name for h in hosts] == ["web1", "web2", "web3"]
    assert lab.cfg.known_hosts.read_text() == known_hosts
    assert {h: on_host(h, "cat /proc/sys/kernel/random/boot_id").stdout for h in boot_ids} == boot_ids


def test_apt_and_npm_work_from_inside_a_host_through_the_bridge(lab, on_host):
    assert on_host(
        "web3", "ip route get 1.1.1.1 >/dev/null 2>&1 && echo routed || echo isolated", check=False
    ).stdout.strip() in ("routed", "isolated")
    apt = on_host("web3", "apt-get -q update 2>&1 && apt-get -q install -y --no-install-recommends tree 2>&1")
    assert "Setting up tree" in apt.stdout or "already the newest" in apt.stdout
    version = on_host("web3", "npm view is-number version").stdout.strip()
    assert version.count(".") == 2 and version.split(".")[0].isdigit()


def _leftovers(cfg: LabConfig, names: list[str]) -> list[str]:
    found = []
    netns = Path("/run/netns")
    found += [f"netns {p.name}" for p in netns.iterdir() if p.name.startswith(cfg.prefix)] if netns.is_dir() else []
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, check=True).stdout
    found += [f"link {cfg.bridge}" for line in links.splitlines() if f": {cfg.bridge}:" in line]
    found += [f"link {cfg.veth(n)}" for n in names if f": {cfg.veth(n)}@" in links]
    found += [f"cgroup {d}" for n in names for d in cgroup_dirs(cfg, n) if d.exists()]
    found += [f"dir {cfg.lab_dir}"] if cfg.lab_dir.exists() else []
    procs = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True, check=True).stdout
    found += [f"process {line}" for line in procs.splitlines() if str(cfg.lab_dir) in line]
    found += [
        f"propagate {cfg.machine(n)}"
        for n in names
        if (Path("/run/systemd/nspawn/propagate") / cfg.machine(n)).exists()
    ]
    # read the listening sockets; never connect: once the bridge is gone that address is not ours
    listening = subprocess.run(["ss", "-Hltn"], capture_output=True, text=True, check=True).stdout
    found += [f"listener {line.split()[3]}" for line in listening.splitlines() if f" {cfg.gateway}:" in line]
    return found


def test_down_removes_everything_up_made_and_is_fine_twice(lab, tmp_path):
    """A second, separate lab (own subnet, bridge and names) so the session's lab is not disturbed."""
    cfg = LabConfig(
        lab_dir=tmp_path / "lab2",
        cache_dir=lab.cfg.cache_dir,
        subnet="10.231.8",
        bridge="opsrun-t0",
        prefix="opsrun-t-",
    )
    other = Lab(cfg)
    hosts = other.up(2)
    assert [(h.name, h.state) for h in hosts] == [("web1", "running"), ("web2", "running")]
    assert {"netns opsrun-t-web1", f"dir {cfg.lab_dir}"} <= set(_leftovers(cfg, ["web1", "web2"]))
    ip_forward = Path("/proc/sys/net/ipv4/ip_forward").read_text()

    other.down()
    assert _leftovers(cfg, ["web1", "web2"]) == []
    assert Path("/proc/sys/net/ipv4/ip_forward").read_text() == ip_forward
    other.down()  # no lab: still fine
    assert [h.state for h in lab.status()] == ["running"] * 3, "the session's lab was disturbed"
