"""Role probes for rolling order: `rolling.last = {"mongo_primary": 27017}` puts the hosts whose probe says
yes in the last batches, so that a replica set's primary (or a cluster's master) is restarted after its
secondaries, and stepped down once, not once per restart of the others.

Each probe asks the host's service directly from the controller, with a short timeout; a host that does
not answer is not put last (it will fail its own batch, where the rollout says so).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

TIMEOUT_MS = 2000


def mongo_primary(address: str, port: Any) -> bool:
    from pymongo import MongoClient
    from pymongo.errors import PyMongoError

    client: MongoClient[dict[str, Any]] = MongoClient(
        address, int(port), directConnection=True, serverSelectionTimeoutMS=TIMEOUT_MS, connectTimeoutMS=TIMEOUT_MS
    )
    try:
        return bool(client.admin.command("hello").get("isWritablePrimary"))
    except PyMongoError:
        return False
    finally:
        client.close()


PROBES: dict[str, Callable[[str, Any], bool]] = {"mongo_primary": mongo_primary}


def order_last(spec: dict[str, Any] | None, hosts: list[str], address: Callable[[str], str]) -> list[str]:
    """`hosts` with those that a probe of `spec` says yes for moved to the end, order otherwise kept."""
    if not spec:
        return hosts
    last = {h for h in hosts for probe, arg in spec.items() if PROBES[probe](address(h), arg)}
    return [h for h in hosts if h not in last] + [h for h in hosts if h in last]
