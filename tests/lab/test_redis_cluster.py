"""`opsrun apply lab redis_cluster` on real hosts: a 6-node Redis Cluster (2 ports on each of 3 hosts) from
nothing, idempotent, a lost node (stopped, data wiped) seen by --dry-run and brought back as a replica, and a
settings change rolled through the nodes (replicas first, masters after a failover) while a client writes
and reads: no acknowledged write is lost."""

from __future__ import annotations

import os
import threading
import time

import pytest
import redis
from redis.cluster import ClusterNode, RedisCluster

from tests.conftest import opsrun_json
from tests.lab.conftest import converge

pytestmark = pytest.mark.lab
HOSTS = ["web1", "web2", "web3"]
PORTS = {"web1": [7000, 7001], "web2": [7002, 7003], "web3": [7004, 7005]}
RECONCILE = "Cluster matches the topology"


@pytest.fixture(scope="module")
def from_nothing(lab, on_host):
    for h in HOSTS:
        on_host(
            h,
            "systemctl stop 'redis-server@*' redis-server 2>/dev/null; DEBIAN_FRONTEND=noninteractive "
            "apt-get purge -y -q redis-server redis-tools >/dev/null; rm -rf /etc/redis /var/lib/redis",
        )


@pytest.fixture(scope="module")
def created(from_nothing) -> dict:
    """The first apply's document: the cluster made from nothing (what later tests start from, so that each
    passes when selected alone)."""
    code, doc = opsrun_json("apply", "lab", "redis_cluster")
    assert code == 0, doc
    return doc


@pytest.fixture
def converged(created) -> None:
    """The cluster as the repo says (a test before may have changed its settings or lost a node)."""
    converge("redis_cluster")


@pytest.fixture(scope="module")
def cluster(created, addresses):
    client = RedisCluster(
        startup_nodes=[ClusterNode(addresses[h], p) for h in HOSTS for p in PORTS[h]],
        password=os.environ["OPSRUN_REDIS_PASSWORD"],
        socket_timeout=2,
        require_full_coverage=True,
    )
    try:
        yield client
    finally:
        client.close()


def node(addresses, host: str, port: int) -> redis.Redis:
    return redis.Redis(addresses[host], port, password=os.environ["OPSRUN_REDIS_PASSWORD"], socket_timeout=2)


def changed_ops(doc: dict) -> dict[str, list[str]]:
    return {h: [op["name"] for op in d["operations"] if op["changed"]] for h, d in doc["hosts"].items()}


def node_info(addresses, host: str, port: int) -> dict:
    with node(addresses, host, port) as c:
        info = c.execute_command("CLUSTER", "INFO")
        return dict(line.split(":", 1) for line in info.decode().split() if ":" in line) | {
            "role": c.info("replication")["role"]
        }


def test_from_nothing_a_healthy_six_node_cluster(created, converged, addresses):
    doc = created
    assert doc["plan"]["batches"] == [[h] for h in HOSTS]
    assert RECONCILE in changed_ops(doc)["web3"]  # created once every node had been started
    roles = {(h, p): node_info(addresses, h, p) for h in HOSTS for p in PORTS[h]}
    assert {i["cluster_state"] for i in roles.values()} == {"ok"}
    assert sorted(i["role"] for i in roles.values()) == ["master"] * 3 + ["slave"] * 3
    code, verified = opsrun_json("verify", "lab", "redis_cluster")
    assert code == 0, verified
    assert all(len(verified["hosts"][h]["tests"]) == 5 for h in HOSTS)


def test_second_apply_changes_nothing(converged):
    code, doc = opsrun_json("apply", "lab", "redis_cluster")
    assert code == 0, doc
    assert changed_ops(doc) == {h: [] for h in HOSTS}


def test_a_lost_node_is_reported_then_rejoins_as_a_replica(converged, on_host, addresses):
    on_host("web2", "systemctl stop redis-server@7003 && rm -rf /var/lib/redis/7003/*")
    code, plan = opsrun_json("apply", "lab", "redis_cluster", "--dry-run")
    assert code == 0, plan
    would = changed_ops(plan)
    # pyinfra names an operation by its line: the loop's ops carry every host's port in their name
    assert any("7003: redis-server@7003 enabled and running" in name for name in would["web2"])
    assert RECONCILE in would["web2"] and would["web1"] == would["web3"] == []
    [reconcile] = [op for op in plan["hosts"]["web2"]["operations"] if op["name"] == RECONCILE]
    assert any(f"start and re-join {addresses['web2']}:7003" in c for c in reconcile["commands"])

    code, doc = opsrun_json("apply", "lab", "redis_cluster")
    assert code == 0, doc
    assert node_info(addresses, "web2", 7003)["role"] == "slave"
    code, verified = opsrun_json("verify", "lab", "redis_cluster")
    assert code == 0, verified


class Writer(threading.Thread):
    """Writes k0, k1, ... and reads each back, through the cluster client, until stopped; remembers what
    was acknowledged and when errors happened."""

    def __init__(self, cluster: RedisCluster):
        super().__init__(daemon=True)
        self.cluster, self.stop = cluster, threading.Event()
        self.acked: list[int] = []
        self.errors: list[float] = []

    def run(self) -> None:
        i = 0
        while not self.stop.is_set():
            try:
                self.cluster.set(f"k{i}", i)
                self.acked.append(i)
                assert self.cluster.get(f"k{i}") == str(i).encode()
            except (redis.RedisError, AssertionError):
                self.errors.append(time.monotonic())
                time.sleep(0.05)
            i += 1


def test_a_settings_change_rolls_through_with_no_write_lost(converged, project_copy, cluster, addresses):
    data = project_copy / "group_data" / "redis.py"
    data.write_text(data.read_text() + '\nredis_cluster_settings = {**redis_cluster_settings, "maxmemory": "96mb"}\n')
    writer = Writer(cluster)
    writer.start()
    try:
        code, doc = opsrun_json("apply", "lab", "redis_cluster", project=project_copy)
    finally:
        writer.stop.set()
        writer.join(timeout=30)
    assert code == 0, doc
    for h in HOSTS:
        assert "Nodes run the desired settings (replicas first, masters after a failover)" in changed_ops(doc)[h]
    for h in HOSTS:
        for p in PORTS[h]:
            with node(addresses, h, p) as c:
                assert int(c.config_get("maxmemory")["maxmemory"]) == 96 * 1024**2
    assert len(writer.acked) > 500, "the writer hardly wrote"
    lost = [i for i in writer.acked if cluster.get(f"k{i}") != str(i).encode()]
    assert lost == []
    code, verified = opsrun_json("verify", "lab", "redis_cluster", project=project_copy)
    assert code == 0, verified
