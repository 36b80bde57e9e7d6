"""The monthly DR test: `run_dr_test` runs the checks of every system the settings name (`backups`,
`postgres`, `redis_cluster`, `mongo_replicaset`) and the timed `drills`; `model` judges the measured numbers
against the RTO/RPO targets.

Settings: `dr` in group_data (the inventory's `all` group), checked by opsrun.settings.dr_models; docs/dr-test.md
shows them whole.

Every check is PASS, FAIL or SKIP with its evidence (numbers, timestamps, the query or command). A drill
never leaves a system degraded: the roles it moved are moved back, and if that fails the report says so
in its first line.
"""

from __future__ import annotations

import functools
import time

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
    not_drilled,
    settings,
    systems_of,
    targets,
)
from opsrun.dr.mongo_replicaset import mongo_checks
from opsrun.dr.pg_failover import pg_failover_drill
from opsrun.dr.postgres import postgres_checks
from opsrun.dr.rds_failover import rds_failover_drill
from opsrun.dr.redis_cluster import redis_checks
from opsrun.errors import ConfigError
from opsrun.model import secret_sources
from opsrun.model.inventory import Inventory
from opsrun.settings.dr_models import BackupSpec, DRSettings, PostgresDR

__all__ = [
    "FAIL",
    "PASS",
    "SKIP",
    "Check",
    "DRRun",
    "month_of",
    "refuse_in_production",
    "run_dr_test",
    "settings",
    "systems_of",
    "targets",
]


def run_dr_test(inv: Inventory, hosts: list[str], dr: DRSettings, run: DRRun, drill: bool) -> DRRun:
    """Every system the `dr` settings (as settings.check_hosts validated them) name, checked in turn (with
    `drill`, the failover drills too)."""
    if drill:
        refuse_in_production(inv, hosts, dr)
    run.hints = not_drilled(dr, drill)
    started = time.monotonic()
    for spec in dr.backups:
        run.checks += guarded("backups", spec.name, functools.partial(_backup, spec))
    pg = dr.postgres
    if pg is not None:
        run.checks += guarded("postgres", "checks", lambda: postgres_checks(pg, run, drills.restore_drill))
        if drill:
            run.checks += guarded("postgres", "failover drill", lambda: postgres_drills(pg, run))
    if dr.redis:
        failover = drills.redis_failover_drill if drill else None
        run.checks += guarded("redis", "checks", lambda: redis_checks(inv, run, failover))
    if dr.mongo:
        stepdown = drills.mongo_stepdown_drill if drill else None
        run.checks += guarded("mongo", "checks", lambda: mongo_checks(inv, run, stepdown))
    run.seconds = time.monotonic() - started
    return run


def _backup(spec: BackupSpec) -> list[Check]:
    return [backup_check(spec)]


def postgres_drills(pg: PostgresDR, run: DRRun) -> list[Check]:
    """The failover drills of `dr.postgres`: the pair on this machine, and the RDS instance."""
    urls = {str(k): secret_sources.read(v) for k, v in pg.secret_env.items()}
    checks = []
    if pg.failover is not None:
        checks.append(pg_failover_drill(pg.failover, urls, run))
    if pg.rds_failover is not None:
        checks.append(rds_failover_drill(pg.rds_failover, urls["primary"], run))
    return checks


def is_production(inv: Inventory, dr: DRSettings) -> bool:
    """`dr.production`, or when it is not set, whether the inventory is named production."""
    return inv.name in ("production", "prod") if dr.production is None else dr.production


def refuse_in_production(inv: Inventory, hosts: list[str], dr: DRSettings) -> None:
    """ConfigError, before anything is touched, for a failover drill in an environment marked production whose
    group_data does not allow it."""
    if not is_production(inv, dr) or dr.postgres is None:
        return
    for key, spec in (("failover", dr.postgres.failover), ("rds_failover", dr.postgres.rds_failover)):
        if spec is not None and not spec.allow_in_production:
            raise ConfigError(
                inv.where(hosts[0], "dr"),
                f"{inv.name} is marked production (dr.production, or its name): its PostgreSQL failover drill "
                "would fail the database its users write to over.",
                field=f"dr.postgres.{key}.allow_in_production",
                fix="set it to True to run the drill there, or run dr-test without --drill",
            )
