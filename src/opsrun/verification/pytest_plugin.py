"""The pytest surface for verify suites, loaded by `opsrun verify` with `-p opsrun.verification.pytest_plugin`.

- `host_data` fixture: the inventory data of the host under test (group_data merged), secrets removed,
  so a suite can check "as configured" without repeating the settings.
- `inventory_data` fixture, for controller-scoped suites (opsrun.verification.controller): {"inventory": name,
  "data": the inventory's data, "hosts": {host: data}}, secrets removed.
- `applied_deploy` fixture: the deploy a rollout applied to this host just before this verification (None
  when run on its own: `opsrun verify`, drift), so a suite can use what that apply refreshed (patching:
  apt's package lists) instead of refreshing it again.
- A passing test may carry a warning: `record_property("opsrun_warning", text)` becomes its message.
- Results: every test's outcome is written, one JSON line each with the host it ran against, to the file
  named by OPSRUN_VERIFY_RESULTS. The host comes from testinfra's own host object, not from parsing ids.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import select
import signal
import time
from collections.abc import Generator
from typing import Any

import pytest

from opsrun.model.results import UNREACHABLE_TEST
from opsrun.support import processes
from opsrun.verification import (
    protocol,
    ssh_shell,  # noqa: F401 - registers the opsrun-ssh connection with testinfra
)

HOST_KEY = "opsrun_host"


@pytest.fixture(scope="module")
def host_data(host: Any) -> dict[str, Any]:
    path = os.environ.get(protocol.HOSTDATA_ENV)
    if not path:
        return {}
    with open(path, encoding="utf-8") as f:
        data: dict[str, dict[str, Any]] = json.load(f)
    return data.get(host.backend.get_hostname(), {})


@pytest.fixture(scope="session")
def inventory_data() -> dict[str, Any]:
    path = os.environ.get(protocol.INVENTORY_ENV)
    if not path:
        return {"inventory": None, "data": {}, "hosts": {}}
    with open(path, encoding="utf-8") as f:
        data: dict[str, Any] = json.load(f)
    return data


@pytest.fixture(scope="session")
def applied_deploy() -> str | None:
    return os.environ.get(protocol.AFTER_APPLY_ENV) or None


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, None]:
    outcome = yield
    report = outcome.get_result()
    callspec = getattr(item, "callspec", None)
    host = callspec.params.get("_testinfra_host") if callspec else None
    if host is not None:
        report.user_properties.append((HOST_KEY, host.backend.get_hostname()))


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    path = os.environ.get(protocol.RESULTS_ENV)
    if not path:
        return
    properties = {k: None if v is None else str(v) for k, v in report.user_properties}
    host = properties.get(HOST_KEY)
    if report.when == "call" or (report.outcome != "passed"):
        if report.when != "call" and report.outcome == "skipped" and report.when == "teardown":
            return
        outcome = report.outcome if report.when == "call" else ("skipped" if report.skipped else "error")
        message = properties.get("opsrun_warning") if report.passed else None
        if report.failed or report.skipped:
            longrepr = report.longrepr
            if isinstance(longrepr, tuple):  # skip: (file, line, reason)
                message = str(longrepr[2])
            elif longrepr is not None:
                crash = getattr(longrepr, "reprcrash", None)
                message = crash.message if crash is not None else str(longrepr)[-2000:]
        protocol.write_result(
            path,
            host=host,
            test=report.nodeid.split("::", 1)[-1],
            outcome=outcome,
            message=message,
            seconds=report.duration,
            nodeid=report.nodeid,
            start=getattr(report, "start", None),
            when=report.when,
        )


# ------------------------------------------------------------------------ hosts in parallel, each with a deadline


def _host_of(item: pytest.Item) -> str | None:
    callspec = getattr(item, "callspec", None)
    host = callspec.params.get("_testinfra_host") if callspec else None
    return None if host is None else str(host.backend.get_hostname())


def _record(path: str, host: str | None, test: str, message: str) -> None:
    """An error of the host's own (not reached, past its deadline, killed) as a result line."""
    protocol.write_result(path, host=host, test=test, outcome="error", message=message)


