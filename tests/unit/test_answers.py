"""The verify suites' checks of a server's answer (opsrun.answers), on redis-cli's recorded output
(tests/data/redis-cli/CASE.stdout and .stderr) and replica set documents: a refusal fails the test saying
what the server said, never as a KeyError, an IndexError or a ValueError."""

from __future__ import annotations

from pathlib import Path

import pytest
from pymongo.errors import OperationFailure

from opsrun import answers

DATA = Path(__file__).resolve().parents[1] / "data" / "redis-cli"
SOURCE = "OPSRUN_REDIS_PASSWORD"


def reply(case: str, rc: int = 0) -> str:
    out, err = (DATA / f"{case}.stdout").read_text(), (DATA / f"{case}.stderr").read_text()
    return answers.redis_reply(out, err, rc, where="web1:7000", source=SOURCE)


@pytest.mark.parametrize(("case", "rc"), [("wrongpass", 0), ("wrongpass", 1), ("noauth", 0)])
def test_a_refused_login_names_the_node_and_where_the_password_comes_from(case, rc):
    with pytest.raises(answers.Refused) as err:
        reply(case, rc)
    assert str(err.value) == (
        "authentication failed on web1:7000 (the password in OPSRUN_REDIS_PASSWORD is not the cluster's)"
    )


@pytest.mark.parametrize(
    ("case", "rc", "said"),
    [
        ("loading", 0, "web1:7000 answered an error: LOADING Redis is loading the dataset in memory"),
        ("refused", 1, "web1:7000 answered an error: Could not connect to Redis at 127.0.0.1:7000"),
    ],
)
def test_an_error_reply_is_said_as_the_server_said_it(case, rc, said):
    with pytest.raises(answers.Refused, match=said):
        reply(case, rc)


def test_cluster_info_and_nodes_are_read_once_they_are_answers():
    info = answers.cluster_info(reply("cluster-info"), "web1:7000")
    assert (info["cluster_state"], info["cluster_slots_ok"]) == ("ok", "16384")
    nodes = answers.cluster_nodes(reply("cluster-nodes"), "web1:7000")
    assert len(nodes) == 6 and sum("master" in n["flags"] for n in nodes) == 3


@pytest.mark.parametrize(
    ("check", "text", "said"),
    [
        (lambda t: answers.cluster_info(t, "web1:7000"), "OK\n", "web1:7000 gave no cluster_state to CLUSTER INFO: OK"),
        (lambda t: answers.cluster_nodes(t, "web1:7000"), "OK\n", "no CLUSTER NODES entry: OK"),
        (lambda t: answers.config_value(t, "timeout", "web1:7000"), "", r"no value for CONFIG GET timeout: \(empty\)"),
    ],
)  # fmt: skip
def test_an_answer_of_the_wrong_shape_is_a_failure_that_says_so(check, text, said):
    with pytest.raises(answers.Refused, match=said):
        check(text)


def test_config_get_gives_its_value():
    assert answers.config_value("maxmemory-policy\nallkeys-lru\n", "maxmemory-policy", "web1:7000") == "allkeys-lru"


@pytest.mark.parametrize(
    ("auth", "source"),
    [
        ({"secret_env": {"requirepass": "OPSRUN_REDIS_PASSWORD"}}, "OPSRUN_REDIS_PASSWORD"),
        ({"secret_env": {"requirepass": {"ssm": "/prod/redis"}}}, "ssm:/prod/redis"),
        ({"secret_env": {"requirepass": {"secretsmanager": "prod/r", "key": "pw"}}}, "secretsmanager:prod/r key pw"),
        (None, "the cluster's auth file (no secret_env set)"),
    ],
)
def test_the_source_of_the_password_is_named_never_its_value(auth, source):
    assert answers.secret_source(auth, "requirepass") == source


def test_a_refused_mongo_login_names_the_source_of_the_key():
    exc = OperationFailure("command replSetGetStatus requires authentication", code=13)
    refused = answers.mongo_refusal(exc, "replSetGetStatus", "10.0.0.1:27017", "OPSRUN_MONGO_KEYFILE")
    assert str(refused) == (
        "authentication failed on 10.0.0.1:27017 for replSetGetStatus "
        "(the members' key comes from OPSRUN_MONGO_KEYFILE)"
    )


def test_a_replica_set_without_status_or_primary_says_so():
    with pytest.raises(answers.Refused, match="gave no replica set status: no replset config has been received"):
        answers.replset_status({"ok": 0, "errmsg": "no replset config has been received"}, "db1:27017")
    status = {"set": "rs0", "members": [{"name": "db1:27017", "stateStr": "SECONDARY"}]}
    with pytest.raises(answers.Refused, match=r"sees no PRIMARY in the set: \{'db1:27017': 'SECONDARY'\}"):
        answers.primary_of(answers.replset_status(status, "db1:27017"), "db1:27017")
    with pytest.raises(answers.Refused, match="db2:27017 is not in the set's config"):
        answers.member_config({"members": [{"host": "db1:27017"}]}, "db2:27017")
