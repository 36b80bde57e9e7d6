"""Commands on one inventory host over OpenSSH, through the run's one SSH configuration (opsrun.hosts.sshconfig:
user, key, known_hosts, bastion, the user's ssh_config) and one shared connection, under sudo when the
host's data says so (opsrun.hosts.sudo). For the few things opsrun itself does on a host outside a deploy (an
nginx load balancer's upstream, a reboot); deploys go through the engine."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import tempfile
import weakref
from pathlib import Path

from opsrun.hosts import sudo
from opsrun.hosts.sshconfig import ssh_config
from opsrun.model.inventory import Inventory


class Remote:
    def __init__(self, inventory: Inventory, host: str, timeout: float = 30):
        self.host = host
        self.data = inventory.hosts[host].data
        self.timeout = timeout
        # a short folder for the ControlPath socket (sun_path is 108 bytes); the master exits by itself
        self._dir = Path(tempfile.mkdtemp(prefix="opsrun-r-", dir="/tmp"))
        weakref.finalize(self, shutil.rmtree, self._dir, True)
        self._config = self._dir / "ssh_config"
        self._config.write_text(
            ssh_config(inventory, [host], self._dir).replace("ControlPersist 30s", "ControlPersist 10s")
        )

    def run(self, command: str, stdin: str | None = None) -> tuple[int, str, str]:
        """`command` (one shell line) on the host, as root where the host's data turns sudo on."""
        command, stdin = sudo.wrap(self.data, command, stdin)
        proc = subprocess.run(
            ["ssh", "-F", str(self._config), self.host, command],
            input=stdin if stdin is not None else "",
            capture_output=True,
            text=True,
            timeout=self.timeout,
            check=False,
        )
        return proc.returncode, proc.stdout, proc.stderr

    def put(self, path: str, text: str) -> None:
        rc, _out, err = self.run("cat > " + shlex.quote(path), stdin=text)
        if rc != 0:
            raise OSError(sudo.explain(self.host, err) or f"{self.host}: writing {path} failed: {err.strip()}")
