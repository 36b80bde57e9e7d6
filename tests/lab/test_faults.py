"""Faults a real fleet produces, injected into the lab: a command that hangs on one host, a host whose
network is cut or that is powered off in the middle of its apply, HAProxy's admin socket gone mid-batch,
opsrun killed with -9 mid-rollout, Ctrl-C on a plain apply and on drift, a second controller with its own
state store. For each: the exit code, what the summary says against what HAProxy and the hosts say, the
result document, and no host left out of the balancer without the summary saying so."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from opsrun.balancers.haproxy import HAProxy
from opsrun.lab import hosts as lab_hosts
from opsrun.support.waiting import poll_until
from tests.conftest import REPO, check_run_document, copy_ops, note_documents
from tests.lab.conftest import wait_for_progress

pytestmark = pytest.mark.lab
HOSTS = ["web1", "web2", "web3"]

# The deploy the faults happen in: a first operation, one that is slow (or hangs) on the hosts named in
# OPSRUN_FAULT_HOSTS, a last one; each writes a marker named with OPSRUN_FAULT_TAG, so a test can tell
# which controller's operations ran where.
FAULT_DEPLOY = """import os
from pyinfra import host
from pyinfra.operations import server

tag = os.environ.get("OPSRUN_FAULT_TAG", "a")
slow = os.environ.get("OPSRUN_FAULT_SLOW", "true")
if host.name in os.environ.get("OPSRUN_FAULT_RAISE", "").split(","):
    raise RuntimeError(f"refusing {host.name} on purpose")
server.shell(name="first", commands=[f"echo first > /tmp/opsrun-fault-first-{tag}"])
slow_here = host.name in os.environ.get("OPSRUN_FAULT_HOSTS", "").split(",")
server.shell(name="slow", commands=[slow if slow_here else "true"])
server.shell(name="last", commands=[f"echo last > /tmp/opsrun-fault-last-{tag}"])
"""
# A dry run that takes its time on the hosts in OPSRUN_FAULT_HOSTS (a fact that sleeps): for drift.
SLOW_FACT_DEPLOY = """import os
from pyinfra import host
from pyinfra.facts.server import Command
from pyinfra.operations import files

if host.name in os.environ.get("OPSRUN_FAULT_HOSTS", "").split(","):
    host.get_fact(Command, os.environ.get("OPSRUN_FAULT_SLOW", "true"))
files.file(name="marker file", path="/tmp/opsrun-fault-drift", present=True)
"""


def write_project(dest: Path, *, plain: bool, extra: str = "") -> Path:
    """The ops content with the fault deploys; `plain`: no rolling policy or balancer for them (a plain
    parallel apply), else the web tier's (HAProxy, one host at a time, its health gate)."""
    copy_ops(dest)
    (dest / "deploys" / "fault.py").write_text(FAULT_DEPLOY)
    (dest / "deploys" / "slowfact.py").write_text(SLOW_FACT_DEPLOY)
    gd = dest / "group_data" / "all.py"
    lines = ["slowfact_rolling = None", "slowfact_balancer = None"]
    if plain:
        lines += ["fault_rolling = None", "fault_balancer = None"]
    names = [line.split(" = ")[0] for line in lines]
    exported = f"__all__ = [*globals().get('__all__', []), *{names!r}]"  # all.py may list what it exports
    gd.write_text((gd.read_text() if gd.exists() else "") + "\n" + "\n".join([*lines, exported]) + "\n" + extra)
    return dest


@pytest.fixture
def plain_project(tmp_path: Path) -> Path:
    return write_project(tmp_path / "ops", plain=True)


@pytest.fixture
def rolling_project(tmp_path: Path, web_tier) -> Path:
    return write_project(tmp_path / "ops", plain=False)


@pytest.fixture(autouse=True)
def clean_hosts(lab, on_host, haproxy):
    """No marker, no lease left by an earlier test; every host in HAProxy and answering afterwards."""
    for h in HOSTS:
        on_host(h, "rm -f /tmp/opsrun-fault-* /var/lib/opsrun/lease")
    yield
    lab.up(3)  # a host a test powered off comes back
    for h in HOSTS:
        on_host(h, "rm -f /tmp/opsrun-fault-* /var/lib/opsrun/lease; pkill -f 'sleep 60[0-9]' || true")
        if haproxy.state(h).admin != "ready":
            haproxy.enable(h)


