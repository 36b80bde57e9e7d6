"""DR checks of the Redis Cluster: its health (state, slots, a connected replica for every master) and the
RPO probe (a key written on a master, timed until its replica reads it); the helpers the drill shares."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from opsrun.dr.model import FAIL, PASS, Check, DRRun
from opsrun.dr.timing import rpo_check
from opsrun.model import secret_sources
from opsrun.model.inventory import Inventory

FailoverDrill = Callable[[Any, str | None, DRRun], Check]  # (cluster, password, run)


def redis_nodes(inv: Inventory) -> list[tuple[str, int]]:
    return [
        (str(inv.hosts[h].data.get("ssh_hostname") or h), int(p))
        for h in inv.select("redis")
        for p in inv.hosts[h].data.get("redis_cluster_ports", [])
    ]


def password_of(inv: Inventory) -> str | None:
    hosts = inv.select("redis")
    ref = ((inv.hosts[hosts[0]].data.get("redis_cluster_auth") or {}).get("secret_env") or {}).get("requirepass")
    return secret_sources.read(ref) if ref else None


def redis_checks(inv: Inventory, run: DRRun, drill: FailoverDrill | None) -> list[Check]:
    """Health and the RPO probe; `drill` (the failover drill, with --drill) when the cluster is healthy."""
    import redis
    from redis.cluster import ClusterNode, RedisCluster

    nodes = redis_nodes(inv)
    password = password_of(inv)
    with redis.Redis(nodes[0][0], nodes[0][1], password=password, socket_timeout=2) as one:
        info = one.execute_command("CLUSTER", "INFO").decode()
        listed = lines(one.execute_command("CLUSTER", "NODES"))
    fields = dict(line.split(":", 1) for line in info.split() if ":" in line)
    masters = [line.split() for line in listed if " master " in f" {line.split()[2].replace(',', ' ')} "]
    replicas = [line.split() for line in listed if "slave" in line.split()[2]]
    lonely = [m[1] for m in masters if not any(r[3] == m[0] and r[7] == "connected" for r in replicas)]
    ok = fields.get("cluster_state") == "ok" and fields.get("cluster_slots_ok") == "16384" and not lonely
    health = Check(
        "redis",
        "cluster health",
        PASS if ok else FAIL,
        [
            f"cluster_state {fields.get('cluster_state')}, slots ok {fields.get('cluster_slots_ok')}/16384",
            f"{len(masters)} masters, {len(replicas)} replicas"
            + (f"; masters without a connected replica: {', '.join(lonely)}" if lonely else ""),
        ],
        f"CLUSTER INFO; CLUSTER NODES on {nodes[0][0]}:{nodes[0][1]}",
    )
    checks = [health]
    cluster = RedisCluster(startup_nodes=[ClusterNode(h, p) for h, p in nodes], password=password, socket_timeout=2)
    try:
        checks.append(redis_rpo_probe(cluster, password, run))
        if drill is not None and ok:
            checks.append(drill(cluster, password, run))
    finally:
        cluster.close()
    return checks


def redis_rpo_probe(cluster: Any, password: str | None, run: DRRun) -> Check:
    import redis

    key = f"opsrun:dr:marker:{time.time_ns()}"
    master = cluster.get_node_from_key(key)
    listed = cluster.get_redis_connection(master).execute_command("CLUSTER", "REPLICAS", node_id(cluster, master))
    replica_line = lines(listed)[0].split()
    host, port = replica_line[1].split("@")[0].rsplit(":", 1)
    with redis.Redis(host, int(port), password=password, socket_timeout=2) as replica:
        replica.execute_command("READONLY")
        start = time.monotonic()
        cluster.set(key, "1", ex=3600)
        run.step(f"redis: wrote {key} on master {master.host}:{master.port}")
        source = "SET on the master; READONLY + GET on its replica until found"
        return rpo_check("redis", f"replica {host}:{port}", lambda: replica.get(key), start, run, source)


def lines(reply: Any) -> list[str]:
    """CLUSTER NODES (one bulk string) or CLUSTER REPLICAS (an array of them) as text lines."""
    items = reply if isinstance(reply, list) else [reply]
    text = "\n".join(i.decode() if isinstance(i, bytes) else str(i) for i in items)
    return [line for line in text.splitlines() if line.strip()]


def node_id(cluster: Any, node: Any) -> str:
    return str(cluster.get_redis_connection(node).execute_command("CLUSTER", "MYID").decode())


def replication(node: Any) -> dict[str, Any]:
    info: dict[str, Any] = node.info("replication")
    return info


def role(node: Any) -> str:
    return str(replication(node)["role"])


def serving_ok(node: Any) -> bool:
    return "cluster_state:ok" in node.execute_command("CLUSTER", "INFO").decode()
