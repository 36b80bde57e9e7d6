"""The lab's services in the root namespace, listening on the bridge address only."""

from __future__ import annotations

import functools
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from opsrun.lab.config import LabConfig
from opsrun.support import processes
from opsrun.support.waiting import poll_until


@dataclass(frozen=True)
class Service:
    name: str
    module: str
    port_attr: str
    args: Callable[[LabConfig], list[str]]  # the service's own arguments besides --listen and --pidfile


SERVICES = [
    Service("apt-proxy", "opsrun.lab.aptproxy", "apt_port", lambda cfg: ["--cache", str(cfg.cache_dir / "apt")]),
    Service("npm-mirror", "opsrun.lab.npmmirror", "npm_port", lambda cfg: ["--cache", str(cfg.cache_dir / "npm")]),
    Service("apt-repo", "opsrun.lab.reposerver", "repo_port", lambda cfg: ["--dir", str(cfg.lab_dir / "repo")]),
]


def _pidfile(cfg: LabConfig, svc: Service) -> Path:
    return cfg.lab_dir / "run" / f"{svc.name}.pid"


def _listening(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def pid_of(cfg: LabConfig, svc: Service) -> int | None:
    try:
        pid = int(_pidfile(cfg, svc).read_text())
    except (OSError, ValueError):
        return None
    return pid if processes.alive(pid) else None


def start_all(cfg: LabConfig) -> None:
    run = cfg.lab_dir / "run"
    run.mkdir(parents=True, exist_ok=True)
    for svc in SERVICES:
        port = getattr(cfg, svc.port_attr)
        if pid_of(cfg, svc) and _listening(cfg.gateway, port):
            continue
        src = str(Path(__file__).resolve().parents[2])  # works from a checkout as well as installed
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [src, os.environ.get("PYTHONPATH")]))}
        cmd = [
            "setsid",
            "-f",
            sys.executable,
            "-m",
            svc.module,
            "--pidfile",
            str(_pidfile(cfg, svc)),
            "--listen",
            f"{cfg.gateway}:{port}",
            *svc.args(cfg),
        ]
        with (run / f"{svc.name}.log").open("ab") as log:
            subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env, check=True)
        poll_until(
            functools.partial(_listening, cfg.gateway, port),
            timeout=20,
            what=f"the lab {svc.name} to listen on {cfg.gateway}:{port} (log: {run / svc.name}.log)",
        )


def stop_all(cfg: LabConfig) -> None:
    for svc in SERVICES:
        _stop(cfg, svc)


def _stop(cfg: LabConfig, svc: Service) -> None:
    pid = pid_of(cfg, svc)
    if pid:
        os.kill(pid, signal.SIGTERM)
        poll_until(lambda: not processes.alive(pid), timeout=10, what=f"the lab {svc.name} to exit")
    _pidfile(cfg, svc).unlink(missing_ok=True)
