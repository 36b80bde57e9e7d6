"""How many lab hosts a machine holds, and the inotify limits N hosts need: pure, on given numbers."""

from __future__ import annotations

from pathlib import Path

import pytest

from opsrun import lab as lab_module
from opsrun.errors import LabError
from opsrun.lab import capacity, hosts
from opsrun.lab.capacity import INSTANCES, WATCHES, HostCost, Inotify
from opsrun.lab.config import MAX_ADDRESSES, LabConfig, host_name

GIB = 1024 * 1024  # KiB
MEMINFO = "MemTotal:       24683584 kB\nMemFree:        21379808 kB\nMemAvailable:   24186288 kB\nBuffers: 1 kB\n"
DEFAULTS = Inotify(max_instances=128, max_watches=192530)  # a Debian 12 machine as installed


def fits(count: int, *, running: int = 0, available_gib: float = 23, inotify: Inotify = DEFAULTS, **cost: float):
    return capacity.plan(
        count,
        running=running,
        mem_total_kib=24 * GIB,
        mem_available_kib=int(available_gib * GIB),
        inotify=inotify,
        cost=HostCost(**cost),  # type: ignore[arg-type]
    )


def test_meminfo_gives_total_and_available():
    assert capacity.parse_meminfo(MEMINFO) == (24683584, 24186288)


def test_meminfo_without_available_is_an_error_not_a_guess():
    with pytest.raises(LabError, match="no MemTotal or MemAvailable"):
        capacity.parse_meminfo("MemTotal: 1000 kB\n")


def test_hundred_hosts_on_a_24_gib_machine_raise_both_inotify_limits():
    room = fits(100)
    assert (room.max_hosts, room.limited_by) == (MAX_ADDRESSES, "addresses")
    # (100 hosts x 8) x 1.5 = 1200 -> 2048; (100 x 4096) x 1.5 = 614400 -> 1048576 (issue 15 booted 100 with that)
    assert room.sysctl == {INSTANCES: 2048, WATCHES: 1048576}


def test_three_hosts_on_default_limits_change_nothing():
    assert fits(3).sysctl == {}


def test_the_twentieth_host_is_where_defaults_stop():
    """128 instances held 19 hosts (measured on the lab's machine): at 8 a host with half again for headroom, 10 fit."""
    assert fits(10).sysctl == {}
    assert fits(11).sysctl == {INSTANCES: 256}


def test_instances_already_held_count_and_running_hosts_are_not_counted_twice():
    busy = Inotify(max_instances=1024, max_watches=1 << 20, instances=600, watches=100_000)
    # 600 held (say 75 hosts of another lab) + 12 new x 8 = 696, x 1.5 = 1044 > 1024 -> 2048
    assert fits(12, inotify=busy).sysctl == {INSTANCES: 2048}
    # the same 12 hosts, already up (their instances are in the 600): nothing new to hold
    assert fits(12, running=12, inotify=busy).sysctl == {}


def test_memory_bounds_the_lab_and_the_error_names_the_numbers_and_the_fix():
    # 3 GiB available, reserve max(1 GiB, 10% of 24 GiB = 2457.6 MiB): 614.4 MiB left, 32 MiB a host -> 19
    room = fits(19, available_gib=3)
    assert (room.max_hosts, room.limited_by) == (19, "memory")
    with pytest.raises(LabError) as err:
        fits(20, available_gib=3)
    assert str(err.value) == (
        "20 lab hosts do not fit on this machine: 3072 MiB are available and 2458 MiB stay for the controller; "
        "a host takes about 32 MiB. Fix: ask for at most 19 hosts, or free memory."
    )
    assert err.value.exit_code == 2


def test_hosts_already_running_are_in_memavailable_already():
    assert fits(25, running=10, available_gib=3).max_hosts == 29


def test_a_measured_cost_raises_the_budget_never_lowers_it():
    assert HostCost().at_least(HostCost(10.5, 6, 500)) == HostCost()
    assert HostCost().at_least(HostCost(70, 9, 100)) == HostCost(70, 9, 4096)
    assert fits(8, available_gib=3, mib=70).max_hosts == 8


