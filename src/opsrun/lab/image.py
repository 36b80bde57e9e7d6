"""The lab's base image: a debootstrapped Debian 12 with systemd, sshd, python3 and Node, built once.

The image is cached as a directory named after a hash of its recipe (`base-<hash>`), so a change to the
recipe builds a new one and an unchanged recipe reuses the old one. It is built in a temporary directory
and renamed into place when complete, so an interrupted build is never used.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

from opsrun.errors import LabError
from opsrun.lab.config import LabConfig

SUITE = "bookworm"
RECIPE_VERSION = "3"  # bump to force a rebuild when a step below changes in a way the hash cannot see
INCLUDE = [
    "systemd",
    "systemd-sysv",
    "dbus",
    "openssh-server",
    "python3",
    "iproute2",
    "ca-certificates",
    "sudo",
    "procps",
    "curl",
    "less",
    "iputils-ping",
]
# Node is platform in our fleets (baked into the golden image): 40 s a host to install, so bake it once.
BAKED = ["nodejs", "npm"]
MASKED_UNITS = [
    "apt-daily.timer",
    "apt-daily-upgrade.timer",
    "dpkg-db-backup.timer",
    "e2scrub_all.timer",
    "fstrim.timer",
]
SOURCES_DIR = Path("/etc/apt/sources.list.d")
#: the login of Debian's cloud images: passwordless sudo, as their cloud-init writes it; its key goes in per host
ADMIN, ADMIN_UID = "admin", 1000

Log = Callable[[str], None]


def machine_sources() -> dict[str, str]:
    """The machine's apt source files that serve our suite, by file name (never hard-code a mirror)."""
    found = {}
    for path in sorted(SOURCES_DIR.glob("*")):
        if path.suffix not in (".sources", ".list"):
            continue
        text = path.read_text()
        if re.search(rf"\b{SUITE}\b", text):
            found[path.name] = text
    if not found:
        raise LabError(
            f"no apt source for Debian {SUITE} in {SOURCES_DIR}. Fix: configure the Debian mirror there "
            "(a deb822 .sources file)."
        )
    return found


def source_uris(sources: dict[str, str]) -> list[str]:
    uris: list[str] = []
    for name, text in sources.items():
        if name.endswith(".sources"):
            for line in text.splitlines():
                if line.startswith("URIs:"):
                    uris += line.split()[1:]
        else:
            for line in text.splitlines():
                parts = line.split()
                if parts and parts[0] == "deb":
                    uris += [p for p in parts[1:] if "://" in p][:1]
    return uris


def mirror(sources: dict[str, str]) -> str:
    """The main archive (not the security one) to debootstrap from."""
    for uri in source_uris(sources):
        if "security" not in uri:
            return uri
    raise LabError(f"no main Debian archive among the apt sources in {SOURCES_DIR}. Fix: add one.")


def _files(sources: dict[str, str]) -> dict[str, str]:
    """Every file the recipe writes into the image, by path inside it. Nothing here depends on the lab's
    addresses: those go into each host's upper dir (hosts.lab_files), so one image serves any lab."""
    files = {f"/etc/apt/sources.list.d/{name}": text for name, text in sources.items()}
    files.update(
        {
            "/etc/apt/apt.conf.d/01lab": 'Acquire::Languages "none";\nAPT::Keep-Downloaded-Packages "false";\n',
            "/etc/resolv.conf": "# the lab has no DNS: names come from /etc/hosts\n",
            "/etc/hostname": "lab-base\n",
            "/etc/ssh/sshd_config.d/lab.conf": (
                "HostKey /etc/ssh/ssh_host_ed25519_key\nHostKey /etc/ssh/ssh_host_ecdsa_key\n"
                "PasswordAuthentication no\nUseDNS no\n"
            ),
            "/etc/sudoers.d/90-cloud-init-users": f"{ADMIN} ALL=(ALL) NOPASSWD:ALL\n",
        }
    )
    return files


def recipe_hash(sources: dict[str, str]) -> str:
    h = hashlib.sha256()
    for part in (RECIPE_VERSION, SUITE, *INCLUDE, "|", *BAKED, "|", *MASKED_UNITS):
        h.update(part.encode() + b"\0")
    for path, text in sorted(_files(sources).items()):
        h.update(f"{path}\0{text}\0".encode())
    return h.hexdigest()[:12]


