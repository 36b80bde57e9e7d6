"""`opsrun verify`'s run of a suite (opsrun.verification.verify.run_suite: one pytest, a forked process per host, the
opsrun-ssh connection) against a real sshd on loopback, through the ssh_config opsrun writes."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from opsrun.model.inventory import Host, Inventory
from opsrun.model.project import Project
from opsrun.model.results import UNREACHABLE_TEST
from opsrun.verification.verify import run_suite
from tests.ssh.conftest import Sshd, free_port

SUITE = """
import time

def test_status_and_output(host):
    result = host.run("echo out; echo err >&2; exit 3")
    assert (result.rc, result.stdout, result.stderr) == (3, "out\\n", "err\\n")

def test_a_background_writer_stays_with_its_command(host):
    host.run("(sleep 0.2; echo late) & echo first")
    assert host.run("echo second").stdout == "second\\n"

def test_host_data(host, host_data):
    assert host.check_output("echo %s", host_data["greeting"]) == "hello there"

def test_slow(host):
    host.run("sleep %s", host.backend.get_hostname() == "slow" and "60" or "0")
"""


@pytest.fixture
def project(tmp_path: Path) -> Project:
    for folder in ("inventories", "deploys", "verify/probe"):
        (tmp_path / folder).mkdir(parents=True)
    (tmp_path / "verify" / "probe" / "test_probe.py").write_text(SUITE)
    return Project(tmp_path)


def fleet(tmp_path: Path, sshd: Sshd, names: dict[str, int]) -> Inventory:
    """Hosts named `names` at sshd's address, each on its port (sshd's, or one nobody listens on)."""
    (tmp_path / "known_hosts").write_text(sshd.host_key)
    data = {
        "ssh_hostname": sshd.address,
        "ssh_user": "root",
        "ssh_key": str(sshd.folder.parent / "id"),
        "ssh_known_hosts_file": str(tmp_path / "known_hosts"),
        "ssh_strict_host_key_checking": "yes",
        "greeting": "hello there",
    }
    hosts = {name: Host(name, ("web",), {**data, "ssh_port": port}) for name, port in names.items()}
    return Inventory("t", tmp_path / "inventories" / "t.py", list(hosts), {}, {"web": (list(hosts), {})}, hosts)


def outcomes(run) -> dict[tuple[str, str], str]:
    return {(r.host, r.test): r.outcome for r in run.results}


def test_a_suite_runs_over_one_connection_per_host(tmp_path: Path, project: Project, sshd: Sshd):
    inv = fleet(tmp_path, sshd, {"web1": sshd.port, "web2": sshd.port})
    logins = len(re.findall("Accepted publickey for root", sshd.log))
    run = run_suite(project, inv, "probe", ["web1", "web2"], deadlines={"web1": 60, "web2": 60})
    assert run.error is None, run.error
    for host in ("web1", "web2"):
        for test in ("status_and_output", "a_background_writer_stays_with_its_command", "host_data", "slow"):
            assert outcomes(run).get((host, f"test_{test}")) == "passed", run.results
    # one login a host, for its probe and the suite's six commands (sshd logs each connection's login)
    assert len(re.findall("Accepted publickey for root", sshd.log)) - logins == 2


def test_a_host_past_its_deadline_is_killed_and_the_others_pass(tmp_path: Path, project: Project, sshd: Sshd):
    inv = fleet(tmp_path, sshd, {"web1": sshd.port, "slow": sshd.port})
    run = run_suite(project, inv, "probe", ["web1", "slow"], deadlines={"web1": 60, "slow": 3})
    assert outcomes(run)[("web1", "test_slow")] == "passed"
    late = [r for r in run.results if r.host == "slow" and r.outcome == "error"]
    assert [r.message for r in late] == ["timed out after 3s in stage verify"], run.results
    assert run.seconds < 30


def test_a_host_that_cannot_be_reached_is_one_line_saying_why(tmp_path: Path, project: Project, sshd: Sshd):
    inv = fleet(tmp_path, sshd, {"web1": free_port(sshd.address)})
    run = run_suite(project, inv, "probe", ["web1"], deadlines={"web1": 30})
    [result] = run.results
    assert (result.host, result.test, result.outcome) == ("web1", UNREACHABLE_TEST, "error")
    assert result.message.startswith(f"could not connect to web1 ({sshd.address}:")
    assert result.message.endswith("Connection refused")
