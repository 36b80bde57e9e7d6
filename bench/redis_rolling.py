"""Benchmark: a settings change (maxmemory) rolled through the lab's 6-node Redis Cluster while one client
writes and reads keys: the rollout's wall time, each node restart and failover, the client's error
windows around each failover (errors closer than 0.5 s apart count as one window), its slowest write, and
lost writes (acknowledged, then missing).

Run by hand as root from the repository, with the lab up and the cluster deployed
(`opsrun apply lab redis_cluster`): python bench/redis_rolling.py
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import redis
from apply_nochange import ops_copy
from redis.cluster import ClusterNode, RedisCluster

from opsrun.lab import Lab

PORTS = [7000, 7001, 7002, 7003, 7004, 7005]


def main() -> None:
    os.environ.setdefault("OPSRUN_REDIS_PASSWORD", "bench-" + secrets.token_hex(12))
    addresses = [h.address for h in Lab().status()][:3]
    nodes = [ClusterNode(addresses[i // 2], p) for i, p in enumerate(PORTS)]
    cluster = RedisCluster(startup_nodes=nodes, password=os.environ["OPSRUN_REDIS_PASSWORD"], socket_timeout=2)
    acked: list[int] = []
    errors: list[float] = []
    slowest = [0.0]
    stop = threading.Event()

    def write() -> None:
        i = 0
        while not stop.is_set():
            start = time.monotonic()
            try:
                cluster.set(f"bench{i}", i)
                acked.append(i)
            except redis.RedisError:
                errors.append(time.monotonic())
                time.sleep(0.01)
            slowest[0] = max(slowest[0], time.monotonic() - start)
            i += 1

    current = int(cluster.config_get("maxmemory", target_nodes=RedisCluster.RANDOM)["maxmemory"])
    new = "128mb" if current != 128 * 1024**2 else "96mb"
    with tempfile.TemporaryDirectory() as tmp:
        data = ops_copy(Path(tmp)) / "group_data" / "redis.py"
        data.write_text(
            data.read_text() + f'\nredis_cluster_settings = {{**redis_cluster_settings, "maxmemory": "{new}"}}\n'
        )
        thread = threading.Thread(target=write, daemon=True)
        thread.start()
        started = time.monotonic()
        proc = subprocess.run(
            [sys.executable, "-m", "opsrun", "--project", tmp, "apply", "lab", "redis_cluster", "--format", "json"],
            capture_output=True,
            text=True,
            check=False,
        )
        took = time.monotonic() - started
        stop.set()
        thread.join()
    doc = json.loads(proc.stdout)
    lost = sum(1 for i in acked if cluster.get(f"bench{i}") != str(i).encode())
    windows: list[list[float]] = []
    for t in errors:
        if windows and t - windows[-1][1] < 0.5:
            windows[-1][1] = t
        else:
            windows.append([t, t])
    print(f"maxmemory -> {new}: status {doc['status']}, rollout {took:.1f}s, stages {doc['stage_seconds']}")
    print(f"writes acknowledged: {len(acked)}, failed: {len(errors)}, lost: {lost}, slowest write {slowest[0]:.3f}s")
    print(f"error windows: {len(windows)}: " + ", ".join(f"{b - a:.2f}s" for a, b in windows))


if __name__ == "__main__":
    main()
