"""Rolling apply behind the lab's HAProxy, against real hosts: zero downtime measured with a load
generator (and a control run without the balancer step that does fail), a failing host halting the
rollout, a health gate that never passes, a host unreachable before its batch."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from opsrun.balancers.haproxy import HAProxy
from opsrun.lab import hosts as lab_hosts
from opsrun.lab.loadgen import LoadGenerator
from opsrun.support.waiting import poll_until
from tests.conftest import REPO, opsrun_json
from tests.lab.conftest import wait_for_progress

pytestmark = pytest.mark.lab
HOSTS = ["web1", "web2", "web3"]


@pytest.fixture
def web_project(project_copy: Path):
    """A copy of the repo's ops content whose group_data/web.py the test changes: `version` is the demo
    app's APP_VERSION (a new version is a rolling reload), other values are set as they are."""

    def set_data(version: str | None = None, **values: object) -> Path:
        web = project_copy / "group_data" / "web.py"
        lines = [f"{k} = {v!r}" for k, v in values.items()]
        if version is not None:
            lines.append(f'pm2_apps[0]["env"]["APP_VERSION"] = {version!r}')
        web.write_text(web.read_text() + "".join(f"\n{line}" for line in lines) + "\n")
        return project_copy

    return set_data


def health_versions(on_host) -> dict[str, str]:
    """Each host's app version from /health (polled: an app that was just restarted warms up first)."""

    def version(host: str) -> str:
        out = on_host(host, "curl -sS --max-time 5 http://127.0.0.1:3001/health", check=False)
        return json.loads(out.stdout)["version"] if out.returncode == 0 else ""

    return {h: poll_until(lambda h=h: version(h), timeout=20, what=f"{h} app to answer /health") for h in HOSTS}


def admin_states(haproxy: HAProxy) -> dict[str, str]:
    return {h: haproxy.state(h).admin for h in HOSTS}


@pytest.fixture(autouse=True)
def _app(web_tier):
    pass


def test_rolling_apply_has_zero_failed_requests(lab, haproxy, frontend, web_project, on_host):
    project = web_project(version="zero-downtime")
    with LoadGenerator(frontend, threads=8, max_seconds=240) as load:
        code, doc = opsrun_json("apply", "lab", "pm2", project=project)
    assert code == 0, doc
    assert doc["kind"] == "rollout" and doc["plan"]["batches"] == [["web1"], ["web2"], ["web3"]]
    assert {h: doc["hosts"][h]["outcome"] for h in HOSTS} == dict.fromkeys(HOSTS, "done")
    assert health_versions(on_host) == dict.fromkeys(HOSTS, "zero-downtime")
    assert admin_states(haproxy) == dict.fromkeys(HOSTS, "ready")
    assert load.result.requests >= 2000, load.result
    assert load.result.failures == 0, load.result.errors


def test_control_without_the_balancer_step_drops_requests(lab, frontend, web_project, on_host):
    """The same rollout, with reboots, and no drain: proves the load test can see failures."""
    project = web_project(version="control")
    inv = project / "inventories" / "lab.py"
    inv.write_text(inv.read_text() + '\nall[1].pop("balancer")\n')
    for h in HOSTS:
        on_host(h, "touch /var/run/reboot-required")
    with LoadGenerator(frontend, threads=8, max_seconds=240) as load:
        code, doc = opsrun_json("apply", "lab", "pm2", project=project)
    assert code == 0, doc
    assert [doc["hosts"][h]["rebooted"] for h in HOSTS] == [True, True, True]
    assert health_versions(on_host) == dict.fromkeys(HOSTS, "control")
    assert load.result.failures > 0, load.result


