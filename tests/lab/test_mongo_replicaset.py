"""`opsrun apply lab mongo_replicaset` on real hosts over the network. There is no MongoDB server package for
this machine: mongod on the lab hosts is the protocol-level stand-in of tests/standins/mongod.py, installed
below the way MongoDB's package would be (a `mongodb` user, /usr/local/bin/mongod, mongod.service), unless
OPSRUN_MONGOD_BINARY names a real mongod, which is then installed in its place and the same tests run.

Shows: the set initiated from nothing, a second apply changing nothing, a priority change applied by
replSetReconfig, and a rolling restart that restarts the secondaries first and steps the primary down last,
a writer seeing errors only around that one election and losing no acknowledged write."""

from __future__ import annotations

import pytest
from pymongo import MongoClient

from tests.conftest import opsrun_json
from tests.lab.conftest import converge, install_mongod
from tests.mongo.writer import writing

pytestmark = pytest.mark.lab
HOSTS = ["web1", "web2", "web3"]
RECONCILE = "Replica set rs0 matches the inventory"


@pytest.fixture(scope="module")
def installed(lab, on_host):
    """mongod 'already installed' on the three hosts, with no data and no configuration yet."""
    install_mongod(on_host, HOSTS)


@pytest.fixture
def replica_set(installed) -> None:
    """The set as the repo says (initiated, or put back after a test changed it): what each test but the
    first apply starts from."""
    converge("mongo_replicaset")


@pytest.fixture
def nothing_yet(lab, on_host) -> None:
    """mongod installed, with no data and no configuration: the first apply starts from nothing."""
    install_mongod(on_host, HOSTS)


def members(addresses) -> str:
    return ",".join(f"{addresses[h]}:27017" for h in HOSTS)


def rs_client(addresses, **kw) -> MongoClient:
    return MongoClient(f"mongodb://{members(addresses)}/?replicaSet=rs0", serverSelectionTimeoutMS=20000, **kw)


def changed_ops(doc: dict) -> dict[str, list[str]]:
    return {h: [op["name"] for op in d["operations"] if op["changed"]] for h, d in doc["hosts"].items()}


def primary_host(addresses) -> str:
    with rs_client(addresses) as c:
        address = c.admin.command("hello")["primary"].rsplit(":", 1)[0]
    return next(h for h in HOSTS if addresses[h] == address)


def test_initiated_from_nothing_and_verify_passes(nothing_yet, addresses):
    code, doc = opsrun_json("apply", "lab", "mongo_replicaset")
    assert code == 0, doc
    assert RECONCILE in changed_ops(doc)["web3"]  # initiated once every member had been started
    with rs_client(addresses) as c:
        status = c.admin.command("replSetGetStatus")
    assert sorted(m["stateStr"] for m in status["members"]) == ["PRIMARY", "SECONDARY", "SECONDARY"]
    code, verified = opsrun_json("verify", "lab", "mongo_replicaset")
    assert code == 0, verified


def test_second_apply_changes_nothing(replica_set):
    code, doc = opsrun_json("apply", "lab", "mongo_replicaset")
    assert code == 0, doc
    assert changed_ops(doc) == {h: [] for h in HOSTS}


def test_a_priority_change_is_applied_by_reconfig(replica_set, addresses, project_copy):
    with rs_client(addresses) as c:
        before = c.admin.command("replSetGetConfig")["config"]["version"]
    inv = project_copy / "inventories" / "lab.py"
    inv.write_text(
        inv.read_text()
        + '\nmongo = [(n, {**d, "mongo_replicaset_priority": 3 if n == "web2" else 1}) for n, d in mongo]\n'
    )
    code, doc = opsrun_json("apply", "lab", "mongo_replicaset", project=project_copy)
    assert code == 0, doc
    with rs_client(addresses) as c:
        config = c.admin.command("replSetGetConfig")["config"]
    assert config["version"] == before + 1
    assert {m["host"]: m["priority"] for m in config["members"]}[f"{addresses['web2']}:27017"] == 3
    code, verified = opsrun_json("verify", "lab", "mongo_replicaset", project=project_copy)
    assert code == 0, verified


def test_a_rolling_restart_steps_the_primary_down_last(replica_set, addresses, project_copy):
    primary = primary_host(addresses)
    data = project_copy / "group_data" / "mongo.py"
    data.write_text(data.read_text() + "\nmongo_replicaset_slow_op_threshold_ms = 250\n")
    with writing(f"mongodb://{members(addresses)}/?replicaSet=rs0", around=0) as writer:
        code, doc = opsrun_json("apply", "lab", "mongo_replicaset", project=project_copy)
    assert code == 0, doc
    assert doc["plan"]["batches"][-1] == [primary], "the primary's host was not last"
    for h in HOSTS:
        assert "Restart for the new mongod.conf (a primary steps down first)" in changed_ops(doc)[h]
    assert primary_host(addresses) != primary, "the old primary was not stepped down"
    assert len(writer.acked) > 200, "the writer hardly wrote"
    if writer.errors:  # only around the one election
        assert writer.errors[-1][0] - writer.errors[0][0] < 15, writer.errors
    assert set(writer.acked) <= writer.stored(), "an acknowledged write was lost"
    code, verified = opsrun_json("verify", "lab", "mongo_replicaset", project=project_copy)
    assert code == 0, verified
