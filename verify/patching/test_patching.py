"""What "done" means for deploys/patching.py: nothing pending from the configured origins, no reboot
pending, held packages still held."""

import fnmatch
import re

INST = re.compile(r"^Inst (\S+) (?:\[\S+\] )?\(\S+ (.*?)(?: \[[^\]]*\])?\)")


def pending(host, refresh):
    """What apt would upgrade; `refresh`: update the package lists first (not when the patching deploy has
    just done so in this rollout: 0.65 s of CPU per host)."""
    update = "apt-get update -qq >/dev/null 2>&1; " if refresh else ""
    out = host.check_output(f"{update}LC_ALL=C apt-get -s -q -o Debug::NoLocking=1 dist-upgrade")
    return [(m.group(1), m.group(2)) for line in out.splitlines() if (m := INST.match(line))]


def test_no_pending_upgrades_from_configured_origins(host, host_data, applied_deploy):
    origins = host_data.get("patching_origins", [])
    mode = host_data.get("patching_upgrade", "all")
    found = pending(host, refresh=applied_deploy != "patching")
    left = [(p, o) for p, o in found if mode == "all" or any(fnmatch.fnmatch(o, pat) for pat in origins)]
    assert left == []


def test_no_reboot_pending(host):
    assert not host.file("/var/run/reboot-required").exists


def test_held_packages_are_held(host, host_data):
    held = set(host.check_output("apt-mark showhold").split())
    assert set(host_data.get("patching_hold", [])) <= held