def opsrun(project: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 300):
    note_documents(project, args)
    return subprocess.run(
        [sys.executable, "-m", "opsrun", "--project", str(project), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        stdin=subprocess.DEVNULL,
        check=False,
        cwd=REPO,
    )


def start(project: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "opsrun", "--project", str(project), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
        stdin=subprocess.DEVNULL,
        cwd=REPO,
    )


def document(stdout: str, stderr: str) -> dict:
    try:
        doc = json.loads(stdout)
    except json.JSONDecodeError:
        pytest.fail(f"no JSON document:\n{stdout}\n{stderr}")
    check_run_document(doc, "the run's --format json")
    return doc


def saved(project: Path, name: str) -> dict:
    """The result document the run kept under .opsrun/results/."""
    return json.loads((project / ".opsrun" / "results" / f"{name}-latest.json").read_text())


def has_marker(on_host, host: str, name: str) -> bool:
    return on_host(host, f"test -e /tmp/opsrun-fault-{name}", check=False).returncode == 0


def wait_marker(on_host, host: str, name: str, timeout: float = 60) -> None:
    poll_until(lambda: has_marker(on_host, host, name), timeout=timeout, what=f"{name} on {host}")


def in_haproxy(haproxy: HAProxy) -> dict[str, str]:
    return {h: haproxy.state(h).admin for h in HOSTS}


# ------------------------------------------------------------------------------------ deadlines on hosts


def test_a_command_that_hangs_on_one_host_fails_that_host_at_its_deadline(plain_project, on_host):
    env = {"OPSRUN_FAULT_HOSTS": "web2", "OPSRUN_FAULT_SLOW": "sleep 600"}
    proc = opsrun(plain_project, "apply", "lab", "fault", "--deadline", "apply=6", "--format", "json", env=env)
    assert proc.returncode == 1, proc.stderr
    doc = document(proc.stdout, proc.stderr)
    assert doc == saved(plain_project, "apply-lab-fault")
    status = {h: (d["status"], d["changed"]) for h, d in doc["hosts"].items()}
    assert status == {"web1": ("changed", 3), "web2": ("failed", 1), "web3": ("changed", 3)}
    assert doc["hosts"]["web2"]["error"] == "timed out after 6s in stage apply"
    assert [has_marker(on_host, h, "last-a") for h in HOSTS] == [True, False, True]


def test_a_dry_run_that_hangs_on_one_host_is_an_error_there_and_drift_says_so(plain_project):
    env = {"OPSRUN_FAULT_HOSTS": "web3", "OPSRUN_FAULT_SLOW": "sleep 600"}
    proc = opsrun(plain_project, "drift", "lab", "slowfact", "--deadline", "apply=5", "--format", "json", env=env)
    assert proc.returncode == 1, proc.stderr
    doc = document(proc.stdout, proc.stderr)
    assert doc["status"] == "error"
    errors = [(f["host"], f["detail"][0]) for f in doc["findings"] if f["verdict"] == "error"]
    assert errors == [("web3", "timed out after 5s in stage dry-run")]
    assert doc["summary"]["checked"] == 2 and doc["summary"]["hosts"] == 3


def test_a_host_whose_network_is_cut_mid_apply_fails_at_its_deadline(lab, plain_project, on_host):
    env = {"OPSRUN_FAULT_HOSTS": ",".join(HOSTS), "OPSRUN_FAULT_SLOW": "sleep 3"}
    proc = start(plain_project, "apply", "lab", "fault", "--deadline", "apply=10", "--format", "json", env=env)
    veth = lab.cfg.veth("web2")
    try:
        wait_marker(on_host, "web2", "first-a")
        subprocess.run(["ip", "link", "set", veth, "down"], check=True)
        out, err = proc.communicate(timeout=120)
    finally:
        subprocess.run(["ip", "link", "set", veth, "up"], check=True)
    assert proc.returncode == 1, err
    doc = document(out, err)
    assert doc["hosts"]["web2"]["status"] == "failed"
    assert doc["hosts"]["web2"]["error"] == "timed out after 10s in stage apply"
    assert [doc["hosts"][h]["status"] for h in ("web1", "web3")] == ["changed", "changed"]
    poll_until(lambda: on_host("web2", "true", check=False).returncode == 0, timeout=30, what="web2 to answer")
    assert [has_marker(on_host, h, "last-a") for h in HOSTS] == [True, False, True]


def test_a_host_powered_off_mid_apply_fails_and_the_others_finish(lab, plain_project, on_host):
    env = {"OPSRUN_FAULT_HOSTS": ",".join(HOSTS), "OPSRUN_FAULT_SLOW": "sleep 3"}
    proc = start(plain_project, "apply", "lab", "fault", "--format", "json", env=env)
    wait_marker(on_host, "web1", "first-a")
    lab_hosts.stop(lab.cfg, "web1")
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 1, err
    doc = document(out, err)
    assert doc == saved(plain_project, "apply-lab-fault")
    assert doc["hosts"]["web1"]["status"] == "failed" and doc["hosts"]["web1"]["error"]
    assert [doc["hosts"][h]["status"] for h in ("web2", "web3")] == ["changed", "changed"]
    assert [lab_hosts.port_open(h.address) for h in lab.status() if h.name == "web1"] == [False]


# ------------------------------------------------------------------------------------------ the balancer


def test_haproxy_socket_gone_mid_batch_fails_that_host_and_the_summary_says_it_is_out(
    lab, rolling_project, haproxy, on_host
):
    env = {"OPSRUN_FAULT_HOSTS": "web1", "OPSRUN_FAULT_SLOW": "sleep 3"}
    sock = Path(haproxy.socket_path)
    proc = start(rolling_project, "apply", "lab", "fault", "--format", "json", env=env)
    try:
        wait_for_progress(proc, "batch 1: web1: apply")
        sock.rename(sock.with_name(sock.name + ".gone"))
        out, err = proc.communicate(timeout=120)
    finally:
        if sock.with_name(sock.name + ".gone").exists():
            sock.with_name(sock.name + ".gone").rename(sock)
    assert proc.returncode == 1, err
    doc = document(out, err)
    assert doc == saved(rolling_project, "apply-lab-fault")
    web1 = doc["hosts"]["web1"]
    assert (web1["outcome"], web1["stage"], web1["in_balancer"]) == ("failed", "enable", False)
    assert "admin socket" in web1["reason"]
    assert doc["left_out_of_balancer"] == ["web1"] and doc["halted"]
    assert [doc["hosts"][h]["outcome"] for h in ("web2", "web3")] == ["not_reached", "not_reached"]
    assert in_haproxy(haproxy) == {"web1": "drain", "web2": "ready", "web3": "ready"}  # what the summary said
    assert has_marker(on_host, "web1", "last-a") and not has_marker(on_host, "web2", "first-a")


def test_sigkill_mid_rollout_then_the_next_apply_says_so_and_heals_the_drained_host(
    lab, rolling_project, haproxy, on_host
):
    env = {"OPSRUN_FAULT_HOSTS": "web1", "OPSRUN_FAULT_SLOW": "sleep 2"}
    proc = start(rolling_project, "apply", "lab", "fault", "--format", "json", env=env)
    wait_for_progress(proc, "batch 1: web1: apply")
    proc.kill()
    proc.communicate(timeout=30)
    assert haproxy.state("web1").admin == "drain"

    history = json.loads(opsrun(rolling_project, "history", "lab", "--format", "json").stdout)["runs"]
    dead = history[0]
    assert (dead["deploy"], dead["status"]) == ("fault", "interrupted")

    nxt = opsrun(rolling_project, "apply", "lab", "fault", "--format", "json")
    assert nxt.returncode == 0, nxt.stderr
    assert f"note: run {dead['id']} (" in nxt.stderr and "it left web1 out of the balancer" in nxt.stderr
    assert "web1 (left drained by a dead run): back in the balancer" in nxt.stderr
    doc = document(nxt.stdout, nxt.stderr)
    assert doc["healed"] == {"web1": "back in the balancer: it passed its health gate"}
    assert set(doc["leases_taken_over"]) == {"web1", "web2", "web3"}
    assert in_haproxy(haproxy) == dict.fromkeys(HOSTS, "ready")
    shown = json.loads(opsrun(rolling_project, "history", "show", str(dead["id"]), "--format", "json").stdout)
    assert shown["status"] == "interrupted"
    assert (shown["hosts"]["web1"]["stage"], shown["hosts"]["web1"]["in_balancer"]) == ("apply", False)


# ------------------------------------------------------------------------------------------- Ctrl-C


def test_sigint_on_a_plain_apply_stops_between_operations(plain_project, on_host):
    env = {"OPSRUN_FAULT_HOSTS": ",".join(HOSTS), "OPSRUN_FAULT_SLOW": "sleep 3"}
    proc = start(plain_project, "apply", "lab", "fault", "--format", "json", env=env)
    wait_marker(on_host, "web1", "first-a")
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    doc = document(out, err)
    assert doc["status"] == "interrupted" and "not run: last" in doc["interrupted"]
    assert doc == saved(plain_project, "apply-lab-fault")
    assert [has_marker(on_host, h, "first-a") for h in HOSTS] == [True] * 3
    assert [has_marker(on_host, h, "last-a") for h in HOSTS] == [False] * 3
    assert {h: d["changed"] for h, d in doc["hosts"].items()} == dict.fromkeys(HOSTS, 2)


def test_sigint_on_drift_stops_and_concludes_nothing(plain_project, on_host):
    env = {"OPSRUN_FAULT_HOSTS": "web1", "OPSRUN_FAULT_SLOW": "sleep 607"}
    proc = start(plain_project, "drift", "lab", "slowfact", "--format", "json", env=env)
    poll_until(
        lambda: on_host("web1", "pgrep -f 'sleep 607'", check=False).returncode == 0,
        timeout=60,
        what="the slow fact to run on web1",
    )
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    doc = document(out, err)
    assert doc["status"] == "interrupted" and doc["resolved"] == []
    runs = json.loads(opsrun(plain_project, "history", "lab", "--format", "json").stdout)["runs"]
    assert (runs[0]["kind"], runs[0]["status"]) == ("drift", "interrupted")


# --------------------------------------------------------------------------------- two controllers


def test_a_second_controller_with_its_own_store_is_refused_per_host(tmp_path, on_host):
    first = write_project(tmp_path / "a", plain=True)
    second = write_project(tmp_path / "b", plain=True)
    env = {"OPSRUN_FAULT_HOSTS": ",".join(HOSTS), "OPSRUN_FAULT_SLOW": "sleep 4"}
    proc = start(first, "apply", "lab", "fault", "--format", "json", env=env)
    try:
        wait_marker(on_host, "web1", "first-a")
        other = opsrun(second, "apply", "lab", "fault", env={"OPSRUN_FAULT_TAG": "b"})
        assert other.returncode == 2, other.stderr
        assert "hosts leased by another opsrun run: web1: " in other.stderr and "nothing was touched" in other.stderr
        assert not any(has_marker(on_host, h, "first-b") for h in HOSTS)
    finally:
        _out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert on_host("web1", "test -e /var/lib/opsrun/lease", check=False).returncode == 1, "lease not given back"

    # a lease whose controller died (expired) is taken over, and said so
    on_host("web3", "mkdir -p /var/lib/opsrun; echo '1000 deadstore:7 someone@elsewhere' > /var/lib/opsrun/lease")
    taken = opsrun(second, "apply", "lab", "fault", "--format", "json", env={"OPSRUN_FAULT_TAG": "b"})
    assert taken.returncode == 0, taken.stderr
    assert document(taken.stdout, taken.stderr)["leases_taken_over"] == {
        "web3": "someone@elsewhere (run deadstore:7), until 1970-01-01T00:16:40Z"
    }


# ------------------------------------------------------------------------------------ drift's honesty


def test_drift_with_a_deploy_that_raises_on_one_host_is_an_error_everywhere_it_is_reported(
    plain_project, webhook_receiver, tmp_path
):
    url, got, _answer = webhook_receiver
    out = tmp_path / "reports"
    proc = opsrun(
        plain_project,
        "drift",
        "lab",
        "fault",
        "--notify",
        f"webhook:{url}",
        "--notify-always",
        "--out",
        str(out),
        "--format",
        "json",
        env={"OPSRUN_FAULT_RAISE": "web2"},
    )
    assert proc.returncode == 1, proc.stderr
    doc = document(proc.stdout, proc.stderr)
    assert doc["status"] == "error" and doc["summary"]["errors"] == 1
    [error] = [f for f in doc["findings"] if f["verdict"] == "error"]
    assert error["host"] == "web2"
    assert error["detail"] == ["deploys/fault.py:8: RuntimeError: refusing web2 on purpose"]
    assert json.loads((out / "drift-lab.json").read_text())["findings"] == doc["findings"]
    assert "refusing web2 on purpose" in (out / "drift-lab.html").read_text()
    assert "refusing web2 on purpose" in (out / "drift-lab.md").read_text()
    failures = [f.get("type") for f in ET.parse(out / "drift-lab.xml").getroot().iter("failure")]
    assert "error" in failures
    [message] = got
    assert message["opsrun"]["status"] == "error" and "web2" in message["text"]


def test_drift_that_reaches_no_host_is_an_error_and_never_the_clean_baseline(tmp_path):
    project = write_project(tmp_path / "ops", plain=True)
    inv = project / "inventories" / "lab.py"
    inv.write_text(inv.read_text() + '\nall[1]["ssh_port"] = 1\n')
    proc = opsrun(project, "drift", "lab", "fault", "--format", "json")
    assert proc.returncode == 1, proc.stderr
    doc = document(proc.stdout, proc.stderr)
    assert doc["status"] == "error" and doc["summary"]["checked"] == 0
    assert sorted(doc["unreachable"]) == HOSTS
    assert all(why.startswith(f"could not connect to {h} (") for h, why in doc["unreachable"].items())
    runs = json.loads(opsrun(project, "history", "lab", "--format", "json").stdout)["runs"]
    assert [r["status"] for r in runs if r["kind"] == "drift"] == ["error"]


# ------------------------------------------------------------------------------- unreachable, in words


def test_unreachable_and_silent_hosts_read_as_one_line_each(tmp_path):
    project = write_project(tmp_path / "ops", plain=True)
    inv = project / "inventories" / "lab.py"
    inv.write_text(
        inv.read_text()
        + "\nfor _group in (web, redis, mongo):\n"
        + "    for _name, _data in _group:\n"
        + "        if _name == 'web2':\n"
        + "            _data['ssh_port'] = 1  # nothing listens there\n"
        + "        if _name == 'web3':\n"
        + "            _data['ssh_hostname'] = '10.231.7.250'  # an address of the lab's where no host lives\n"
    )
    proc = opsrun(project, "verify", "lab", "nginx", "--deadline", "connect=2")
    assert proc.returncode == 1
    about = {h: [line for line in proc.stdout.splitlines() if line.startswith(f"{h}:")] for h in ("web2", "web3")}
    assert len(about["web2"]) == 1 and about["web2"][0].startswith(
        "web2: (connect) error: could not connect to web2 (10.231.7.12:1): "
    ), proc.stdout
    assert len(about["web3"]) == 1 and about["web3"][0].startswith(
        "web3: (connect) error: could not connect to web3 (10.231.7.250:22): "
    ), proc.stdout
    assert "Traceback" not in proc.stderr and "SshBackend" not in "".join(about["web2"] + about["web3"])

    applied = opsrun(project, "apply", "lab", "fault", "--deadline", "connect=2")
    assert applied.returncode == 1
    assert "Traceback" not in applied.stderr and "No existing session" not in applied.stdout + applied.stderr
    assert "web2: could not connect to web2 (10.231.7.12:1): " in applied.stdout
    assert "web3: could not connect to web3 (10.231.7.250:22): " in applied.stdout


# ------------------------------------------------------------------ the docs' first apply, from nothing


def docs_first_apply() -> list[str]:
    """The first `$ opsrun apply ...` command of the docs' apply page (docs/apply.md), as its words."""
    text = (REPO / "docs" / "apply.md").read_text()
    line = next(line for line in text.splitlines() if line.startswith("$ opsrun apply "))
    return line[2:].split("#")[0].split()


def test_the_docs_first_apply_works_on_hosts_without_the_app_or_nginx(lab, haproxy, on_host, web_tier):
    command = docs_first_apply()
    assert command == ["opsrun", "apply", "lab", "nginx"]
    for h in HOSTS:  # as after `opsrun lab up`: no app under PM2, no nginx
        on_host(
            h,
            "systemctl disable --now pm2-root >/dev/null 2>&1; pm2 kill >/dev/null 2>&1; "
            "DEBIAN_FRONTEND=noninteractive apt-get purge -y -q nginx nginx-common >/dev/null; rm -rf /etc/nginx",
        )
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "opsrun", "--project", str(REPO), *command[1:], "--format", "json"],
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
            cwd=REPO,
        )
        assert proc.returncode == 0, proc.stderr
        doc = document(proc.stdout, proc.stderr)
        assert {h: (d["outcome"], d["in_balancer"]) for h, d in doc["hosts"].items()} == dict.fromkeys(
            HOSTS, ("done", True)
        )
        assert all(d["changed"] >= 4 for d in doc["hosts"].values()), doc  # nginx installed and configured
        assert all("did not pass before the change" in (d["note"] or "") for d in doc["hosts"].values())
        assert in_haproxy(haproxy) == dict.fromkeys(HOSTS, "ready")
    finally:
        for deploy in ("pm2", "nginx"):  # the web tier as the session had it
            done = opsrun(REPO, "apply", "lab", deploy, "--serial", "100%", "--format", "json")
            assert done.returncode == 0, done.stderr
