"""The monthly DR test: `run_dr_test` runs the checks of every system the settings name (`backups`,
`postgres`, `redis_cluster`, `mongo_replicaset`) and the timed `drills`; `model` judges the measured numbers
against the RTO/RPO targets.

Settings: `dr` in group_data (the inventory's `all` group), e.g.

    dr = {
        "targets": {"rto_minutes": 15, "rpo_minutes": 5},            # defaults; per system under "systems"
        "systems": {"redis": {"rto_minutes": 2}},
        "backups": [
            {"name": "pg dumps in S3", "s3": "s3://bucket/pg/", "max_age_hours": 26},
            {"name": "RDS snapshots", "rds": "orders-db", "max_age_hours": 26},
            {"name": "pg_dump files", "files": "/var/backups/pg/*.dump", "max_age_hours": 26},
        ],
        "postgres": {
            "secret_env": {"primary": "PG_PRIMARY_URL", "replica": "PG_REPLICA_URL", "scratch": "PG_SCRATCH_URL"},
            "tables": ["users", "orders"], "max_lag_seconds": 30, "max_lag_bytes": 16 * 1024 * 1024,
            "dumps": "/var/backups/pg/*.dump",                      # the restore drill's newest dump
        },
        "redis": True,                                              # the inventory's redis_cluster
        "mongo": True,                                              # the inventory's mongo_replicaset
    }

Every check is PASS, FAIL or SKIP with its evidence (numbers, timestamps, the query or command). A drill
never leaves a system degraded: the roles it moved are moved back, and if that fails the report says so
in its first line.
"""

from __future__ import annotations

import functools
import time
from typing import Any

from opsrun.dr import drills
from opsrun.dr.backups import backup_check
from opsrun.dr.model import (
    FAIL,
    PASS,
    SKIP,
    Check,
    DRRun,
    guarded,
    month_of,
    settings,
    systems_of,
    targets,
)
from opsrun.dr.mongo_replicaset import mongo_checks
from opsrun.dr.postgres import postgres_checks
from opsrun.dr.redis_cluster import redis_checks
from opsrun.inventory import Inventory

__all__ = ["FAIL", "PASS", "SKIP", "Check", "DRRun", "month_of", "run_dr_test", "settings", "systems_of", "targets"]


def run_dr_test(inv: Inventory, hosts: list[str], run: DRRun, drill: bool) -> DRRun:
    """Every system the `dr` settings name, checked in turn (with `drill`, the Redis and Mongo drills too)."""
    dr = settings(inv, hosts)
    started = time.monotonic()
    for spec in dr.get("backups", []):
        run.checks += guarded("backups", spec.get("name", "backup"), functools.partial(_backup, spec))
    if dr.get("postgres"):
        run.checks += guarded("postgres", "checks", lambda: postgres_checks(dr["postgres"], run, drills.restore_drill))
    if dr.get("redis"):
        failover = drills.redis_failover_drill if drill else None
        run.checks += guarded("redis", "checks", lambda: redis_checks(inv, run, failover))
    if dr.get("mongo"):
        stepdown = drills.mongo_stepdown_drill if drill else None
        run.checks += guarded("mongo", "checks", lambda: mongo_checks(inv, run, stepdown))
    run.seconds = time.monotonic() - started
    return run


def _backup(spec: dict[str, Any]) -> list[Check]:
    return [backup_check(spec)]
