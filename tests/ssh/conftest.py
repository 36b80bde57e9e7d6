"""Real OpenSSH servers on loopback for the SSH transport's tests: a host and a bastion, each an
`sshd -D` on a free port with a host key, authorized key and config of its own in a temporary folder
(Debian's openssh-server, which `make test-deps` installs; no service of it is started or used).

The host's sshd runs each command through `record.sh`, which appends the command line as sent
($SSH_ORIGINAL_COMMAND) to `sent.log` before running it: the tests read what went over the wire. The
bastion logs at DEBUG1, where sshd names each direct-tcpip forward: the proof that a connection went
through it."""

from __future__ import annotations

import shutil
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from opsrun.hosts.sshconfig import ssh_config
from opsrun.model.inventory import Host, Inventory
from opsrun.support.waiting import poll_until

SSHD = "/usr/sbin/sshd"


@dataclass
class Sshd:
    address: str
    port: int
    folder: Path
    proc: subprocess.Popen[bytes]

    @property
    def host_key(self) -> str:
        """Its known_hosts line."""
        key = (self.folder / "host_key.pub").read_text().split()
        return f"[{self.address}]:{self.port} {key[0]} {key[1]}\n"

    @property
    def log(self) -> str:
        return (self.folder / "sshd.log").read_text(errors="replace")

    @property
    def sent(self) -> list[str]:
        path = self.folder / "sent.log"
        return path.read_text().split("\0")[:-1] if path.exists() else []


def free_port(address: str) -> int:
    with socket.socket() as s:
        s.bind((address, 0))
        return int(s.getsockname()[1])


def start_sshd(folder: Path, address: str, client_key: Path, extra: str = "") -> Sshd:
    if not Path(SSHD).exists():
        pytest.fail(f"no {SSHD} here (make test-deps installs the Debian package openssh-server)", pytrace=False)
    folder.mkdir(mode=0o700)
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation directory
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(folder / "host_key")], check=True)
    (folder / "authorized_keys").write_text(Path(f"{client_key}.pub").read_text())
    record = folder / "record.sh"
    record.write_text(
        f"#!/bin/sh\nprintf '%s\\0' \"$SSH_ORIGINAL_COMMAND\" >> {folder}/sent.log\n"
        'exec /bin/sh -c "$SSH_ORIGINAL_COMMAND"\n'
    )
    record.chmod(0o755)
    port = free_port(address)
    config = folder / "sshd_config"
    config.write_text(
        f"ListenAddress {address}:{port}\nHostKey {folder}/host_key\nPidFile {folder}/sshd.pid\n"
        f"AuthorizedKeysFile {folder}/authorized_keys\nStrictModes no\nUsePAM no\nPasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\nPrintMotd no\n"
        f"ForceCommand {record}\n{extra}"
    )
    with (folder / "sshd.log").open("wb") as log:
        proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(config)], stdin=subprocess.DEVNULL, stderr=log, stdout=log)
    server = Sshd(address, port, folder, proc)

    def answers() -> bool | None:
        if proc.poll() is not None:
            raise RuntimeError(f"sshd exited {proc.returncode}: {server.log}")
        with socket.create_connection((address, port), timeout=1):
            return True

    poll_until(answers, timeout=10, interval=0.05, what=f"sshd on {address}:{port}", retry_on=(OSError,))
    return server


def stop_sshd(server: Sshd) -> None:
    server.proc.terminate()
    try:
        server.proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.proc.kill()
        server.proc.wait()


@pytest.fixture(scope="session")
def ssh_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A folder with the client's key (`id`) and an empty known_hosts; removed at the end."""
    folder = tmp_path_factory.mktemp("ssh")
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(folder / "id")], check=True)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def sshd(ssh_dir: Path) -> Iterator[Sshd]:
    """The host: an sshd on 127.0.0.2 that takes the client's key for root, no forwarding."""
    server = start_sshd(ssh_dir / "host", "127.0.0.2", ssh_dir / "id", "AllowTcpForwarding no\n")
    yield server
    stop_sshd(server)


@pytest.fixture(scope="session")
def bastion(ssh_dir: Path) -> Iterator[Sshd]:
    """The bastion: an sshd on 127.0.0.3 that forwards TCP (direct-tcpip) and logs each forward."""
    server = start_sshd(ssh_dir / "bastion", "127.0.0.3", ssh_dir / "id", "AllowTcpForwarding yes\nLogLevel DEBUG1\n")
    yield server
    stop_sshd(server)


def inventory(**data: object) -> Inventory:
    """An inventory of one host, web1, with `data`."""
    hosts = {"web1": Host("web1", ("web",), dict(data))}
    return Inventory("t", Path("/nonexistent/inventories/t.py"), ["web1"], {}, {"web": (["web1"], {})}, hosts)


def host_data(folder: Path, server: Sshd, known: list[Sshd], **data: object) -> dict[str, object]:
    """web1's inventory data to reach `server` (root, the client's key, strict host keys, a known_hosts file in
    `folder` with the keys of `known`), `data` added."""
    known_hosts = folder / "known_hosts"
    known_hosts.write_text("".join(s.host_key for s in known))
    base = {
        "ssh_hostname": server.address,
        "ssh_port": server.port,
        "ssh_user": "root",
        "ssh_key": str(server.folder.parent / "id"),
        "ssh_known_hosts_file": str(known_hosts),
        "ssh_strict_host_key_checking": "yes",
    }
    return {**base, **data}


def write_config(folder: Path, server: Sshd, known: list[Sshd], **data: object) -> Path:
    """The ssh_config opsrun writes for web1 with host_data(folder, server, known, **data); its path."""
    path = folder / "ssh_config"
    hosts = inventory(**host_data(folder, server, known, **data))
    path.write_text(ssh_config(hosts, ["web1"], folder, connect_timeout=5))
    return path
