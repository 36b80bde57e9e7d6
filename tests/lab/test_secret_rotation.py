"""The Redis Cluster's password rotated live by `opsrun apply lab redis_cluster` (deploys/_redis_auth.py)
while a client writes continuously: no write fails, every node takes the new password and refuses the old
one afterwards, the cluster stays ok, the auth files match (the verify suite logs in with them). A node
whose auth file holds a wrong password is named by drift's verification; nodes that run a password nobody
knows are refused before anything changes. Each test starts from the cluster on the session's password
and puts it back afterwards. (The MongoDB keyfile's rotation: tests/lab/test_mongo_keyfile_rotation.py.)"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Iterator

import pytest
import redis
from redis.cluster import ClusterNode, RedisCluster

from tests.conftest import opsrun_json
from tests.lab.conftest import converge
from tests.redis.writer import RotationWriter

pytestmark = pytest.mark.lab
HOSTS = ["web1", "web2", "web3"]
PORTS = {"web1": [7000, 7001], "web2": [7002, 7003], "web3": [7004, 7005]}
ROTATE = "Nodes run the password of group_data (changed live)"
AUTH = "/etc/redis/cluster-auth.conf"


def changed_ops(doc: dict) -> dict[str, list[str]]:
    return {h: [op["name"] for op in d["operations"] if op["changed"]] for h, d in doc["hosts"].items()}


def takes(addresses, host: str, port: int, password: str) -> bool:
    """Does the node accept `password` on a new connection?"""
    try:
        with redis.Redis(addresses[host], port, password=password, socket_timeout=2) as c:
            return bool(c.ping())
    except redis.AuthenticationError:
        return False


@pytest.fixture
def original(lab, on_host) -> Iterator[str]:
    """The cluster on the session's password (OPSRUN_REDIS_PASSWORD), and again so after the test, whatever
    the test set the variable to: an apply with the original password rotates the cluster back to it."""
    password = os.environ["OPSRUN_REDIS_PASSWORD"]
    converge("redis_cluster")
    try:
        yield password
    finally:
        os.environ["OPSRUN_REDIS_PASSWORD"] = password
        code, doc = opsrun_json("apply", "lab", "redis_cluster")
        assert code == 0, doc


def cluster_client(addresses, password: str) -> RedisCluster:
    return RedisCluster(
        startup_nodes=[ClusterNode(addresses[h], p) for h in HOSTS for p in PORTS[h]],
        password=password,
        socket_timeout=2,
        require_full_coverage=True,
    )


def test_the_password_is_rotated_live_under_a_writing_client(original, addresses):
    new = "opsrun-redis-rotated-" + secrets.token_hex(12)
    writer = RotationWriter([(addresses[h], p) for h in HOSTS for p in PORTS[h]], original, new, prefix="rot")
    os.environ["OPSRUN_REDIS_PASSWORD"] = new
    writer.start()
    try:
        code, doc = opsrun_json("apply", "lab", "redis_cluster")
    finally:
        writer.stop.set()
        writer.join(timeout=30)
        writer.close()
    assert code == 0, doc
    assert ROTATE in changed_ops(doc)["web1"]  # the first host of the topology rotates every node
    assert writer.failed == []
    assert len(writer.acked) > 200, "the writer hardly wrote"
    for h in HOSTS:
        for p in PORTS[h]:
            assert takes(addresses, h, p, new), f"{h}:{p} refuses the new password"
            assert not takes(addresses, h, p, original), f"{h}:{p} still takes the old password"
            with redis.Redis(addresses[h], p, password=new, socket_timeout=2) as c:
                assert c.config_get("masterauth")["masterauth"] == new, f"{h}:{p} masterauth"
                info = c.execute_command("CLUSTER", "INFO").decode()
                assert "cluster_state:ok" in info, f"{h}:{p}: {info}"
    with cluster_client(addresses, new) as after:
        lost = [i for i in writer.acked if after.get(f"rot{i}") != str(i).encode()]
    assert lost == []
    code, verified = opsrun_json("verify", "lab", "redis_cluster")  # the suite logs in with the auth files
    assert code == 0, verified
    code, again = opsrun_json("apply", "lab", "redis_cluster")
    assert code == 0, again
    assert changed_ops(again) == {h: [] for h in HOSTS}
    assert json.dumps(doc).count(new) == 0 and json.dumps(doc).count(original) == 0


@pytest.fixture
def wrong_file_on_web2(original, on_host) -> Iterator[None]:
    """web2's auth file with a password that is not the cluster's (its nodes keep running the right one)."""
    on_host("web2", f"sed -i 's/^requirepass .*/requirepass not-the-cluster-password/' {AUTH}")
    try:
        yield
    finally:
        converge("redis_cluster")  # the auth file written again from group_data


def test_drift_names_a_node_whose_password_is_not_the_clusters(wrong_file_on_web2):
    code, doc = opsrun_json("drift", "lab", "redis_cluster")
    assert code == 3, doc
    text = json.dumps(doc)
    assert "authentication failed on web2:7002 (the password in OPSRUN_REDIS_PASSWORD is not the cluster's)" in text
    for parse_error in ("KeyError", "IndexError", "ValueError: not enough values"):
        assert parse_error not in text


@pytest.fixture
def unknown_password(original, on_host) -> Iterator[None]:
    """Every auth file with a password the nodes do not run: the one they run is known nowhere."""
    for h in HOSTS:
        on_host(h, f"sed -i 's/^requirepass .*/requirepass not-the-cluster-password/' {AUTH}")
    try:
        yield
    finally:
        os.environ["OPSRUN_REDIS_PASSWORD"] = original  # the nodes run it: the auth files are written again
        converge("redis_cluster")


def test_nodes_on_an_unknown_password_are_refused_before_anything_changes(unknown_password, original, addresses):
    os.environ["OPSRUN_REDIS_PASSWORD"] = "opsrun-redis-other-" + secrets.token_hex(12)
    code, doc = opsrun_json("apply", "lab", "redis_cluster")
    assert code == 1, doc
    text = json.dumps(doc)
    assert "the password they run with is unknown, nothing was changed" in text
    assert "redis_cluster_auth.secret_env.previous" in text
    assert all(takes(addresses, h, p, original) for h in HOSTS for p in PORTS[h])
