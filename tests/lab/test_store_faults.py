"""Faults outside the hosts, injected around the lab: the PostgreSQL state store restarted mid-rollout, and
stopped for longer than its retry window; the operator's Ctrl-C twice during a command that hangs on one
host; an upload that fails for space (and on a read-only filesystem) on one host; the controller's own
.opsrun on a full filesystem, before the run and during it. For each: the exit code, what the summary says
against what HAProxy reads back, and the hosts' real state (the fault deploy's marker files).

The deploys and helpers are those of test_faults.py; the PostgreSQL server is this module's own (free
loopback port, a throwaway data directory), never the lab's."""

from __future__ import annotations

import json
import signal
import subprocess
import time
import uuid
from pathlib import Path

import psycopg
import pytest

from opsrun.balancers.haproxy import HAProxy
from opsrun.support.waiting import poll_until
from tests.conftest import fill, running_cluster
from tests.lab.conftest import wait_for_progress
from tests.lab.test_faults import (
    HOSTS,
    document,
    has_marker,
    in_haproxy,
    opsrun,
    plain_project,  # noqa: F401 - a fixture
    rolling_project,  # noqa: F401 - a fixture
    saved,
    start,
    write_project,
)

pytestmark = pytest.mark.lab

# An upload of 64 KiB to a folder that each host has; web2's is a full tmpfs, web3's a read-only one (named
# apart from the markers: the marker clean-up removes files, not folders).
UPLOAD_DEPLOY = """import io
from pyinfra.operations import files

files.put(name="upload a blob", src=io.BytesIO(b"x" * 65536), dest="/tmp/opsrun-upload-full/blob")
"""


def reset_hosts(on_host, haproxy) -> None:
    """No marker, lease or hung command on any host; every host serving in HAProxy (`ready`)."""
    for h in HOSTS:
        on_host(h, "rm -f /tmp/opsrun-fault-* /var/lib/opsrun/lease; pkill -f 'sleep 6[0-9][0-9]' || true")
        if haproxy.state(h).admin != "ready":
            haproxy.enable(h)


@pytest.fixture(autouse=True)
def clean_hosts(lab, on_host, haproxy):
    """Every host up, clean and `ready` in HAProxy before the test, whatever ran before it (a plain apply's
    test asserts HAProxy is as it found it); markers, hung commands and HAProxy put back afterwards."""
    lab.up(3)
    reset_hosts(on_host, haproxy)
    yield
    reset_hosts(on_host, haproxy)


@pytest.fixture(scope="module")
def store_server():
    """A PostgreSQL server for this module's state stores, which its tests stop and start."""
    with running_cluster("opsrun-lab-store-") as server:
        yield server


@pytest.fixture
def store(store_server):
    """A fresh database on the module's server, the server running before and after the test: (the
    cluster, the environment that gives opsrun the store's URL, the password)."""
    cluster, url, password = store_server
    name = f"lab_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    yield cluster, {"OPSRUN_STATE": url.rsplit("/", 1)[0] + f"/{name}"}, password
    try:
        psycopg.connect(url, connect_timeout=2).close()
    except psycopg.OperationalError:
        cluster.start()


def history(project: Path, env: dict[str, str], *args: str) -> dict:
    proc = opsrun(project, "history", *args, "--format", "json", env=env)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def balancer_as_said(doc: dict, haproxy: HAProxy) -> None:
    """What the summary says of each host's place in the balancer is what HAProxy says."""
    __tracebackhide__ = True
    said = {h: "ready" if d["in_balancer"] else "drain" for h, d in doc["hosts"].items()}
    assert in_haproxy(haproxy) == said, doc
    assert sorted(doc["left_out_of_balancer"]) == sorted(h for h, a in said.items() if a != "ready")


# ------------------------------------------------------------------------------------ the state store


