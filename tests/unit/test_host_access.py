"""One SSH configuration for every connection, and sudo the pyinfra way (opsrun.hosts.sshconfig, opsrun.hosts.sudo):
what the run's ssh_config says, what the user's own file adds, what is refused before any host is touched."""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path

import pytest

from opsrun import settings
from opsrun.errors import ConfigError
from opsrun.hosts import sudo
from opsrun.hosts.sshconfig import ssh_config
from opsrun.model.inventory import Host, Inventory


def inv(**data) -> Inventory:
    hosts = {n: Host(n, ("web",), {"ssh_hostname": f"10.0.0.{i}", **data}) for i, n in enumerate(["web1", "web2"], 1)}
    return Inventory("prod", Path("/x/inventories/prod.py"), list(hosts), {}, {"web": (list(hosts), {})}, hosts)


def blocks(text: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    current = ""
    for line in text.splitlines():
        if line.startswith("Host "):
            current = line
            out[current] = []
        elif line.strip() and current:
            out[current].append(line.strip())
    return out


def test_a_bastion_is_a_proxyjump_of_every_host_and_a_block_of_its_own_with_the_same_key_and_policy():
    text = ssh_config(
        inv(ssh_user="admin", ssh_jump="admin@bastion.example", ssh_key="/k/id", ssh_known_hosts_file="/k/kh",
            ssh_strict_host_key_checking="yes"),
        ["web1", "web2"],
        Path("/tmp/cm"),
    )  # fmt: skip
    found = blocks(text)
    assert "ProxyJump admin@bastion.example" in found["Host web1 10.0.0.1"]
    assert "User admin" in found["Host web2 10.0.0.2"]
    [bastion] = [v for k, v in found.items() if k == "Host bastion.example"]  # one block for both hosts
    assert {"IdentityFile /k/id", "UserKnownHostsFile /k/kh", "StrictHostKeyChecking yes", "BatchMode yes"} <= set(
        bastion
    )


def test_paramiko_reads_the_same_file_as_pyinfra_does(tmp_path):
    from paramiko import SSHConfig

    user = tmp_path / "config"
    user.write_text("Host web1\n  HostName alias.internal\n")
    hosts = {"web1": Host("web1", (), {"ssh_config_file": str(user), "ssh_jump": "admin@10.0.0.5"})}
    inventory = Inventory("prod", Path("/x/inventories/prod.py"), ["web1"], {}, {}, hosts)
    parsed = SSHConfig.from_text(ssh_config(inventory, ["web1"], tmp_path))
    assert parsed.lookup("web1")["hostname"] == "alias.internal"
    assert parsed.lookup("web1")["proxyjump"] == "admin@10.0.0.5"


def test_hosts_of_one_command_with_different_ssh_config_files_are_refused(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.write_text(""), b.write_text("")
    hosts = {
        "web1": Host("web1", (), {"ssh_config_file": str(a)}),
        "web2": Host("web2", (), {"ssh_config_file": str(b)}),
    }
    inventory = Inventory("prod", Path("/x/inventories/prod.py"), list(hosts), {}, {}, hosts)
    with pytest.raises(ConfigError) as err:
        ssh_config(inventory, ["web1", "web2"], tmp_path)
    assert err.value.field == "ssh_config_file"


@pytest.mark.parametrize(
    "jump", ["admin@bastion -oProxyCommand=touch%20x", "bastion\nProxyCommand x", "a b", "-oProxyCommand=x", "@host"]
)
def test_a_bastion_that_would_add_options_is_refused_by_the_schema(jump):
    with pytest.raises(ConfigError) as err:
        settings.validate_family(settings.SSH, {"ssh_jump": jump}, where=lambda _k: "group_data/production.py")
    assert err.value.field == "ssh_jump"


def test_sudo_wraps_a_command_without_a_prompt_or_with_the_password_on_stdin_only():
    command, stdin = sudo.wrap({"_sudo": True}, "cat /etc/x")
    assert command == "sudo -H -n -- /bin/sh -c 'cat /etc/x'" and stdin is None
    command, stdin = sudo.wrap({"_sudo": True, "_sudo_user": "postgres", "_sudo_password": "s3cr t"}, "id", "data")
    line = (
        "if sudo -n -k -u postgres -- /bin/sh -c : </dev/null >/dev/null 2>&1; then IFS= read -r _ || :; "
        "exec sudo -H -n -u postgres -- /bin/sh -c id; else exec sudo -H -S -p '' -k -u postgres -- /bin/sh -c id; fi"
    )  # the password line read by sudo -S when it asks, and by `read` when it does not (tests/ssh)
    assert shlex.split(command) == ["/bin/sh", "-c", line] and "s3cr" not in command
    assert stdin == "s3cr t\ndata"
    assert sudo.wrap({"ssh_user": "root"}, "id") == ("id", None)


def test_sudos_own_words_become_a_message_with_the_fix():
    asked = sudo.explain("web2", "sudo: a password is required\n")
    assert asked is not None and asked.startswith("web2: sudo asks for a password and none was given. Fix:")
    refused = sudo.explain("web2", "admin is not in the sudoers file.  This incident will be reported.\nsudo: x")
    assert refused is None or "sudo refused" in refused
    assert sudo.explain("web2", "cat: /x: No such file or directory") is None
    tty = sudo.explain("web2", "sudo: sorry, you must have a tty to run sudo\n")
    assert tty is not None and tty.startswith("web2: sudo wants a terminal") and "!requiretty" in tty


def test_a_sudo_password_asked_for_but_not_given_is_refused_and_never_shown():
    with pytest.raises(ConfigError) as err:
        settings.validate_family(settings.SUDO, {"_sudo": True, "_use_sudo_password": True}, where=lambda _k: "gd.py")
    assert err.value.field == "_use_sudo_password" and "never prompts" in str(err.value)
    with pytest.raises(ConfigError) as err:
        settings.validate_family(settings.SUDO, {"_sudo_password": "hunter2\nrm -rf /"}, where=lambda _k: "gd.py")
    assert "hunter2" not in str(err.value)


FAKE_SUDO = r"""#!/bin/sh
# sudo as sudoers POLICY makes it: "asks" for every command, "nopasswd", or NOPASSWD for one program only
# ("nopasswd:/bin/sh", "nopasswd:true"); -n never reads stdin, -S reads the password line when it asks.
ask=1 noprompt=0
while [ $# -gt 0 ]; do
  case $1 in
    -n) noprompt=1 ;; -S|-H|-k) ;; -p|-u) shift ;; --) shift; break ;; *) break ;;
  esac
  shift
done
case $POLICY in
  nopasswd) ask=0 ;; nopasswd:*) [ "$1" = "${POLICY#nopasswd:}" ] && ask=0 ;;
esac
if [ $ask = 1 ]; then
  [ $noprompt = 1 ] && { echo "sudo: a password is required" >&2; exit 1; }
  IFS= read -r given || exit 1
  [ "$given" = "$PASSWORD" ] || { echo "sudo: 1 incorrect password attempt" >&2; exit 1; }
fi
exec "$@"
"""


@pytest.mark.parametrize("policy", ["asks", "nopasswd", "nopasswd:/bin/sh", "nopasswd:true"])
def test_the_password_line_is_read_once_whether_or_not_sudo_asks_for_this_command(tmp_path, policy):
    """A sudo as sudoers rules make it, per command (a fake on PATH; tests/ssh drives the real one as root,
    which never asks): the command's stdin is its own, with no password line, under every policy."""
    fake = tmp_path / "sudo"
    fake.write_text(FAKE_SUDO)
    fake.chmod(0o755)
    password = r"pa ss\word"
    command, stdin = sudo.wrap({"_sudo": True, "_sudo_password": password}, "cat; echo done")
    env = {"PATH": f"{tmp_path}:/usr/bin:/bin", "POLICY": policy, "PASSWORD": password}
    proc = subprocess.run(["sh", "-c", command], input=stdin + "line 1\n", env=env, capture_output=True, text=True)
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "line 1\ndone\n", ""), policy