def base_dir(cfg: LabConfig) -> Path:
    return cfg.cache_dir / f"base-{recipe_hash(machine_sources())}"


def is_built(path: Path) -> bool:
    return (path / ".opsrun-base-complete").exists()


def ensure_base(cfg: LabConfig, log: Log) -> Path:
    """Return the base image for the current recipe, building it first if it is not cached."""
    sources = machine_sources()
    path = cfg.cache_dir / f"base-{recipe_hash(sources)}"
    if is_built(path):
        return path
    log(f"building the base image {path.name} (about 2-3 minutes, once per recipe)")
    tmp = path.with_name(path.name + ".building")
    _remove_tree(tmp)
    tmp.parent.mkdir(parents=True, exist_ok=True)
    try:
        _build(tmp, cfg, sources, log)
    except BaseException:
        _remove_tree(tmp)
        raise
    tmp.rename(path)
    return path


def prune(cfg: LabConfig, keep: Path) -> None:
    """Remove base images of older recipes (once no host runs on them)."""
    for old in cfg.cache_dir.glob("base-*"):
        if old != keep and old.is_dir():
            _remove_tree(old)


def _run(cmd: list[str], log: Log) -> None:
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, check=False)
    if proc.returncode != 0:
        tail = "\n".join(proc.stdout.splitlines()[-15:])
        raise LabError(f"base image: `{' '.join(cmd[:4])} ...` failed (exit {proc.returncode}):\n{tail}")


def _build(root: Path, cfg: LabConfig, sources: dict[str, str], log: Log) -> None:
    log("  debootstrap")
    _run(["debootstrap", "--variant=minbase", f"--include={','.join(INCLUDE)}", SUITE, str(root), mirror(sources)], log)
    (root / "etc/apt/sources.list").unlink(missing_ok=True)
    for rel, text in _files(sources).items():
        target = root / rel.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.unlink(missing_ok=True)  # resolv.conf may be a symlink
        target.write_text(text)
    for key in (root / "etc/ssh").glob("ssh_host_*"):
        key.unlink()  # identity is per host
    (root / "etc/machine-id").write_text("")
    (root / "etc/sudoers.d/90-cloud-init-users").chmod(0o440)
    _run(["chroot", str(root), "useradd", "-m", "-u", str(ADMIN_UID), "-U", "-s", "/bin/bash", ADMIN], log)
    _run(["chroot", str(root), "systemctl", "mask", *MASKED_UNITS], log)

    log("  security updates and " + " ".join(BAKED))
    policy = root / "usr/sbin/policy-rc.d"
    policy.write_text("#!/bin/sh\nexit 101\n")  # no daemon starts inside the chroot
    policy.chmod(0o755)
    resolv = root / "etc/resolv.conf"
    lab_resolv = resolv.read_text()
    resolv.write_text(Path("/etc/resolv.conf").read_text())  # the build itself resolves like the machine
    subprocess.run(["mount", "--bind", "/proc", str(root / "proc")], check=True)
    try:
        apt = [
            "chroot",
            str(root),
            "env",
            "DEBIAN_FRONTEND=noninteractive",
            "apt-get",
            "-q",
            "-y",
            "-o",
            "Acquire::http::Proxy=false",
            "-o",
            "Dpkg::Options::=--force-confold",
        ]
        _run([*apt, "update"], log)
        _run([*apt, "upgrade"], log)
        _run([*apt, "install", "--no-install-recommends", *BAKED], log)
        _run([*apt, "clean"], log)  # lists are kept: each host would otherwise write 150 MB of its own
    finally:
        subprocess.run(["umount", "-l", str(root / "proc")], check=False)
        resolv.write_text(lab_resolv)
        policy.unlink(missing_ok=True)
    (root / ".opsrun-base-complete").write_text(recipe_hash(sources) + "\n")


def _remove_tree(path: Path) -> None:
    if path.exists():
        # a failed build may have left /proc mounted inside: never recurse into a mount
        proc = path / "proc"
        if os.path.ismount(proc):
            subprocess.run(["umount", "-l", str(proc)], check=False)
        shutil.rmtree(path, ignore_errors=True)


def remove_cache(cfg: LabConfig) -> None:
    """Remove the base images and the package caches (`lab down --purge`)."""
    if cfg.cache_dir.is_dir():
        for entry in cfg.cache_dir.iterdir():
            _remove_tree(entry) if entry.is_dir() else entry.unlink()
