"""What "done" means for deploys/mongo_replicaset.py, asked of each host's member with pymongo: mongod
enabled and running; the member in the configured set; exactly one PRIMARY, every member healthy and
PRIMARY or SECONDARY; replication lag under the configured threshold; this member's priority and votes
as configured."""

import pytest
from pymongo import MongoClient


@pytest.fixture(scope="module")
def status_and_config(host_data):
    address = host_data.get("ssh_hostname")
    port = host_data.get("mongo_replicaset_port", 27017)
    with MongoClient(address, port, directConnection=True, serverSelectionTimeoutMS=5000) as client:
        return (
            client.admin.command("replSetGetStatus"),
            client.admin.command("replSetGetConfig")["config"],
            f"{address}:{port}",
        )


def test_mongod_is_enabled_and_running(host):
    unit = host.service("mongod")
    assert (unit.is_enabled, unit.is_running) == (True, True)


def test_member_of_the_configured_set(status_and_config, host_data):
    status, _config, _me = status_and_config
    assert status["set"] == host_data.get("mongo_replicaset_name", "rs0")


def test_one_primary_and_every_member_healthy(status_and_config):
    status, _config, _me = status_and_config
    states = {m["name"]: (m["stateStr"], m["health"]) for m in status["members"]}
    assert [s for s, _h in states.values()].count("PRIMARY") == 1, states
    assert all(s in ("PRIMARY", "SECONDARY") and h == 1 for s, h in states.values()), states


def test_replication_lag_under_threshold(status_and_config, host_data):
    status, _config, _me = status_and_config
    threshold = host_data.get("mongo_replicaset_lag_threshold_seconds", 10)
    primary = next(m for m in status["members"] if m["stateStr"] == "PRIMARY")
    lags = {m["name"]: (primary["optimeDate"] - m["optimeDate"]).total_seconds() for m in status["members"]}
    assert max(lags.values()) <= threshold, lags


def test_this_member_priority_and_votes_as_configured(status_and_config, host_data):
    _status, config, me = status_and_config
    [member] = [m for m in config["members"] if m["host"] == me]
    want = (float(host_data.get("mongo_replicaset_priority", 1)), int(host_data.get("mongo_replicaset_votes", 1)))
    assert (float(member.get("priority", 1)), int(member.get("votes", 1))) == want
