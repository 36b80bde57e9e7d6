"""`opsrun apply lab patching` on real hosts: a real upgrade of opsrun-demo from the lab's apt repository,
rolled behind HAProxy under load, a reboot variant, and a held package."""

from __future__ import annotations

import json

import pytest

from opsrun.lab import aptrepo
from opsrun.lab.loadgen import LoadGenerator
from tests.conftest import opsrun_json
from tests.lab.conftest import demo_versions, install_demo_1_0

pytestmark = pytest.mark.lab
HOSTS = ["web1", "web2", "web3"]


@pytest.fixture
def demo_installed(lab, on_host, web_tier):
    """The fleet as we find it: opsrun-demo 1.0 installed from the repository that patching manages, and
    nothing newer in the repository yet."""
    install_demo_1_0(lab, on_host, HOSTS)
    assert demo_versions(on_host, HOSTS) == dict.fromkeys(HOSTS, "1.0")


def test_patching_upgrades_every_host_rolling_with_no_failed_request(lab, demo_installed, on_host):
    aptrepo.publish(lab.cfg, "1.1")
    code, plan = opsrun_json("apply", "lab", "patching", "--dry-run")
    assert code == 0
    for h in HOSTS:
        [upgrade] = [op for op in plan["hosts"][h]["operations"] if op["name"] == "Upgrade packages"]
        assert upgrade["changed"] and "dist-upgrade" in upgrade["commands"][0]
    assert demo_versions(on_host, HOSTS) == dict.fromkeys(HOSTS, "1.0"), "the dry run changed a host"

    frontend = json.loads(lab.cfg.state_file.read_text())["haproxy"]["frontend"]
    with LoadGenerator(f"http://{frontend}/", threads=8, max_seconds=300) as load:
        code, doc = opsrun_json("apply", "lab", "patching")
    assert code == 0, doc
    assert doc["plan"]["batches"] == [[h] for h in HOSTS]
    for h in HOSTS:
        assert doc["hosts"][h]["outcome"] == "done"
        assert {"package": "opsrun-demo", "from": "1.0", "to": "1.1"} in doc["hosts"][h]["upgrades"]
        assert doc["hosts"][h]["rebooted"] is False
    assert demo_versions(on_host, HOSTS) == dict.fromkeys(HOSTS, "1.1")
    assert load.result.failures == 0, load.result.errors
    assert load.result.requests >= 2000, load.result

    code, again = opsrun_json("apply", "lab", "patching")
    assert code == 0
    assert [again["hosts"][h]["changed"] for h in HOSTS] == [0, 0, 0]
    code, verified = opsrun_json("verify", "lab", "patching")
    assert code == 0, verified


def test_a_package_that_asks_for_a_reboot_gets_one_inside_the_rollout(lab, demo_installed, on_host):
    boot = {h: on_host(h, "cat /proc/sys/kernel/random/boot_id").stdout for h in HOSTS}
    aptrepo.publish(lab.cfg, "1.2", reboot=True)
    code, doc = opsrun_json("apply", "lab", "patching")
    assert code == 0, doc
    for h in HOSTS:
        host = doc["hosts"][h]
        assert (host["outcome"], host["rebooted"], host["in_balancer"]) == ("done", True, True)
        assert host["seconds"]["reboot"] > 0
        assert on_host(h, "cat /proc/sys/kernel/random/boot_id").stdout != boot[h]
    assert demo_versions(on_host, HOSTS) == dict.fromkeys(HOSTS, "1.2")
    code, verified = opsrun_json("verify", "lab", "patching")
    assert code == 0, verified  # no reboot pending any more


def test_a_held_package_is_not_upgraded_and_verify_says_it_is_held(lab, demo_installed, on_host, project_copy):
    web = project_copy / "group_data" / "web.py"
    web.write_text(web.read_text() + '\npatching_hold = ["opsrun-demo"]\n')
    before = demo_versions(on_host, HOSTS)
    aptrepo.publish(lab.cfg, "1.3")
    code, doc = opsrun_json("apply", "lab", "patching", project=project_copy)
    assert code == 0, doc
    assert demo_versions(on_host, HOSTS) == before
    assert all(doc["hosts"][h]["upgrades"] == [] for h in HOSTS)
    code, verified = opsrun_json("verify", "lab", "patching", project=project_copy)
    assert code == 0, verified
    held = [t for t in verified["hosts"]["web1"]["tests"] if t["test"].endswith("test_held_packages_are_held")]
    assert held and held[0]["outcome"] == "passed"
    assert on_host("web1", "apt-mark showhold").stdout.split() == ["opsrun-demo"]

    code, _doc = opsrun_json("apply", "lab", "patching")  # released again: the repo's group_data holds nothing
    assert code == 0
    assert on_host("web1", "apt-mark showhold").stdout.split() == []
    assert demo_versions(on_host, HOSTS) == dict.fromkeys(HOSTS, "1.3")
