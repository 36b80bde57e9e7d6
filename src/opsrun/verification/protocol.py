"""What the controller (`verify`, `controller`) and the suite's own pytest (`pytest_plugin` and the verification
backend, `ssh_shell`, which import testinfra) agree on: the backend's name, the environment that tells the plugin where
things are, which host data a suite may see, the result line (written by the plugin, read by the controller, side by
side below) and the pytest exit codes that mean the suite ran. A module of its own, importing nothing of either side:
the controller's side, and so every command line, never imports testinfra nor pytest."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from opsrun.model.results import TestResult

NAME = "opsrun-ssh"  # the testinfra connection of opsrun.verification.ssh_shell: --hosts=opsrun-ssh://web1
SUDO_ENV = "OPSRUN_VERIFY_SUDO"  # JSON, host -> {user, password}: each host's escalation (opsrun.hosts.sudo)
HOSTDATA_ENV = "OPSRUN_VERIFY_HOSTDATA"  # a JSON file, host -> its public_data (the `host_data` fixture)
INVENTORY_ENV = "OPSRUN_VERIFY_INVENTORY"  # a JSON file: the inventory's data, for a controller-scoped suite
RESULTS_ENV = "OPSRUN_VERIFY_RESULTS"  # where the plugin writes each test's result, one JSON line each
# JSON for a host-scoped suite's pytest: {"concurrency": N, "targets": {host: addr:port}, "channel": [r, w]}
PARALLEL_ENV = "OPSRUN_VERIFY_PARALLEL"
# the deploy a rollout applied to these hosts just before this verification (the `applied_deploy` fixture)
AFTER_APPLY_ENV = "OPSRUN_VERIFY_AFTER_APPLY"

PLUGIN = "opsrun.verification.pytest_plugin"  # the suite's pytest loads it by name (`-p`)

SECRET_KEY = re.compile(r"pass|secret|token|credential|private", re.IGNORECASE)


def public_data(data: Mapping[str, Any]) -> dict[str, Any]:
    """Host data a suite may see: JSON values only, nothing whose name says it is a secret."""
    out = {}
    for key, value in data.items():
        if SECRET_KEY.search(key):
            continue
        try:
            json.dumps(value)
        except (TypeError, ValueError):
            continue
        out[key] = value
    return out


def pytest_command(
    root: Path, suite_dir: Path, tmpdir: Path, *, before: Iterable[str] = (), after: Iterable[str] = ()
) -> list[str]:
    """The suite's pytest: `suite_dir` under the empty pytest.ini in `tmpdir` (not under the tool's own pytest
    settings), rooted at the ops repo `root`, with no cache, opsrun's plugin after the plugins `before` (`-p`),
    quiet, short tracebacks; then the arguments `after`."""
    plugins = [arg for name in [*before, PLUGIN] for arg in ("-p", name)]
    return [
        *(sys.executable, "-m", "pytest", str(suite_dir), "-c", str(tmpdir / "pytest.ini"), "--rootdir", str(root)),
        *("-p", "no:cacheprovider", *plugins, "-q", "--no-header", "--tb=short", "--color=no", *after),
    ]


# ------------------------------------------------------------------------------ the pytest exit codes that mean "ran"

# pytest.ExitCode's values, spelled out: the controller's side never imports pytest
PYTEST_OK, PYTEST_TESTS_FAILED, PYTEST_NO_TESTS_COLLECTED = 0, 1, 5
# a host-scoped suite: every host has tests (a host with none is a "(collect)" error line, and pytest's exit 5 its
# own failure); a controller-scoped suite may have none to run for the inventory (it then has no result)
RAN = {
    "hosts": (PYTEST_OK, PYTEST_TESTS_FAILED),
    "controller": (PYTEST_OK, PYTEST_TESTS_FAILED, PYTEST_NO_TESTS_COLLECTED),
}


def pytest_failure(returncode: int | None, scope: str, results: list[TestResult], output: str) -> str | None:
    """pytest's own failure (not a failed test), with the end of its output: an exit code that does not mean
    the `scope`'s suite ran (RAN), or "tests failed" with every test passed."""
    ran = returncode in RAN[scope]
    if ran and not (returncode == PYTEST_TESTS_FAILED and all(r.outcome == "passed" for r in results)):
        return None
    return f"pytest exited {returncode}:\n" + "\n".join(output.strip().splitlines()[-15:])


# ---------------------------------------------------- the result lines: the plugin writes them, the controller reads


def write_result(
    path: str,
    *,
    host: str | None,
    test: str,
    outcome: str,
    message: str | None,
    seconds: float = 0.0,
    nodeid: str | None = None,
    start: float | None = None,
    when: str | None = None,
) -> None:
    """One test's result appended to the file `path` (RESULTS_ENV): a JSON object on a line of its own. `host`:
    the host it checked (None: a test of no host); `test`: its id, the host's part still in it (`nodeid`: the
    whole node id); `start`: epoch seconds; `when`: pytest's phase it comes from."""
    record = {
        "host": host,
        "nodeid": nodeid or test,
        "test": test,
        "outcome": outcome,
        "message": message,
        "seconds": seconds,
        "start": start,
        "when": when,
    }
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(record) + "\n")


def read_results(paths: Iterable[Path], *, host: str | None = None) -> list[TestResult]:
    """The results `write_result` wrote to `paths` (a file per host's process), in order. A line without its
    newline was cut short by a kill at the host's deadline, whose own error line says so: left out. `host`: the
    host of every result (a controller-scoped suite's); else each line's own, taken out of the test's id."""
    records = [json.loads(line) for path in paths for line in path.read_text().split("\n")[:-1]]
    return [
        TestResult(
            host=host or r["host"] or "?",
            test=r["test"] if host else strip_host(r["test"], r["host"]),
            outcome=r["outcome"],
            message=r["message"],
            seconds=r["seconds"],
            start=r.get("start"),
        )
        for r in records
    ]


def strip_host(test: str, host: str | None) -> str:
    """`test_file.py::test_x[opsrun-ssh://web1-nginx]` -> `test_file.py::test_x[nginx]`."""
    if not host:
        return test
    spec = f"{NAME}://{host}"
    return test.replace(f"[{spec}]", "").replace(f"{spec}-", "").replace(f"-{spec}", "")
