"""`opsrun drift` against real hosts: apply-then-drift is clean, a hand edit is one finding until applied,
findings remember when they were first seen, desired-state changes are intentional and hand edits
corrective, unknowns are not drift, unreachable hosts are listed apart; the reports in every format (the
HTML opened in headless Chromium), notifications on a change of status, and the nightly systemd units."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from PIL import Image

from opsrun.lab import hosts as lab_hosts
from opsrun.support.waiting import poll_until
from tests.conftest import REPO, chromium, copy_ops, opsrun_json
from tests.lab.conftest import converge, converge_web_tier

pytestmark = pytest.mark.lab
CONFIG_OP = "nginx configuration (validated with nginx -t)"


@pytest.fixture(scope="module")
def applied_project(tmp_path_factory, lab, haproxy) -> Path:
    """A copy of the ops content as its own git repository, applied once by opsrun and found clean by drift
    once: its store records the clean revision that drift tells intentional changes from corrective ones by."""
    dest = copy_ops(tmp_path_factory.mktemp("drift") / "ops")
    git = ["git", "-C", str(dest), "-c", "user.name=ops", "-c", "user.email=ops@opsrun.invalid"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "ops repo"], check=True)
    converge_web_tier(lab, haproxy)
    code, doc = opsrun_json("apply", "lab", "nginx", project=dest)
    assert code == 0, doc
    code, doc = opsrun_json("drift", "lab", "nginx", project=dest)  # the clean baseline causes are told by
    assert code == 0, doc
    return dest


@pytest.fixture
def git_project(applied_project: Path, web_tier) -> Path:
    """That repository, with the lab converged on it before each test (a hand edit an earlier test left is
    gone)."""
    converge("nginx", project=applied_project)
    return applied_project


def commit(project: Path, message: str) -> None:
    git = ["git", "-C", str(project), "-c", "user.name=ops", "-c", "user.email=ops@opsrun.invalid"]
    subprocess.run([*git, "commit", "-q", "-am", message], check=True)


def drift(project: Path, *args: str) -> tuple[int, dict]:
    return opsrun_json("drift", "lab", *args, project=project)


def test_apply_then_drift_is_clean(git_project):
    code, doc = drift(git_project, "nginx")
    assert code == 0, doc
    assert doc["status"] == "clean" and doc["findings"] == [] and doc["summary"]["hosts"] == 3


def test_hand_edit_is_one_corrective_finding_that_persists_then_resolves(git_project, on_host):
    on_host("web2", "sed -i 's/keepalive_timeout 65/keepalive_timeout 5/' /etc/nginx/nginx.conf")
    code, doc = drift(git_project, "nginx")
    assert code == 3
    [finding] = doc["findings"]
    assert (finding["host"], finding["operation"], finding["verdict"]) == ("web2", CONFIG_OP, "will_change")
    assert (finding["status"], finding["cause"]) == ("new", "corrective")
    assert any("nginx.conf" in line for line in finding["detail"])
    assert any(line.startswith("then Reload nginx") for line in finding["detail"])  # the consequence, not a 2nd finding
    diff = finding["diff"]
    assert diff[0] == "Will modify /etc/nginx/nginx.conf" and diff[1].startswith("@@ ")
    assert [line.split() for line in diff if line[:2] in ("- ", "+ ")] == [
        ["-", "keepalive_timeout", "5;"],
        ["+", "keepalive_timeout", "65;"],
    ]

    code, again = drift(git_project, "nginx")
    assert code == 3
    [persisting] = again["findings"]
    assert persisting["status"] == "persisting" and persisting["first_seen"] == finding["first_seen"]

    code, _doc = opsrun_json("apply", "lab", "nginx", "--limit", "web2", project=git_project)
    assert code == 0
    code, after = drift(git_project, "nginx")
    assert code == 0 and after["findings"] == []
    assert [(r["host"], r["operation"], r["first_seen"]) for r in after["resolved"]] == [
        ("web2", CONFIG_OP, finding["first_seen"])
    ]


def test_a_desired_state_change_is_intentional(git_project, on_host):
    web = git_project / "group_data" / "web.py"
    original = web.read_text()
    web.write_text(original.replace("nginx_keepalive_timeout = 65", "nginx_keepalive_timeout = 30"))
    commit(git_project, "nginx: shorter keepalive")
    try:
        code, doc = drift(git_project, "nginx")
        assert code == 3
        assert {(f["host"], f["operation"], f["cause"]) for f in doc["findings"]} == {
            (h, CONFIG_OP, "intentional") for h in ("web1", "web2", "web3")
        }
        assert "keepalive_timeout 65" in on_host("web1", "cat /etc/nginx/nginx.conf").stdout  # nothing changed
    finally:
        web.write_text(original)
        commit(git_project, "revert")


def test_shell_and_conditional_operations_are_unknown_never_drift(git_project):
    (git_project / "deploys" / "probe.py").write_text(
        "import os\nfrom io import StringIO\nfrom pyinfra.operations import files, server\n"
        'server.shell(name="Always runs", commands=["true"])\n'
        'files.put(name="Only if", src=StringIO("x"), dest="/tmp/opsrun-probe",\n'
        '          _if=lambda: os.path.exists("/etc/hostname"))\n'  # known only when applied
    )
    code, doc = drift(git_project, "probe")
    assert code == 0, doc
    reasons = {f["operation"]: (f["verdict"], f["detail"][0]) for f in doc["findings"]}
    assert reasons["Always runs"][0] == "unknown" and "not idempotent" in reasons["Always runs"][1]
    assert reasons["Only if"][0] == "unknown" and "reads no earlier operation" in reasons["Only if"][1]
    assert doc["summary"]["drift"] == 0 and doc["summary"]["unknown"] == 3 * 2


def test_a_stopped_host_is_unreachable_not_drift(lab, git_project, haproxy):
    """A host that is down is unreachable, never a configuration finding; that its balancer no longer serves
    it is a finding of its own (capacity lost), once the balancer's health check has seen it."""
    lab_hosts.stop(lab.cfg, "web3")
    try:
        poll_until(lambda: not haproxy.state("web3").healthy, timeout=30, what="HAProxy to see web3 down")
        code, doc = drift(git_project, "nginx")
        assert code == 1, doc  # a host not seen is never exit 0 unless the user allows it
        assert doc["status"] == "drift" and list(doc["unreachable"]) == ["web3"]
        assert [(f["host"], f["verdict"]) for f in doc["findings"]] == [("web3", "out_of_balancer")]
        code, allowed = drift(git_project, "nginx", "--allow-unreachable")
        assert code == 3 and allowed["status"] == "drift" and list(allowed["unreachable"]) == ["web3"]
        code, strict = drift(git_project, "nginx", "--fail-on-unreachable")  # the old flag: the default now
        assert code == 1 and strict["status"] == "drift"
    finally:
        lab.up(3)


