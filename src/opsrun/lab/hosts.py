"""Lab hosts: systemd-nspawn containers booted on an overlay of the base image, one supervisor each.

A host is its upper directory (identity and whatever deploys write), a network namespace, and a small
shell supervisor in its own cgroup that starts nspawn again when it exits 133 (a reboot inside the host),
and when it fails (a few times: a reboot's new boot can fail while the last one is still being torn down),
until the host powers off or `stop` is asked for.
Containers started from one shared cgroup share `/payload` and fail to stop their units
(seen on this machine).
A host is stopped with SIGTERM to its nspawn (a clean poweroff); never SIGRTMIN+4, which orphans it.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import socket
import subprocess
import uuid
from pathlib import Path

from opsrun.errors import LabError, WaitTimeout
from opsrun.lab import capacity
from opsrun.lab.config import MAX_ADDRESSES, LabConfig, host_name
from opsrun.lab.image import ADMIN, ADMIN_UID
from opsrun.support import processes
from opsrun.support.waiting import poll_until

CGROUP_ROOT = Path("/sys/fs/cgroup")
BOOT_RETRIES = 4  # a failed nspawn booted again at most this often, a second apart, before the host is left off

SUPERVISOR = """#!/bin/sh
# Written by `opsrun lab up`: boots lab host {name}, and boots it again after a reboot inside it.
echo $$ > {dir}/supervisor.pid
for d in {cgroups}; do mkdir -p "$d" && echo $$ > "$d/cgroup.procs"; done
failed=0
while [ ! -e {dir}/stopping ]; do
  started=$(date +%s)
  systemd-nspawn -q -D {base} --overlay={overlay} -M {machine} --boot --register=no --keep-unit \\
    --network-namespace-path=/run/netns/{netns} --resolv-conf=off --timezone=off --link-journal=no \\
    --console=read-only >>{dir}/console.log 2>&1 &
  echo $! > {dir}/nspawn.pid
  wait $!
  rc=$?
  rm -f {dir}/nspawn.pid
  echo "$(date -u +%FT%TZ) nspawn exited $rc" >> {dir}/supervisor.log
  if [ "$rc" = 133 ]; then failed=0; continue; fi
  # A failed boot is booted again, {retries} times at most (a host that ran a minute starts the count
  # afresh); not a poweroff (0), nor nspawn killed by a signal (129-192: its container may still run).
  [ $(( $(date +%s) - started )) -ge 60 ] && failed=0
  [ -e {dir}/stopping ] || [ "$rc" = 0 ] || [ "$rc" -gt 128 -a "$rc" -le 192 ] || [ "$failed" -ge {retries} ] && break
  failed=$((failed + 1))
  echo "$(date -u +%FT%TZ) booting again ($failed of {retries})" >> {dir}/supervisor.log
  sleep 1
done
rm -f {dir}/nspawn.pid {dir}/supervisor.pid {dir}/stopping
"""


def cgroup_dirs(cfg: LabConfig, name: str) -> list[Path]:
    """The host's cgroup in each hierarchy nspawn uses: `<prefix>lab/<host>`."""
    parent = f"{cfg.prefix}lab"
    if (CGROUP_ROOT / "cgroup.controllers").exists():  # pure cgroup v2
        return [CGROUP_ROOT / parent / name]
    return [CGROUP_ROOT / h / parent / name for h in ("systemd", "unified") if (CGROUP_ROOT / h).is_dir()]


def cgroup_pids(cfg: LabConfig, name: str) -> set[int]:
    """The processes in the host's cgroups. systemd inside the host removes cgroups while they are walked
    (a host going down): one gone between being listed and being read is skipped (os.walk ignores it)."""
    pids: set[int] = set()
    for top in cgroup_dirs(cfg, name):
        for dirpath, _dirs, files in os.walk(top):
            if "cgroup.procs" not in files:
                continue
            try:
                pids.update(int(p) for p in (Path(dirpath) / "cgroup.procs").read_text().split())
            except OSError:
                pass
    return pids


