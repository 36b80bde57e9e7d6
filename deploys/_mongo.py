"""MongoDB replica set reconciliation, run from the controller with pymongo (imported as `deploys._mongo`).

The members are the inventory's: every host of the `mongo` group, at `mongo_replicaset_port`, with its
`mongo_replicaset_priority` and `mongo_replicaset_votes`. The operations look at the live replica set when
they are planned (a dry run says what they would do) and again when they run:

- `replicaset_reconcile`: replSetInitiate when no member has a configuration (from the last host, once
  every member answers); otherwise replSetReconfig on the primary when members, priorities or votes
  differ (the version grows by one). Nothing when the set matches.
- `restart_member`: a changed mongod.conf is applied by a restart; a primary is stepped down first and the
  restart waits for a new primary. With `rolling.last = {"mongo_primary": PORT}` the primary's host is
  the last batch, so the secondaries restart first.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Any

from pyinfra import host, inventory
from pyinfra.api import FunctionCommand, QuoteString, StringCommand, operation
from pymongo import MongoClient
from pymongo.errors import PyMongoError

from opsrun import settings as schemas
from opsrun.errors import WaitTimeout
from opsrun.waiting import poll_until

WAIT = 60.0


def members() -> list[dict[str, Any]]:
    """Every host of the `mongo` group as a member, from its validated settings (opsrun.settings)."""
    out = []
    for i, h in enumerate(inventory.get_group("mongo")):
        mongo, address = schemas.for_host(h, "mongo_replicaset"), schemas.for_host(h, "ssh").ssh_hostname or h.name
        out.append(
            {
                "_id": i,
                "host": f"{address}:{mongo.port}",
                "priority": mongo.priority,
                "votes": mongo.votes,
                "inventory_host": h.name,
            }
        )
    return out


def client(address: str, timeout_ms: int = 2000) -> MongoClient[dict[str, Any]]:
    name, port = address.rsplit(":", 1)
    return MongoClient(
        name, int(port), directConnection=True, serverSelectionTimeoutMS=timeout_ms, connectTimeoutMS=timeout_ms
    )


def hello(address: str) -> dict[str, Any] | None:
    try:
        with client(address) as c:
            return dict(c.admin.command("hello"))
    except PyMongoError:
        return None


def current_config(address: str) -> dict[str, Any] | None:
    try:
        with client(address) as c:
            return dict(c.admin.command("replSetGetConfig")["config"])
    except PyMongoError:
        return None


def wait_for(what: str, check: Callable[[], bool], timeout: float = WAIT) -> None:
    """Poll `check` every 0.2 s until it holds (a member that does not answer says so itself: `hello` gives
    None); RuntimeError naming `what` after `timeout`, the error this deploy has always reported."""
    try:
        poll_until(check, timeout=timeout, interval=0.2, what=what)
    except WaitTimeout:
        raise RuntimeError(f"timed out after {timeout:.0f}s waiting for {what}") from None


def desired(name: str) -> dict[str, Any]:
    return {
        "_id": name,
        "members": [{k: m[k] for k in ("_id", "host", "priority", "votes")} for m in members()],
    }


def _shape(config: dict[str, Any]) -> list[tuple[Any, ...]]:
    return sorted(
        (m["_id"], m["host"], float(m.get("priority", 1)), int(m.get("votes", 1))) for m in config.get("members", [])
    )


def plan(name: str) -> tuple[str, list[str]]:
    """(who acts: an inventory host name or "", what it would do) for the replica set `name`."""
    ms = members()
    hellos = {m["host"]: hello(m["host"]) for m in ms}
    down = [a for a, h in hellos.items() if h is None]
    configured = [a for a, h in hellos.items() if h and h.get("setName") == name]
    if not configured:
        last = ms[-1]["inventory_host"]
        if down:
            return last, [f"initiate {name} once every member answers (down now: {', '.join(down)})"]
        return last, [f"initiate {name} with {len(ms)} members"]
    primary = next((a for a, h in hellos.items() if h and h.get("isWritablePrimary")), None)
    if primary is None:
        return "", [f"no primary now in {name} (down: {', '.join(down) or 'none'}): reconcile later"]
    config = current_config(primary) or {}
    if _shape(config) == _shape(desired(name)):
        return "", []
    # the first member that answers acts: one actor, and one that runs whatever the batch order (the
    # primary's host may go last and step down before its turn)
    owner = next(m["inventory_host"] for m in ms if hellos[m["host"]])
    return owner, [f"replSetReconfig {name} to version {config.get('version', 0) + 1}: {_shape(desired(name))}"]


def reconcile(name: str) -> None:
    ms = members()
    wait_for("every member to answer", lambda: all(hello(m["host"]) for m in ms))
    hellos = {m["host"]: hello(m["host"]) for m in ms}
    if not any(h and h.get("setName") == name for h in hellos.values()):
        with client(ms[0]["host"]) as c:
            c.admin.command("replSetInitiate", desired(name))
    else:
        wait_for("a primary", lambda: any((hello(m["host"]) or {}).get("isWritablePrimary") for m in ms))
        primary = next(m["host"] for m in ms if (hello(m["host"]) or {}).get("isWritablePrimary"))
        config = current_config(primary) or {}
        if _shape(config) != _shape(desired(name)):
            new = {**config, **desired(name), "version": config["version"] + 1}
            new.pop("term", None)
            with client(primary) as c:
                c.admin.command("replSetReconfig", new)
    wait_for(
        f"{name} to have one primary and every member healthy",
        lambda: healthy(ms[0]["host"], len(ms)),
    )


def healthy(address: str, count: int) -> bool:
    try:
        with client(address) as c:
            status = c.admin.command("replSetGetStatus")
    except PyMongoError:
        return False
    states = [m["stateStr"] for m in status["members"] if m["health"] == 1]
    return len(states) == count and states.count("PRIMARY") == 1 and states.count("SECONDARY") == count - 1


@operation()
def replicaset_reconcile(set_name: str) -> Generator[Any, None, None]:
    owner, steps = plan(set_name)
    if not steps:
        host.noop(f"replica set {set_name} matches the inventory")
        return
    if owner != host.name:
        host.noop(f"reconciled from {owner or 'a later run'}: {steps[0]}")
        return
    yield StringCommand("true", QuoteString("; ".join(steps)))
    yield FunctionCommand(reconcile, (set_name,), {})


def step_down_if_primary(address: str) -> None:
    """A primary hands over first: replSetStepDown, then wait until another member is primary."""
    if not (hello(address) or {}).get("isWritablePrimary"):
        return
    with client(address) as c:
        c.admin.command("replSetStepDown", 60)
    others = [m["host"] for m in members() if m["host"] != address]
    wait_for("a new primary", lambda: any((hello(a) or {}).get("isWritablePrimary") for a in others))


def back_in_set(address: str) -> None:
    wait_for(f"{address} to answer after its restart", lambda: hello(address) is not None)
    wait_for(f"{address} to be a secondary or primary again", lambda: bool((hello(address) or {}).get("setName")))
    wait_for("the replica set to be healthy", lambda: healthy(address, len(members())))


@operation()
def restart_member(address: str, service: str = "mongod") -> Generator[Any, None, None]:
    """Restart this host's member, stepping it down first if it is the primary."""
    yield FunctionCommand(step_down_if_primary, (address,), {})
    yield f"systemctl restart {service}"
    yield FunctionCommand(back_in_set, (address,), {})
