"""What the controller (opsrun.verify) and the verification backend in the suite's own pytest (opsrun.ssh_shell,
which imports testinfra) agree on. A module of its own: the controller's side, and so every command line,
never imports testinfra."""

from __future__ import annotations

NAME = "opsrun-ssh"  # the testinfra connection of opsrun.ssh_shell: --hosts=opsrun-ssh://web1
SUDO_ENV = "OPSRUN_VERIFY_SUDO"  # JSON, host -> {user, password}: each host's escalation (opsrun.sudo)
