"""Per-host deadlines: defaults, group_data (schema-checked, the file named), the command line over both;
and a host's clock counts its own time, not the time it waits for slower hosts."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from opsrun import settings
from opsrun.engine import clocks
from opsrun.errors import ConfigError
from opsrun.model.inventory import Host, Inventory
from opsrun.settings import deadlines

GD = Path("/ops/group_data/web.py")


def inventory(per_host: dict[str, dict]) -> Inventory:
    hosts = {h: Host(h, ("web",), data) for h, data in per_host.items()}
    return Inventory("lab", Path("/ops/inventories/lab.py"), list(hosts), {}, {"web": (list(hosts), {})}, hosts,
                     {"web": {"deadlines": GD}})  # fmt: skip


def test_defaults_group_data_and_the_command_line_in_that_order():
    inv = inventory({"web1": {"deadlines": {"apply": 60}}, "web2": {}})
    limits = deadlines.load(settings.check_hosts(inv, ["web1", "web2"]), ["web1", "web2"], {"verify": 30.0})
    assert limits.per_host["web1"] == {"connect": 10.0, "apply": 60.0, "verify": 30.0}
    assert limits.per_host["web2"] == {"connect": 10.0, "apply": 1800.0, "verify": 30.0}
    assert limits.stage("apply", ["web1", "web2"]) == {"web1": 60.0, "web2": 1800.0}


@pytest.mark.parametrize(
    ("value", "field"),
    [({"apply": True}, "deadlines.apply"), ({"apply": -1}, "deadlines.apply"), ({"reboot": 5}, "deadlines.reboot"),
     ({"verify": "5"}, "deadlines.verify"), ([5], "deadlines")],
)  # fmt: skip
def test_a_bad_deadline_names_the_file_and_field(value, field):
    with pytest.raises(ConfigError) as err:
        deadlines.load(settings.check_hosts(inventory({"web1": {"deadlines": value}}), ["web1"]), ["web1"])
    assert (err.value.path, err.value.field) == (str(GD), field)
    assert err.value.fix


@pytest.mark.parametrize("given", ["apply", "apply=", "apply=0", "apply=x", "reboot=5", "apply=1e9"])
def test_a_bad_command_line_deadline_is_refused(given):
    with pytest.raises(ConfigError) as err:
        deadlines.parse_overrides([given])
    assert err.value.path == "the command line" and err.value.field.startswith("--deadline")


def test_command_line_overrides_parse():
    assert deadlines.parse_overrides(["apply=600", "verify=2.5"]) == {"apply": 600.0, "verify": 2.5}


def test_a_host_clock_counts_its_own_time_only(monkeypatch):
    now = [100.0]
    monkeypatch.setattr(clocks.time, "monotonic", lambda: now[0])
    clock = clocks.HostClocks({"fast": 5.0, "slow": 5.0})
    clock.start("fast"), clock.start("slow")
    now[0] += 1  # both run an operation: fast is done after 1 s
    clock.stop("fast")
    now[0] += 9  # slow runs on; fast waits for it
    assert clock.used("fast") == 1.0 and clock.used("slow") == 10.0
    clock.stop("slow")
    clock.start("fast")
    now[0] += 2
    assert clock.used("fast") == 3.0 and clock.used("slow") == 10.0


def test_the_stop_now_expires_the_hosts_at_work_and_a_missed_deadline_the_others(monkeypatch):
    """The operator's second Ctrl-C ends a running command the way a missed deadline does (the watchdog
    closes that host's connection): only hosts whose own clock runs are cut; one waiting between
    operations is not, and no further operation starts."""
    now = [100.0]
    monkeypatch.setattr(clocks.time, "monotonic", lambda: now[0])
    clock = clocks.HostClocks({"hung": 600.0, "between": 600.0, "late": 5.0})
    clock.start("hung"), clock.start("late")
    now[0] += 6
    stop_now = threading.Event()
    assert clock.due("apply", stop_now) == {"late": "timed out after 5s in stage apply"}
    stop_now.set()
    assert clock.due("apply", stop_now) == {
        "hung": "interrupted: stopped now (a second Ctrl-C) in stage apply",
        "late": "timed out after 5s in stage apply",
    }