def remove_cgroups(cfg: LabConfig, name: str) -> None:
    for top in cgroup_dirs(cfg, name):
        if top.is_dir():
            for dirpath, _dirs, _files in sorted(os.walk(top), key=lambda w: -len(w[0])):
                try:
                    os.rmdir(dirpath)
                except OSError:
                    pass
        try:
            top.parent.rmdir()  # the lab's own parent, once no host is left in it
        except OSError:
            pass


def _read_pid(path: Path) -> int | None:
    try:
        pid = int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return pid if processes.alive(pid) else None


def supervisor_pid(cfg: LabConfig, name: str) -> int | None:
    return _read_pid(cfg.host_dir(name) / "supervisor.pid")


def create(cfg: LabConfig, base: Path, name: str) -> None:
    """Write the host's identity into its upper dir: hostname, machine-id, SSH host keys, the lab key."""
    hdir = cfg.host_dir(name)
    upper = hdir / "upper"
    if (hdir / "identity.done").exists():
        return
    for d, mode in (
        (upper, 0o755),
        (upper / "etc", 0o755),
        (upper / "etc/ssh", 0o755),
        (upper / "root", 0o700),
        (upper / "root/.ssh", 0o700),
    ):
        d.mkdir(parents=True, exist_ok=True)
        d.chmod(mode)  # the upper dir's mode wins in the merged view
    (upper / "etc/hostname").write_text(f"{name}\n")
    for rel, text in lab_files(cfg, name).items():
        path = upper / rel.lstrip("/")
        for parent in reversed(path.relative_to(upper).parents[:-1]):
            (upper / parent).mkdir(mode=0o755, exist_ok=True)
        path.write_text(text)
    (upper / "etc/machine-id").write_text(uuid.uuid4().hex + "\n")
    for kind in ("ed25519", "ecdsa"):  # RSA costs 2 s a host and nobody needs it here
        key = upper / f"etc/ssh/ssh_host_{kind}_key"
        key.unlink(missing_ok=True)
        Path(f"{key}.pub").unlink(missing_ok=True)
        _check(["ssh-keygen", "-q", "-t", kind, "-N", "", "-C", f"root@{name}", "-f", str(key)])
    _authorize(upper, "root", 0, Path(f"{cfg.key}.pub").read_text())
    _authorize(upper, f"home/{ADMIN}", ADMIN_UID, Path(f"{cfg.key}.pub").read_text())
    (hdir / "identity.done").write_text("")


def _authorize(upper: Path, home: str, uid: int, key: str) -> None:
    """The lab key in HOME/.ssh/authorized_keys, owned by the user (the upper dir's owners win)."""
    ssh_dir = upper / home / ".ssh"
    ssh_dir.mkdir(parents=True, exist_ok=True)
    auth = ssh_dir / "authorized_keys"
    auth.write_text(key)
    for path, mode in ((upper / home, 0o700 if uid == 0 else 0o755), (ssh_dir, 0o700), (auth, 0o600)):
        os.chown(path, uid, uid)
        path.chmod(mode)


def lab_files(cfg: LabConfig, name: str) -> dict[str, str]:
    """What ties a host to this lab: the lab's names and addresses, and apt and npm through the bridge."""
    gw = cfg.gateway
    hosts = ["127.0.0.1 localhost", f"127.0.1.1 {name}", f"{gw} lab-gw"]
    # every name the /24 can hold, so a host made now knows the hosts a bigger `up` adds later
    hosts += [f"{cfg.address(i)} {host_name(i)}" for i in range(1, MAX_ADDRESSES + 1)]
    return {
        "/etc/hosts": "\n".join(hosts) + "\n",
        "/etc/resolv.conf": f"nameserver {gw}\n",  # answers nothing: lookups fail fast, names come from hosts
        "/etc/apt/apt.conf.d/00lab-proxy": (
            f'Acquire::http::Proxy "http://{gw}:{cfg.apt_port}";\nAcquire::http::Proxy::{gw} "DIRECT";\n'
        ),
        "/etc/npmrc": f"registry=http://{gw}:{cfg.npm_port}/\naudit=false\nfund=false\nupdate-notifier=false\n",
    }


