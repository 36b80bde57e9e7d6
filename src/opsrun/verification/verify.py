"""Run a testinfra suite (verify/SUITE/) against inventory hosts and collect results per host and test.

The inventory's SSH settings become an ssh_config (opsrun.hosts.sshconfig), so OpenSSH applies the same key,
known_hosts and strict host key checking as pyinfra. The suite's commands go to one remote shell per host
over one ssh session (opsrun.verification.ssh_shell, testinfra's `ssh` backend without an ssh process per command). The
paramiko backend is not used: it never checks host keys. pytest runs in a subprocess (Verifier): started
once, it serves one request (`run_suite`) or each host of a rollout as it passes its gate.
"""

from __future__ import annotations

import functools
import json
import os
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from opsrun.hosts import sudo
from opsrun.hosts.sshconfig import ssh_config
from opsrun.model.inventory import Inventory
from opsrun.model.project import Project
from opsrun.model.results import UNREACHABLE_TEST, TestResult, VerifyRun
from opsrun.settings.deadlines import DEFAULTS, Deadlines
from opsrun.support import processes, progress
from opsrun.verification import controller, protocol, suite_process
from opsrun.verification.protocol import AFTER_APPLY_ENV, HOSTDATA_ENV, PARALLEL_ENV, public_data
from opsrun.verification.suite_process import SuiteProcess

DEFAULT_CONCURRENCY = 16  # hosts verified at once: at most this many SSH sessions from one verification


def run_suite(
    project: Project,
    inventory: Inventory,
    suite: str,
    hosts: list[str],
    *,
    deadlines: dict[str, float] | None = None,
    concurrency: int = DEFAULT_CONCURRENCY,
    stop: threading.Event | None = None,
    connect_timeout: float = DEFAULTS["connect"],
    after_apply: str | None = None,
) -> VerifyRun:
    """Run verify/SUITE/ against `hosts`: collected once, then each host's tests in a process of its own,
    `concurrency` hosts at a time, each within its deadline (host -> seconds; default 5 minutes). One
    result per host and test; a host that cannot be reached is one error line. `stop` ends it at once
    (verification changes nothing). `after_apply`: the deploy a rollout applied to these hosts just before
    (a suite may use what that apply refreshed instead of refreshing it again)."""
    with Verifier(
        project, inventory, suite, hosts, concurrency=concurrency, stop=stop, connect_timeout=connect_timeout
    ) as verifier:
        return verifier.run(hosts, deadlines=deadlines, after_apply=after_apply, last=True)