def test_failure_on_second_host_halts_with_hosts_where_they_should_be(lab, haproxy, web_project, on_host):
    before = health_versions(on_host)
    project = web_project(version="faulty")
    (project / "deploys" / "faulty.py").write_text(
        "from pyinfra import host, local\nfrom pyinfra.operations import server\n"
        'local.include("deploys/pm2.py")\n'
        'if host.data.get("inject_failure"):\n'
        '    server.shell(name="Injected failure", commands=["echo injected failure >&2; exit 3"])\n'
    )
    inv = project / "inventories" / "lab.py"
    inv.write_text(inv.read_text() + '\nweb = [(n, {**d, "inject_failure": n == "web2"}) for n, d in web]\n')

    code, doc = opsrun_json("apply", "lab", "faulty", project=project)
    assert code == 1
    hosts = doc["hosts"]
    assert (hosts["web1"]["outcome"], hosts["web1"]["in_balancer"]) == ("done", True)
    assert (hosts["web2"]["outcome"], hosts["web2"]["stage"], hosts["web2"]["in_balancer"]) == (
        "failed",
        "apply",
        False,
    )
    assert "Injected failure" in hosts["web2"]["reason"] and "injected failure" in hosts["web2"]["reason"]
    assert (hosts["web3"]["outcome"], hosts["web3"]["operations"]) == ("not_reached", [])
    assert doc["left_out_of_balancer"] == ["web2"]
    assert "over the failure budget of 0" in doc["halted"]
    shown = subprocess.run(
        [
            sys.executable,
            "-m",
            "opsrun",
            "--project",
            str(project),
            "history",
            "show",
            str(doc["run_id"]),
            "--format",
            "json",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    record = json.loads(shown.stdout)
    assert record["status"] == "failed" and record["halted"] == doc["halted"]
    assert {h: (r["outcome"], r["stage"], r["in_balancer"]) for h, r in record["hosts"].items()} == {
        "web1": ("done", None, True),
        "web2": ("failed", "apply", False),
        "web3": ("not_reached", None, True),
    }

    assert admin_states(haproxy) == {"web1": "ready", "web2": "drain", "web3": "ready"}
    versions = health_versions(on_host)
    assert versions["web1"] == versions["web2"] == "faulty"
    assert versions["web3"] == before["web3"], "web3 was touched"
    haproxy.enable("web2")


def test_health_gate_that_never_passes_keeps_the_host_out(lab, haproxy, web_project):
    project = web_project(
        rolling={
            "serial": 1,
            "health": {"http": "http://{address}:3001/no-such-page", "status": 204, "timeout": 2},
            "verify": False,
        },
    )
    code, doc = opsrun_json("apply", "lab", "pm2", "--limit", "web1,web2", project=project)
    assert code == 1
    web1 = doc["hosts"]["web1"]
    assert (web1["outcome"], web1["stage"], web1["in_balancer"]) == ("failed", "health", False)
    assert re.search(r"health gate http://[\d.]+:3001/no-such-page to answer 204; last seen: HTTP 200", web1["reason"])
    assert doc["hosts"]["web2"]["outcome"] == "not_reached"
    assert haproxy.state("web1").admin == "drain"
    haproxy.enable("web1")


def test_unreachable_host_counts_against_the_budget_and_is_not_drained(lab, haproxy, web_project):
    project = web_project(rolling={"serial": 1, "max_fail": 1, "verify": False})
    lab_hosts.stop(lab.cfg, "web3")
    try:
        code, doc = opsrun_json("apply", "lab", "pm2", project=project)
        assert code == 1
        web3 = doc["hosts"]["web3"]
        assert (web3["outcome"], web3["stage"], web3["in_balancer"]) == ("failed", "connect", True)
        assert doc["hosts"]["web1"]["outcome"] == doc["hosts"]["web2"]["outcome"] == "done"
        assert doc["halted"] is None  # 1 failure is within max_fail 1
        assert haproxy.state("web3").admin == "ready"  # never drained
    finally:
        lab.up(3)


def test_unknown_balancer_server_fails_before_any_host_is_touched(lab, haproxy, web_project, on_host):
    project = web_project(version="never-applied")
    inv = project / "inventories" / "lab.py"
    inv.write_text(inv.read_text() + '\nall[1]["balancer"] = {**all[1]["balancer"], "server": "{host}-old"}\n')
    proc = subprocess.run(
        [sys.executable, "-m", "opsrun", "--project", str(project), "apply", "lab", "pm2"],
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO,
    )
    assert proc.returncode == 1, proc.stderr
    assert "haproxy backend web has no server web1-old, web2-old, web3-old" in proc.stderr
    assert "never-applied" not in json.dumps(health_versions(on_host))
    assert admin_states(haproxy) == dict.fromkeys(HOSTS, "ready")


def _start_apply(project: Path, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "opsrun", "--project", str(project), *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_second_concurrent_apply_on_an_inventory_is_refused(lab, web_project, backend, request):
    project = web_project()
    state = ["--state", request.getfixturevalue("postgres_url")] if backend == "postgresql" else []
    first = _start_apply(project, *state, "apply", "lab", "pm2", "--format", "json")
    try:
        wait_for_progress(first, "batch 1: web1: drain")
        second = subprocess.run(
            [sys.executable, "-m", "opsrun", "--project", str(project), *state, "apply", "lab", "pm2"],
            capture_output=True,
            text=True,
            check=False,
            cwd=REPO,
        )
        assert second.returncode == 2, second.stderr
        assert re.search(
            rf"error: inventory \S*/inventories/lab\.py is locked by \S+@\S+ pid {first.pid} since \S+ \(run \d+\); "
            r"nothing was touched",
            second.stderr,
        ), second.stderr
    finally:
        out, err = first.communicate(timeout=300)
    assert first.returncode == 0, err
    assert json.loads(out)["status"] == "success"


def test_sigint_stops_at_a_safe_point_and_resume_finishes(lab, haproxy, web_project, on_host):
    project = web_project(version="interrupted")
    proc = _start_apply(project, "apply", "lab", "pm2", "--format", "json")
    try:
        wait_for_progress(proc, "batch 2: web2: apply")
        proc.send_signal(signal.SIGINT)
    finally:
        out, err = proc.communicate(timeout=300)
    assert proc.returncode == 130, err
    doc = json.loads(out)
    assert doc["status"] == "interrupted"
    outcomes = {h: (doc["hosts"][h]["outcome"], doc["hosts"][h]["in_balancer"]) for h in HOSTS}
    assert outcomes == {"web1": ("done", True), "web2": ("done", True), "web3": ("not_reached", True)}
    assert doc["left_out_of_balancer"] == []
    assert admin_states(haproxy) == dict.fromkeys(HOSTS, "ready")
    assert health_versions(on_host)["web3"] != "interrupted"

    code, resumed = opsrun_json("apply", "lab", "pm2", "--resume", str(doc["run_id"]), project=project)
    assert code == 0, resumed
    assert list(resumed["hosts"]) == ["web3"] and resumed["hosts"]["web3"]["outcome"] == "done"
    assert health_versions(on_host) == dict.fromkeys(HOSTS, "interrupted")

    history = subprocess.run(
        [sys.executable, "-m", "opsrun", "--project", str(project), "history", "lab", "--format", "json"],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
    )
    runs = json.loads(history.stdout)["runs"]
    assert [(r["status"], r["resumed_from"]) for r in runs[:2]] == [("success", doc["run_id"]), ("interrupted", None)]


LB_CONF = """upstream lbweb {{
    server {web1}:3001;
    server {web2}:3001;
    keepalive 8;
}}

server {{
    listen 8081;
    location / {{
        proxy_pass http://lbweb;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
    }}
}}
"""


@pytest.fixture
def nginx_lb(addresses, web_project, on_host):
    """web3 balances web1 and web2 with nginx on :8081; returns a project whose balancer is that upstream,
    with each host's server named by `server` (a template)."""
    on_host("web3", "command -v nginx >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -q nginx")
    conf = LB_CONF.format(web1=addresses["web1"], web2=addresses["web2"])
    on_host("web3", f"cat > /etc/nginx/conf.d/opsrun-lb.conf <<'EOF'\n{conf}EOF\nnginx -t -q && systemctl reload nginx")

    def project(server: str, **data: object) -> Path:
        path = web_project(**data)
        inv = path / "inventories" / "lab.py"
        balancer = {
            "type": "nginx",
            "host": "web3",
            "upstream": "lbweb",
            "config": "/etc/nginx/conf.d/opsrun-lb.conf",
            "server": server,
        }
        inv.write_text(inv.read_text() + f"\nall[1]['balancer'] = {balancer!r}\n")
        return path

    yield project
    on_host("web3", "rm -f /etc/nginx/conf.d/opsrun-lb.conf; systemctl reload nginx")


def test_rolling_behind_an_nginx_load_balancer_host(lab, addresses, nginx_lb, on_host):
    """The rollout marks each upstream server down in turn, and no request fails."""
    project = nginx_lb("{ssh_hostname}:3001", version="behind-nginx")
    with LoadGenerator(f"http://{addresses['web3']}:8081/", threads=8, max_seconds=240) as load:
        code, doc = opsrun_json("apply", "lab", "pm2", "--limit", "web1,web2", project=project)
    assert code == 0, doc
    assert [doc["hosts"][h]["outcome"] for h in ("web1", "web2")] == ["done", "done"]
    assert health_versions(on_host)["web1"] == health_versions(on_host)["web2"] == "behind-nginx"
    assert " down" not in on_host("web3", "cat /etc/nginx/conf.d/opsrun-lb.conf").stdout
    assert load.result.requests >= 1000, load.result
    assert load.result.failures == 0, load.result.errors


def test_nginx_balancer_with_an_unknown_server_fails_before_any_host(lab, addresses, nginx_lb, on_host):
    project = nginx_lb("{ssh_hostname}:3002", version="never")
    proc = subprocess.run(
        [sys.executable, "-m", "opsrun", "--project", str(project), "apply", "lab", "pm2", "--limit", "web1"],
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO,
    )
    assert proc.returncode == 1
    assert f"nginx upstream lbweb on web3 has no server {addresses['web1']}:3002" in proc.stderr
    assert "never" not in json.dumps(health_versions(on_host))


def test_reboot_if_needed_reboots_only_the_host_that_asks_and_waits_for_it(lab, haproxy, web_project, on_host):
    boot = {h: on_host(h, "cat /proc/sys/kernel/random/boot_id").stdout.strip() for h in ("web1", "web2")}
    on_host("web1", "touch /var/run/reboot-required")
    project = web_project(version="after-reboot")
    code, doc = opsrun_json("apply", "lab", "pm2", "--limit", "web1,web2", project=project)
    assert code == 0, doc
    assert (doc["hosts"]["web1"]["rebooted"], doc["hosts"]["web2"]["rebooted"]) == (True, False)
    assert on_host("web1", "cat /proc/sys/kernel/random/boot_id").stdout.strip() != boot["web1"]
    assert on_host("web2", "cat /proc/sys/kernel/random/boot_id").stdout.strip() == boot["web2"]
    assert on_host("web1", "test -e /var/run/reboot-required", check=False).returncode == 1
    assert health_versions(on_host)["web1"] == "after-reboot"  # the app came back by itself, behind the gate
    assert admin_states(haproxy)["web1"] == "ready"
