"""deploys/_redis_auth.rotate on a real six-node Redis Cluster on loopback (tests/redis/conftest.py), while
a client writes continuously: no write fails, every node takes the new password and refuses the old one,
replicas authenticate to their masters with the new one, the cluster stays ok throughout. The lab test
tests/lab/test_secret_rotation.py drives the same through `opsrun apply` on hosts."""

from __future__ import annotations

import redis

from deploys import _redis, _redis_auth
from opsrun.support.waiting import poll_until
from tests.redis.conftest import takes
from tests.redis.writer import RotationWriter


def test_every_node_moves_to_the_new_password_with_no_failed_write(redis_cluster):
    old, new = redis_cluster.password, "new-" + old_suffix(redis_cluster.password)
    nodes = redis_cluster.nodes
    writer = RotationWriter([(n.address, n.port) for n in nodes], old, new)
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


def wrote(writer: RotationWriter, count: int) -> None:
    poll_until(lambda: len(writer.acked) >= count, timeout=30, interval=0.05, what=f"{count} writes acknowledged")


def old_suffix(password: str) -> str:
    return password.removeprefix("old-")
