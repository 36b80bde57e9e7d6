"""Redis Cluster reconciliation, run from the controller with redis-py (imported as `deploys._redis`).

The topology is the inventory's: every host of the `redis` group with its `redis_cluster_ports`. The
operations inspect the live cluster when they are planned (so a dry run says what they would do) and
again when they run (an earlier operation of the same run may have started a node):

- `cluster_reconcile`: create the cluster when no node has one; otherwise meet nodes that are not in
  it, make empty nodes replicas of the master with the fewest replicas, forget node ids that no
  longer exist. Nothing is done when the cluster matches the topology.
- `rolling_restart`: nodes whose running settings differ from the desired ones are restarted one at a
  time, replicas first; a master is first failed over to one of its replicas (CLUSTER FAILOVER on the
  replica), and restarted only once the roles have swapped and the cluster is ok. Slots stay covered.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any

import redis
from pyinfra import host, inventory
from pyinfra.api import FunctionCommand, QuoteString, StringCommand, operation

from opsrun import secret_sources
from opsrun import settings as schemas
from opsrun.errors import WaitTimeout
from opsrun.waiting import poll_until

SLOTS = 16384
WAIT = 60.0  # seconds for any one cluster transition (failover, join, sync)


@dataclass(frozen=True)
class Node:
    host: str  # inventory name
    address: str
    port: int

    def __str__(self) -> str:
        return f"{self.address}:{self.port}"


def topology() -> list[Node]:
    """Every node of the cluster, from the inventory's `redis` group, in inventory order."""
    return [
        Node(h.name, schemas.for_host(h, "ssh").ssh_hostname or h.name, int(port))
        for h in inventory.get_group("redis")
        for port in schemas.for_host(h, "redis_cluster").ports
    ]


def password() -> str | None:
    auth = schemas.for_host(host, "redis_cluster").auth
    ref = auth.secret_env.get("requirepass") if auth else None
    return secret_sources.read(ref, "group_data", "redis_cluster_auth.secret_env.requirepass") if ref else None


OLD_PASSWORDS: list[str] = []  # while a password is rotated (deploys/_redis_auth.py): the ones nodes may still run


def client(node: Node, timeout: float = 2.0) -> redis.Redis:
    """A client of `node` with the password of group_data, or (during a rotation) the old one it still runs."""
    for secret in [password(), *OLD_PASSWORDS]:
        c = redis.Redis(
            host=node.address, port=node.port, password=secret, socket_timeout=timeout, socket_connect_timeout=timeout
        )
        if not OLD_PASSWORDS:
            return c
        try:
            c.ping()
            return c
        except redis.AuthenticationError:
            c.close()
        except redis.RedisError:
            return c  # not a refused password: the caller sees the node as it is
    return c


def wait_for(what: str, check: Callable[[], bool], timeout: float = WAIT) -> None:
    """Poll `check` every 0.2 s until it holds (a node that does not answer yet is "not yet"); RuntimeError
    naming `what` after `timeout`, the error this deploy has always reported."""
    try:
        poll_until(check, timeout=timeout, interval=0.2, what=what, retry_on=(redis.RedisError,))
    except WaitTimeout:
        raise RuntimeError(f"timed out after {timeout:.0f}s waiting for {what}") from None


# ------------------------------------------------------------------------------------------------ state


@dataclass
class View:
    """What one node says about the cluster: its own id and role, and every node it knows."""

    node: Node
    up: bool
    id: str = ""
    role: str = ""  # master | slave
    master_id: str = ""  # for a replica
    known: int = 0  # cluster_known_nodes
    state: str = ""  # cluster_state: ok | fail
    slots: int = 0  # slots this node serves (masters)
    nodes: list[dict[str, Any]] | None = None  # CLUSTER NODES, parsed


def parse_nodes(text: str) -> list[dict[str, Any]]:
    """CLUSTER NODES lines: id addr flags master ping pong epoch link slots..."""
    out = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) < 8:
            continue
        addr = parts[1].split("@")[0]
        flags = set(parts[2].split(","))
        slots = 0
        for rng in parts[8:]:
            if rng.startswith("["):
                continue
            a, _, b = rng.partition("-")
            slots += (int(b) if b else int(a)) - int(a) + 1
        out.append(
            {
                "id": parts[0],
                "addr": addr,
                "flags": flags,
                "master": parts[3] if parts[3] != "-" else "",
                "link": parts[7],
                "slots": slots,
            }
        )
    return out


def view(node: Node) -> View:
    try:
        c = client(node)
        info = c.execute_command("CLUSTER", "INFO")
        text = c.execute_command("CLUSTER", "NODES")
    except redis.RedisError:
        return View(node, up=False)
    info = info.decode() if isinstance(info, bytes) else info
    text = text.decode() if isinstance(text, bytes) else text
    fields = dict(line.split(":", 1) for line in info.splitlines() if ":" in line)
    nodes = parse_nodes(text)
    me = next(n for n in nodes if "myself" in n["flags"])
    return View(
        node,
        up=True,
        id=me["id"],
        role="master" if "master" in me["flags"] else "slave",
        master_id=me["master"],
        known=int(fields.get("cluster_known_nodes", "1")),
        state=fields.get("cluster_state", "fail"),
        slots=me["slots"],
        nodes=nodes,
    )


