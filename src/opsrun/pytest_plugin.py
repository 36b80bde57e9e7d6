"""The pytest surface for verify suites, loaded by `opsrun verify` with `-p opsrun.pytest_plugin`.

- `host_data` fixture: the inventory data of the host under test (group_data merged), secrets removed,
  so a suite can check "as configured" without repeating the settings.
- Results: every test's outcome is written, one JSON line each with the host it ran against, to the file
  named by OPSRUN_VERIFY_RESULTS. The host comes from testinfra's own host object, not from parsing ids.
"""

from __future__ import annotations

import json
import os
from collections.abc import Generator
from typing import Any

import pytest

HOST_KEY = "opsrun_host"


@pytest.fixture(scope="module")
def host_data(host: Any) -> dict[str, Any]:
    path = os.environ.get("OPSRUN_VERIFY_HOSTDATA")
    if not path:
        return {}
    with open(path, encoding="utf-8") as f:
        data: dict[str, dict[str, Any]] = json.load(f)
    return data.get(host.backend.get_hostname(), {})


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, None]:
    outcome = yield
    report = outcome.get_result()
    callspec = getattr(item, "callspec", None)
    host = callspec.params.get("_testinfra_host") if callspec else None
    if host is not None:
        report.user_properties.append((HOST_KEY, host.backend.get_hostname()))


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    path = os.environ.get("OPSRUN_VERIFY_RESULTS")
    if not path:
        return
    host = dict(report.user_properties).get(HOST_KEY)
    if report.when == "call" or (report.outcome != "passed"):
        if report.when != "call" and report.outcome == "skipped" and report.when == "teardown":
            return
        outcome = report.outcome if report.when == "call" else ("skipped" if report.skipped else "error")
        message = None
        if report.failed or report.skipped:
            longrepr = report.longrepr
            if isinstance(longrepr, tuple):  # skip: (file, line, reason)
                message = str(longrepr[2])
            elif longrepr is not None:
                crash = getattr(longrepr, "reprcrash", None)
                message = crash.message if crash is not None else str(longrepr)[-2000:]
        test = report.nodeid.split("::", 1)[-1]
        rec = {
            "host": host,
            "nodeid": report.nodeid,
            "test": test,
            "outcome": outcome,
            "message": message,
            "seconds": report.duration,
            "when": report.when,
        }
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps(rec) + "\n")
