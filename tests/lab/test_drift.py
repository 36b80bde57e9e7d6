"""`opsrun drift` against real hosts: apply-then-drift is clean, a hand edit is one finding until applied,
findings remember when they were first seen, desired-state changes are intentional and hand edits
corrective, unknowns are not drift, unreachable hosts are listed apart."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from opsrun.lab import hosts as lab_hosts
from tests.conftest import REPO, opsrun_json

pytestmark = pytest.mark.lab
CONFIG_OP = "nginx configuration (validated with nginx -t)"


@pytest.fixture(scope="module")
def git_project(tmp_path_factory, lab, webapp_deployed) -> Path:
    """A copy of the ops content as its own git repository, converged on the lab."""
    dest = tmp_path_factory.mktemp("drift") / "ops"
    for folder in ("inventories", "group_data", "deploys", "verify"):
        shutil.copytree(REPO / folder, dest / folder, ignore=shutil.ignore_patterns("__pycache__"))
    git = ["git", "-C", str(dest), "-c", "user.name=ops", "-c", "user.email=ops@opsrun.invalid"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "ops repo"], check=True)
    code, doc = opsrun_json("apply", "lab", "nginx", project=dest)
    assert code == 0, doc
    return dest


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
        "from io import StringIO\nfrom pyinfra.operations import files, server\n"
        'server.shell(name="Always runs", commands=["true"])\n'
        'files.put(name="Only if", src=StringIO("x"), dest="/tmp/opsrun-probe", _if=lambda: True)\n'
    )
    code, doc = drift(git_project, "probe")
    assert code == 0, doc
    reasons = {f["operation"]: (f["verdict"], f["detail"][0]) for f in doc["findings"]}
    assert reasons["Always runs"][0] == "unknown" and "not idempotent" in reasons["Always runs"][1]
    assert reasons["Only if"][0] == "unknown" and "conditional on an earlier operation" in reasons["Only if"][1]
    assert doc["summary"]["drift"] == 0 and doc["summary"]["unknown"] == 3 * 2


def test_a_stopped_host_is_unreachable_not_drift(lab, git_project):
    lab_hosts.stop(lab.cfg, "web3")
    try:
        code, doc = drift(git_project, "nginx")
        assert code == 0, doc
        assert list(doc["unreachable"]) == ["web3"] and doc["findings"] == []
        code, strict = drift(git_project, "nginx", "--fail-on-unreachable")
        assert code == 1 and strict["status"] == "error"
    finally:
        lab.up(3)