def test_a_postgresql_store_restarted_mid_rollout_does_not_end_it(rolling_project, store, haproxy, on_host):  # noqa: F811
    cluster, env, password = store
    fault = {**env, "OPSRUN_FAULT_HOSTS": "web1", "OPSRUN_FAULT_SLOW": "sleep 5"}
    proc = start(rolling_project, "apply", "lab", "fault", "--format", "json", env=fault)
    wait_for_progress(proc, "batch 1: web1: apply")
    cluster.stop()  # a restart for a minor upgrade, while web1 is drained and applied
    cluster.start()
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    doc = document(out, err)
    assert {h: (d["outcome"], d["in_balancer"]) for h, d in doc["hosts"].items()} == dict.fromkeys(
        HOSTS, ("done", True)
    )
    balancer_as_said(doc, haproxy)
    assert all(has_marker(on_host, h, "last-a") for h in HOSTS)
    assert password not in out + err
    [run] = [r for r in history(rolling_project, env, "lab")["runs"] if r["id"] == doc["run_id"]]
    assert run["status"] == "success"
    shown = history(rolling_project, env, "show", str(doc["run_id"]))
    assert {h: d["outcome"] for h, d in shown["hosts"].items()} == dict.fromkeys(HOSTS, "done")


def test_a_store_stopped_past_its_window_stops_cleanly_and_the_next_run_records_it(
    rolling_project,  # noqa: F811
    store,
    haproxy,
    on_host,
):
    cluster, env, password = store
    fault = {**env, "OPSRUN_FAULT_HOSTS": "web1", "OPSRUN_FAULT_SLOW": "sleep 5"}
    proc = start(rolling_project, "--state-retry", "5", "apply", "lab", "fault", "--format", "json", env=fault)
    wait_for_progress(proc, "batch 1: web1: apply")
    cluster.stop()  # and it stays down past the window
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 4, err
    doc = document(out, err)
    assert doc == saved(rolling_project, "apply-lab-fault")  # the result document, kept locally
    assert {h: (d["outcome"], d["in_balancer"]) for h, d in doc["hosts"].items()} == {
        "web1": ("done", True),  # in flight: it passed its gates and went back in
        "web2": ("not_reached", True),
        "web3": ("not_reached", True),
    }
    balancer_as_said(doc, haproxy)
    assert has_marker(on_host, "web1", "last-a") and not any(has_marker(on_host, h, "first-a") for h in HOSTS[1:])
    assert doc["halted"].endswith("did not answer for 5s: no further host was drained")
    port = cluster.port
    assert doc["record_error"].startswith(f"the state store at postgresql://127.0.0.1:{port}/... did not answer")
    assert "store-missed" in doc["record_error"] and "Fix: bring the PostgreSQL server back" in doc["record_error"]
    assert password not in out + err
    assert len(list((rolling_project / ".opsrun" / "store-missed").iterdir())) == 1

    cluster.start()
    nxt = opsrun(rolling_project, "apply", "lab", "fault", "--format", "json", env=env)
    assert nxt.returncode == 0, nxt.stderr
    assert f"note: run {doc['run_id']}'s outcome, which the state store missed, is recorded in it now" in nxt.stderr
    assert not list((rolling_project / ".opsrun" / "store-missed").iterdir())
    shown = history(rolling_project, env, "show", str(doc["run_id"]))
    assert shown["status"] == "failed" and shown["record_error"] == doc["record_error"]
    assert {h: d["outcome"] for h, d in shown["hosts"].items()} == {h: d["outcome"] for h, d in doc["hosts"].items()}
    assert in_haproxy(haproxy) == dict.fromkeys(HOSTS, "ready")


# ------------------------------------------------------------------------------------ Ctrl-C twice


def ctrl_c_twice(proc: subprocess.Popen[str]) -> tuple[str, str, float]:
    """SIGINT, its notice read, SIGINT again: opsrun's output and the seconds it took to end after the second."""
    proc.send_signal(signal.SIGINT)
    wait_for_progress(proc, "Press Ctrl-C again to stop now", timeout=30)
    proc.send_signal(signal.SIGINT)
    started = time.monotonic()
    try:
        out, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        pytest.fail("opsrun did not stop after the second Ctrl-C")
    return out, err, time.monotonic() - started


def hung_on(on_host, host: str, command: str) -> None:
    """Wait until `command` runs on `host` (its last character as a class: pgrep does not find its own shell)."""
    pattern = f"{command[:-1]}[{command[-1]}]"
    poll_until(
        lambda: on_host(host, f"pgrep -f '{pattern}'", check=False).returncode == 0,
        timeout=60,
        what=f"`{command}` to hang on {host}",
    )