def cluster_ok(views: list[View], replicas: int) -> bool:
    """Every node up, in one cluster of all of them, state ok, all slots served, each master with its
    replicas, no node flagged fail."""
    if not views or not all(v.up for v in views):
        return False
    ids = {v.id for v in views}
    roles = {v.id: v.role for v in views}  # what each node says it is
    for v in views:
        assert v.nodes is not None
        if v.state != "ok" or {n["id"] for n in v.nodes} != ids:
            return False
        if any(n["flags"] & {"fail", "fail?", "handshake", "noaddr"} for n in v.nodes):
            return False
        if any(("master" if "master" in n["flags"] else "slave") != roles[n["id"]] for n in v.nodes):
            return False  # gossip has not told this node every role yet
    masters = [v for v in views if v.role == "master"]
    if sum(m.slots for m in masters) != SLOTS:
        return False
    return all(sum(1 for v in views if v.master_id == m.id) >= replicas for m in masters)


# ------------------------------------------------------------------------------------------------ reconcile


def plan(views: list[View], replicas: int) -> list[str]:
    """What reconciliation would do, in words (empty: nothing)."""
    if cluster_ok(views, replicas):
        return []
    down = [str(v.node) for v in views if not v.up]
    formed = [v for v in views if v.up and (v.known > 1 or v.slots)]
    if not formed:
        if down:
            return [f"create the cluster once every node answers (down now: {', '.join(down)})"]
        return [f"create the cluster: {len(views)} nodes, {replicas} replica(s) per master"]
    steps = [f"start and re-join {n}" for n in down]
    lone = [str(v.node) for v in views if v.up and v.known <= 1 and not v.slots]
    steps += [f"join {n} to the cluster as a replica" for n in lone]
    return steps or ["repair the cluster (roles, forgotten nodes, failed flags)"]


def reconcile(replicas: int) -> None:
    """Bring the cluster to the topology: create it, or join lone nodes and forget the nodes it lost."""
    nodes = topology()
    wait_for(f"all of {', '.join(map(str, nodes))} to answer", lambda: all(view(n).up for n in nodes))
    views = [view(n) for n in nodes]
    if cluster_ok(views, replicas):
        return
    if not any(v.known > 1 or v.slots for v in views):
        create(views, replicas)
    else:
        repair(views, replicas)
    wait_for(
        "the cluster to be ok with every master replicated", lambda: cluster_ok([view(n) for n in nodes], replicas)
    )


def create(views: list[View], replicas: int) -> None:
    """Masters: one node per host in turn until there are len/(replicas+1) of them; each master's replicas
    are on other hosts. Slots in equal ranges."""
    count = len(views) // (replicas + 1)
    masters: list[View] = []
    for v in views:  # first node of each host first
        if len(masters) < count and v.node.host not in {m.node.host for m in masters}:
            masters.append(v)
    for v in views:
        if len(masters) < count and v not in masters:
            masters.append(v)
    rest = [v for v in views if v not in masters]
    first = views[0]
    for v in views[1:]:
        client(first.node).execute_command("CLUSTER", "MEET", v.node.address, v.node.port)
    for i, m in enumerate(masters):
        lo, hi = i * SLOTS // count, (i + 1) * SLOTS // count - 1
        client(m.node).execute_command("CLUSTER", "ADDSLOTSRANGE", lo, hi)
    ids = {v.id for v in views}
    wait_for("every node to know every other", lambda: all(_known_ids(v.node) >= ids for v in views))
    for i, r in enumerate(rest):  # a master on another host: rotate through them
        candidates = [m for m in masters if m.node.host != r.node.host] or masters
        master = candidates[i % len(candidates)]
        client(r.node).execute_command("CLUSTER", "REPLICATE", master.id)


def repair(views: list[View], replicas: int) -> None:
    live = [v for v in views if v.known > 1 or v.slots]
    anchor = max(live, key=lambda v: v.known)
    ids = {v.id for v in views}
    for v in views:
        if v not in live:  # empty node (new, or its data was lost): meet it
            client(anchor.node).execute_command("CLUSTER", "MEET", v.node.address, v.node.port)
    wait_for("the joining nodes to be known", lambda: all(_known_ids(v.node) >= ids for v in views))
    for v in views:  # forget ids the topology no longer has (a wiped node came back with a new id)
        for stale in {n["id"] for n in view(v.node).nodes or []} - ids:
            try:
                client(v.node).execute_command("CLUSTER", "FORGET", stale)
            except redis.ResponseError:
                pass  # already forgotten, or it is this node's own master
    fresh = [view(n.node) for n in views]
    masters = [v for v in fresh if v.role == "master" and v.slots]
    for v in fresh:
        if v.role == "master" and not v.slots:  # a lone empty master: make it a replica
            counts = {m.id: sum(1 for x in fresh if x.master_id == m.id) for m in masters}
            other_host = [m for m in masters if m.node.host != v.node.host] or masters
            target = min(other_host, key=lambda m: counts[m.id])
            client(v.node).execute_command("CLUSTER", "REPLICATE", target.id)
            fresh = [view(n.node) for n in views]


