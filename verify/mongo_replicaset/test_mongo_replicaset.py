"""What "done" means for deploys/mongo_replicaset.py, asked of each host's member with pymongo: mongod
enabled and running; the member in the configured set; exactly one PRIMARY, every member healthy and
PRIMARY or SECONDARY; replication lag under the configured threshold; this member's priority and votes
as configured."""

import pytest
from pymongo import MongoClient
from pymongo.errors import PyMongoError

from opsrun import answers


@pytest.fixture(scope="module")
def status_and_config(host_data):
    """replSetGetStatus and replSetGetConfig of this member, each checked to be one before it is read."""
    address = host_data.get("ssh_hostname")
    port = host_data.get("mongo_replicaset_port", 27017)
    me = f"{address}:{port}"
    source = answers.secret_source(host_data.get("mongo_replicaset_auth"), "keyfile")
    with MongoClient(address, port, directConnection=True, serverSelectionTimeoutMS=5000) as client:
        answered = {}
        for command in ("replSetGetStatus", "replSetGetConfig"):
            try:
                answered[command] = client.admin.command(command)
            except PyMongoError as exc:
                raise answers.mongo_refusal(exc, command, me, source) from None
    config = answered["replSetGetConfig"].get("config")
    if not isinstance(config, dict):
        raise answers.Refused(f"{me} gave no config to replSetGetConfig")
    return answers.replset_status(answered["replSetGetStatus"], me), config, me


def test_mongod_is_enabled_and_running(host):
    unit = host.service("mongod")
    assert (unit.is_enabled, unit.is_running) == (True, True)


def test_member_of_the_configured_set(status_and_config, host_data):
    status, _config, _me = status_and_config
    assert status["set"] == host_data.get("mongo_replicaset_name", "rs0")


def test_one_primary_and_every_member_healthy(status_and_config):
    status, _config, _me = status_and_config
    states = {m.get("name"): (m.get("stateStr"), m.get("health")) for m in status["members"]}
    assert [s for s, _h in states.values()].count("PRIMARY") == 1, states
    assert all(s in ("PRIMARY", "SECONDARY") and h == 1 for s, h in states.values()), states


def test_replication_lag_under_threshold(status_and_config, host_data):
    status, _config, me = status_and_config
    threshold = host_data.get("mongo_replicaset_lag_threshold_seconds", 10)
    primary = answers.primary_of(status, me)
    lags = {m["name"]: (primary["optimeDate"] - m["optimeDate"]).total_seconds() for m in status["members"]}
    assert max(lags.values()) <= threshold, lags


def test_this_member_priority_and_votes_as_configured(status_and_config, host_data):
    _status, config, me = status_and_config
    member = answers.member_config(config, me)
    want = (float(host_data.get("mongo_replicaset_priority", 1)), int(host_data.get("mongo_replicaset_votes", 1)))
    assert (float(member.get("priority", 1)), int(member.get("votes", 1))) == want
