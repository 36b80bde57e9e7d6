import contextlib
import json
import os
import signal
import threading
import time
from pathlib import Path

import pytest

from opsrun.errors import ConfigError
from opsrun.hosts.sshconfig import ssh_config
from opsrun.model.inventory import Host, Inventory
from opsrun.model.project import Project
from opsrun.support.waiting import poll_until
from opsrun.verification.protocol import public_data, strip_host


def inv(**data):
    hosts = {"web1": Host("web1", ("web",), {"ssh_hostname": "10.0.0.1", **data})}
    return Inventory("lab", Path("/x/inventories/lab.py"), ["web1"], {}, {"web": (["web1"], {})}, hosts)


def test_ssh_config_carries_inventory_ssh_settings_and_strict_keys():
    text = ssh_config(
        inv(
            ssh_user="root",
            ssh_port=2222,
            ssh_key="/k/id",
            ssh_known_hosts_file="/k/kh",
            ssh_strict_host_key_checking="yes",
        ),
        ["web1"],
        Path("/tmp/cm"),
    )
    lines = [line.strip() for line in text.splitlines()]
    assert lines[0] == "Host web1 10.0.0.1"  # the inventory name, and the address pyinfra looks up
    for expected in (
        "HostName 10.0.0.1",
        "Port 2222",
        "User root",
        "IdentityFile /k/id",
        "IdentitiesOnly yes",
        "UserKnownHostsFile /k/kh",
        "StrictHostKeyChecking yes",
        "BatchMode yes",
        "ControlPath /tmp/cm/%C",
    ):
        assert expected in lines


def test_ssh_config_prefers_the_key_exchange_of_pyinfras_own_connection():
    """curve25519 first (paramiko, which pyinfra applies with, has nothing stronger), the rest of OpenSSH's
    defaults after it: the post-quantum hybrid that OpenSSH would pick costs several times the CPU a connection
    (bench/RESULTS.md, "SSH per verified host")."""
    lines = [line.strip() for line in ssh_config(inv(), ["web1"], Path("/tmp/cm")).splitlines()]
    assert "KexAlgorithms ^curve25519-sha256,curve25519-sha256@libssh.org" in lines


def test_pyinfra_default_accept_new_is_kept():
    assert "StrictHostKeyChecking accept-new" in ssh_config(inv(), ["web1"], Path("/tmp/cm"))


def test_unknown_strict_value_is_a_config_error():
    with pytest.raises(ConfigError) as err:
        ssh_config(inv(ssh_strict_host_key_checking="maybe"), ["web1"], Path("/tmp/cm"))
    assert err.value.field == "ssh_strict_host_key_checking"


def test_public_data_drops_secrets_and_non_json():
    data = {
        "nginx_listen_port": 80,
        "redis_password": "s3cret",
        "api_token": "t",
        "ssh_key_password": "p",
        "aws_secret_access_key": "k",
        "callback": print,
    }
    assert public_data(data) == {"nginx_listen_port": 80}


@pytest.mark.parametrize(
    ("test", "expected"),
    [
        ("test_nginx.py::test_a[opsrun-ssh://web1]", "test_nginx.py::test_a"),
        ("test_nginx.py::test_a[opsrun-ssh://web1-/health]", "test_nginx.py::test_a[/health]"),
        ("test_nginx.py::test_a[/health-opsrun-ssh://web1]", "test_nginx.py::test_a[/health]"),
    ],
)
def test_host_is_removed_from_test_ids(test, expected):
    assert strip_host(test, "web1") == expected


# ------------------------------------------------------------------ Verifier: one pytest, several requests
# The suites below take no `host`: the lab tests drive hosts (unit tests may not open SSH sessions).

SUITE = """
import os

def test_probe(applied_deploy, request):
    with open(os.environ["OPSRUN_PROBE"], "a") as f:
        plugins = sorted(name for name, _ in request.config.pluginmanager.list_name_plugin())
        f.write(f"{os.getppid()} {applied_deploy} {','.join(str(p) for p in plugins)}\\n")
"""


@pytest.fixture
def probe_project(tmp_path, monkeypatch):
    from opsrun.verification import verify

    for folder in ("inventories", "deploys", "verify/probe"):
        (tmp_path / folder).mkdir(parents=True)
    (tmp_path / "verify" / "probe" / "test_probe.py").write_text(SUITE)
    monkeypatch.setenv("OPSRUN_PROBE", str(tmp_path / "probe.txt"))
    command = verify._pytest_command
    monkeypatch.setattr(  # without --hosts/--ssh-config: this suite takes no host
        verify, "_pytest_command", lambda *a: [arg for arg in command(*a) if not arg.startswith(("--hosts", "--ssh"))]
    )
    return Project(tmp_path)


