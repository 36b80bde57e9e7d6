"""Shared helpers: the repository itself is the ops project the tests run against."""

from __future__ import annotations

import glob
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]

# The demo app's secret (group_data/web.py, pm2_apps secret_env): a fresh value for each session, which
# tests/lab/test_secrets.py then looks for in every output, file and report.
DEMO_SECRET = os.environ.setdefault("OPSRUN_DEMO_API_TOKEN", "opsrun-test-" + secrets.token_hex(12))
REDIS_SECRET = os.environ.setdefault("OPSRUN_REDIS_PASSWORD", "opsrun-redis-" + secrets.token_hex(12))
MONGO_SECRET = os.environ.setdefault("OPSRUN_MONGO_KEYFILE", secrets.token_urlsafe(48))


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
    return copy_ops(tmp_path / "ops")


OPS_FOLDERS = ("inventories", "group_data", "deploys", "verify", "apps")


def copy_ops(dest: Path) -> Path:
    """The ops content of this repo (what an ops repository holds) copied to `dest`."""
    for folder in OPS_FOLDERS:
        shutil.copytree(REPO / folder, dest / folder, ignore=shutil.ignore_patterns("__pycache__"))
    return dest


@pytest.fixture
def webhook_receiver():
    """A webhook receiver on loopback: (its URL, the JSON bodies POSTed to it, {"status": its answer})."""
    got: list[dict[str, Any]] = []
    answer = {"status": 200}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            got.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(answer["status"])
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook", got, answer
    finally:
        server.shutdown()
        server.server_close()


# A lab test that skips proves nothing: the session fails if any did.
_skipped_lab_tests: list[str] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.skipped and "/lab/" in report.nodeid.replace("\\", "/"):
        _skipped_lab_tests.append(report.nodeid)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _skipped_lab_tests:
        print(f"\nlab tests may not skip, but these did: {', '.join(_skipped_lab_tests)}")
        session.exitstatus = 1