def test_more_hosts_than_the_24_has_addresses_for():
    assert fits(MAX_ADDRESSES).count == 244
    with pytest.raises(LabError, match=r"the lab's /24 has addresses for 244 hosts \(.11-.254\)"):
        fits(MAX_ADDRESSES + 1)
    with pytest.raises(LabError, match="at least 1"):
        fits(0)


def test_limits_go_back_only_when_what_still_runs_fits_under_them():
    assert capacity.restorable(128, 0)
    assert capacity.restorable(128, 85)  # x 1.5 = 127
    assert not capacity.restorable(128, 86)  # another lab still holds them


def test_addresses_go_from_11_for_web1_to_254():
    cfg = LabConfig(Path("/l"), Path("/c"), subnet="10.231.9")
    assert [cfg.address(i) for i in (1, 2, 100, 200, MAX_ADDRESSES)] == [
        "10.231.9.11",
        "10.231.9.12",
        "10.231.9.110",
        "10.231.9.210",
        "10.231.9.254",
    ]
    assert len({cfg.address(i) for i in range(1, MAX_ADDRESSES + 1)}) == MAX_ADDRESSES
    for outside in (0, MAX_ADDRESSES + 1):
        with pytest.raises(ValueError, match=r"outside 1\.\.244"):
            cfg.address(outside)


def test_every_host_knows_every_name_the_24_can_hold():
    cfg = LabConfig(Path("/l"), Path("/c"), subnet="10.231.9")
    lines = hosts.lab_files(cfg, "web7")["/etc/hosts"].splitlines()
    assert "10.231.9.210 web200" in lines and "10.231.9.254 web244" in lines
    assert sum(line.endswith(f" {host_name(150)}") for line in lines) == 1


def test_host_cost_uses_a_measurement_of_three_new_hosts_or_more():
    measured = {
        "new_hosts": 100,
        "mib_per_host": 40.2,
        "inotify_instances_per_host": 6.4,
        "inotify_watches_per_host": 90,
    }
    assert lab_module.host_cost({"measured": measured}) == HostCost(40.2, 8, 4096)
    assert lab_module.host_cost({"measured": {**measured, "new_hosts": 2}}) == HostCost()
    assert lab_module.host_cost({}) == HostCost()


def test_raised_limits_keep_the_value_from_before_the_lab(monkeypatch):
    values = {INSTANCES: 256, WATCHES: 192530}
    monkeypatch.setattr(capacity, "read_sysctl", values.__getitem__)
    monkeypatch.setattr(capacity, "write_sysctl", values.__setitem__)
    said: list[str] = []
    recorded = {INSTANCES: {"was": 128, "set": 256}}  # an earlier `up` raised it from 128
    limits = lab_module.raise_limits({INSTANCES: 2048}, recorded, said.append)
    assert limits == {INSTANCES: {"was": 128, "set": 2048}} and values[INSTANCES] == 2048
    assert said == [f"{INSTANCES}: 256 -> 2048 (the hosts' systemd need more; `lab down` puts it back)"]


def test_down_puts_limits_back_unless_changed_since_or_still_needed(monkeypatch):
    values = {INSTANCES: 2048, WATCHES: 999}
    monkeypatch.setattr(capacity, "read_sysctl", values.__getitem__)
    monkeypatch.setattr(capacity, "write_sysctl", values.__setitem__)
    monkeypatch.setattr(capacity, "inotify_held", lambda: (10, 5000))
    said: list[str] = []
    limits = {INSTANCES: {"was": 128, "set": 2048}, WATCHES: {"was": 192530, "set": 1048576}}
    lab_module.restore_limits(limits, said.append)
    assert values == {INSTANCES: 128, WATCHES: 999}
    assert said == [
        f"{INSTANCES} back to 128",
        f"{WATCHES} is 999, not the 1048576 the lab set: someone changed it since; left as it is",
    ]
    values[INSTANCES] = 2048
    monkeypatch.setattr(capacity, "inotify_held", lambda: (700, 5000))
    said.clear()
    lab_module.restore_limits({INSTANCES: {"was": 128, "set": 2048}}, said.append)
    assert values[INSTANCES] == 2048
    assert said == [f"{INSTANCES} left at 2048: what still runs holds 700 (another lab?), too many for 128"]
