"""Reboot a host when its policy says so, and wait until it is back: a new boot_id and SSH answering.

`if-needed` reboots when the host asks for it (/var/run/reboot-required, written by packages such as a
new kernel or libc); `always` reboots after every apply; `never` never. A reboot is detected by
/proc/sys/kernel/random/boot_id, never by uptime (a container's uptime is the machine's).
"""

from __future__ import annotations

import subprocess

from opsrun.hosts import sudo
from opsrun.hosts.remote import Remote
from opsrun.model.inventory import Inventory
from opsrun.support.waiting import poll_until

BOOT_ID = "cat /proc/sys/kernel/random/boot_id"


def reboot_if_needed(inv: Inventory, host: str, *, mode: str, timeout: float) -> bool:
    """Reboot `host` if the reboot `mode` (never | if-needed | always) asks for it and wait until it is
    back; True if it rebooted."""
    remote = Remote(inv, host, timeout=30)
    rc, out, err = remote.run(f"{BOOT_ID}; test -e /var/run/reboot-required && echo needed || true")
    if rc != 0:
        raise OSError(sudo.explain(host, err) or f"cannot read the boot state of {host}: {err.strip()}")
    lines = out.split()
    before, needed = lines[0], "needed" in lines[1:]
    if mode == "never" or (mode == "if-needed" and not needed):
        return False
    remote.run("systemctl reboot")  # the connection may drop before it answers: the boot_id is the proof

    def back() -> bool:
        rc, now, _err = remote.run(BOOT_ID)
        return rc == 0 and now.strip() not in ("", before)

    poll_until(
        back,
        timeout=timeout,
        interval=0.5,
        what=f"{host} to come back from its reboot (a new boot_id)",
        retry_on=(OSError, subprocess.TimeoutExpired),  # ssh cannot start, or hangs while the host is down
    )
    return True
