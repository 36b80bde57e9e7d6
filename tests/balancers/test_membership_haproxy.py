"""Membership against a real HAProxy: started here on 127.0.0.1 with its own admin socket in a temp dir, in
front of tiny HTTP servers on loopback (tests/balancers/conftest.py). A server drained by hand through the
socket is found by drift's membership check, "nobody opsrun knows of"; put back, the finding resolves. A server
a dead run left drained is named by `apply --dry-run` (the pyinfra dry run itself replaced: no host here)."""

from __future__ import annotations

import json
from contextlib import closing
from pathlib import Path

import pytest
from click.testing import CliRunner

from opsrun import engine
from opsrun.checks import membership
from opsrun.checks.drift import DriftRun
from opsrun.cli import cli
from opsrun.model.inventory import Host, Inventory
from opsrun.model.results import DeployRun, HostRun
from opsrun.runs.checking import _membership_findings
from opsrun.store import open_store

HOSTS = ["web1", "web2", "web3"]


@pytest.fixture
def haproxy(haproxy_backends):
    """HAProxy with backend `web` of three servers (tests/balancers/conftest.py), health-checked, all up."""
    return haproxy_backends.balancer


def _inventory(sock: str) -> Inventory:
    setting = {"type": "haproxy", "socket": sock, "backend": "web"}
    hosts = {h: Host(h, ("web",), {"balancer": setting}) for h in HOSTS}
    return Inventory("lab", Path("/ops/inventories/lab.py"), [], {}, {}, hosts)


def test_a_server_drained_by_hand_is_found_nobody_opsrun_knows_of(haproxy, tmp_path):
    inv = _inventory(haproxy.socket_path)
    haproxy.command("set server web/web2 state drain")  # by hand, as an operator would with socat
    with closing(open_store(tmp_path / "state")) as store:
        found, errors = membership.out_of_balancer(store, inv, HOSTS)
        assert errors == {}
        assert [(o.host, o.balancer, o.who) for o in found] == [
            ("web2", "haproxy backend web", "nobody opsrun knows of")
        ]
        assert found[0].state.startswith("web2: drain")
        run = DriftRun("lab", ["nginx"], HOSTS)
        asked = _membership_findings(store, inv, HOSTS, run)
        store.track_findings("lab", run.tracked, checked={(h, "balancer") for h in asked}, cause=lambda _d: None)
        assert run.exit_code == 3 and [(f.host, f.verdict) for f in run.drifted] == [("web2", "out_of_balancer")]
        haproxy.command("set server web/web2 state ready")  # put back as it was found
        again = DriftRun("lab", ["nginx"], HOSTS)
        asked = _membership_findings(store, inv, HOSTS, again)
        resolved = store.track_findings("lab", again.tracked, checked={(h, "balancer") for h in asked}, cause=str)
        assert again.exit_code == 0 and [r["host"] for r in resolved] == ["web2"]


def test_maintenance_and_a_failed_health_check_are_out_too(haproxy, tmp_path):
    inv = _inventory(haproxy.socket_path)
    haproxy.command("set server web/web1 state maint")
    haproxy.command("disable health web/web3")
    haproxy.command("set server web/web3 health down")
    try:
        with closing(open_store(tmp_path / "state")) as store:
            found, _ = membership.out_of_balancer(store, inv, HOSTS)
            assert {o.host: o.state.split(",")[0] for o in found} == {"web1": "web1: maint", "web3": "web3: ready"}
    finally:
        haproxy.command("set server web/web1 state ready")
        haproxy.command("enable health web/web3")


def test_a_dry_run_names_the_server_a_dead_run_left_drained(haproxy, project_copy, tmp_path, monkeypatch):
    lab = tmp_path / "lab"  # inventories/lab.py reads its hosts and HAProxy's socket from the lab's lab.json
    lab.mkdir()
    hosts = [{"name": h, "address": "127.0.0.1"} for h in HOSTS]
    (lab / "lab.json").write_text(json.dumps({"hosts": hosts, "haproxy": {"socket": haproxy.socket_path}}))
    monkeypatch.setenv("OPSRUN_LAB_DIR", str(lab))
    monkeypatch.setattr(
        engine,
        "run_deploy",
        lambda _p, _i, deploy, hs, **_: DeployRun("lab", deploy, True, [HostRun(h, []) for h in hs]),
    )
    with closing(open_store(project_copy / ".opsrun")) as store:  # killed with -9 while web2 was drained
        run_id = store.start_run("apply", "lab", "nginx", revision=None, plan={"batches": [[h] for h in HOSTS]})
        store.record_host(run_id, {"name": "web2", "outcome": "running", "stage": "apply", "in_balancer": False})
        store.interrupt_dead_runs("lab", found_by="a test")
    haproxy.command("set server web/web2 state drain")
    try:
        args = ["--project", str(project_copy), "apply", "lab", "nginx", "--dry-run", "--limit", "web3"]
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 0, result.output
        assert f"note: web2 is out of the balancer: run {run_id} (nginx, " in result.stderr
        assert "this run does not touch it (not in its selection); bring it back: " in result.stderr
        assert result.stderr.rstrip().endswith("opsrun apply lab nginx --limit web2")
        assert haproxy.state("web2").admin == "drain"  # the dry run changed nothing
    finally:
        haproxy.command("set server web/web2 state ready")
