"""A flat apt repository in the lab, served on the bridge, so patching performs a real upgrade.

It holds the demo package `opsrun-demo`; `publish(version)` builds that version with dpkg-deb and adds it
(older versions stay, as in a real archive; `next_version` is the one after the newest). It also holds
`opsrun-mongod-standin`: the protocol-level mongod stand-in of tests/standins/mongod.py packaged as MongoDB's
own package installs mongod (/usr/bin/mongod, mongod.service, a `mongodb` system user), since there is no
MongoDB server package for this machine. A package built with `reboot=True` asks for a reboot in its
postinst, as a kernel or libc update does. The index (Packages, Packages.gz, Release) is written by
Python, so no dpkg-dev is needed; apt trusts the repo through `[trusted=yes]` (lab only).

Hosts reach it directly (`Acquire::http::Proxy::GATEWAY "DIRECT"` in their lab apt configuration).
"""

from __future__ import annotations

import gzip
import hashlib
import re
import subprocess
import tempfile
import time
from pathlib import Path

from opsrun.errors import LabError
from opsrun.lab.config import LabConfig

PACKAGE = "opsrun-demo"
STANDIN = "opsrun-mongod-standin"
#: the stand-in's source: the lab runs from a checkout of the repository (as `make demo` does)
STANDIN_SOURCE = Path(__file__).resolve().parents[3] / "tests" / "standins" / "mongod.py"
MONGOD_UNIT = """[Unit]
Description=MongoDB Database Server (the opsrun lab's protocol-level stand-in)
After=network-online.target

[Service]
User=mongodb
Group=mongodb
ExecStart=/usr/bin/mongod --config /etc/mongod.conf
RuntimeDirectory=mongodb

[Install]
WantedBy=multi-user.target
"""


def repo_dir(cfg: LabConfig) -> Path:
    return cfg.lab_dir / "repo"


def source_line(cfg: LabConfig) -> str:
    return f"deb [trusted=yes] http://{cfg.gateway}:{cfg.repo_port}/ ./"


def versions(cfg: LabConfig) -> list[str]:
    """The versions of opsrun-demo in the lab repository, oldest first."""
    found = [d.name.split("_")[1] for d in repo_dir(cfg).glob(f"{PACKAGE}_*_all.deb")]
    return sorted(found, key=lambda v: [int(p) if p.isdigit() else 0 for p in re.split(r"[.+~-]", v)])


def next_version(cfg: LabConfig) -> str:
    """The version after the newest published: 1.0 -> 1.1 (its last number plus one); 1.0 for an empty repo."""
    published = versions(cfg)
    if not published:
        return "1.0"
    head, _, last = published[-1].rpartition(".")
    return f"{head}.{int(last) + 1}" if head and last.isdigit() else f"{published[-1]}.1"


def withdraw(cfg: LabConfig) -> None:
    """Remove every version of opsrun-demo from the lab repository (a test that publishes 1.0 then 1.1
    expects 1.1 to be the newest, whatever an earlier one published)."""
    for deb in repo_dir(cfg).glob(f"{PACKAGE}_*_all.deb"):
        deb.unlink()
    if repo_dir(cfg).is_dir():
        write_index(repo_dir(cfg))


def publish(cfg: LabConfig, version: str, *, reboot: bool = False) -> Path:
    """Build opsrun-demo VERSION into the lab repository and rewrite its index."""
    if not re.fullmatch(r"[0-9][A-Za-z0-9.+~]*", version):
        raise LabError(f"{version!r} is not a Debian version. Fix: digits and dots, e.g. 1.1")
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
        _build(root, deb)
    write_index(repo)
    return deb


def _build(root: Path, deb: Path) -> None:
    proc = subprocess.run(
        ["dpkg-deb", "--root-owner-group", "-Zxz", "-b", str(root), str(deb)],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise LabError(f"dpkg-deb could not build {deb.name}: {proc.stderr.strip()}")


def standin_version(source: Path = STANDIN_SOURCE) -> str:
    """1.0+<hash of the stand-in>: a changed stand-in is a new version, never the same version rebuilt."""
    return "1.0+" + hashlib.sha256(source.read_bytes()).hexdigest()[:10]


def publish_standin(cfg: LabConfig, source: Path = STANDIN_SOURCE) -> Path:
    """Build opsrun-mongod-standin from the stand-in's source (once per version) and rewrite the index."""
    if not source.is_file():
        raise LabError(f"no mongod stand-in at {source}: the lab runs from a checkout of the opsrun repository.")
    repo = repo_dir(cfg)
    repo.mkdir(parents=True, exist_ok=True)
    deb = repo / f"{STANDIN}_{standin_version(source)}_all.deb"
    if deb.exists():
        return deb
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "DEBIAN").mkdir()
        (root / "usr/bin").mkdir(parents=True)
        (root / "lib/systemd/system").mkdir(parents=True)
        (root / "usr/bin/mongod").write_bytes(source.read_bytes())
        (root / "usr/bin/mongod").chmod(0o755)
        (root / "lib/systemd/system/mongod.service").write_text(MONGOD_UNIT)
        (root / "DEBIAN/control").write_text(
            f"Package: {STANDIN}\nVersion: {standin_version(source)}\nArchitecture: all\nDepends: python3\n"
            "Maintainer: opsrun lab <lab@opsrun.invalid>\nSection: database\nPriority: optional\n"
            "Description: protocol-level mongod stand-in for the opsrun lab\n"
            " Speaks enough of MongoDB's wire protocol for a 3-member replica set (tests/standins/mongod.py).\n"
        )
        (root / "DEBIAN/postinst").write_text(
            "#!/bin/sh\nset -e\n"
            'if [ "$1" = configure ]; then\n'
            "  id mongodb >/dev/null 2>&1 || useradd --system --home-dir /var/lib/mongodb --shell /bin/false mongodb\n"
            "  systemctl daemon-reload >/dev/null 2>&1 || true\n"
            "fi\n"
        )
        (root / "DEBIAN/postinst").chmod(0o755)
        _build(root, deb)
    for old in repo.glob(f"{STANDIN}_*_all.deb"):
        if old != deb:
            old.unlink()  # one stand-in: the one of this checkout
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
