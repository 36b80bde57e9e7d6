"""Shared helpers: the repository itself is the ops project the tests run against."""

from __future__ import annotations

import glob
import json
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]


def opsrun(*args: str, project: Path = REPO, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """Run the real CLI in a subprocess, as an operator would."""
    return subprocess.run(
        [sys.executable, "-m", "opsrun", "--project", str(project), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        check=False,
    )


def opsrun_json(*args: str, project: Path = REPO) -> tuple[int, dict[str, Any]]:
    proc = opsrun(*args, "--format", "json", project=project)
    try:
        return proc.returncode, json.loads(proc.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"no JSON from opsrun {' '.join(args)} (exit {proc.returncode}):\n{proc.stdout}\n{proc.stderr}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def postgres_url():
    """A real PostgreSQL server for the session, on loopback, in a throwaway data directory."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        pytest.fail("no PostgreSQL server here (make deps installs the Debian package postgresql)", pytrace=False)
    bindir = Path(found[-1]).parent
    base = Path(tempfile.mkdtemp(prefix="opsrun-pg-"))
    base.chmod(0o755)
    shutil.chown(base, "postgres", "postgres")
    port = _free_port()
    as_pg = ["runuser", "-u", "postgres", "--"]
    subprocess.run(
        [*as_pg, str(bindir / "initdb"), "-D", str(base / "data"), "-A", "trust", "-U", "opsrun"],
        check=True,
        capture_output=True,
    )
    subprocess.run(
        [
            *as_pg,
            str(bindir / "pg_ctl"),
            "-D",
            str(base / "data"),
            "-l",
            str(base / "log"),
            "-w",
            "-t",
            "60",
            "-o",
            f"-c listen_addresses=127.0.0.1 -p {port} -k {base}",
            "start",
        ],
        check=True,
        capture_output=True,
    )
    try:
        yield f"postgresql://opsrun@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            [*as_pg, str(bindir / "pg_ctl"), "-D", str(base / "data"), "-m", "fast", "-w", "stop"],
            check=False,
            capture_output=True,
        )
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def project_copy(tmp_path: Path) -> Path:
    """A copy of the ops content of this repo, for tests that change group_data or deploys."""
    dest = tmp_path / "ops"
    for folder in ("inventories", "group_data", "deploys", "verify"):
        shutil.copytree(REPO / folder, dest / folder, ignore=shutil.ignore_patterns("__pycache__"))
    return dest


# A lab test that skips proves nothing: the session fails if any did.
_skipped_lab_tests: list[str] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.skipped and "/lab/" in report.nodeid.replace("\\", "/"):
        _skipped_lab_tests.append(report.nodeid)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _skipped_lab_tests:
        print(f"\nlab tests may not skip, but these did: {', '.join(_skipped_lab_tests)}")
        session.exitstatus = 1
