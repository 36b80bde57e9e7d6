"""Commands on one inventory host over OpenSSH, with the inventory's SSH settings (key, known_hosts, strict
host key checking) and one shared connection. For the few things opsrun itself does on a host outside a
deploy (an nginx load balancer's upstream); deploys go through the engine."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import tempfile
import weakref
from pathlib import Path

from opsrun.inventory import Inventory
from opsrun.sshconfig import ssh_config


class Remote:
    def __init__(self, inventory: Inventory, host: str, timeout: float = 30):
        self.host = host
        self.timeout = timeout
        # a short folder for the ControlPath socket (sun_path is 108 bytes); the master exits by itself
        self._dir = Path(tempfile.mkdtemp(prefix="opsrun-r-", dir="/tmp"))
        weakref.finalize(self, shutil.rmtree, self._dir, True)
        self._config = self._dir / "ssh_config"
        self._config.write_text(
            ssh_config(inventory, [host], self._dir).replace("ControlPersist 30s", "ControlPersist 10s")
        )

    def run(self, command: str, stdin: str | None = None) -> tuple[int, str, str]:
        proc = subprocess.run(
            ["ssh", "-F", str(self._config), self.host, command],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=self.timeout,
            check=False,
        )
        return proc.returncode, proc.stdout, proc.stderr

    def put(self, path: str, text: str) -> None:
        rc, _out, err = self.run("cat > " + shlex.quote(path), stdin=text)
        if rc != 0:
            raise OSError(f"{self.host}: writing {path} failed: {err.strip()}")
