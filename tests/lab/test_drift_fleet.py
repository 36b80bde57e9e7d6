"""The nightly drift of the whole lab fleet with the shipped group_data, after every deploy was applied (what
`make demo` applies): clean, with no finding and no unknown, the mongo restart that is conditional (`_if`) on
its config upload included. A hand edit of mongod.conf on one host: the upload and its restart are both
will_change there, and nothing is unknown anywhere."""

from __future__ import annotations

import pytest

from tests.conftest import opsrun_json
from tests.lab.conftest import converge_web_tier, install_mongod

pytestmark = pytest.mark.lab
HOSTS = ["web1", "web2", "web3"]
CONF_OP = "mongod.conf"
RESTART_OP = "Restart for the new mongod.conf (a primary steps down first)"
HAND_EDIT = "# a hand edit (opsrun drift test)"


@pytest.fixture(scope="module")
def converged_fleet(lab, haproxy, on_host):
    """Every deploy with settings for the lab applied, with the shipped ops content: what the demo has applied
    when its nightly drift runs (the tests of this module leave it so)."""
    converge_web_tier(lab, haproxy)
    install_mongod(on_host, HOSTS)
    for deploy in ("patching", "redis_cluster", "mongo_replicaset"):
        code, doc = opsrun_json("apply", "lab", deploy)
        assert code == 0, doc


def unknowns(doc: dict) -> list[tuple[str, str, str]]:
    return [(f["host"], f["operation"], f["detail"][0]) for f in doc["findings"] if f["verdict"] == "unknown"]


def test_the_shipped_fleet_drifts_clean_with_no_unknown(converged_fleet):
    code, doc = opsrun_json("drift", "lab")
    assert unknowns(doc) == [], unknowns(doc)
    assert code == 0, doc["findings"]
    assert doc["status"] == "clean" and doc["findings"] == []
    assert doc["summary"]["unknown"] == 0 and doc["summary"]["drift"] == 0
    assert set(doc["deploys"]) >= {"nginx", "pm2", "patching", "redis_cluster", "mongo_replicaset"}


@pytest.fixture
def hand_edited_mongod_conf(converged_fleet, on_host):
    """mongod.conf edited by hand on web2 (mongod not restarted), and put back as it was afterwards."""
    on_host("web2", f"echo '{HAND_EDIT}' >> /etc/mongod.conf")
    try:
        yield "web2"
    finally:
        on_host("web2", f"sed -i '/^{HAND_EDIT}$/d' /etc/mongod.conf")


def test_a_hand_edit_of_mongod_conf_is_its_upload_and_its_restart_both_will_change(hand_edited_mongod_conf):
    code, doc = opsrun_json("drift", "lab", "mongo_replicaset")
    assert code == 3, doc
    assert unknowns(doc) == [] and doc["summary"]["unknown"] == 0
    found = {(f["host"], f["operation"]): f for f in doc["findings"]}
    assert set(found) == {("web2", CONF_OP), ("web2", RESTART_OP)}, list(found)
    assert {f["verdict"] for f in found.values()} == {"will_change"}
    assert any(line.startswith("- " + HAND_EDIT) for line in found[("web2", CONF_OP)]["diff"])
    assert any("step_down_if_primary" in line for line in found[("web2", RESTART_OP)]["detail"])
