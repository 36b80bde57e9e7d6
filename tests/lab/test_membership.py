"""Membership in the balancer on the lab: a host left out of HAProxy (by a run killed with -9, by hand
through the admin socket, or on purpose with a hold mark) is drift until it is back, and every run names it.
Each test starts from the converged web tier (every host serving) and puts HAProxy back as it found it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from opsrun.balancers import wait_healthy
from tests.lab.conftest import wait_for_progress
from tests.lab.test_faults import HOSTS, document, in_haproxy, opsrun, start, write_project

pytestmark = pytest.mark.lab


@pytest.fixture
def project(tmp_path: Path, web_tier, haproxy, on_host) -> Path:
    """The ops content with the fault deploy, its own state store; HAProxy serving every host afterwards."""
    try:
        yield write_project(tmp_path / "ops", plain=False)
    finally:
        for h in HOSTS:
            on_host(h, "rm -f /tmp/opsrun-fault-* /var/lib/opsrun/lease; pkill -f 'sleep 60[0-9]' || true")
            if haproxy.state(h).admin != "ready":
                haproxy.enable(h)
            wait_healthy(haproxy, h, timeout=60)


def drift(project: Path) -> tuple[int, dict, str]:
    run = opsrun(project, "drift", "lab", "nginx", "--format", "json")
    return run.returncode, document(run.stdout, run.stderr), run.stderr


def out_of_balancer(doc: dict) -> dict[str, dict]:
    return {f["host"]: f for f in doc["findings"] if f["verdict"] == "out_of_balancer"}


def test_sigkill_leaves_web2_out_until_an_apply_that_selects_it_heals_it(project, haproxy):
    env = {"OPSRUN_FAULT_HOSTS": "web2", "OPSRUN_FAULT_SLOW": "sleep 600"}
    proc = start(project, "apply", "lab", "fault", "--format", "json", env=env)
    wait_for_progress(proc, "batch 2: web2: apply")
    proc.kill()
    proc.communicate(timeout=30)
    assert in_haproxy(haproxy) == {"web1": "ready", "web2": "drain", "web3": "ready"}
    dead = json.loads(opsrun(project, "history", "lab", "--format", "json").stdout)["runs"][0]["id"]

    rc, doc, _err = drift(project)
    assert rc == 3, doc
    (found,) = out_of_balancer(doc).values()
    assert (found["host"], found["deploy"], found["status"], found["cause"]) == (
        "web2",
        "balancer",
        "new",
        "corrective",
    )
    assert found["detail"][1].startswith(f"left so by run {dead} (fault, ") and "did not finish" in found["detail"][1]
    assert found["detail"][2] == "bring it back: opsrun apply lab fault --limit web2"

    elsewhere = opsrun(project, "apply", "lab", "fault", "--limit", "web3")
    assert elsewhere.returncode == 0, elsewhere.stderr
    assert "note: web2 is out of the balancer: " in elsewhere.stderr
    assert "this run does not touch it (not in its selection); bring it back: opsrun apply lab fault --limit web2" in (
        elsewhere.stderr
    )
    assert haproxy.state("web2").admin == "drain"

    rc, doc, err = drift(project)
    assert rc == 3 and "web2" in out_of_balancer(doc) and out_of_balancer(doc)["web2"]["status"] == "persisting"
    assert "note: web2 is out of the balancer" in err

    heal = opsrun(project, "apply", "lab", "fault", "--limit", "web2")
    assert heal.returncode == 0, heal.stderr
    assert "this run brings it back first" in heal.stderr
    assert "web2 (left drained by a dead run): back in the balancer" in heal.stderr
    assert in_haproxy(haproxy) == dict.fromkeys(HOSTS, "ready")

    rc, doc, err = drift(project)
    assert rc == 0, doc
    assert out_of_balancer(doc) == {} and "out of the balancer" not in err
    assert [(r["host"], r["deploy"]) for r in doc["resolved"]] == [("web2", "balancer")]


def test_a_host_drained_by_hand_is_found_nobody_opsrun_knows_of(project, haproxy):
    haproxy.command("set server web/web2 state drain")  # HAProxy's own socket, as an operator would
    rc, doc, _err = drift(project)
    assert rc == 3, doc
    (found,) = out_of_balancer(doc).values()
    assert found["host"] == "web2" and found["detail"][0].startswith("web2: drain")
    assert found["detail"][1] == "left so by nobody opsrun knows of"
    assert found["detail"][2].startswith("bring it back: put web2 back in its balancer, or mark it: opsrun hold")
    haproxy.command("set server web/web2 state ready")
    rc, doc, _err = drift(project)
    assert rc == 0 and out_of_balancer(doc) == {}


def test_a_host_held_on_purpose_is_intentional_until_released(project, haproxy):
    haproxy.drain("web3")
    held = opsrun(project, "hold", "lab", "web3", "--reason", "disk replacement")
    assert held.returncode == 0 and "disk replacement" in held.stdout, held.stderr
    try:
        rc, doc, _err = drift(project)
        assert rc == 0, doc
        found = out_of_balancer(doc)["web3"]
        assert (found["held"], found["cause"]) == (True, "intentional")
        assert found["detail"][2].endswith(": disk replacement")
        text = opsrun(project, "drift", "lab", "nginx")
        assert "held (intentional, not drift): web3 out of haproxy backend web" in text.stdout
    finally:
        released = opsrun(project, "release", "lab", "web3")
    assert released.returncode == 0 and "released" in released.stdout, released.stderr
    rc, doc, _err = drift(project)
    assert rc == 3 and out_of_balancer(doc)["web3"]["cause"] == "corrective"