def test_ctrl_c_twice_during_a_hung_command_on_one_host_of_three_stops_now(plain_project, haproxy, on_host):  # noqa: F811
    env = {"OPSRUN_FAULT_HOSTS": "web2", "OPSRUN_FAULT_SLOW": "sleep 601"}
    proc = start(plain_project, "apply", "lab", "fault", "--format", "json", env=env)
    hung_on(on_host, "web2", "sleep 601")
    out, err, took = ctrl_c_twice(proc)
    assert took < 10, f"{took:.1f}s after the second Ctrl-C"
    assert proc.returncode == 130, err
    doc = document(out, err)
    assert doc == saved(plain_project, "apply-lab-fault")
    assert doc["status"] == "interrupted" and doc["interrupted"].startswith("interrupted: stopped now")
    assert doc["hosts"]["web2"]["error"] == "interrupted: stopped now (a second Ctrl-C) in stage apply"
    # the others: the first operation and their (quick) slow one ran, the last did not; as the summary says
    assert {h: (doc["hosts"][h]["status"], doc["hosts"][h]["changed"]) for h in ("web1", "web3")} == {
        "web1": ("changed", 2),
        "web3": ("changed", 2),
    }
    assert [has_marker(on_host, h, "first-a") for h in HOSTS] == [True] * 3
    assert [has_marker(on_host, h, "last-a") for h in HOSTS] == [False] * 3
    assert in_haproxy(haproxy) == dict.fromkeys(HOSTS, "ready")  # a plain apply never touches it


def test_ctrl_c_twice_mid_rollout_leaves_the_changed_host_out_as_haproxy_says(rolling_project, haproxy, on_host):  # noqa: F811
    env = {"OPSRUN_FAULT_HOSTS": "web1", "OPSRUN_FAULT_SLOW": "sleep 602"}
    proc = start(rolling_project, "apply", "lab", "fault", "--format", "json", env=env)
    wait_for_progress(proc, "batch 1: web1: apply")
    hung_on(on_host, "web1", "sleep 602")
    out, err, took = ctrl_c_twice(proc)
    assert took < 10, f"{took:.1f}s after the second Ctrl-C"
    assert proc.returncode == 130, err
    doc = document(out, err)
    assert doc["status"] == "interrupted" and doc["stopped_now"]
    web1 = doc["hosts"]["web1"]
    assert (web1["outcome"], web1["stage"], web1["in_balancer"]) == ("interrupted", "apply", False)
    assert "haproxy backend web says web1: drain" in web1["note"]
    assert [doc["hosts"][h]["outcome"] for h in ("web2", "web3")] == ["not_reached", "not_reached"]
    balancer_as_said(doc, haproxy)
    assert in_haproxy(haproxy) == {"web1": "drain", "web2": "ready", "web3": "ready"}
    assert has_marker(on_host, "web1", "first-a") and not has_marker(on_host, "web1", "last-a")
    assert not any(has_marker(on_host, h, "first-a") for h in ("web2", "web3"))


# ------------------------------------------------------------------------------- an upload that fails


@pytest.fixture
def full_and_read_only(on_host):
    """/tmp/opsrun-upload-full on every host: web2's a full 16 KiB tmpfs, web3's a read-only one."""
    folder = "/tmp/opsrun-upload-full"
    for h in HOSTS:
        on_host(h, f"mkdir -p {folder}")
    on_host(
        "web2", f"mount -t tmpfs -o size=16k opsrun-full {folder} && (dd if=/dev/zero of={folder}/fill bs=4k; true)"
    )
    on_host("web3", f"mount -t tmpfs -o ro,size=16k opsrun-ro {folder}")
    try:
        yield folder
    finally:
        for h in ("web2", "web3"):
            on_host(h, f"umount -l {folder}", check=False)
        for h in HOSTS:
            on_host(h, f"rm -rf {folder}", check=False)


