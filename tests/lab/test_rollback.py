"""Rollback on real hosts behind the lab's HAProxy, from an ops repo in git: on_failure "rollback" after a
release fails its health gate on the second host, a patch rolled back (a downgrade with the reboot it
needs, and a host refused before its drain when the archive lacks the version), `opsrun rollback` by hand
to an earlier run, and a rollback refused before any host is touched; a release that answers /health but
fails one request in five, caught by its canary under load and rolled back, the requests users saw fail
counted and bounded. Each test starts from the web tier as this repo says and leaves it so."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from opsrun.lab import aptrepo
from opsrun.lab.loadgen import LoadGenerator
from opsrun.lab.releases import failed_requests_bound
from tests.conftest import git, opsrun, opsrun_json
from tests.lab.conftest import demo_versions
from tests.lab.test_rolling import admin_states, health_versions

pytestmark = pytest.mark.lab
HOSTS = ["web1", "web2", "web3"]
WEB = "group_data/web.py"


@pytest.fixture
def ops_repo(project_copy: Path, web_tier) -> Callable[..., str]:
    """The repo's ops content as a git repository of its own (the web tier converged from the same content);
    commit(message, **{path: text appended}) commits a change and returns its revision."""
    (project_copy / ".gitignore").write_text(".opsrun/\n")
    git(project_copy, "init", "-q")

    def commit(message: str, **appended: str) -> str:
        for path, text in appended.items():
            target = project_copy / path
            target.write_text(target.read_text() + text)
        git(project_copy, "add", "-A")
        git(project_copy, "commit", "-q", "--allow-empty", "-m", message)
        return git(project_copy, "rev-parse", "HEAD")

    commit.root = project_copy  # type: ignore[attr-defined]
    return commit


def app_version(version: str) -> str:
    return f'\npm2_apps[0]["env"]["APP_VERSION"] = {version!r}\n'


def apply(root: Path, deploy: str = "pm2", *options: str) -> dict:
    code, doc = opsrun_json("apply", "lab", deploy, *options, project=root)
    assert code == 0, doc
    return doc


def test_a_release_failing_its_health_gate_on_the_second_host_is_rolled_back(ops_repo, haproxy, frontend, on_host):
    root: Path = ops_repo.root  # type: ignore[attr-defined]
    quick_gate = '\nrolling = {**rolling, "on_failure": "rollback", "health": {**rolling["health"], "timeout": 10}}\n'
    good = ops_repo("the web tier as it runs", **{WEB: quick_gate})
    good_run = apply(root)["run_id"]
    server = root / "apps" / "demo" / "server.js"
    server.write_text(
        server.read_text().replace(
            'if (req.url === "/health") {',
            'if (req.url === "/health" && os.hostname() === "web2") {\n'
            '      reply(res, 500, "text/plain", "this release cannot serve on web2\\n");\n'
            '    } else if (req.url === "/health") {',
        )
    )
    bad = ops_repo("a release that is broken on web2", **{WEB: app_version("2")})

    try:
        with LoadGenerator(frontend, threads=8, max_seconds=300) as load:
            code, doc = opsrun_json("apply", "lab", "pm2", project=root)
        assert code == 1, doc
        assert (doc["hosts"]["web2"]["outcome"], doc["hosts"]["web2"]["stage"]) == ("failed", "health")
        assert doc["hosts"]["web3"]["outcome"] == "not_reached"
        back = doc["rollback"]
        assert (back["status"], back["to_revision"], back["to_run"]) == ("succeeded", good, good_run)
        assert back["from"] == {"web2": bad, "web1": bad}
        assert back["run"]["plan"]["batches"] == [["web2"], ["web1"]]  # newest first
        for h in ("web2", "web1"):
            went = back["run"]["hosts"][h]
            assert (went["outcome"], went["in_balancer"]) == ("done", True), went  # health, A's suite, enabled
            ops = {op["name"]: op["changed"] for op in went["operations"]}
            copied = [changed for name, changed in ops.items() if name.startswith("demo: release") and "from" in name]
            assert copied == [False], ops  # the release before is still on the host: switched back, not copied
        assert back["run"]["stage_seconds"]["verify"] > 0
        assert doc["left_out_of_balancer"] == []
        assert health_versions(on_host) == dict.fromkeys(HOSTS, "1")
        assert admin_states(haproxy) == dict.fromkeys(HOSTS, "ready")
        assert load.result.failures == 0, load.result.errors
    finally:
        for h in HOSTS:
            haproxy.enable(h)


CANARY = {"bake": 60, "interval": 2, "min_requests": 100}  # error rate 5 %, response time 1 s: the defaults
FAILS_ONE_IN_FIVE = (
    '\npm2_apps[0]["env"].update({"APP_VERSION": "fails-1-in-5", "FAIL_ONE_IN": 5})\n'
    f'rolling = {{**rolling, "on_failure": "rollback", "canary": {CANARY!r}}}\n'
)


def test_a_release_failing_one_request_in_five_is_caught_by_its_canary_and_rolled_back(
    ops_repo, haproxy, frontend, on_host
):
    root: Path = ops_repo.root  # type: ignore[attr-defined]
    good = ops_repo("the web tier as it runs")
    good_run = apply(root)["run_id"]
    bad = ops_repo("a release that fails one request in five", **{WEB: FAILS_ONE_IN_FIVE})

    try:
        with LoadGenerator(frontend, threads=8, max_seconds=300) as load:
            code, doc = opsrun_json("apply", "lab", "pm2", project=root)
        assert code == 1, doc  # the change failed, whether or not the rollback succeeded
        verdict = doc["canary"]
        assert (verdict["outcome"], verdict["hosts"]) == ("breach", ["web1"]), verdict
        assert verdict["seconds"] < CANARY["bake"], verdict  # caught within its bake
        assert verdict["canary"]["requests"] >= CANARY["min_requests"] and verdict["unchanged"]["errors"] == 0
        assert doc["halted"].startswith("canary: error rate ") and " > 5 % over " in doc["halted"]
        assert (doc["hosts"]["web1"]["outcome"], doc["hosts"]["web1"]["stage"]) == ("failed", "canary")
        assert [doc["hosts"][h]["outcome"] for h in ("web2", "web3")] == ["not_reached", "not_reached"]
        back = doc["rollback"]
        assert (back["status"], back["automatic"]) == ("succeeded", True), back
        assert (back["to_revision"], back["to_run"], back["from"]) == (good, good_run, {"web1": bad})
        assert back["run"]["plan"]["batches"] == [["web1"]]  # only the canary was changed
        went = back["run"]["hosts"]["web1"]
        assert (went["outcome"], went["in_balancer"]) == ("done", True), went  # health, its suite, enabled
        assert back["run"]["stage_seconds"]["verify"] > 0
        assert "rolled back to " + good[:12] in doc["hosts"]["web1"]["note"]
        assert doc["left_out_of_balancer"] == []
        assert health_versions(on_host) == dict.fromkeys(HOSTS, "1")
        assert admin_states(haproxy) == dict.fromkeys(HOSTS, "ready")
        # What users saw, over the whole rollout and its rollback: only the canary's 500s, at most one in
        # five of its share (one host of the three serving) of the requests, for its bake and one reading.
        assert set(load.result.errors) == {"HTTP 500"}, load.result.errors
        bound = failed_requests_bound(
            load.result.rate, fail_one_in=5, canary_hosts=1, serving_hosts=len(HOSTS), bake=CANARY["bake"],
            interval=CANARY["interval"],
        )  # fmt: skip
        assert 0 < load.result.failures <= bound, (load.result, bound)
        assert load.result.failures >= verdict["canary"]["errors"], (load.result, verdict)
    finally:
        for h in HOSTS:
            haproxy.enable(h)


def test_opsrun_rollback_by_hand_to_an_earlier_run(ops_repo, haproxy, frontend, on_host):
    root: Path = ops_repo.root  # type: ignore[attr-defined]
    first = ops_repo("version 1")
    first_run = apply(root)["run_id"]
    ops_repo("version 2", **{WEB: app_version("2")})  # committed, never applied: not a run to go back to
    (root / WEB).write_text((root / WEB).read_text() + app_version("3"))  # applied uncommitted
    third = apply(root)
    assert health_versions(on_host) == dict.fromkeys(HOSTS, "3")

    with LoadGenerator(frontend, threads=8, max_seconds=300) as load:
        proc = opsrun("rollback", "lab", "pm2", "--to", str(first_run), "--format", "json", project=root)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["status"] == "success" and doc["kind"] == "rollout"
    assert doc["rollback"]["to_revision"] == first and doc["rollback"]["automatic"] is False
    snapshot = git(root, "for-each-ref", "--format=%(objectname)", "refs/opsrun/applied/")
    assert snapshot and doc["rollback"]["from"] == dict.fromkeys(["web3", "web2", "web1"], f"{snapshot}+dirty")
    assert doc["plan"]["batches"] == [["web3"], ["web2"], ["web1"]]
    assert f"rollback to revision {first[:12]} (run {first_run}): 3 host(s), newest changed first" in proc.stderr
    assert f"  web3: from {snapshot[:12]} (run {third['run_id']})" in proc.stderr
    assert proc.stderr.index("rollback to revision") < proc.stderr.index("plan: 3 batches")  # before any host
    assert health_versions(on_host) == dict.fromkeys(HOSTS, "1")
    assert admin_states(haproxy) == dict.fromkeys(HOSTS, "ready")
    assert load.result.failures == 0, load.result.errors
    assert (root / WEB).read_text().endswith(app_version("3")), "the work tree was touched"

    code, history = opsrun_json("history", "lab", project=root)
    assert code == 0
    assert [r["revision"] for r in history["runs"]][:1] == [first], history  # the rollback: an apply of that revision


@pytest.fixture
def patched(lab, on_host, ops_repo):
    """opsrun-demo 1.0 (a package that asks for a reboot, as a kernel does) installed and recorded by a
    patching run, then 1.1 rolled out by another, each host rebooted. Put back afterwards: no hold, no reboot
    pending."""
    root: Path = ops_repo.root  # type: ignore[attr-defined]
    ops_repo("the fleet's ops repo")
    aptrepo.withdraw(lab.cfg)
    aptrepo.publish(lab.cfg, "1.0", reboot=True)
    apply(root, "patching", "--serial", "100%")  # the apt repository in place (one batch: nothing to roll)
    for h in HOSTS:
        on_host(h, "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --allow-downgrades "
                   "opsrun-demo=1.0 && rm -f /var/run/reboot-required /var/run/reboot-required.pkgs")  # fmt: skip
    before = apply(root, "patching", "--serial", "100%")["run_id"]  # 1.0 recorded
    aptrepo.publish(lab.cfg, "1.1", reboot=True)
    doc = apply(root, "patching")
    assert all(doc["hosts"][h]["rebooted"] for h in HOSTS)
    assert demo_versions(on_host, HOSTS) == dict.fromkeys(HOSTS, "1.1")
    yield root, before
    for h in HOSTS:
        on_host(h, "apt-mark unhold opsrun-demo; rm -f /var/run/reboot-required /var/run/reboot-required.pkgs")


def test_a_patch_is_rolled_back_to_the_recorded_versions_with_the_reboot_it_needs(patched, on_host, haproxy):
    root, before = patched
    boot = {h: on_host(h, "cat /proc/sys/kernel/random/boot_id").stdout for h in HOSTS}
    proc = opsrun("rollback", "lab", "patching", "--format", "json", project=root)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["rollback"]["to_run"] == before
    assert doc["rollback"]["downgrades"] == {h: {"opsrun-demo": "1.0"} for h in HOSTS}
    assert "web3: from" in proc.stderr and "opsrun-demo back to 1.0" in proc.stderr
    for h in HOSTS:
        host = doc["hosts"][h]
        assert (host["outcome"], host["rebooted"], host["in_balancer"]) == ("done", True, True), host
        assert {"package": "opsrun-demo", "from": "1.1", "to": "1.0"} in host["upgrades"]
        assert on_host(h, "cat /proc/sys/kernel/random/boot_id").stdout != boot[h]
        assert on_host(h, "apt-mark showhold").stdout.split() == ["opsrun-demo"]  # the next patch leaves it
    assert demo_versions(on_host, HOSTS) == dict.fromkeys(HOSTS, "1.0")
    assert admin_states(haproxy) == dict.fromkeys(HOSTS, "ready")
    code, verified = opsrun_json("verify", "lab", "patching", project=root)
    assert code == 0, verified  # nothing pending (1.1 is held back), no reboot pending


def test_a_host_whose_archive_lacks_the_version_is_refused_before_its_drain(lab, patched, on_host, haproxy):
    root, _before = patched
    aptrepo.withdraw(lab.cfg)
    aptrepo.publish(lab.cfg, "1.1", reboot=True)  # 1.0 is gone from the archive
    proc = opsrun("rollback", "lab", "patching", "--format", "json", project=root)
    assert proc.returncode == 1, proc.stderr
    doc = json.loads(proc.stdout)
    web3 = doc["hosts"]["web3"]
    assert (web3["outcome"], web3["stage"], web3["in_balancer"]) == ("failed", "check", True)
    assert "the archive no longer has opsrun-demo 1.0 (it offers 1.1)" in web3["reason"]
    assert [doc["hosts"][h]["outcome"] for h in ("web2", "web1")] == ["not_reached", "not_reached"]
    assert demo_versions(on_host, HOSTS) == dict.fromkeys(HOSTS, "1.1")
    assert admin_states(haproxy) == dict.fromkeys(HOSTS, "ready")  # web3 was never drained


@pytest.mark.parametrize("where", ["a revision without the deploy", "a revision that no longer exists"])
def test_a_rollback_with_nowhere_to_go_exits_2_and_touches_no_host(ops_repo, haproxy, on_host, where):
    root: Path = ops_repo.root  # type: ignore[attr-defined]
    ops_repo("the web tier as it runs")
    empty = git(root, "hash-object", "-w", "-t", "tree", "/dev/null")
    revision = git(root, "commit-tree", empty, "-m", "nothing yet")
    message = f"revision {revision[:12]} has no deploys/pm2.py"
    if where == "a revision that no longer exists":
        revision, message = "0" * 40, f"revision {'0' * 12} no longer exists"
    versions = health_versions(on_host)
    boot = {h: on_host(h, "cat /proc/sys/kernel/random/boot_id").stdout for h in HOSTS}

    proc = opsrun("rollback", "lab", "pm2", "--revision", revision, project=root)

    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("error: ") and message in proc.stderr and "Fix: " in proc.stderr
    assert "batch" not in proc.stderr and "plan:" not in proc.stderr
    code, history = opsrun_json("history", "lab", project=root)
    assert code == 0 and history["runs"] == []  # nothing recorded, nothing leased
    assert health_versions(on_host) == versions
    assert {h: on_host(h, "cat /proc/sys/kernel/random/boot_id").stdout for h in HOSTS} == boot
    assert admin_states(haproxy) == dict.fromkeys(HOSTS, "ready")