def _run_host(session: pytest.Session, host: str | None, items: list[pytest.Item], target: str) -> None:
    """In the forked child: check the host answers (one line if not), then its tests in order; its remote
    shell (opsrun.verification.ssh_shell) is ended with them."""
    if host is None:
        _run_items(items)
        return
    backend = items[0].callspec.params["_testinfra_host"].backend  # type: ignore[attr-defined]
    try:
        try:
            result = backend.run("true")
        except RuntimeError as exc:  # ssh's own failure (exit 255) raises, as in testinfra's ssh backend
            result = exc.args[0] if exc.args and hasattr(exc.args[0], "rc") else None
            if result is None:
                raise
        if result.rc != 0:
            reason = (result.stderr or result.stdout or f"exit {result.rc}").strip().splitlines()
            _record(
                os.environ[protocol.RESULTS_ENV],
                host,
                UNREACHABLE_TEST,
                f"could not connect to {host} ({target}): {reason[-1] if reason else 'no reason given'}",
            )
            return
        _run_items(items)
    finally:
        getattr(backend, "close", lambda: None)()


def _run_items(items: list[pytest.Item]) -> None:
    for i, item in enumerate(items):
        nextitem = items[i + 1] if i + 1 < len(items) else None
        item.config.hook.pytest_runtest_protocol(item=item, nextitem=nextitem)


Child = tuple[str | None, int, float, dict[str, Any]]  # a host's forked child: (host, pid, deadline, request)


@pytest.hookimpl(tryfirst=True)
def pytest_runtestloop(session: pytest.Session) -> bool | None:
    """Serve opsrun.verification.verify.Verifier: collected once for all its hosts, then requests read from the request
    pipe (one JSON line each: its id, hosts, deadlines, the deploy just applied, where results go), also
    while earlier requests' hosts are checked. Each host's tests run in a child forked for it, at most
    `concurrency` at a time across requests; a child past its host's deadline is killed with its SSH
    processes and the host gets one error: "timed out after N s in stage verify". When a request's hosts
    have all ended, "done ID" on the answer pipe; the request pipe's end ends the session."""
    spec = os.environ.get(protocol.PARALLEL_ENV)  # set by opsrun.verification.verify.Verifier
    if not spec or session.config.option.collectonly:
        return None
    if session.testsfailed and not session.config.option.continue_on_collection_errors:
        raise session.Interrupted(f"{session.testsfailed} error(s) during collection")
    opts = json.loads(spec)
    for fd in opts["channel"]:  # nothing the suite starts may hold them (the answer's EOF would wait)
        os.set_inheritable(fd, False)
    groups: dict[str | None, list[pytest.Item]] = {}
    for item in session.items:
        groups.setdefault(_host_of(item), []).append(item)
    _import_testinfra_modules()  # once here, not in every child
    server = _Server(session, groups, opts)
    signal.signal(signal.SIGTERM, functools.partial(_end_children, server.running))
    try:
        server.serve()
    finally:  # an error of this process's own (fork, pidfd_open failing): no child goes on unsupervised
        _kill_children(server.running)
    return True


class _Server:
    """The requests and the hosts' children of one pytest: a request that comes while others' hosts are
    checked is taken at once, its hosts queued behind theirs for the concurrency bound."""

    def __init__(self, session: pytest.Session, groups: dict[str | None, list[pytest.Item]], opts: dict[str, Any]):
        self.session, self.groups, self.targets = session, groups, opts["targets"]
        self.concurrency = max(1, int(opts["concurrency"]))
        self.channel: tuple[int, int] = tuple(opts["channel"])
        self.waiting: list[tuple[dict[str, Any], str | None, list[pytest.Item]]] = []
        self.running: dict[int, Child] = {}  # pidfd -> child

    def serve(self) -> None:
        requests_fd, _done_fd = self.channel
        reading, pending = True, b""
        while reading or self.waiting or self.running:
            self._fork_waiting()
            watched = list(self.running) + ([requests_fd] if reading else [])
            nearest = min((d for _h, _p, d, _r in self.running.values()), default=None)
            timeout = None if nearest is None else max(0.0, nearest - time.monotonic())
            ready, _w, _x = select.select(watched, [], [], timeout)
            if requests_fd in ready:
                chunk = os.read(requests_fd, 1 << 16)
                reading = bool(chunk)
                *lines, pending = (pending + chunk).split(b"\n")
                for line in lines:
                    self._take(json.loads(line))
            for request in _reap(self.running, set(ready)):
                self._one_ended(request)

    def _take(self, request: dict[str, Any]) -> None:
        """A request's hosts (and, unless it says not to, the tests of no host) queued; answered at once if
        nothing is to run."""
        wanted = set(request["hosts"])
        for host in sorted(wanted - set(self.groups)):
            _record(request["results"], host, "(collect)", f"no test of this suite was collected for {host}")
        hostless = request.get("hostless", True)
        queued = [(request, h, items) for h, items in self.groups.items() if h in wanted or (h is None and hostless)]
        request["left"] = len(queued)
        self.waiting += queued
        if not queued:
            self._answer(request)

    def _fork_waiting(self) -> None:
        while self.waiting and len(self.running) < self.concurrency:
            request, host, items = self.waiting.pop(0)
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})  # until SIGTERM's handler can see it
            try:
                target = self.targets.get(host or "", host or "")
                pid = _fork_host(self.session, host, items, request, target, self.channel)
                with contextlib.suppress(OSError):  # its own group from the start (the child sets it too)
                    os.setpgid(pid, pid)
                self.running[os.pidfd_open(pid)] = (host, pid, time.monotonic() + _deadline(request, host), request)
            finally:
                signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})

    def _one_ended(self, request: dict[str, Any]) -> None:
        request["left"] -= 1
        if request["left"] == 0:
            self._answer(request)

    def _answer(self, request: dict[str, Any]) -> None:
        os.write(self.channel[1], f"done {request['id']}\n".encode())


