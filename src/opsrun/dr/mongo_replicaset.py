"""DR checks of the MongoDB replica set: members' health and replication lag, and the RPO probe (a marker
inserted on the primary, timed until a secondary finds it)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from opsrun.dr.model import FAIL, PASS, Check, DRRun, one
from opsrun.dr.timing import rpo_check
from opsrun.model.inventory import Inventory

StepdownDrill = Callable[[Any, DRRun], Check]  # (client, run)


def mongo_checks(inv: Inventory, run: DRRun, drill: StepdownDrill | None) -> list[Check]:
    """Health and the RPO probe; `drill` (the step-down drill, with --drill) when the set is healthy."""
    from pymongo import MongoClient

    hosts = inv.select("mongo")
    data = inv.hosts[hosts[0]].data
    port, name = data.get("mongo_replicaset_port", 27017), data.get("mongo_replicaset_name", "rs0")
    seeds = ",".join(f"{inv.hosts[h].data.get('ssh_hostname') or h}:{port}" for h in hosts)
    threshold = float(data.get("mongo_replicaset_lag_threshold_seconds", 10))
    client: MongoClient[dict[str, Any]] = MongoClient(
        f"mongodb://{seeds}/?replicaSet={name}", serverSelectionTimeoutMS=10000
    )
    try:
        status = client.admin.command("replSetGetStatus")
        members = status["members"]
        primary = next((m for m in members if m["stateStr"] == "PRIMARY"), None)
        lags = (
            {m["name"]: (primary["optimeDate"] - m["optimeDate"]).total_seconds() for m in members} if primary else {}
        )
        ok = (
            primary is not None
            and all(m["health"] == 1 for m in members)
            and max(lags.values(), default=0) <= threshold
        )
        checks = [
            Check(
                "mongo",
                "replica set health",
                PASS if ok else FAIL,
                [
                    f"{m['name']}: {m['stateStr']}, health {m['health']}, lag {lags.get(m['name'], 0):.1f} s"
                    for m in members
                ]
                + [f"allowed lag {threshold} s"],
                "replSetGetStatus",
                {"lag_seconds": max(lags.values(), default=0.0)},
            )
        ]
        secondary = next((m["name"] for m in members if m["stateStr"] == "SECONDARY"), None)
        if ok and secondary:
            checks.append(one("mongo", "RPO probe", lambda: mongo_rpo_probe(client, secondary, run)))
        if drill is not None and ok:
            checks.append(drill(client, run))
        return checks
    finally:
        client.close()


def mongo_rpo_probe(client: Any, secondary: str, run: DRRun) -> Check:
    from pymongo import MongoClient

    host, port = secondary.rsplit(":", 1)
    marker = f"dr-{time.time_ns()}"
    reader: MongoClient[dict[str, Any]] = MongoClient(
        host, int(port), directConnection=True, readPreference="secondaryPreferred", serverSelectionTimeoutMS=5000
    )
    with reader:
        start = time.monotonic()
        client.opsrun_dr.markers.insert_one({"marker": marker})
        run.step(f"mongo: wrote marker {marker} on the primary")
        found = lambda: reader.opsrun_dr.markers.find_one({"marker": marker})  # noqa: E731 - read on the secondary
        return rpo_check(
            "mongo", f"secondary {secondary}", found, start, run, "insert on the primary; find on a secondary"
        )