def _known_ids(node: Node) -> set[str]:
    return {n["id"] for n in view(node).nodes or []}


def owner(views: list[View]) -> str:
    """The one host that acts, so that hosts applied in parallel never reconcile at the same time: the
    host of a node that is down or alone, else the last host of the topology (it creates the cluster
    once every node has been started)."""
    for v in views:
        if not v.up or (v.known <= 1 and not v.slots and any(x.known > 1 for x in views)):
            return v.node.host
    return views[-1].node.host


@operation()
def cluster_reconcile(replicas: int = 1) -> Generator[Any, None, None]:
    """The cluster as the topology says, or nothing when it already is (see the module doc)."""
    nodes = topology()
    views = [view(n) for n in nodes]
    steps = plan(views, replicas)
    if not steps:
        host.noop(f"cluster ok: {len(nodes)} nodes, {replicas} replica(s) per master")
        return
    elsewhere = sorted({str(v.node) for v in views if not v.up and v.node.host != host.name})
    if owner(views) != host.name or elsewhere:
        host.noop("reconciled from " + (f"the hosts of {', '.join(elsewhere)}" if elsewhere else owner(views)))
        return
    yield StringCommand("true", QuoteString("; ".join(steps)))  # what it is about to do, for the record
    yield FunctionCommand(reconcile, (replicas,), {})


# ------------------------------------------------------------------------------------------------ settings


def running_differs(node: Node, settings: dict[str, Any]) -> list[str]:
    """The settings whose running value (CONFIG GET) differs from the desired one; [] if the node is down."""
    try:
        c = client(node)
        differ = []
        for key, want in settings.items():
            got = c.config_get(key).get(key)
            if got is not None and _normal(key, got) != _normal(key, want):
                differ.append(f"{key} {got} -> {want}")
        return differ
    except redis.RedisError:
        return []


def _normal(key: str, value: Any) -> str:
    text = str(value).strip().lower()
    if key == "maxmemory" and text[-2:] in ("kb", "mb", "gb"):
        return str(int(text[:-2]) * 1024 ** {"kb": 1, "mb": 2, "gb": 3}[text[-2:]])
    if key == "save":
        return " ".join(text.split())
    return text


def fail_over_from(node: Node) -> None:
    """If `node` is a master serving slots, make one of its replicas the master (CLUSTER FAILOVER on the
    replica) and wait until the roles have swapped and the cluster is ok: its slots never go uncovered."""
    v = view(node)
    if v.role != "master" or not v.slots:
        return
    replica = next((x for x in (view(n) for n in topology()) if x.up and x.master_id == v.id), None)
    if replica is None:
        raise RuntimeError(f"{node} is a master with no replica to take over: not restarting it")
    client(replica.node).execute_command("CLUSTER", "FAILOVER")
    wait_for(f"{replica.node} to take over from {node}", lambda: view(replica.node).role == "master")
    wait_for(f"{node} to become a replica", lambda: view(node).role == "slave")
    wait_for("the cluster to be ok after the failover", lambda: view(replica.node).state == "ok")


def rejoined(node: Node, replicas: int) -> None:
    """Wait until a restarted node answers, is in sync with its master and the cluster is ok."""
    wait_for(f"{node} to answer after its restart", lambda: view(node).up)
    wait_for(
        f"{node} to be in sync with its master",
        lambda: client(node).info("replication").get("master_link_status", "up") == "up",
    )
    nodes = topology()
    wait_for("the cluster to be ok after the restart", lambda: cluster_ok([view(n) for n in nodes], replicas))


@operation()
def rolling_restart(settings: dict[str, Any], replicas: int = 1) -> Generator[Any, None, None]:
    """This host's nodes whose running settings differ, restarted one at a time, replicas first."""
    mine = [n for n in topology() if n.host == host.name]
    todo = [(n, running_differs(n, settings)) for n in mine]
    todo = [(n, d) for n, d in todo if d]
    if not todo:
        host.noop(f"{len(mine)} nodes run the desired settings")
        return
    todo.sort(key=lambda nd: view(nd[0]).role == "master")  # replicas first
    for node, differ in todo:
        yield StringCommand("true", QuoteString(f"restart {node}: {', '.join(differ)}"))
        yield FunctionCommand(fail_over_from, (node,), {})
        yield f"systemctl restart redis-server@{node.port}"
        yield FunctionCommand(rejoined, (node, replicas), {})