class Verifier:
    """A suite's pytest started once for `hosts` (imports and collection paid once, e.g. while a rollout's
    first batch is drained and applied), then asked to verify some of them at a time: `run(hosts)`, from
    any number of threads at once (a rollout asks for each host as it passes its gate).

    The pytest process (opsrun.verification.pytest_plugin) reads requests a line each from a pipe (an id, the hosts,
    their deadlines, the deploy just applied, where to write results), also while it checks the hosts of
    earlier ones, and answers "done ID" on another when that request's hosts' forked children have ended;
    it ends when the request pipe closes. If it died, the next request starts a new one. Controller-scoped
    suites run once per request, from this machine."""

    def __init__(
        self,
        project: Project,
        inventory: Inventory,
        suite: str,
        hosts: list[str],
        *,
        concurrency: int = DEFAULT_CONCURRENCY,
        stop: threading.Event | None = None,
        connect_timeout: float = DEFAULTS["connect"],
    ):
        self.project, self.inventory, self.suite, self.hosts = project, inventory, suite, list(hosts)
        self.concurrency, self.stop, self.connect_timeout = max(1, concurrency), stop, connect_timeout
        self.suite_dir = project.suite_path(suite)
        self.on_controller = controller.is_controller_suite(self.suite_dir)  # cloud-side checks: from here
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._pytest: SuiteProcess | None = None
        self._lock = threading.Lock()  # starting pytest, numbering and sending requests
        self._count = 0
        self._asked: dict[int, float] = {}  # the requests not answered yet -> the seconds their checks may take

    def __enter__(self) -> Verifier:
        if not self.on_controller:
            # the ssh_config names a ControlPath in it (opsrun-ssh connects without one; sun_path is 108 bytes)
            self._tmp = tempfile.TemporaryDirectory(prefix="opsrun-v-", dir="/tmp")
            _write_pytest_inputs(self.tmpdir, self.inventory, self.hosts, self.connect_timeout)
            with self._lock:
                self._start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    @property
    def tmpdir(self) -> Path:
        assert self._tmp is not None, "a Verifier is used inside `with`"
        return Path(self._tmp.name)

    def _start(self) -> SuiteProcess:
        """Start the suite's pytest: it imports, collects the suite for every host, then waits for requests."""
        if self._pytest is not None:
            self._pytest.end()
        requests_r, requests_w = os.pipe()
        answers_r, answers_w = os.pipe()
        env = _pytest_env(self.tmpdir, self.inventory, self.hosts, self.concurrency, (requests_r, answers_w))
        log = self.tmpdir / f"pytest-{self._count}.log"
        command = _pytest_command(self.project, self.suite_dir, self.tmpdir, self.hosts)
        try:
            proc = suite_process.start(command, self.project.root, env, log, pass_fds=(requests_r, answers_w))
        except BaseException:
            os.close(requests_w)
            os.close(answers_r)
            raise
        finally:
            os.close(requests_r)
            os.close(answers_w)
        self._pytest = SuiteProcess(proc, requests_w, answers_r, log)
        return self._pytest

    def run(
        self,
        hosts: list[str],
        *,
        deadlines: dict[str, float] | None = None,
        after_apply: str | None = None,
        last: bool = False,
        hostless: bool = True,
    ) -> VerifyRun:
        """Verify `hosts` (some of those it was started for), each within its deadline (default 5 minutes).
        `last`: no request follows (the process is waited for to its end, its exit status read).
        `hostless`: also run the suite's tests that check no host (a rollout asking host by host does not)."""
        started = time.monotonic()
        if self.on_controller:
            limit = max((deadlines or {}).values(), default=DEFAULTS["verify"])
            return controller.run_suite(self.project, self.inventory, self.suite, hosts, limit, stop=self.stop)
        unknown = sorted(set(hosts) - set(self.hosts))
        if unknown:
            raise ValueError(f"not started for {', '.join(unknown)}")
        deadlines = {h: (deadlines or {}).get(h, DEFAULTS["verify"]) for h in hosts}
        request = {"hosts": hosts, "deadlines": deadlines, "after_apply": after_apply, "hostless": hostless}
        pytest, rid, backstop = self._ask(request, last)
        results_path = self.tmpdir / f"results-{rid}.jsonl"
        try:
            with progress.following(results_path, _result_progress):
                ended = processes.supervise(
                    pytest.proc,
                    backstop=backstop,
                    stop=self.stop,
                    what="verification",
                    gentle=None,
                    ready=None if last else functools.partial(pytest.answered_within, rid),
                    ending=pytest.ending,
                )
        finally:
            with self._lock:
                del self._asked[rid]
        results = protocol.read_results(sorted(self.tmpdir.glob(f"{results_path.name}*")))
        _hosts_progress(hosts, results)
        error = ended
        if ended is None and last:
            error = protocol.pytest_failure(pytest.proc.returncode, "hosts", results, pytest.output())
        elif ended is None and not pytest.answered(rid):  # it ended before it answered
            tail = "\n".join(pytest.output().strip().splitlines()[-15:])
            error = pytest.ended or f"pytest exited {pytest.proc.wait()} before it finished:\n{tail}"
        return VerifyRun(
            self.inventory.name,
            self.suite,
            hosts,
            results,
            time.monotonic() - started,
            error,
            interrupted=ended if self.stop is not None and self.stop.is_set() else None,
        )

    def _ask(self, request: dict[str, Any], last: bool) -> tuple[SuiteProcess, int, float]:
        """Send a request (to a pytest started again if it died): the process, the request's id, and the
        backstop for its answer."""
        checks = [*request["deadlines"].values(), *([DEFAULTS["verify"]] if request["hostless"] else [])]
        with self._lock:
            pytest = self._pytest if self._pytest is not None and self._pytest.proc.poll() is None else self._start()
            self._count += 1
            rid, self._asked[self._count] = self._count, sum(checks)  # each check ends by its deadline
            pytest.send({**request, "id": rid, "results": str(self.tmpdir / f"results-{rid}.jsonl")}, last=last)
            # its checks queue behind those asked for before: the backstop for a pytest that no longer
            # answers comes after the slowest they may take
            return pytest, rid, 60 + sum(self._asked.values()) / self.concurrency + max(checks, default=0)

    def close(self) -> None:
        with self._lock:
            if self._pytest is not None:
                self._pytest.end()
                self._pytest = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None


