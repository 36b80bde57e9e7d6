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
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from opsrun.errors import ConfigError
from opsrun.model.inventory import Inventory
from opsrun.model.project import Project
from opsrun.model.results import VerifyRun
from opsrun.settings.deadlines import DEFAULTS
from opsrun.support import processes
from opsrun.verification import protocol, suite_process

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


SCOPES = ("hosts", "controller")  # `opsrun_scope`: each host's own tests (the default), or once from here


def scope_of(suite_dir: Path) -> str:
    """Where a suite runs, as its conftest.py says (`opsrun_scope`): one of SCOPES, "hosts" when it says
    nothing. The one place that decides it: the Verifier runs the suite by it, a rollout refuses to verify
    hosts with a controller's suite, drift and dr-test add the controller's suites (`suites_for`)."""
    scope = _declared(suite_dir).get("opsrun_scope", "hosts")
    if scope not in SCOPES:
        raise ConfigError(
            suite_dir / "conftest.py",
            f"{scope!r} is not a scope.",
            field="opsrun_scope",
            fix=f"write one of {', '.join(repr(s) for s in SCOPES)}, or leave it out (each host's tests)",
        )
    return scope


def is_controller_suite(suite_dir: Path) -> bool:
    return scope_of(suite_dir) == "controller"


def suites_for(project: Project, inv: Inventory, hosts: list[str]) -> list[str]:
    """The controller-scoped suites whose setting (`opsrun_settings`) the hosts have: what drift and
    dr-test run beside the hosts' own checks."""
    chosen = []
    for suite in project.suites():
        suite_dir = project.root / "verify" / suite
        key = _declared(suite_dir).get("opsrun_settings")
        if is_controller_suite(suite_dir) and key and any(key in inv.hosts[h].data for h in hosts):
            chosen.append(suite)
    return chosen


def run_suite(
    project: Project,
    inventory: Inventory,
    suite: str,
    hosts: list[str],
    timeout: float = DEFAULTS["verify"],
    *,
    stop: threading.Event | None = None,
) -> VerifyRun:
    """Run verify/SUITE/ once with plain pytest (no testinfra host), results under the host "controller";
    ended past `timeout` seconds, or at once by `stop` (verification changes nothing)."""
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
        env = {
            **os.environ,
            protocol.RESULTS_ENV: str(results_path),
            protocol.INVENTORY_ENV: str(tmpdir / "inventory.json"),
        }
        command = protocol.pytest_command(project.root, suite_dir, tmpdir)
        proc = suite_process.start(command, project.root, env, tmpdir / "pytest.log")
        ended = processes.supervise(proc, backstop=timeout, stop=stop, what="verification", gentle=None)
        results = protocol.read_results([results_path] if results_path.exists() else [], host=HOST)
        output = (tmpdir / "pytest.log").read_text(errors="replace")
    error = ended or protocol.pytest_failure(proc.returncode, "controller", results, output)
    interrupted = ended if stop is not None and stop.is_set() else None
    return VerifyRun(inventory.name, suite, [HOST], results, time.monotonic() - started, error, interrupted)