def console_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if ":CONSOLE" in line]


def test_reports_notifications_and_atomic_files(git_project, on_host, webhook_receiver, tmp_path):
    url, got, _answer = webhook_receiver
    notify = f"webhook:{url}"
    out = tmp_path / "reports"
    code, clean = drift(git_project, "nginx", "--notify", notify, "--out", str(out))
    assert code == 0, clean
    got.clear()  # whether the first run notified depends on the previous test's last status

    on_host("web1", "sed -i 's/worker_connections 1024/worker_connections 64/' /etc/nginx/nginx.conf")
    code, doc = drift(git_project, "nginx", "--notify", notify, "--out", str(out))
    assert code == 3
    [message] = got
    assert message["text"].startswith("opsrun drift lab: drift (was clean)")
    assert message["opsrun"]["summary"]["drift"] == 1
    code, _same = drift(git_project, "nginx", "--notify", notify, "--out", str(out))
    assert code == 3 and len(got) == 1, "notified again without a change of status"
    code, doc = drift(git_project, "nginx", "--notify", notify, "--notify-always", "--out", str(out))
    assert code == 3 and len(got) == 2

    files = {p.suffix: p for p in out.iterdir()}
    assert sorted(files) == [".html", ".json", ".md", ".xml"] and all(p.stem == "drift-lab" for p in files.values())
    assert json.loads(files[".json"].read_text())["summary"] == doc["summary"]
    assert "```diff" in files[".md"].read_text() and "+    worker_connections 1024;" in files[".md"].read_text()

    junit = ET.parse(files[".xml"]).getroot()
    assert junit.tag == "testsuites" and (junit.get("failures"), junit.get("tests")) == ("1", "3")
    [failure] = junit.iter("failure")
    assert failure.get("type") == "will_change" and "worker_connections" in (failure.text or "")

    html = files[".html"]
    dom = chromium("--dump-dom", html.as_uri())
    assert dom.returncode == 0, dom.stderr
    shown = dict(re.findall(r'data-key="([^"]+)">([^<]*)<', dom.stdout))
    assert {k: shown[k] for k in doc["summary"]} == {k: str(v) for k, v in doc["summary"].items()}
    assert shown["status"] == "drift"
    assert len(doc["trend"]) >= 4 and dom.stdout.count("<rect") == len(doc["trend"])
    shot = tmp_path / "report.png"
    page = chromium(f"--screenshot={shot}", "--window-size=1280,1400", html.as_uri())
    assert page.returncode == 0 and console_lines(page.stderr) == [], page.stderr
    with Image.open(shot) as image:
        colors = image.convert("RGB").getcolors(maxcolors=1 << 20)
    assert colors is not None and len(colors) > 20, "the screenshot is blank"
    control = tmp_path / "control.html"
    control.write_text('<!doctype html><script>console.error("opsrun-control")</script>')
    assert any("opsrun-control" in line for line in console_lines(chromium("--dump-dom", control.as_uri()).stderr))

    before = {p.name: p.read_bytes() for p in out.iterdir()}
    suite = git_project / "verify" / "nginx" / "test_broken.py"
    suite.write_text("this is not python\n")
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "opsrun", "--project", str(git_project), "drift", "lab", "nginx", "--out", str(out)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert proc.returncode == 2 and "the suite could not run" in proc.stderr
    finally:
        suite.unlink()
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before, "a failed run touched the reports"

    code, _doc = opsrun_json("apply", "lab", "nginx", "--limit", "web1", project=git_project)
    assert code == 0