def host_keys(cfg: LabConfig, name: str) -> list[str]:
    """The host's public keys as `type base64` strings."""
    etc = cfg.host_dir(name) / "upper/etc/ssh"
    return [" ".join(p.read_text().split()[:2]) for p in sorted(etc.glob("ssh_host_*_key.pub"))]


def supervisor_script(cfg: LabConfig, base: Path, name: str) -> str:
    """The supervisor's shell script, every path and name in it quoted. A path holding a newline, or a ':'
    (systemd-nspawn's --overlay separator), is refused: it could not mean what it says."""
    hdir = cfg.host_dir(name)
    for what, value in (("lab folder", hdir), ("base image", base), ("host name", name)):
        if any(c in str(value) for c in ":\n\r\x00"):
            raise LabError(f"the {what} {str(value)!r} holds ':' or a control character; use a plain path")
    q = shlex.quote
    return SUPERVISOR.format(
        name=q(name),
        machine=q(cfg.machine(name)),
        dir=q(str(hdir)),
        base=q(str(base)),
        overlay=q(f"{base}:{hdir / 'upper'}:/"),
        netns=q(cfg.netns(name)),
        cgroups=" ".join(q(str(d)) for d in cgroup_dirs(cfg, name)),
        retries=BOOT_RETRIES,
    )


def start(cfg: LabConfig, base: Path, name: str) -> None:
    if supervisor_pid(cfg, name):
        return
    hdir = cfg.host_dir(name)
    script = hdir / "run-host.sh"
    script.write_text(supervisor_script(cfg, base, name))
    (hdir / "supervisor.pid").unlink(missing_ok=True)
    (hdir / "stopping").unlink(missing_ok=True)
    # setsid -f: the supervisor is nobody's child, so it outlives the CLI and is never left a zombie
    with (hdir / "supervisor.log").open("ab") as log:  # never a pipe: the supervisor would hold it open
        subprocess.run(
            ["setsid", "-f", "sh", str(script)], stdin=subprocess.DEVNULL, stdout=log, stderr=log, check=True
        )
    poll_until(lambda: supervisor_pid(cfg, name), timeout=10, what=f"the supervisor of {name} to start")


def poweroff_timeout(at_once: int) -> float:
    """How long a clean poweroff may take when `at_once` hosts power off together: 30 s for one, and the
    machine's cores shared by all (100 hosts on 2 cores took more than 30 s each)."""
    return 30.0 + 0.5 * max(0, at_once - 1)


def stop(cfg: LabConfig, name: str, timeout: float = 30) -> None:
    """Power the host off cleanly; kill what is left of it if it does not go in time (`timeout`, and as long
    again for the kill to be done with)."""
    hdir = cfg.host_dir(name)
    if hdir.is_dir():
        (hdir / "stopping").write_text("")  # the supervisor boots it no more (and removes this as it exits)
    asked: set[int] = set()

    def gone() -> bool:
        nspawn = _read_pid(hdir / "nspawn.pid")  # read again: a boot the supervisor began as it was asked
        if nspawn and nspawn not in asked:
            asked.add(nspawn)
            with contextlib.suppress(ProcessLookupError):
                os.kill(nspawn, signal.SIGTERM)  # nspawn asks the container's init for a clean poweroff
        return not cgroup_pids(cfg, name) and not supervisor_pid(cfg, name)

    try:
        poll_until(
            gone,
            timeout=timeout,
            what=f"lab host {name} to power off",
        )
    except Exception:  # noqa: BLE001 - the fallback below is the answer to any failure here
        for pid in cgroup_pids(cfg, name) | {p for p in (supervisor_pid(cfg, name),) if p}:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        poll_until(
            lambda: not cgroup_pids(cfg, name), timeout=timeout, what=f"the processes of lab host {name} to exit"
        )
    machine = cfg.machine(name)
    for leftover in (Path("/run/systemd/nspawn/propagate") / machine, Path("/run/systemd/nspawn/locks") / machine):
        if leftover.exists():
            subprocess.run(["rm", "-rf", str(leftover)], check=False)
    remove_cgroups(cfg, name)


