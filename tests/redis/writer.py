"""A client that writes continuously while the Redis Cluster's password is rotated (tests/redis/ on
loopback, tests/lab/test_secret_rotation.py on the lab)."""

from __future__ import annotations

import threading
import time

import redis
from redis.cluster import ClusterNode, RedisCluster


def refused(exc: Exception) -> bool:
    """Is this the server refusing a password (not any other failure)?"""
    return isinstance(exc, redis.AuthenticationError) or any(
        word in str(exc) for word in ("WRONGPASS", "NOAUTH", "invalid username-password")
    )


class RotationWriter(threading.Thread):
    """SET then GET `prefix`0, 1, ... through a cluster client on the old password, moving to the new one
    when the old is refused (what an app does during a rotation); every other failure, or a refusal of both,
    is counted in `failed`."""

    def __init__(self, nodes: list[tuple[str, int]], old: str, new: str, prefix: str = "k"):
        super().__init__(daemon=True)
        startup = [ClusterNode(address, port) for address, port in nodes]
        self.passwords, self.prefix = (old, new), prefix
        self.connect = lambda password: RedisCluster(
            startup_nodes=startup, password=password, socket_timeout=2, require_full_coverage=True
        )
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
                    client.set(f"{self.prefix}{i}", i)
                    self.acked.append(i)
                    if client.get(f"{self.prefix}{i}") != str(i).encode():
                        self.failed.append((i, "read back wrong"))
                    break
                except redis.RedisError as exc:
                    if refused(exc) and self.using == 0:
                        self.clients.append(self.connect(self.passwords[1]))
                        self.using = 1
                        continue
                    self.failed.append((i, type(exc).__name__))
                    time.sleep(0.05)
                    break
            i += 1

    def close(self) -> None:
        for c in self.clients:
            c.close()
