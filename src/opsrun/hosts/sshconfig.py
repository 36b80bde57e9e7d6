"""One SSH configuration for every connection opsrun makes to a host: pyinfra's (paramiko, through
`ssh_config_file`), verification's and opsrun's own commands' (OpenSSH, `ssh -F`).

It is one ssh_config file per run: a `Host` block per inventory host (matching its name and the address
pyinfra looks up) with what the inventory says (user, key, port, known_hosts, strict host key checking, the
bastion of `ssh_jump`), a block per bastion with the same key and host key policy, then the user's own
ssh_config (`ssh_config_file`, else ~/.ssh/config as both pyinfra and OpenSSH would read), its `Include`s
expanded in place (paramiko has no Include). Both stacks take the first value they find, so what the
inventory says wins and the user's file gives the rest: `HostName` aliases, `ProxyJump`, `ProxyCommand`.
Every value opsrun writes is checked to be one word of safe characters; what the user's file says is theirs.
"""

from __future__ import annotations

import glob
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from opsrun.errors import ConfigError
from opsrun.model.inventory import Host, Inventory

_NO_HOST = Host("", (), {})
KEX_FIRST = "^curve25519-sha256,curve25519-sha256@libssh.org"  # ahead of OpenSSH's defaults, which follow
STRICT = {"yes": "yes", "accept-new": "accept-new", "no": "no", "off": "no", "ask": "yes"}
JUMP = re.compile(r"(?:(?P<user>[a-z_][a-z0-9_.-]{0,31})@)?(?P<host>[A-Za-z0-9][A-Za-z0-9.-]*)(?::(?P<port>\d{1,5}))?")
INCLUDE = re.compile(r"^\s*include\s+(.+?)\s*$", re.IGNORECASE)


def ssh_config(inventory: Inventory, hosts: list[str], control_dir: Path, connect_timeout: float = 10) -> str:
    """The run's ssh_config for `hosts` (ControlPath sockets in `control_dir`)."""
    blocks: list[str] = []
    bastions: dict[str, str] = {}
    for name in hosts:
        blocks.append(_host_block(inventory, name, control_dir, connect_timeout))
        data = inventory.hosts[name].data
        if data.get("ssh_jump"):
            jump = JUMP.fullmatch(str(data["ssh_jump"]))
            assert jump is not None  # the schema checked it
            bastions.setdefault(jump["host"], _bastion_block(inventory, name, jump["host"], connect_timeout))
    blocks += bastions.values()
    user_file = user_config_file(inventory, hosts)
    if user_file is not None:
        blocks.append(f"# {user_file}, its Includes expanded\n" + expanded(user_file))
    return "\n\n".join(blocks) + "\n"


def _host_block(inventory: Inventory, name: str, control_dir: Path, connect_timeout: float) -> str:
    data = inventory.hosts[name].data
    value = _config_value(inventory, name)
    patterns = [value("host name", name)]
    if data.get("ssh_hostname") and str(data["ssh_hostname"]) != name:
        patterns.append(value("ssh_hostname", data["ssh_hostname"]))  # what pyinfra looks its config up by
    lines = [f"Host {' '.join(patterns)}"]
    if data.get("ssh_hostname"):
        lines.append(f"  HostName {patterns[-1]}")
    if data.get("ssh_port"):
        lines.append(f"  Port {value('ssh_port', data['ssh_port'])}")
    if data.get("ssh_jump"):
        lines.append(f"  ProxyJump {value('ssh_jump', data['ssh_jump'])}")
    lines += _access_lines(inventory, name, value)
    lines += [
        f"  ConnectTimeout {max(1, round(connect_timeout))}",
        "  ControlMaster auto",
        f"  ControlPath {control_dir}/%C",
        "  ControlPersist 30s",
        # pyinfra's own connection (paramiko) uses curve25519; OpenSSH's first choice, the post-quantum
        # sntrup761 hybrid, costs several times its CPU per connection (bench/RESULTS.md, bench/verify_ssh.py)
        f"  KexAlgorithms {KEX_FIRST}",
        "  LogLevel ERROR",
    ]
    return "\n".join(lines)


