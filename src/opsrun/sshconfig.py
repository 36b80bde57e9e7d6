"""The inventory's SSH settings as an OpenSSH ssh_config: one `Host` block per inventory name with the same
key, known_hosts and strict host key checking as pyinfra's connection, for verification (opsrun.ssh_shell)
and for remote.py's commands. Every value is checked to be one word of safe characters."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from opsrun.errors import ConfigError
from opsrun.inventory import Host, Inventory

_NO_HOST = Host("", (), {})
KEX_FIRST = "^curve25519-sha256,curve25519-sha256@libssh.org"  # ahead of OpenSSH's defaults, which follow
STRICT = {"yes": "yes", "accept-new": "accept-new", "no": "no", "off": "no", "ask": "yes"}


def ssh_config(inventory: Inventory, hosts: list[str], control_dir: Path, connect_timeout: float = 10) -> str:
    blocks = []
    for name in hosts:
        data = inventory.hosts[name].data
        strict = str(data.get("ssh_strict_host_key_checking", "accept-new"))
        if strict not in STRICT:
            raise ConfigError(
                inventory.path,
                f"unknown value {strict!r} for host {name}.",
                field="ssh_strict_host_key_checking",
                fix=f"use one of {', '.join(STRICT)}",
            )
        value = _config_value(inventory, name)
        lines = [
            f"Host {value('host name', name)}",
            f"  HostName {value('ssh_hostname', data.get('ssh_hostname', name))}",
            f"  Port {value('ssh_port', data.get('ssh_port', 22))}",
            "  BatchMode yes",
            f"  StrictHostKeyChecking {STRICT[strict]}",
            f"  ConnectTimeout {max(1, round(connect_timeout))}",
            "  ControlMaster auto",
            f"  ControlPath {control_dir}/%C",
            "  ControlPersist 30s",
            # pyinfra's own connection (paramiko) uses curve25519; OpenSSH's first choice, the post-quantum
            # sntrup761 hybrid, costs 0.07-0.08 s of this machine's CPU per connection (bench/verify_ssh.py)
            f"  KexAlgorithms {KEX_FIRST}",
            "  LogLevel ERROR",
        ]
        if "ssh_user" in data:
            lines.append(f"  User {value('ssh_user', data['ssh_user'])}")
        if "ssh_key" in data:
            lines += [f"  IdentityFile {value('ssh_key', data['ssh_key'])}", "  IdentitiesOnly yes"]
        if "ssh_known_hosts_file" in data:
            lines.append(f"  UserKnownHostsFile {value('ssh_known_hosts_file', data['ssh_known_hosts_file'])}")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n"


SSH_CONFIG_VALUE = re.compile(r"[A-Za-z0-9._/@%+=:,~\[\]-]+")


def _config_value(inventory: Inventory, host: str) -> Callable[[str, object], str]:
    """A checker for values going into the ssh_config: one word of safe characters, or ConfigError (a space,
    quote or newline would add options, e.g. a ProxyCommand that runs on this machine)."""

    def value(field: str, raw: object) -> str:
        text = str(raw)
        if not SSH_CONFIG_VALUE.fullmatch(text):
            raise ConfigError(
                inventory.where(host, field) if field in inventory.hosts.get(host, _NO_HOST).data else inventory.path,
                f"{text!r} cannot go into an ssh_config for host {host} (spaces, quotes and control characters "
                "would change its meaning).",
                field=field,
                fix="use a value of letters, digits and ._/@%+=:,~-",
            )
        return text

    return value
