"""The Redis Cluster's password changed live, from the controller (imported by deploys/redis_cluster.py).

When the nodes that answer refuse the password of `redis_cluster_auth.secret_env.requirepass`, they run
with an older one: the one in this host's /etc/redis/cluster-auth.conf (read as a fact, never printed),
or the one `secret_env.previous` refers to. `rotate_password` then moves every node over without a
moment in which a client holding either password, or a replica syncing, is refused:

1. every node learns the new password beside the old (ACL SETUSER default >NEW: the default user holds
   both), host by host, the cluster checked ok after each host;
2. every node authenticates to its master with the new one (CONFIG SET masterauth);
3. every node forgets the old (ACL SETUSER default <OLD), host by host, the cluster checked ok.

The nodes' configuration includes the auth file, which deploys/redis_cluster.py writes with the new
password after this operation (a restarted node starts with it); the rendered config files stay as the
template makes them (no CONFIG REWRITE, which would add the password to them). No password is ever an
argument of a command (a dry run lists those) or part of a message: redis-py sends them over the
protocol, never on a command line.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import redis
from pyinfra import host
from pyinfra.api import FactBase, FunctionCommand, QuoteString, StringCommand, operation

from deploys._redis import OLD_PASSWORDS, Node, cluster_ok, password, topology, view, wait_for
from opsrun import secret_sources, secrets
from opsrun import settings as schemas

AUTH = "/etc/redis/cluster-auth.conf"


class AuthFilePassword(FactBase[str]):
    """The requirepass of the host's cluster auth file: the password its nodes started with ('' if none)."""

    def command(self) -> str:
        return f"awk '$1 == \"requirepass\" {{print $2}}' {AUTH} 2>/dev/null || true"

    @staticmethod
    def default() -> str:
        return ""  # pyinfra gives a fact whose command printed nothing its default: no file, no password

    def process(self, output: list[str]) -> str:
        return output[0].strip() if output else ""


def accepts(node: Node, secret: str | None) -> bool | None:
    """Does `node` take `secret`? None: the node does not answer at all."""
    try:
        with redis.Redis(node.address, node.port, password=secret, socket_timeout=2, socket_connect_timeout=2) as c:
            c.ping()
        return True
    except redis.AuthenticationError:
        return False
    except redis.ResponseError as exc:
        if "NOAUTH" in str(exc) or "WRONGPASS" in str(exc):
            return False
        return None
    except redis.RedisError:
        return None


def source() -> str:
    auth = schemas.for_host(host, "redis_cluster").auth
    ref = auth.secret_env.get("requirepass") if auth else None
    return secret_sources.label(secret_sources.parse(ref, "group_data", "redis_cluster_auth")) if ref else "none"


def old_passwords(new: str) -> list[str]:
    """The passwords the nodes may still run with: this host's auth file, then `secret_env.previous`."""
    auth = schemas.for_host(host, "redis_cluster").auth
    found = [host.get_fact(AuthFilePassword)]
    if auth and "previous" in auth.secret_env:
        found.append(
            secret_sources.read(auth.secret_env["previous"], "group_data", "redis_cluster_auth.secret_env.previous")
        )
    for value in found:
        if value:
            secrets.register(value)
    return [p for i, p in enumerate(found) if p and p != new and p not in found[:i]]


def _as(node: Node, secret: str) -> redis.Redis:
    return redis.Redis(node.address, node.port, password=secret, socket_timeout=5, socket_connect_timeout=2)


def _acl(node: Node, login: str, modifier: str, what: str) -> None:
    """ACL SETUSER default MODIFIER on `node`; a refusal is reported without the server's text (which
    would repeat the modifier, a password)."""
    try:
        with _as(node, login) as c:
            c.execute_command("ACL", "SETUSER", "default", modifier)
    except redis.RedisError as exc:
        raise RuntimeError(f"{node} refused to {what} ({type(exc).__name__})") from None


def _by_host(nodes: list[Node]) -> list[list[Node]]:
    hosts = list(dict.fromkeys(n.host for n in nodes))
    return [[n for n in nodes if n.host == h] for h in hosts]


def _healthy(nodes: list[Node], replicas: int, after: str) -> None:
    wait_for(f"the cluster to be ok after {after}", lambda: cluster_ok([view(n) for n in nodes], replicas))


def rotate(replicas: int) -> None:
    """The three steps of the module's docstring over every node (the passwords come from the module, never
    from arguments)."""
    new = password()
    assert new is not None
    nodes = topology()
    for group in _by_host(nodes):  # 1. both passwords
        for node in group:
            if accepts(node, new):
                continue
            old = next((p for p in OLD_PASSWORDS if accepts(node, p)), None)
            if old is None:
                raise RuntimeError(f"{node} takes neither the new password nor the one it ran with")
            _acl(node, old, f">{new}", "add the new password")
        _healthy(nodes, replicas, f"{group[0].host} took the new password")
    for node in nodes:  # 2. replicas authenticate to their masters with the new one
        try:
            with _as(node, new) as c:
                c.config_set("masterauth", new)
        except redis.RedisError as exc:
            raise RuntimeError(f"{node} refused CONFIG SET masterauth ({type(exc).__name__})") from None
    _healthy(nodes, replicas, "masterauth changed")
    for group in _by_host(nodes):  # 3. the old ones forgotten
        for node in group:
            for old in OLD_PASSWORDS:
                if accepts(node, old):
                    _acl(node, new, f"<{old}", "forget the old password")
        _healthy(nodes, replicas, f"{group[0].host} forgot the old password")
    OLD_PASSWORDS.clear()


def _owner(nodes: list[Node]) -> str:
    """The host that rotates for the whole cluster: the first of the topology's hosts in this run."""
    here = {h.name for h in host.state.activated_hosts}
    return next((n.host for n in nodes if n.host in here), host.name)


@operation()
def rotate_password(replicas: int = 1) -> Generator[Any, None, None]:
    """Every node on the password of group_data and on no other, changed live (see the module doc); nothing
    when the nodes that answer take it and none takes an older one."""
    new = password()
    if new is None:
        host.noop("no cluster password in group_data")
        return
    nodes = topology()
    olds = old_passwords(new)
    refusing = [n for n in nodes if accepts(n, new) is False]
    lingering = [n for n in nodes if any(accepts(n, p) for p in olds)]
    if not refusing and not lingering:
        host.noop(f"every node that answers takes the password from {source()}, and only it")
        return
    stuck = [str(n) for n in refusing if not any(accepts(n, p) for p in olds)]
    if stuck:
        raise RuntimeError(
            f"{', '.join(stuck)} refuse the password from {source()} and the one in {AUTH} on {host.name}: "
            "the password they run with is unknown, nothing was changed. Fix: set "
            'redis_cluster_auth.secret_env.previous (e.g. {"env": "OPSRUN_REDIS_OLD_PASSWORD"}) to it'
        )
    OLD_PASSWORDS[:] = olds  # also lets the later operations of this run talk to nodes not yet moved over
    if _owner(nodes) != host.name:
        host.noop(f"rotated from {_owner(nodes)}")
        return
    yield StringCommand("true", QuoteString(f"rotate the password of {len(nodes)} nodes to the one from {source()}"))
    yield FunctionCommand(rotate, (replicas,), {})
