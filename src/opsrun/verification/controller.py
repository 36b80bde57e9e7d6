"""Controller-scoped verify suites: run once, from the machine opsrun runs on, not on each host.

A suite says so in its conftest.py, where a reader of the suite sees it:

    opsrun_scope = "controller"      # run once from the controller (cloud-side checks)
    opsrun_settings = "aws_checks"   # the group_data setting it checks; drift and dr-test run it when set

Such a suite gets no testinfra `host`; the `inventory_data` fixture (opsrun.verification.pytest_plugin) gives it the
inventory's data (group_data merged, secrets removed) and its hosts' data. Its results have the host
"controller", so `opsrun verify`, drift findings and the DR report show them like any other result.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from opsrun.model.inventory import Inventory
from opsrun.model.project import Project
from opsrun.model.results import TestResult, VerifyRun
from opsrun.verification import protocol

HOST = "controller"


def _declared(suite_dir: Path) -> dict[str, str]:
    """The `opsrun_*` string assignments of the suite's conftest.py (read, not imported)."""
    conftest = suite_dir / "conftest.py"
    if not conftest.is_file():
        return {}
    found = {}
    for node in ast.parse(conftest.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
            for target in node.targets:
                if isinstance(target, ast.Name) and target.id.startswith("opsrun_"):
                    found[target.id] = node.value.value
    return found


def is_controller_suite(suite_dir: Path) -> bool:
    return _declared(suite_dir).get("opsrun_scope") == "controller"


def suites_for(project: Project, inv: Inventory, hosts: list[str]) -> list[str]:
    """The controller-scoped suites whose setting (`opsrun_settings`) the hosts have: what drift and
    dr-test run beside the hosts' own checks."""
    chosen = []
    for suite in project.suites():
        declared = _declared(project.root / "verify" / suite)
        key = declared.get("opsrun_settings")
        if declared.get("opsrun_scope") == "controller" and key and any(key in inv.hosts[h].data for h in hosts):
            chosen.append(suite)
    return chosen


def run_suite(
    project: Project, inventory: Inventory, suite: str, hosts: list[str], timeout: float | None = None
) -> VerifyRun:
    """Run verify/SUITE/ once with plain pytest (no testinfra host), results under the host "controller"."""
    suite_dir = project.suite_path(suite)
    started = time.monotonic()
    first = inventory.hosts[hosts[0]].data if hosts else inventory.all_data
    doc: dict[str, Any] = {
        "inventory": inventory.name,
        "data": protocol.public_data(first),
        "hosts": {h: protocol.public_data(inventory.hosts[h].data) for h in hosts},
    }
    with tempfile.TemporaryDirectory(prefix="opsrun-c-") as tmp:
        tmpdir = Path(tmp)
        (tmpdir / "inventory.json").write_text(json.dumps(doc))
        (tmpdir / "pytest.ini").write_text("[pytest]\n")
        results_path = tmpdir / "results.jsonl"
        cmd = [
            sys.executable, "-m", "pytest", str(suite_dir), "-c", str(tmpdir / "pytest.ini"),
            "--rootdir", str(project.root), "-p", "no:cacheprovider", "-p", "opsrun.verification.pytest_plugin",
            "-q", "--no-header", "--tb=short", "--color=no",
        ]  # fmt: skip
        env = {
            **os.environ,
            protocol.RESULTS_ENV: str(results_path),
            protocol.INVENTORY_ENV: str(tmpdir / "inventory.json"),
        }
        proc = subprocess.run(
            cmd,
            cwd=project.root,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
            check=False,
            start_new_session=True,
        )
        records = [json.loads(line) for line in results_path.read_text().splitlines()] if results_path.exists() else []
    results = [TestResult(HOST, r["test"], r["outcome"], r["message"], r["seconds"]) for r in records if r.get("test")]
    error = None
    if proc.returncode not in (0, 1, 5) or (proc.returncode == 1 and not any(r.outcome != "passed" for r in results)):
        error = f"pytest exited {proc.returncode}:\n" + "\n".join(
            (proc.stdout + proc.stderr).strip().splitlines()[-15:]
        )
    return VerifyRun(inventory.name, suite, [HOST], results, time.monotonic() - started, error)