def ssh_command(cfg: LabConfig, address: str, *command: str, connect_timeout: int = 2) -> list[str]:
    return [
        "ssh",
        "-i",
        str(cfg.key),
        "-F",
        "none",
        "-o",
        "BatchMode=yes",
        "-o",
        f"ConnectTimeout={connect_timeout}",
        "-o",
        f"UserKnownHostsFile={cfg.known_hosts}",
        "-o",
        "StrictHostKeyChecking=yes",
        "-o",
        "LogLevel=ERROR",
        f"root@{address}",
        *command,
    ]


def ssh(cfg: LabConfig, address: str, *command: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ssh_command(cfg, address, *command),
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        check=False,
    )


def port_open(address: str, port: int = 22) -> bool:
    try:
        with socket.create_connection((address, port), timeout=1):
            return True
    except OSError:
        return False


def wait_ready(cfg: LabConfig, name: str, address: str, timeout: float = 90) -> str:
    """Poll until SSH answers and systemd has finished booting; return systemd's state.

    The port is polled first (a connect costs nothing), then ssh: with 100 hosts booting on a few cores,
    an ssh process every 0.2 s for each host would compete with the boot itself."""
    try:
        poll_until(lambda: port_open(address), timeout=timeout, what=f"sshd on lab host {name} ({address}) to listen")
        poll_until(
            lambda: ssh(cfg, address, "true", timeout=10).returncode == 0,
            timeout=timeout,
            what=f"SSH on lab host {name} ({address})",
            retry_on=(subprocess.TimeoutExpired,),  # sshd accepts before it answers while the host boots
        )
    except WaitTimeout as exc:
        raise LabError(f"{exc}\n{boot_trace(cfg, name)}") from exc
    out = ssh(cfg, address, "systemctl", "is-system-running", "--wait", timeout=timeout)
    return out.stdout.strip() or out.stderr.strip()


def boot_trace(cfg: LabConfig, name: str, lines: int = 8) -> str:
    """What says why host `name` is not up: whether its supervisor and nspawn run, how nspawn last exited,
    the last lines nspawn and the host's console printed, and how much of root's inotify is held (a host
    boots no more once it runs out: LAB-NOTES)."""
    hdir = cfg.host_dir(name)

    def tail(path: Path) -> list[str]:
        try:
            text = path.read_bytes()[-16384:].decode(errors="replace")
        except OSError:
            return ["(none)"]
        return [f"    {line.rstrip()}" for line in text.splitlines() if line.strip()][-lines:]

    inotify = capacity.read_inotify()
    return "\n".join(
        [
            f"  supervisor pid {supervisor_pid(cfg, name)}, nspawn pid {_read_pid(hdir / 'nspawn.pid')};"
            f" root holds {inotify.instances} of {inotify.max_instances} inotify instances",
            f"  {hdir / 'supervisor.log'}:",
            *tail(hdir / "supervisor.log"),
            f"  {hdir / 'console.log'}:",
            *tail(hdir / "console.log"),
        ]
    )


def _check(cmd: list[str], **kw: object) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, **kw)  # type: ignore[call-overload]
    if proc.returncode != 0:
        raise LabError(f"`{' '.join(cmd)}` failed: {proc.stderr.strip()}")
