"""The tour (docs/tour.md), run as written, on a fresh lab: the commands are read from the page (they must be
the demo's steps, opsrun.lab.demo.STEPS), run in order from a fresh copy of the ops content, each exiting as
the demo expects; the rolling patch loses no request under load; the drift report finds the hand edit; the DR
report measures RTO/RPO; both HTML reports are opened in headless Chromium and their numbers are the JSON's;
last, a bad release (one request in five fails, /health answers) is caught by its canary under load and
rolled back, the fleet back on the good release, the requests users saw fail bounded.

The tour brings the lab down and up again (its first command is `opsrun lab up` on a lab that `down` just
removed), and leaves a lab of the session's 3 hosts behind, with the same names and addresses: the tests
after it converge it as they would any lab."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from opsrun.lab import Lab, demo
from opsrun.lab.releases import failed_requests_bound
from opsrun.model.revisions import commit_of
from tests.conftest import REPO, chromium_dom, copy_ops
from tests.lab.test_rolling import HOSTS, admin_states, health_versions

pytestmark = pytest.mark.lab


@pytest.fixture(scope="module")
def tour(tmp_path_factory) -> tuple[Path, list[demo.Done]]:
    commands = demo.tour_commands((REPO / demo.TOUR).read_text())
    assert commands == [s.command for s in demo.STEPS], f"{demo.TOUR} and the demo's steps drifted apart"
    ops = copy_ops(tmp_path_factory.mktemp("tour") / "ops")
    git = ["git", "-C", str(ops), "-c", "user.name=ops", "-c", "user.email=ops@opsrun.invalid"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "ops repo"], check=True)
    Lab().down()  # a fresh lab: the tour's `opsrun lab up` makes it
    env = demo.demo_env(None)
    done = []
    for step in demo.STEPS:
        result = demo.run_step(step, env, ops, echo=False)
        done.append(result)
        assert result.code == step.expect, f"`{step.command}` exited {result.code}:\n{result.output[-4000:]}"
    return ops, done


def output(done: list[demo.Done], command: str) -> list[str]:
    return [d.output for d in done if d.step.command == command]


def test_the_patch_rolls_host_by_host_under_load_with_no_failed_request(tour):
    _ops, done = tour
    [rolled] = output(done, "opsrun lab load -- opsrun apply lab patching")
    for host in ("web1", "web2", "web3"):
        assert re.search(rf"{host}: upgraded opsrun-demo 1\.0 -> 1\.1", rolled), rolled
    requests, failed = map(int, re.search(r"load: (\d+) requests .* failed: (\d+)", rolled).groups())
    assert requests >= 1000 and failed == 0, rolled


def test_drift_is_clean_then_finds_the_hand_edit_and_its_html_shows_the_json(tour):
    ops, _done = tour
    reports = ops / demo.REPORTS
    doc = json.loads((reports / "drift-lab.json").read_text())
    assert doc["status"] == "drift" and doc["summary"]["drift"] >= 1
    assert {(f["host"], f["deploy"]) for f in doc["findings"] if f["verdict"] == "will_change"} == {("web2", "nginx")}
    dom = chromium_dom(reports / "drift-lab.html")
    shown = dict(re.findall(r'data-key="([^"]+)">([^<]*)<', dom))
    assert {k: shown[k] for k in doc["summary"]} == {k: str(v) for k, v in doc["summary"].items()}
    assert shown["status"] == "drift" and "keepalive_timeout" in dom


def test_the_dr_report_measures_rto_and_rpo_and_its_html_shows_the_json(tour):
    ops, _done = tour
    [path] = sorted((ops / demo.REPORTS).glob("dr-test-lab-*.json"))
    doc = json.loads(path.read_text())
    assert doc["status"] == "passed" and doc["degraded"] == [], doc["issues"]
    systems = {s["system"]: s for s in doc["systems"]}
    assert set(systems) == {"backups", "postgres", "redis", "mongo"}
    assert all(s["result"] == "PASS" for s in systems.values())
    assert systems["redis"]["rto_seconds"] > 0 and systems["mongo"]["rto_seconds"] > 0
    assert systems["postgres"]["rto_seconds"] > 0  # the failover drill of the lab's primary and replica
    assert all(s[f"{w}_seconds"] is not None for s in systems.values() for w in ("rto", "rpo")), systems
    dom = chromium_dom(path.with_suffix(".html"))
    shown = dict(re.findall(r'data-key="([^"]+)">([^<]*)<', dom))
    assert {k: shown[k] for k in doc["summary"]} == {k: str(v) for k, v in doc["summary"].items()}
    rows = [re.findall(r"<td[^>]*>([^<]*)</td>", row) for row in re.findall(r"<tr>(.*?)</tr>", dom, flags=re.S)]
    for s in doc["systems"]:
        cells = [
            s["system"],
            *(
                s[k.replace("seconds", "note")] if s[k] is None else f"{s[k]:.1f} s"
                for k in ("rto_target_seconds", "rto_seconds", "rpo_target_seconds", "rpo_seconds")
            ),
            s["result"],
        ]
        assert cells in rows, (cells, rows)


def test_the_demo_summary_names_what_it_made(tour):
    ops, done = tour
    lines = demo.summary(done, ops)
    assert any(str(ops / demo.REPORTS / "drift-lab.html") in line for line in lines)
    assert any(line.startswith("DR report (passed;") and ".html" in line for line in lines)
    assert any("failed: 0" in line for line in lines)
    assert any(line.startswith("a bad release under load: canary web1 breach after ") for line in lines), lines


def test_a_bad_release_is_caught_by_its_canary_and_rolled_back_under_load(tour, on_host, haproxy):
    ops, done = tour
    [step] = [d for d in done if d.step.command == f"opsrun lab load -- {demo.BAD_APPLY}"]
    doc = json.loads((ops / demo.LAST_APPLY).read_text())
    canary, policy = doc["canary"], doc["policy"]["canary"]
    assert (doc["status"], canary["outcome"], canary["hosts"]) == ("failed", "breach", ["web1"]), canary
    assert canary["seconds"] < policy["bake"] and doc["halted"].startswith("canary: error rate "), canary
    assert [doc["hosts"][h]["outcome"] for h in ("web2", "web3")] == ["not_reached", "not_reached"]
    back = doc["rollback"]
    assert (back["status"], back["automatic"], list(back["from"])) == ("succeeded", True, ["web1"]), back
    assert back["from"]["web1"].endswith("+dirty")  # the work tree with the bad release, exactly as applied
    went = back["run"]["hosts"]["web1"]
    assert (went["outcome"], went["in_balancer"]) == ("done", True), went  # health gate, its suite, enabled
    git = ["git", "-C", str(ops)]
    good = commit_of(back["to_revision"])
    assert subprocess.run([*git, "diff", "--quiet", "HEAD", good, "--", "group_data", "apps"]).returncode == 0
    assert subprocess.run([*git, "diff", "--quiet", "--", "group_data"]).returncode == 0  # the release taken away
    # printed as the tour prints its steps: the verdict, the rollback, where the host is
    out = step.output
    assert re.search(r"^canary web1 \(.*\): failed: error rate [0-9.]+ % > 5 % over ", out, flags=re.M), out
    assert f"rollback to revision {good[:12]} (run {back['to_run']}) succeeded" in out, out
    assert f"  web1: back on {good[:12]}, in the balancer" in out, out
    # the fleet back on the good release, every host serving
    assert health_versions(on_host) == dict.fromkeys(HOSTS, "1")
    assert admin_states(haproxy) == dict.fromkeys(HOSTS, "ready")
    # what users saw: only 500s, bounded by one in five of the canary's share of the traffic over its bake
    requests, rate, failed = map(int, re.search(r"load: (\d+) requests .*\((\d+)/s\), failed: (\d+)", out).groups())
    bound = failed_requests_bound(
        rate, fail_one_in=5, canary_hosts=1, serving_hosts=len(HOSTS), bake=policy["bake"], interval=policy["interval"]
    )
    assert requests >= 1000 and 0 < failed <= bound, (out, bound)
    assert re.search(r"failed: \d+ \{'HTTP 500': \d+\}$", out, flags=re.M), out
    assert step.seconds < 90, step.seconds  # the tour's wall time: CI runs it