def probes(project):
    return [line.split(" ") for line in (project.root / "probe.txt").read_text().splitlines()]


def test_one_pytest_serves_every_request_each_told_which_deploy_was_just_applied(probe_project):
    from opsrun.verification.verify import Verifier

    with Verifier(probe_project, inv(), "probe", []) as verifier:
        first = verifier.run([], after_apply="patching")
        second = verifier.run([])
        server = verifier._pytest.proc.pid
    assert [r.outcome for r in first.results + second.results] == ["passed", "passed"]
    assert (first.error, second.error) == (None, None)
    (pid1, applied1, _), (pid2, applied2, _) = probes(probe_project)
    assert pid1 == pid2 == str(server)  # both requests' children forked by the one pytest
    assert (applied1, applied2) == ("patching", "None")


def test_installed_pytest_plugins_are_not_loaded_into_a_suite(probe_project):
    from importlib.metadata import entry_points

    from opsrun.verification.verify import run_suite

    installed = {ep.value.split(":")[0] for ep in entry_points(group="pytest11")}
    assert "_hypothesis_pytestplugin" in installed  # the dev environment has one to leave out
    assert run_suite(probe_project, inv(), "probe", []).status == "passed"
    [(_pid, _applied, plugins)] = probes(probe_project)
    assert "_hypothesis_pytestplugin" not in plugins and "hypothesispytest" not in plugins
    assert "testinfra.plugin" in plugins.split(",") and "opsrun.verification.pytest_plugin" in plugins.split(",")


def test_a_pytest_that_died_between_requests_is_started_again(probe_project):
    from opsrun.verification.verify import Verifier

    with Verifier(probe_project, inv(), "probe", []) as verifier:
        assert verifier.run([]).status == "passed"
        verifier._pytest.proc.kill()
        verifier._pytest.proc.wait()
        again = verifier.run([])
    assert again.status == "passed" and again.error is None
    (pid1, _, _), (pid2, _, _) = probes(probe_project)
    assert pid1 != pid2


def test_a_suite_that_cannot_be_collected_is_an_error_of_each_request(probe_project):
    from opsrun.verification.verify import Verifier

    (probe_project.root / "verify" / "probe" / "test_probe.py").write_text("import nosuchmodule\n")
    with Verifier(probe_project, inv(), "probe", []) as verifier:
        first = verifier.run([])
        last = verifier.run([], last=True)
    for run in (first, last):
        assert run.status == "failed"
        assert run.error and "nosuchmodule" in run.error, run.error


def test_a_verification_process_killed_by_a_signal_is_an_error_not_a_pass(probe_project):
    """The OOM killer or a crash ends a host's process mid-suite: the tests it ran passed, the rest never ran."""
    from opsrun.verification.verify import run_suite

    (probe_project.root / "verify" / "probe" / "test_probe.py").write_text(
        "import os, signal\n\ndef test_1():\n    pass\n\n"
        "def test_2():\n    os.kill(os.getpid(), signal.SIGKILL)\n\ndef test_3():\n    assert False\n"
    )
    run = run_suite(probe_project, inv(), "probe", [])
    assert run.status == "failed"
    assert ("test_1", "passed") in [(r.test, r.outcome) for r in run.results]
    assert any(r.outcome == "error" and "signal 9" in (r.message or "") for r in run.results), run.results


OVERLAP_SUITE = """
import os, pathlib, time

def test_probe(applied_deploy, record_property):
    root = pathlib.Path(os.environ["OPSRUN_PROBE"]).parent
    with open(root / "spans.txt", "a") as f:
        f.write(f"{applied_deploy} start {time.monotonic()}\\n")
    (root / f"started-{applied_deploy}").touch()
    record_property("opsrun_warning", applied_deploy)
    try:
        if applied_deploy == "first":
            deadline = time.monotonic() + 5
            while not (root / "started-second").exists():
                assert time.monotonic() < deadline, "the second request was not served while this one ran"
                time.sleep(0.02)
        else:
            time.sleep(0.3)
    finally:
        with open(root / "spans.txt", "a") as f:
            f.write(f"{applied_deploy} end {time.monotonic()}\\n")
"""


def _two_requests_at_once(project, concurrency=4, suite=OVERLAP_SUITE):
    """The request "first" from a thread, then, once its check runs, "second" from this one."""
    from opsrun.verification.verify import Verifier

    (project.root / "verify" / "probe" / "test_probe.py").write_text(suite)
    answers = {}
    with Verifier(project, inv(), "probe", [], concurrency=concurrency) as verifier:
        first = threading.Thread(target=lambda: answers.setdefault("first", verifier.run([], after_apply="first")))
        first.start()
        try:
            _wait_for_path(project.root / "started-first")
            answers["second"] = verifier.run([], after_apply="second")
        finally:
            first.join(60)
    return answers


