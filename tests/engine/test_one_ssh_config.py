"""The run's one ssh_config as OpenSSH itself reads it (`ssh -G` prints the settings it would use and connects
to nothing; outside tests/unit, whose guard refuses any ssh process)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from opsrun.hosts.sshconfig import ssh_config
from opsrun.model.inventory import Host, Inventory


def test_openssh_reads_the_bastion_and_the_users_own_settings_from_the_one_file(tmp_path, monkeypatch):
    """`ssh -G` prints what OpenSSH would use: the inventory's values first, the user's file (and what it
    Includes) for the rest."""
    (tmp_path / "more.conf").write_text("Host web2\n  HostName web2.internal\n  ServerAliveInterval 17\n")
    user = tmp_path / "config"
    user.write_text(f"Include {tmp_path}/more.conf\nHost *\n  User someone-else\n  Port 2200\n")
    hosts = {
        "web1": Host("web1", ("web",), {"ssh_config_file": str(user), "ssh_user": "admin", "ssh_jump": "bastion:2222"}),
        "web2": Host("web2", ("web",), {"ssh_config_file": str(user)}),
    }
    inventory = Inventory("prod", Path("/x/inventories/prod.py"), list(hosts), {}, {}, hosts)
    config = tmp_path / "ssh_config"
    config.write_text(ssh_config(inventory, ["web1", "web2"], tmp_path))

    def seen(host: str) -> dict[str, str]:
        out = subprocess.run(["ssh", "-G", "-F", str(config), host], capture_output=True, text=True, check=True).stdout
        return dict(line.split(" ", 1) for line in out.splitlines() if " " in line)

    web1, web2 = seen("web1"), seen("web2")
    assert (web1["user"], web1["proxyjump"], web1["port"]) == ("admin", "bastion:2222", "2200")
    assert (web2["hostname"], web2["user"], web2["serveraliveinterval"]) == ("web2.internal", "someone-else", "17")
    assert web2["stricthostkeychecking"] == "accept-new" and web2["batchmode"] == "yes"
