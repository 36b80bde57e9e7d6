"""A real Redis Cluster on loopback for the tests of deploys/_redis*.py: six redis-server processes (three
masters, three replicas) on free ports in a temporary folder, configured as deploys/redis_cluster.py
configures a node (the password in an included auth file), formed by the deploy's own `create`."""

from __future__ import annotations

import os
import random
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

HOSTS = ("h1", "h2", "h3")  # two nodes per "host", as the lab has them


def free_port_pair() -> int:
    """A loopback port P from 20000 where P and P + 10000 (its cluster bus) are both free."""
    for _ in range(200):
        port = random.randint(20000, 30000)
        try:
            with socket.socket() as a, socket.socket() as b:
                a.bind(("127.0.0.1", port))
                b.bind(("127.0.0.1", port + 10000))
                return port
        except OSError:
            continue
    raise RuntimeError("no free pair of loopback ports from 20000")


def redis_server(tmp: Path) -> str:
    """The redis-server binary: OPSRUN_REDIS_SERVER, else redis-server on PATH, else Debian's redis-tools
    binary (redis-check-rdb is redis-server under another name: a link named redis-server runs the server)."""
    found = os.environ.get("OPSRUN_REDIS_SERVER") or shutil.which("redis-server")
    if found:
        return found
    check = shutil.which("redis-check-rdb")
    if check is None:
        pytest.fail("no redis-server here (make test-deps installs the Debian package redis-tools)", pytrace=False)
    link = tmp / "redis-server"
    link.symlink_to(check)
    return str(link)


class Cluster:
    """The six nodes: start, stop, and the `deploys._redis.Node` of each."""

    def __init__(self, base: Path, password: str):
        from deploys._redis import Node

        self.base, self.password = base, password
        self.binary = redis_server(base)
        self.nodes = [Node(HOSTS[i // 2], "127.0.0.1", free_port_pair()) for i in range(6)]
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self) -> None:
        auth = self.base / "cluster-auth.conf"
        auth.write_text(f"requirepass {self.password}\nmasterauth {self.password}\n")
        auth.chmod(0o600)
        for node in self.nodes:
            folder = self.base / str(node.port)
            folder.mkdir()
            conf = folder / "redis.conf"
            conf.write_text(
                f"port {node.port}\nbind 127.0.0.1\ndir {folder}\ncluster-enabled yes\n"
                f'cluster-config-file nodes.conf\ncluster-node-timeout 2000\nsave ""\nappendonly no\n'
                f"logfile {folder / 'redis.log'}\ninclude {auth}\n"
            )
            self.procs.append(subprocess.Popen([self.binary, str(conf)], stdin=subprocess.DEVNULL))

    def stop(self) -> None:
        for proc in self.procs:
            proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.fixture
def redis_cluster(tmp_path, monkeypatch) -> Iterator[Cluster]:
    """A healthy six-node cluster on a fresh password, the deploy's view of it (topology, password) pointed
    at it; stopped afterwards."""
    import secrets

    from deploys import _redis, _redis_auth

    cluster = Cluster(tmp_path, "old-" + secrets.token_hex(12))
    monkeypatch.setattr(_redis, "topology", lambda: cluster.nodes)
    monkeypatch.setattr(_redis_auth, "topology", lambda: cluster.nodes)
    monkeypatch.setattr(_redis, "password", lambda: cluster.password)
    monkeypatch.setattr(_redis_auth, "password", lambda: cluster.password)
    cluster.start()
    try:
        _redis.wait_for("every node to answer", lambda: all(_redis.view(n).up for n in cluster.nodes), timeout=20)
        _redis.create([_redis.view(n) for n in cluster.nodes], 1)
        _redis.wait_for(
            "the cluster to be ok", lambda: _redis.cluster_ok([_redis.view(n) for n in cluster.nodes], 1), timeout=60
        )
        yield cluster
    finally:
        cluster.stop()
        _redis.OLD_PASSWORDS.clear()


def takes(node, password: str) -> bool:
    try:
        with redis.Redis(node.address, node.port, password=password, socket_timeout=2) as c:
            return bool(c.ping())
    except redis.AuthenticationError:
        return False
