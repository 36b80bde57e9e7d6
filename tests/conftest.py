"""Shared helpers: the repository itself is the ops project the tests run against."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
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
