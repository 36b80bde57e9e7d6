"""deploys/_redis_auth.rotate on a real six-node Redis Cluster on loopback (tests/redis/conftest.py), while
a client writes continuously: no write fails, every node takes the new password and refuses the old one,
replicas authenticate to their masters with the new one, the cluster stays ok throughout. The lab test
tests/lab/test_secret_rotation.py drives the same through `opsrun apply` on hosts."""

from __future__ import annotations

import threading
import time

import redis
from redis.cluster import ClusterNode, RedisCluster

from deploys import _redis, _redis_auth
from opsrun.waiting import poll_until
from tests.redis.conftest import takes


def refused(exc: Exception) -> bool:
    return isinstance(exc, redis.AuthenticationError) or "WRONGPASS" in str(exc) or "NOAUTH" in str(exc)


class Writer(threading.Thread):
    """SET then GET k0, k1, ... through a cluster client on the old password, moving to the new one when
    the old is refused (an app during a rotation); every other failure, or one with both, is counted."""

    def __init__(self, nodes, old: str, new: str):
        super().__init__(daemon=True)
        startup = [ClusterNode(n.address, n.port) for n in nodes]
        self.passwords = (old, new)
        self.connect = lambda password: RedisCluster(startup_nodes=startup, password=password, socket_timeout=2)
        self.clients = [self.connect(old)]  # the new one once the old is refused (it connects at once)
        self.using, self.stop = 0, threading.Event()
        self.acked: list[int] = []
        self.failed: list[tuple[int, str]] = []

    def run(self) -> None:
        i = 0
        while not self.stop.is_set():
            for _attempt in range(2):
                try:
                    client = self.clients[self.using]
                    client.set(f"k{i}", i)
                    self.acked.append(i)
                    if client.get(f"k{i}") != str(i).encode():
                        self.failed.append((i, "read back wrong"))
                    break
                except redis.RedisError as exc:
                    if refused(exc) and self.using == 0:
                        self.clients.append(self.connect(self.passwords[1]))
                        self.using = 1
                        continue
                    self.failed.append((i, f"{type(exc).__name__}"))
                    time.sleep(0.05)
                    break
            i += 1

    def close(self) -> None:
        for c in self.clients:
            c.close()


def test_every_node_moves_to_the_new_password_with_no_failed_write(redis_cluster):
    old, new = redis_cluster.password, "new-" + old_suffix(redis_cluster.password)
    nodes = redis_cluster.nodes
    writer = Writer(nodes, old, new)
    writer.start()
    try:
        wrote(writer, 50)  # on the old password first
        redis_cluster.password = new  # group_data now names the new one; the nodes still run the old
        _redis.OLD_PASSWORDS[:] = [old]  # what rotate_password learnt from the auth file
        _redis_auth.rotate(1)
        wrote(writer, len(writer.acked) + 50)  # and on the new one afterwards
    finally:
        writer.stop.set()
        writer.join(timeout=30)
        writer.close()
    assert writer.failed == []
    assert len(writer.acked) > 100, "the writer hardly wrote"
    for node in nodes:
        assert takes(node, new), f"{node} refuses the new password"
        assert not takes(node, old), f"{node} still takes the old password"
        with redis.Redis(node.address, node.port, password=new) as c:
            assert c.config_get("masterauth")["masterauth"] == new, node
    assert _redis.cluster_ok([_redis.view(n) for n in nodes], 1)
    assert _redis.OLD_PASSWORDS == []


def test_a_node_already_moved_over_is_left_as_it_is(redis_cluster):
    """A rotation that stopped half way (some nodes on both passwords) is finished by the next one."""
    old, new = redis_cluster.password, "new-" + old_suffix(redis_cluster.password)
    first = redis_cluster.nodes[0]
    with redis.Redis(first.address, first.port, password=old) as c:
        c.execute_command("ACL", "SETUSER", "default", f">{new}")
    redis_cluster.password = new
    _redis.OLD_PASSWORDS[:] = [old]
    _redis_auth.rotate(1)
    assert all(takes(n, new) and not takes(n, old) for n in redis_cluster.nodes)


def wrote(writer: Writer, count: int) -> None:
    poll_until(lambda: len(writer.acked) >= count, timeout=30, interval=0.05, what=f"{count} writes acknowledged")


def old_suffix(password: str) -> str:
    return password.removeprefix("old-")
