"""A flat apt repository in the lab, served on the bridge, so patching performs a real upgrade.

It holds the demo package `opsrun-demo`; `publish(version)` builds that version with dpkg-deb and adds it
(older versions stay, as in a real archive). A package built with `reboot=True` asks for a reboot in its
postinst, as a kernel or libc update does. The index (Packages, Packages.gz, Release) is written by
Python, so no dpkg-dev is needed; apt trusts the repo through `[trusted=yes]` (lab only).

Hosts reach it directly (`Acquire::http::Proxy::GATEWAY "DIRECT"` in their lab apt configuration).
"""

from __future__ import annotations

import gzip
import hashlib
import subprocess
import tempfile
import time
from pathlib import Path

from opsrun.errors import LabError
from opsrun.lab.config import LabConfig

PACKAGE = "opsrun-demo"


def repo_dir(cfg: LabConfig) -> Path:
    return cfg.lab_dir / "repo"


def source_line(cfg: LabConfig) -> str:
    return f"deb [trusted=yes] http://{cfg.gateway}:{cfg.repo_port}/ ./"


def publish(cfg: LabConfig, version: str, *, reboot: bool = False) -> Path:
    """Build opsrun-demo VERSION into the lab repository and rewrite its index."""
    repo = repo_dir(cfg)
    repo.mkdir(parents=True, exist_ok=True)
    deb = repo / f"{PACKAGE}_{version}_all.deb"
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "DEBIAN").mkdir()
        (root / "usr/share/opsrun-demo").mkdir(parents=True)
        (root / "usr/share/opsrun-demo/VERSION").write_text(f"{version}\n")
        (root / "DEBIAN/control").write_text(
            f"Package: {PACKAGE}\nVersion: {version}\nArchitecture: all\nMaintainer: opsrun lab <lab@opsrun.invalid>\n"
            "Section: misc\nPriority: optional\nDescription: opsrun lab demo package\n"
            " A package whose new versions the lab publishes, so that patching has something to upgrade.\n"
        )
        postinst = "#!/bin/sh\nset -e\n"
        if reboot:
            postinst += (
                'if [ "$1" = configure ]; then touch /var/run/reboot-required; '
                f"echo {PACKAGE} >> /var/run/reboot-required.pkgs; fi\n"
            )
        (root / "DEBIAN/postinst").write_text(postinst)
        (root / "DEBIAN/postinst").chmod(0o755)
        proc = subprocess.run(
            ["dpkg-deb", "--root-owner-group", "-Zxz", "-b", str(root), str(deb)],
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            raise LabError(f"dpkg-deb could not build {deb.name}: {proc.stderr.strip()}")
    write_index(repo)
    return deb


def _control(deb: Path) -> str:
    proc = subprocess.run(["dpkg-deb", "-f", str(deb)], capture_output=True, text=True, check=True)
    return proc.stdout.strip()


def write_index(repo: Path) -> None:
    stanzas = []
    for deb in sorted(repo.glob("*.deb")):
        data = deb.read_bytes()
        stanzas.append(
            f"{_control(deb)}\nFilename: ./{deb.name}\nSize: {len(data)}\n"
            f"MD5sum: {hashlib.md5(data).hexdigest()}\nSHA256: {hashlib.sha256(data).hexdigest()}\n"  # noqa: S324
        )
    packages = "\n".join(stanzas).encode()
    (repo / "Packages.tmp").write_bytes(packages)
    (repo / "Packages.tmp").replace(repo / "Packages")
    (repo / "Packages.gz.tmp").write_bytes(gzip.compress(packages, mtime=0))
    (repo / "Packages.gz.tmp").replace(repo / "Packages.gz")
    files = {"Packages": packages, "Packages.gz": (repo / "Packages.gz").read_bytes()}
    release = [
        "Origin: opsrun-lab",
        "Label: opsrun-lab",
        "Suite: lab",
        "Codename: lab",
        f"Date: {time.strftime('%a, %d %b %Y %H:%M:%S UTC', time.gmtime())}",
        "SHA256:",
    ]
    release += [f" {hashlib.sha256(b).hexdigest()} {len(b)} {name}" for name, b in files.items()]
    (repo / "Release.tmp").write_text("\n".join(release) + "\n")
    (repo / "Release.tmp").replace(repo / "Release")
