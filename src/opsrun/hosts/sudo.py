"""Privilege escalation the pyinfra way, for the commands opsrun runs on hosts itself.

A group turns it on with pyinfra's own host data: `_sudo = True`, and `_sudo_user`, `_sudo_password`
(`_use_sudo_password` asks for one: opsrun never prompts, so it must be given, e.g. from a secret source).
pyinfra applies these to every operation and fact of a deploy; this module applies them to what opsrun
runs outside a deploy (the nginx balancer's edits, the reboot and its boot-id wait, the verification shell,
the DR checks) and, in the engine's worker, to the lease. sudo never prompts here: without a password it
runs with `-n` (it fails at once, saying a password is required); with one, `-S` reads it from the first
line of the command's stdin, never from its command line, and where sudo would not read it (NOPASSWD) the
line is taken off stdin before the command starts.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

KEYS = ("_sudo", "_sudo_user", "_use_sudo_password", "_sudo_password", "_use_sudo_login", "_preserve_sudo_env")
NEEDS_PASSWORD = ("a password is required", "a terminal is required", "interactive authentication is required")
REFUSED = ("is not in the sudoers file", "is not allowed to", "may not run sudo")


@dataclass(frozen=True)
class Sudo:
    user: str | None = None
    password: str | None = field(default=None, repr=False)

    @classmethod
    def of(cls, data: Mapping[str, Any]) -> Sudo | None:
        """The host's escalation, or None when its data does not turn sudo on."""
        if not data.get("_sudo"):
            return None
        return cls(data.get("_sudo_user") or None, data.get("_sudo_password") or None)

    def argv(self) -> list[str]:
        """`sudo` and its options: never a prompt (-n), or the password from stdin's first line (-S)."""
        args = ["sudo", "-H"] + (["-S", "-p", "", "-k"] if self.password else ["-n"])
        return args + (["-u", self.user] if self.user else [])

    def command(self, command: str) -> str:
        """`command` (one shell line) run under sudo. With a password, sudo is first asked whether it wants
        one for the very program the command runs (`sudo -n -k -- /bin/sh -c :`: sudoers rules are per
        command): when it does not (NOPASSWD, or root), the password line is read off stdin here and sudo
        runs with -n, so the line never reaches the command's stdin, where a shell would run it and
        `cat > FILE` would write it. (On a host that asks, sudo logs that one refused -n try per command.)"""
        run = ["--", "/bin/sh", "-c", command]
        if not self.password:
            return shlex.join([*self.argv(), *run])
        as_user = ["-u", self.user] if self.user else []
        probe = shlex.join(["sudo", "-n", "-k", *as_user, "--", "/bin/sh", "-c", ":"])
        unasked = shlex.join(["sudo", "-H", "-n", *as_user, *run])
        asked = shlex.join([*self.argv(), *run])
        line = f"if {probe} </dev/null >/dev/null 2>&1; then IFS= read -r _ || :; exec {unasked}; else exec {asked}; fi"
        return shlex.join(["/bin/sh", "-c", line])  # one sh, whatever the SSH user's login shell is

    def stdin(self, text: str | None) -> str | None:
        """The command's stdin with the password line first (sudo -S reads just that line)."""
        return f"{self.password}\n{text or ''}" if self.password else text


def wrap(data: Mapping[str, Any], command: str, stdin: str | None = None) -> tuple[str, str | None]:
    """`command` and its stdin as host `data` says to run them: under sudo or as they are."""
    sudo = Sudo.of(data)
    return (command, stdin) if sudo is None else (sudo.command(command), sudo.stdin(stdin))


def explain(host: str, stderr: str) -> str | None:
    """What sudo's own words on stderr mean for the user, or None when they are not sudo's."""
    if any(s in stderr for s in NEEDS_PASSWORD):
        return (
            f"{host}: sudo asks for a password and none was given. Fix: give _sudo_password in group_data (from a "
            "secret source, e.g. the environment), or grant the SSH user NOPASSWD in sudoers"
        )
    if "must have a tty" in stderr:
        return (
            f"{host}: sudo wants a terminal (sudoers `Defaults requiretty`), and opsrun runs none. Fix: "
            "`Defaults:USER !requiretty` in sudoers for the SSH user"
        )
    if "sudo" in stderr and any(s in stderr for s in REFUSED):
        return f"{host}: sudo refused: {stderr.strip().splitlines()[-1]}. Fix: grant the SSH user sudo on this host"
    return None