def _result_progress(line: str) -> None:
    """A test result as the suite's pytest writes it: its host is being checked."""
    try:
        host = json.loads(line).get("host")
    except (ValueError, AttributeError):
        return
    if host:
        progress.report(host, progress.WORKING, "checking")


def _hosts_progress(hosts: list[str], results: list[TestResult]) -> None:
    """Each host's end: unreachable, failed (a test failed, or none ran) or done, with its count of checks."""
    for host in hosts:
        mine = [r for r in results if r.host == host]
        bad = sum(r.outcome in ("failed", "error") for r in mine)
        if any(r.test == UNREACHABLE_TEST for r in mine):
            progress.report(host, progress.UNREACHABLE)
        else:
            progress.report(host, progress.FAILED if bad or not mine else progress.DONE, f"{len(mine)} checks")


def run_suite_within(
    project: Project,
    inventory: Inventory,
    suite: str,
    hosts: list[str],
    limits: Deadlines,
    *,
    concurrency: int = DEFAULT_CONCURRENCY,
    stop: threading.Event | None = None,
    after_apply: str | None = None,
) -> VerifyRun:
    """`run_suite` with each host's verify deadline and the connect timeout taken from `limits`."""
    return run_suite(
        project,
        inventory,
        suite,
        hosts,
        deadlines=limits.stage("verify", hosts),
        concurrency=concurrency,
        stop=stop,
        connect_timeout=limits.connect_timeout(hosts),
        after_apply=after_apply,
    )


def _write_pytest_inputs(tmpdir: Path, inventory: Inventory, hosts: list[str], connect_timeout: float) -> None:
    """The ssh_config, the hosts' public data and an empty pytest.ini, written into the run's folder."""
    (tmpdir / "ssh_config").write_text(ssh_config(inventory, hosts, tmpdir, connect_timeout))
    (tmpdir / "hostdata.json").write_text(json.dumps({h: public_data(inventory.hosts[h].data) for h in hosts}))
    (tmpdir / "pytest.ini").write_text("[pytest]\n")  # the suite is not under the tool's own pytest settings


def _pytest_command(project: Project, suite_dir: Path, tmpdir: Path, hosts: list[str]) -> list[str]:
    """pytest on the suite with opsrun's plugin, against `hosts` through the run's ssh_config."""
    hosts_arg = f"--hosts={','.join(f'{protocol.NAME}://{h}' for h in hosts)}"
    after = (hosts_arg, f"--ssh-config={tmpdir / 'ssh_config'}")
    return protocol.pytest_command(project.root, suite_dir, tmpdir, before=["testinfra.plugin"], after=after)


def _pytest_env(
    tmpdir: Path, inventory: Inventory, hosts: list[str], concurrency: int, channel: tuple[int, int]
) -> dict[str, str]:
    """The environment that tells opsrun.verification.pytest_plugin the hosts' data, how many hosts to check at once, at
    which address, and the pipes its requests come on and its answers go to. Only testinfra's and opsrun's
    plugins are loaded (a suite names any other in its conftest.py): an installed plugin must not change how
    a suite runs, nor make every verification pay for scanning and importing it."""
    data = {h: inventory.hosts[h].data for h in hosts}
    targets = {h: f"{data[h].get('ssh_hostname', h)}:{data[h].get('ssh_port', 22)}" for h in hosts}
    env = {k: v for k, v in os.environ.items() if k != AFTER_APPLY_ENV}
    return {
        **env,
        "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1",
        HOSTDATA_ENV: str(tmpdir / "hostdata.json"),
        protocol.SUDO_ENV: json.dumps(
            {h: {"user": s.user, "password": s.password} for h in hosts if (s := sudo.Sudo.of(data[h])) is not None}
        ),
        PARALLEL_ENV: json.dumps({"concurrency": concurrency, "targets": targets, "channel": list(channel)}),
    }
