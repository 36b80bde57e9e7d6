"""`opsrun apply lab nginx` and `opsrun verify lab nginx` against real hosts over real SSH: the first apply
on hosts without nginx, idempotency, verify, drift on a hand edit, an invalid configuration, a changed host
key. Each test starts from the web tier converged (and the first apply from nginx removed)."""

from __future__ import annotations

import re
import subprocess

import pytest

from opsrun import engine
from opsrun.balancers.haproxy import HAProxy
from opsrun.lab import Lab
from opsrun.model import inventory
from opsrun.model.project import Project
from tests.conftest import REPO, opsrun, opsrun_json

pytestmark = pytest.mark.lab
HOSTS = ["web1", "web2", "web3"]
SITE = "/etc/nginx/sites-enabled/opsrun.conf"
CONFIG_OP = "nginx configuration (validated with nginx -t)"


@pytest.fixture(autouse=True)
def _web_tier(web_tier):
    """The app and nginx as the repo says (the web group rolls behind HAProxy, gated on the app's /health)."""


@pytest.fixture
def no_nginx_yet(lab, on_host):
    """Hosts without nginx: the first apply starts from nothing."""
    for host in HOSTS:
        on_host(
            host,
            "systemctl stop nginx 2>/dev/null; DEBIAN_FRONTEND=noninteractive apt-get purge -y -q "
            "nginx nginx-common >/dev/null; rm -rf /etc/nginx /var/www/opsrun /var/lib/opsrun/config-swap",
        )


def test_first_apply_changes_every_host(lab, no_nginx_yet):
    code, doc = opsrun_json("apply", "lab", "nginx")
    assert code == 0, doc
    assert doc["status"] == "success"
    assert sorted(doc["hosts"]) == HOSTS
    for name, host in doc["hosts"].items():
        assert host["status"] == "changed", (name, host)
        changed = {op["name"] for op in host["operations"] if op["changed"]}
        assert {"Install nginx", CONFIG_OP, "Reload nginx when its configuration changed"} <= changed


def test_second_apply_changes_no_operation_on_any_host(lab):
    project = Project(REPO)
    inv = inventory.load(project, "lab")
    run = engine.run_deploy(project, inv, "nginx", inv.select(None))
    assert run.status == "success"
    assert [h.name for h in run.hosts] == HOSTS
    for host in run.hosts:
        assert host.operations, f"{host.name}: no operation ran"
        assert [op.name for op in host.operations if op.changed] == [], host.name


def test_verify_passes_on_every_host(lab):
    code, doc = opsrun_json("verify", "lab", "nginx")
    assert code == 0, doc
    assert doc["status"] == "passed"
    for name in HOSTS:
        tests = doc["hosts"][name]["tests"]
        assert len(tests) >= 7
        assert all(t["outcome"] == "passed" for t in tests), (name, tests)


def test_nginx_serves_each_host_app_on_the_lab_network(lab, addresses):
    for name in HOSTS:
        out = subprocess.run(
            ["curl", "-sS", "--max-time", "5", f"http://{addresses[name]}/"],
            capture_output=True,
            text=True,
            check=False,
        )
        assert out.stdout.startswith(f"{name} demo "), out.stdout  # the app, through nginx's upstream


def test_hand_edit_is_seen_by_dry_run_on_that_host_only_then_repaired(lab, on_host):
    on_host("web2", f"echo '# hand edit' >> {SITE}")

    code, plan = opsrun_json("apply", "lab", "nginx", "--dry-run")
    assert code == 0
    assert plan["dry_run"] is True
    would = {n: [op["name"] for op in h["operations"] if op["changed"]] for n, h in plan["hosts"].items()}
    assert would == {"web1": [], "web2": [CONFIG_OP, "Reload nginx when its configuration changed"], "web3": []}
    assert on_host("web2", f"tail -1 {SITE}").stdout.strip() == "# hand edit", "the dry run changed the host"

    code, doc = opsrun_json("apply", "lab", "nginx")
    assert code == 0
    assert doc["hosts"]["web2"]["status"] == "changed"
    assert doc["hosts"]["web1"]["changed"] == doc["hosts"]["web3"]["changed"] == 0
    assert "# hand edit" not in on_host("web2", f"cat {SITE}").stdout

    code, verified = opsrun_json("verify", "lab", "nginx", "--limit", "web2")
    assert code == 0 and verified["status"] == "passed"


def test_invalid_directive_fails_the_host_and_keeps_the_old_configuration(lab, on_host, project_copy):
    before = on_host("web3", f"cat {SITE}; systemctl show -p MainPID --value nginx").stdout
    web_data = project_copy / "group_data" / "web.py"
    web_data.write_text(web_data.read_text() + '\nnginx_extra_directives = ["no_such_directive on;"]\n')

    proc = opsrun("apply", "lab", "nginx", "--limit", "web3", project=project_copy)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert f"web3: failed at apply: operation '{CONFIG_OP}' failed" in proc.stdout
    assert 'unknown directive "no_such_directive"' in proc.stdout
    assert "left out of the balancer: web3" in proc.stdout

    assert on_host("web3", f"cat {SITE}; systemctl show -p MainPID --value nginx").stdout == before
    on_host("web3", "nginx -t -q")  # what is on disk is still valid
    page = on_host("web3", "curl -sS --max-time 5 http://127.0.0.1/").stdout
    assert page.startswith("web3 demo ")
    assert on_host("web3", "ls -A /etc/nginx/sites-enabled/").stdout.split() == ["opsrun.conf"]
    assert on_host("web3", "ls -A /var/lib/opsrun/config-swap/").stdout.split() == [], "staged files left behind"
    balancer = HAProxy(
        **{k: v for k, v in inventory.load(Project(REPO), "lab").hosts["web3"].data["balancer"].items() if k != "type"}
    )
    assert balancer.state("web3").admin == "drain"  # a failed host stays out of the balancer
    balancer.enable("web3")


def test_changed_host_key_is_refused(lab: Lab, on_host):
    on_host(
        "web1", "rm -f /etc/ssh/ssh_host_*; ssh-keygen -A -q; rm -f /etc/ssh/ssh_host_rsa_key*; systemctl restart ssh"
    )
    try:
        code, doc = opsrun_json("apply", "lab", "nginx", "--limit", "web1")
        assert code == 1
        host = doc["hosts"]["web1"]
        assert (host["outcome"], host["stage"], host["operations"]) == ("failed", "connect", [])
        assert re.search(r"host key", host["reason"], re.IGNORECASE), host["reason"]

        code, verified = opsrun_json("verify", "lab", "nginx", "--limit", "web1")
        assert code == 1
        messages = " ".join(t["message"] or "" for t in verified["hosts"]["web1"]["tests"])
        assert "REMOTE HOST IDENTIFICATION HAS CHANGED" in messages or "Host key verification failed" in messages
    finally:
        lab.up(3)  # an operator's re-key: the lab records the host's new keys again
    code, doc = opsrun_json("apply", "lab", "nginx", "--limit", "web1")
    assert code == 0 and doc["hosts"]["web1"]["changed"] == 0
