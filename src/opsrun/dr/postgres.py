"""DR checks of PostgreSQL: streaming replication and its lag, row counts on the primary and the replica,
and the RPO probe (a marker written on the primary, timed until the replica reads it)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from opsrun.dr.model import FAIL, PASS, Check, DRRun, one
from opsrun.dr.timing import NeverArrives, rpo_check
from opsrun.model import secret_sources
from opsrun.settings.dr_models import PostgresDR

RestoreDrill = Callable[[str, str, str, list[str], DRRun], Check]  # (dumps, source, scratch, tables, run)


def connect(url: str) -> Any:
    import psycopg

    return psycopg.connect(url, autocommit=True, connect_timeout=5)


def counts(url: str, tables: list[str]) -> dict[str, int]:
    from psycopg import sql

    with connect(url) as conn:
        return {
            t: int(conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(t))).fetchone()[0])
            for t in tables
        }


def postgres_checks(pg: PostgresDR, run: DRRun, restore_drill: RestoreDrill) -> list[Check]:
    """Replication, row counts and the RPO probe; with `dumps` and a scratch database, `restore_drill` too."""
    urls = {k: secret_sources.read(v) for k, v in pg.secret_env.items()}
    tables = list(pg.tables)
    primary, replica = urls["primary"], urls.get("replica")
    checks = []
    if replica or pg.rds_failover is None:  # RDS Multi-AZ replicates below PostgreSQL: no standby to see there
        checks.append(one("postgres", "streaming replication", lambda: replication_check(primary, replica, pg)))
    if replica:
        checks.append(one("postgres", "row counts primary vs replica", lambda: counts_check(primary, replica, tables)))
        checks.append(one("postgres", "RPO probe", lambda: pg_rpo_probe(primary, replica, run)))
    dumps = pg.dumps
    if dumps and urls.get("scratch"):
        scratch = urls["scratch"]
        checks.append(one("postgres", "restore drill", lambda: restore_drill(dumps, primary, scratch, tables, run)))
    return checks


REPLICATION_QUERY = (
    "SELECT application_name, state, pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)::bigint, "
    "COALESCE(EXTRACT(EPOCH FROM replay_lag), 0)::float FROM pg_stat_replication"
)


def replication_check(primary: str, replica: str | None, pg: PostgresDR) -> Check:
    max_bytes, max_seconds = pg.max_lag_bytes, pg.max_lag_seconds
    with connect(primary) as conn:
        rows = conn.execute(REPLICATION_QUERY).fetchall()
    if not rows:
        return Check(
            "postgres", "streaming replication", FAIL, ["no replica in pg_stat_replication"], REPLICATION_QUERY
        )
    evidence, ok, worst = [], True, (0, 0.0)
    for name, state, lag_bytes, lag_seconds in rows:
        lag_bytes = int(lag_bytes or 0)
        evidence.append(f"{name}: state {state}, replay lag {lag_bytes} bytes, {lag_seconds:.3f} s")
        ok = ok and state == "streaming" and lag_bytes <= max_bytes and lag_seconds <= max_seconds
        worst = max(worst, (lag_bytes, float(lag_seconds)))
    if replica:
        with connect(replica) as conn:
            recovering, paused = conn.execute(REPLAY_STATE).fetchone()
        if not recovering:
            ok = False
            evidence.append("the replica is not a standby (not in recovery)")
        elif paused:
            ok = False
            evidence.append("WAL replay is paused on the replica")
    evidence.append(f"allowed: {max_bytes} bytes, {max_seconds} s")
    return Check(
        "postgres",
        "streaming replication",
        PASS if ok else FAIL,
        evidence,
        REPLICATION_QUERY,
        {"lag_bytes": worst[0], "lag_seconds": worst[1]},
    )


def counts_check(primary: str, replica: str, tables: list[str]) -> Check:
    a, b = counts(primary, tables), counts(replica, tables)
    differ = [t for t in tables if a[t] != b[t]]
    evidence = [f"{t}: primary {a[t]}, replica {b[t]}" for t in tables]
    status = PASS if not differ else FAIL
    if differ:
        evidence.insert(0, f"row counts differ: {', '.join(differ)}")
    return Check("postgres", "row counts primary vs replica", status, evidence, "SELECT count(*) FROM <table>")


MARKER_TABLE = "opsrun_dr_marker"


def pg_rpo_probe(primary: str, replica: str, run: DRRun) -> Check:
    """Write a marker on the primary; the time until the replica can read it is the replication delay."""
    marker = f"dr-{time.time_ns()}"
    with connect(primary) as conn:
        conn.execute(f"CREATE TABLE IF NOT EXISTS {MARKER_TABLE} (marker text PRIMARY KEY, at timestamptz)")
        run.step(f"postgres: wrote marker {marker} on the primary")
        start = time.monotonic()
        conn.execute(f"INSERT INTO {MARKER_TABLE} VALUES (%s, now())", (marker,))  # noqa: S608 - a constant name
    with connect(replica) as conn:
        source = f"INSERT INTO {MARKER_TABLE} on the primary; SELECT on the replica until found"
        return rpo_check("postgres", "the replica", lambda: _marker_on(conn, marker), start, run, source)


# pg_is_wal_replay_paused() raises on a server not in recovery: CASE asks it only of a standby
REPLAY_STATE = "SELECT pg_is_in_recovery(), CASE WHEN pg_is_in_recovery() THEN pg_is_wal_replay_paused() END"


def _marker_on(conn: Any, marker: str) -> bool:
    """Whether the replica can read the marker yet, in one query (its table may not have been replayed yet
    either); NeverArrives when the replica replays no WAL: not a standby at all, or its replay paused."""
    import psycopg

    try:
        recovering, paused, found = conn.execute(
            f"{REPLAY_STATE}, EXISTS (SELECT 1 FROM {MARKER_TABLE} WHERE marker = %s)",  # noqa: S608 - constants
            (marker,),
        ).fetchone()
    except psycopg.errors.UndefinedTable:
        (recovering, paused), found = conn.execute(REPLAY_STATE).fetchone(), False
    if not recovering:
        raise NeverArrives("it is not a standby (not in recovery: promoted?)")
    if not found and paused:
        raise NeverArrives("WAL replay is paused")
    return bool(found)