def test_a_request_made_while_another_is_checked_is_served_at_once_each_answered_with_its_own_results(probe_project):
    """A rollout's host that passes its gate while another is being verified is verified at once, not after."""
    answers = _two_requests_at_once(probe_project)
    for name, run in answers.items():
        assert (run.status, run.error) == ("passed", None), (name, run.results, run.error)
        assert [r.message for r in run.results] == [name]  # its own child's results, not the other's


def test_requests_made_at_once_share_the_bound_on_hosts_checked_at_once(probe_project):
    """The concurrency bound holds across requests: with 1, the second request's check starts when the
    first's has ended (the first then waits in vain for it, and fails)."""
    answers = _two_requests_at_once(probe_project, concurrency=1)
    spans = {}
    for line in (probe_project.root / "spans.txt").read_text().splitlines():
        name, what, at = line.split()
        spans.setdefault(name, {})[what] = float(at)
    assert answers["first"].status == "failed" and answers["second"].status == "passed"
    assert spans["second"]["start"] >= spans["first"]["end"]


def inv2():
    hosts = {h: Host(h, ("web",), {"ssh_hostname": "10.0.0.1"}) for h in ("db1", "web1")}
    return Inventory("lab", Path("/x/inventories/lab.py"), list(hosts), {}, {"web": (list(hosts), {})}, hosts)


def test_a_request_queued_behind_a_longer_ones_hosts_has_a_backstop_that_covers_the_wait(probe_project, monkeypatch):
    """With 1 host at a time, web1 (30 s to verify) may wait up to db1's 900 s for the slot: its backstop,
    which ends the one pytest every request shares, must not come first."""
    from opsrun.verification import verify

    backstops, release, real = [], threading.Event(), verify.processes.supervise

    def supervise(proc, *, backstop, ready=None, **kwargs):
        if ready is not None:
            backstops.append(backstop)
            release.wait(10)  # both requests outstanding at once
        # then the real wait for the answer: a fake "answered" before pytest has answered sends run() to wait
        # for a pytest that is alive and waiting for requests (a hang of 15 minutes, seen under load)
        return real(proc, backstop=backstop, ready=ready, **kwargs)

    monkeypatch.setattr(verify.processes, "supervise", supervise)
    with verify.Verifier(probe_project, inv2(), "probe", ["db1", "web1"], concurrency=1) as verifier:
        failed: list[BaseException] = []

        def first_request() -> None:
            try:
                verifier.run(["db1"], deadlines={"db1": 900})
            except BaseException as exc:  # said below, instead of a wait that never ends
                failed.append(exc)

        first = threading.Thread(target=first_request)
        first.start()
        try:
            poll_until(lambda: backstops or failed, timeout=30, interval=0.01, what="the first request's supervise")
            assert not failed, failed
            threading.Timer(0.5, release.set).start()
            verifier.run(["web1"], deadlines={"web1": 30})
        finally:
            first.join(30)
    assert backstops[1] >= 900 + 30, backstops


def test_requests_ended_with_a_pytest_another_request_ended_say_why(probe_project, monkeypatch):
    """The pytest that stops answering one request is ended for all: each request says what ended it."""
    from opsrun.verification import verify

    suite = (
        "import os, pathlib, time\n\ndef test_probe(applied_deploy):\n"
        "    (pathlib.Path(os.environ['OPSRUN_PROBE']).parent / f'started-{applied_deploy}').touch()\n"
        "    time.sleep(30)\n"
    )
    real, backstops = verify.processes.supervise, iter([300, 1])  # the second request's backstop comes first

    def supervise(proc, *, backstop, ready=None, **kwargs):
        return real(proc, backstop=next(backstops) if ready else backstop, ready=ready, **kwargs)

    monkeypatch.setattr(verify.processes, "supervise", supervise)
    answers = _two_requests_at_once(probe_project, suite=suite)
    assert answers["second"].error.startswith("timed out after 1s"), answers["second"].error
    assert answers["first"].error.startswith("the suite's pytest was ended: timed out after 1s"), answers["first"]


def test_a_request_for_hosts_only_leaves_out_the_tests_of_no_host(probe_project):
    """A rollout asks for each host as it passes its gate: tests that check no host are not run for each."""
    from opsrun.verification.verify import Verifier

    with Verifier(probe_project, inv(), "probe", []) as verifier:
        hosts_only = verifier.run([], hostless=False)
        everything = verifier.run([])
    assert (hosts_only.results, hosts_only.error) == ([], None)
    assert [r.outcome for r in everything.results] == ["passed"] and len(probes(probe_project)) == 1