def _import_testinfra_modules() -> None:
    """testinfra imports a module class (`host.service`, `host.package`...) on first use: in each forked
    child that would be paid again for every host; imported here, before the fork, it is paid once."""
    import testinfra.modules

    for name in testinfra.modules.modules:
        testinfra.modules.get_module_class(name)


def _deadline(request: dict[str, Any], host: str | None) -> float:
    """The seconds a host's tests may take (5 minutes when the controller names none)."""
    return float(request["deadlines"].get(host or "", 300))


def _end_children(running: dict[int, Child], signum: int, _frame: object) -> None:
    """On SIGTERM (the controller stops the verification): kill every child with its SSH processes, exit."""
    _kill_children(running)
    os._exit(128 + signum)


def _kill_children(running: dict[int, Child]) -> None:
    for _host, pid, _deadline, _request in running.values():
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)


def _fork_host(
    session: pytest.Session,
    host: str | None,
    items: list[pytest.Item],
    request: dict[str, Any],
    target: str,
    channel: tuple[int, int],
) -> int:
    """Fork a child that runs one host's tests, writing to a results file of its own; its pid. It dies with
    this process, however this one dies: no host's checks go on unsupervised, past their deadline."""
    server = os.getpid()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 0
        try:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)  # the server's handler ends its children, not this one's
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})  # blocked while the server forked
            processes.die_with_parent(server)
            with contextlib.suppress(OSError):
                os.setpgid(0, 0)  # its ssh processes die with it at the deadline
            for fd in channel:  # the server's pipes are the server's
                os.close(fd)
            os.environ[protocol.RESULTS_ENV] = f"{request['results']}.{os.getpid()}"
            if request.get("after_apply"):
                os.environ[protocol.AFTER_APPLY_ENV] = request["after_apply"]
            else:
                os.environ.pop(protocol.AFTER_APPLY_ENV, None)
            _run_host(session, host, items, target)
        except BaseException:  # noqa: BLE001 - reported by the parent as this host's error
            import traceback

            _record(os.environ[protocol.RESULTS_ENV], host, "(verify)", traceback.format_exc()[-2000:])
            code = 1
        finally:
            os._exit(code)
    return pid


def _reap(running: dict[int, Child], ready: set[int]) -> list[dict[str, Any]]:
    """Collect the children that ended (`ready`: the pidfds select saw), kill those past their deadline (one
    error line each), drop both from `running`; the requests of the children dropped."""
    dropped = []
    for fd in list(running):
        host, pid, deadline, request = running[fd]
        ended = fd in ready or os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
        if not ended and time.monotonic() < deadline:
            continue
        with contextlib.suppress(ProcessLookupError):  # before reaping it: its group cannot be another's yet
            os.killpg(pid, signal.SIGKILL)  # the child at its deadline, or what it left running (its ssh)
        _pid, status = os.waitpid(pid, 0)
        results = request["results"]
        if not ended:
            _record(results, host, "(deadline)", f"timed out after {_deadline(request, host):g}s in stage verify")
        elif os.WIFSIGNALED(status):  # the OOM killer, a crash: the tests it had not run yet never will
            signum = os.WTERMSIG(status)
            _record(results, host, "(verify)", f"the host's verification process was killed by signal {signum}")
        os.close(fd)
        del running[fd]
        dropped.append(request)
    return dropped