def _bastion_block(inventory: Inventory, name: str, bastion: str, connect_timeout: float) -> str:
    """The bastion of host `name`: the same key and the same host key policy as the hosts behind it."""
    value = _config_value(inventory, name)
    lines = [f"Host {value('ssh_jump', bastion)}", *_access_lines(inventory, name, value, user=False)]
    lines += [f"  ConnectTimeout {max(1, round(connect_timeout))}", f"  KexAlgorithms {KEX_FIRST}", "  LogLevel ERROR"]
    return "\n".join(lines)


def _access_lines(inventory: Inventory, name: str, value: Callable[[str, object], str], user: bool = True) -> list[str]:
    data = inventory.hosts[name].data
    strict = str(data.get("ssh_strict_host_key_checking", "accept-new"))
    if strict not in STRICT:
        raise ConfigError(
            inventory.path,
            f"unknown value {strict!r} for host {name}.",
            field="ssh_strict_host_key_checking",
            fix=f"use one of {', '.join(STRICT)}",
        )
    lines = ["  BatchMode yes", f"  StrictHostKeyChecking {STRICT[strict]}"]
    if user and data.get("ssh_user"):
        lines.append(f"  User {value('ssh_user', data['ssh_user'])}")
    if data.get("ssh_key"):
        lines += [f"  IdentityFile {value('ssh_key', data['ssh_key'])}", "  IdentitiesOnly yes"]
    if data.get("ssh_known_hosts_file"):
        lines.append(f"  UserKnownHostsFile {value('ssh_known_hosts_file', data['ssh_known_hosts_file'])}")
    return lines


def user_config_file(inventory: Inventory, hosts: list[str]) -> Path | None:
    """The user's own ssh_config for these hosts: their `ssh_config_file` (one for all of them), else
    ~/.ssh/config when it exists (pyinfra and OpenSSH both read it by default), else none."""
    files = {
        str(inventory.hosts[h].data["ssh_config_file"]) for h in hosts if inventory.hosts[h].data.get("ssh_config_file")
    }
    if len(files) > 1:
        raise ConfigError(
            inventory.path,
            f"the hosts of one command name {len(files)} different ssh_config files ({', '.join(sorted(files))}).",
            field="ssh_config_file",
            fix="give every host of the inventory the same ssh_config_file (one file may hold a Host block each)",
        )
    if files:
        path = Path(files.pop())
        if not path.is_file():
            raise ConfigError(
                inventory.path, f"{path} does not exist.", field="ssh_config_file", fix="name your ssh_config"
            )
        return path
    default = Path(os.path.expanduser("~/.ssh/config"))
    return default if default.is_file() else None


def expanded(path: Path, depth: int = 0) -> str:
    """The ssh_config at `path` with each `Include` replaced by the files it names (globs; a relative path
    is under ~/.ssh, as ssh_config(5) says for a user's file), at most 16 deep as OpenSSH allows."""
    if depth > 16:
        raise ConfigError(path, "Include is nested more than 16 deep.", field="Include", fix="remove the loop")
    out = []
    for line in path.read_text().splitlines():
        found = INCLUDE.match(line)
        if not found:
            out.append(line)
            continue
        for pattern in found[1].split():
            full = os.path.expanduser(pattern)
            full = full if os.path.isabs(full) else os.path.expanduser(f"~/.ssh/{full}")
            out += [expanded(Path(p), depth + 1) for p in sorted(glob.glob(full)) if Path(p).is_file()]
    return "\n".join(out)


SSH_CONFIG_VALUE = re.compile(r"[A-Za-z0-9._/@%+=:,~\[\]-]+")


def _config_value(inventory: Inventory, host: str) -> Callable[[str, Any], str]:
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