def _wait_for_path(path: Path, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} not there within {seconds} s"
        time.sleep(0.02)


def test_a_request_for_a_host_it_was_not_started_for_is_refused(probe_project):
    from opsrun.verification.verify import Verifier

    with Verifier(probe_project, inv(), "probe", []) as verifier, pytest.raises(ValueError, match="web9"):
        verifier.run(["web9"])


def _gone_within(pid: int, seconds: float) -> bool:
    from opsrun.support.processes import alive

    deadline = time.monotonic() + seconds
    while alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _wait_for_text(path: Path, seconds: float = 60) -> str:
    deadline = time.monotonic() + seconds
    while not (path.exists() and path.read_text().endswith("\n")):
        assert time.monotonic() < deadline, f"{path} not written within {seconds} s"
        time.sleep(0.05)
    return path.read_text()


def test_a_hosts_checks_end_with_their_pytest_however_it_dies(probe_project):
    """The OOM killer (or end_group's SIGKILL) ends the suite's pytest mid-request: the host's process it had
    forked must not go on checking, unsupervised and past its deadline."""
    from opsrun.verification.verify import Verifier

    pidfile = probe_project.root / "child.pid"
    (probe_project.root / "verify" / "probe" / "test_probe.py").write_text(
        f"import os, time\n\ndef test_slow():\n    open({str(pidfile)!r}, 'w').write(f'{{os.getpid()}}\\n')\n"
        "    time.sleep(60)\n"
    )
    with Verifier(probe_project, inv(), "probe", []) as verifier:
        answer = {}
        request = threading.Thread(target=lambda: answer.setdefault("run", verifier.run([])))
        request.start()
        child = int(_wait_for_text(pidfile))
        try:
            os.kill(verifier._pytest.proc.pid, signal.SIGKILL)
            request.join(30)
            assert _gone_within(child, 5), "the host's process lives on after its pytest died"
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signal.SIGKILL)
    assert answer["run"].status == "failed" and answer["run"].error


def test_a_host_process_killed_by_a_signal_takes_its_ssh_with_it(probe_project):
    """What the host's process started in its process group (its ssh session, here a stand-in) ends with it,
    even when a command on the host still runs: it holds a session of the concurrency bound."""
    from opsrun.verification.verify import run_suite

    pidfile = probe_project.root / "ssh.pid"
    (probe_project.root / "verify" / "probe" / "test_probe.py").write_text(
        "import os, signal, subprocess\n\ndef test_1():\n"
        "    ssh = subprocess.Popen(['sleep', '60'])\n"
        f"    open({str(pidfile)!r}, 'w').write(f'{{ssh.pid}}\\n')\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    run = run_suite(probe_project, inv(), "probe", [])
    ssh = int(_wait_for_text(pidfile, 5))
    try:
        assert run.status == "failed"
        assert _gone_within(ssh, 5), "the killed host process's ssh lives on"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(ssh, signal.SIGKILL)


def test_a_host_process_that_ended_at_its_deadline_keeps_its_results(tmp_path):
    """It ended after the wait for the children returned and before the deadline was looked at: it finished,
    it did not time out."""
    from opsrun.verification import pytest_plugin

    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child: done at once
        os._exit(0)
    os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)  # it has ended (not reaped)
    results = tmp_path / "results"
    request = {"deadlines": {"web1": 30}, "results": str(results)}
    running = {os.pidfd_open(pid): ("web1", pid, time.monotonic() - 1, request)}
    assert pytest_plugin._reap(running, set()) == [request]  # set(): not seen by the wait, which returned before
    assert running == {}
    assert not results.exists() or "(deadline)" not in results.read_text()


def test_a_results_line_cut_short_by_a_kill_is_left_out_not_a_crash(tmp_path):
    """A host process killed at its deadline mid-write leaves half a line; the deadline's own error line says
    what happened to that host, the other hosts' results stand."""
    from opsrun.verification.protocol import read_results

    record = {"host": "web1", "test": "test_a[opsrun-ssh://web1]", "outcome": "passed", "message": None, "seconds": 0.1}
    line = json.dumps(record) + "\n"
    (tmp_path / "req-1.101").write_text(line + line.replace("test_a", "test_b")[:40])
    (tmp_path / "req-1.102").write_text(line.replace("web1", "web2"))
    got = read_results(sorted(tmp_path.glob("req-1*")))
    assert [(r.host, r.test) for r in got] == [("web1", "test_a"), ("web2", "test_a")]