def test_an_upload_that_fails_for_space_says_so_in_the_summary(tmp_path, full_and_read_only, haproxy, on_host):
    plain = "upload_rolling = None\nupload_balancer = None\n__all__ = [*__all__, 'upload_rolling', 'upload_balancer']\n"
    project = write_project(tmp_path / "ops", plain=True, extra=plain)  # a plain parallel apply
    (project / "deploys" / "upload.py").write_text(UPLOAD_DEPLOY)
    reports = tmp_path / "reports"
    proc = opsrun(project, "apply", "lab", "upload", "--out", str(reports))
    assert proc.returncode == 1, proc.stderr
    full = "upload to /tmp/opsrun-upload-full/blob failed: No space left on device"
    read_only = "upload to /tmp/opsrun-upload-full/blob failed: Read-only file system"
    assert f"web2: operation 'upload a blob' failed: {full}" in proc.stdout
    assert f"web3: operation 'upload a blob' failed: {read_only}" in proc.stdout
    doc = saved(project, "apply-lab-upload")
    errors = {h: [op["error"] for op in d["operations"] if not op["success"]] for h, d in doc["hosts"].items()}
    assert errors == {"web1": [], "web2": [full], "web3": [read_only]}
    for suffix in (".md", ".html", ".xml"):
        text = (reports / f"apply-lab-upload{suffix}").read_text()
        assert "No space left on device" in text and "Read-only file system" in text
    assert on_host("web1", "stat -c %s /tmp/opsrun-upload-full/blob").stdout.strip() == "65536"
    assert on_host("web2", "test -e /tmp/opsrun-upload-full/blob.opsrun-probe", check=False).returncode == 1
    assert in_haproxy(haproxy) == dict.fromkeys(HOSTS, "ready")


# ------------------------------------------------------------------------------- the controller's disk


@pytest.fixture
def state_on_tmpfs(rolling_project):  # noqa: F811
    """A small tmpfs mounted at the project's .opsrun: (the project, the folder); unmounted after."""
    folder = rolling_project / ".opsrun"
    folder.mkdir(exist_ok=True)
    mounted: list[Path] = []

    def mount(size: str) -> Path:
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "opsrun-lab-test", str(folder)], check=True)
        mounted.append(folder)
        return folder

    try:
        yield rolling_project, mount
    finally:
        for m in mounted:
            subprocess.run(["umount", "-l", str(m)], check=False)


def test_a_full_opsrun_folder_is_found_before_any_host_is_touched(state_on_tmpfs, store, haproxy, on_host):
    """With the run history in PostgreSQL nothing else writes to .opsrun before the result document, which
    opsrun could not keep after the hosts had been changed: the dry write finds it first."""
    project, mount = state_on_tmpfs
    _cluster, env, _password = store
    folder = mount("512k")
    fill(folder)
    proc = opsrun(project, "apply", "lab", "fault", env=env)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith(
        f"error: {folder}: opsrun keeps its results, run history and debug log here and cannot: "
        f"No space left on device. Fix: make {folder} a folder this user can write to"
    ), proc.stderr
    assert "with 1 MiB free on its filesystem" in proc.stderr
    assert not any(has_marker(on_host, h, "first-a") for h in HOSTS)
    assert in_haproxy(haproxy) == dict.fromkeys(HOSTS, "ready")
    leases = [on_host(h, "test -e /var/lib/opsrun/lease", check=False).returncode for h in HOSTS]
    assert leases == [1, 1, 1], "a host was touched"


def test_an_opsrun_folder_that_fills_mid_rollout_still_ends_with_a_true_summary(state_on_tmpfs, haproxy, on_host):
    project, mount = state_on_tmpfs
    folder = mount("4m")  # room for the dry write; filled once web1 is being applied
    env = {"OPSRUN_FAULT_HOSTS": "web1", "OPSRUN_FAULT_SLOW": "sleep 5"}
    proc = start(project, "--state-retry", "3", "apply", "lab", "fault", "--format", "json", env=env)
    try:
        wait_for_progress(proc, "batch 1: web1: apply")
        fill(folder)
        out, err = proc.communicate(timeout=300)
    finally:
        (folder / "filler").unlink(missing_ok=True)
    assert proc.returncode == 4, err
    doc = document(out, err)  # the summary, printed whatever could not be written
    assert doc["record_error"] and "No space left on device" in doc["record_error"] + err
    balancer_as_said(doc, haproxy)
    for h, d in doc["hosts"].items():  # each host's real state is what the summary says of it
        assert has_marker(on_host, h, "last-a") == (d["outcome"] == "done"), (h, d)
        assert has_marker(on_host, h, "first-a") == (d["outcome"] != "not_reached"), (h, d)
    assert doc["hosts"]["web1"]["outcome"] == "done"