UNITS = ("opsrun-drift@.service", "opsrun-drift@.timer", "opsrun-dr-test@.service", "opsrun-dr-test@.timer")


def test_systemd_units_pass_systemd_analyze_verify(on_host):
    """Run inside a lab host (real systemd 252): the nightly drift and the monthly DR-test units; a unit
    with a mistake is the control."""
    for unit in UNITS:
        text = (REPO / "contrib" / "systemd" / unit).read_text()
        on_host("web1", f"cat > /etc/systemd/system/{unit} <<'EOF'\n{text}EOF")
    instances = " ".join(unit.replace("@.", "@lab.") for unit in UNITS)
    good = on_host("web1", f"systemd-analyze verify {instances} 2>&1", check=False)
    assert (good.returncode, good.stdout) == (0, "")
    on_host("web1", "printf '[Service]\\nExecStart=/nonexistent/opsrun\\n' > /etc/systemd/system/bad@.service")
    bad = on_host("web1", "systemd-analyze verify bad@x.service 2>&1", check=False)
    assert bad.returncode != 0 and "is not executable" in bad.stdout
    on_host("web1", "rm -f /etc/systemd/system/opsrun-drift@.* /etc/systemd/system/opsrun-dr-test@.* "
            "/etc/systemd/system/bad@.service")  # fmt: skip
