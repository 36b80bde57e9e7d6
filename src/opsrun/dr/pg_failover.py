"""The PostgreSQL failover drill, on a primary and its streaming replica that run on this machine (dr.postgres
.failover): markers committed on the primary, the primary stopped as a crash (pg_ctl -m immediate), the replica
promoted (pg_promote); RTO from the stop until the promoted server accepts a write, RPO from the markers it
lacks. Then the pair is put back as it was: the old primary rebuilt as the new primary's replica (pg_rewind, or
a fresh pg_basebackup), a clean switchover back, the original replica rebuilt the same way, replication checked.
Every step goes to the drill log; a pair that cannot be put back is recorded as degraded, with its roles."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from opsrun.dr.model import FAIL, PASS, Check, DRRun
from opsrun.dr.pg_markers import accepts_write, data_loss, ensure_table, forget, write_markers
from opsrun.dr.pg_servers import DrillRefused, LocalServer, ServerError, in_recovery, promote, streaming
from opsrun.dr.timing import seconds_until
from opsrun.errors import WaitTimeout
from opsrun.settings.dr_models import PgFailover

NAME = "failover drill"


def pg_failover_drill(spec: PgFailover, urls: dict[str, str], run: DRRun) -> Check:
    """The drill of `spec` (dr.postgres.failover) on the servers of `urls` (primary, replica)."""
    timeout = spec.timeout_seconds
    try:
        primary = LocalServer.of("primary", spec.primary_data, urls["primary"], timeout)
        replica = LocalServer.of("replica", spec.replica_data, urls["replica"], timeout)
        preflight(primary, replica)
        rewind = {s.data: s.rewindable() for s in (primary, replica)}  # read while they run
    except DrillRefused as exc:
        return Check("postgres", NAME, FAIL, [f"not started, nothing was touched: {exc}"])
    prefix = f"dr-failover-{time.time_ns()}"
    ensure_table(primary.url)
    seconds_until(lambda: _has_table(replica.url), time.monotonic(), "the marker table on the replica", timeout)
    written = write_markers(primary.url, spec.markers, prefix)
    run.step(f"postgres: {len(written)} markers committed on the primary ({primary.data})")
    start = time.monotonic()
    primary.stop("immediate")
    run.step(f"postgres: primary stopped as a crash (pg_ctl stop -m immediate on {primary.data})")
    try:
        rto = _promoted(replica, start, prefix, run)
        loss = data_loss(replica.url, written)
    except Exception as exc:  # noqa: BLE001 - the primary is down: whatever went wrong, the pair is degraded
        run.degraded.append("postgres")
        run.step(f"postgres: the failover did not complete: {exc}; {roles(primary, replica)}")
        return Check("postgres", NAME, FAIL, [f"the promoted replica accepted no write: {exc}"])
    run.step(f"postgres: the promoted replica accepted a write {rto:.3f} s after the stop; {loss.describe('it')}")
    put_back = _put_back(primary, replica, _ways(spec.rebuild, rewind), run)
    if put_back:
        forget(primary.url, prefix)
    return Check(
        "postgres",
        NAME,
        PASS,
        [
            f"measured RTO {rto:.3f} s (primary stopped as a crash until the promoted replica accepted a write; "
            "the time your failover tooling takes to notice is not in it)",
            loss.describe("the promoted replica"),
            put_back or f"the pair could not be put back as it was: {roles(primary, replica)}",
        ],
        f"pg_ctl stop -m immediate {primary.data}; pg_promote() on {replica.data}; INSERT until acknowledged",
        {"rto_seconds": round(rto, 3), "rpo_seconds": round(loss.seconds, 3), "markers_lost": loss.lost},
    )


def _promoted(replica: LocalServer, start: float, prefix: str, run: DRRun) -> float:
    """pg_promote on the replica; seconds from `start` until it accepts a write."""
    promote(replica)
    run.step(f"postgres: replica promoted (pg_promote on {replica.data})")
    writable = lambda: accepts_write(replica.url, prefix)  # noqa: E731 - the condition of one wait
    return seconds_until(writable, start, "a write on the promoted replica", replica.timeout)


def preflight(primary: LocalServer, replica: LocalServer) -> None:
    """DrillRefused unless the primary is a primary and the replica streams from it."""
    if in_recovery(primary.url):
        raise DrillRefused(f"the primary ({primary.data}) is in recovery: it is a replica now")
    if not in_recovery(replica.url) or not streaming(replica.url):
        raise DrillRefused(f"the replica ({replica.data}) is not a streaming replica")


def _has_table(url: str) -> bool:
    from opsrun.dr.postgres import MARKER_TABLE

    return one_value(url, "SELECT to_regclass(%s) IS NOT NULL", MARKER_TABLE) is True


def one_value(url: str, query: str, *args: object) -> Any:
    from opsrun.dr.postgres import connect

    with connect(url) as conn:
        return conn.execute(query, args or None).fetchone()[0]


def _ways(how: str, rewind: dict[Path, bool]) -> dict[Path, str]:
    """Per data directory, how it is rebuilt: pg_rewind (asked for, or "auto" where the server allows it:
    wal_log_hints or data checksums) or basebackup; "auto" falls back to a base backup if pg_rewind fails."""
    if how != "auto":
        return dict.fromkeys(rewind, how)
    return {data: "auto" if ok else "basebackup" for data, ok in rewind.items()}


def _put_back(primary: LocalServer, replica: LocalServer, ways: dict[Path, str], run: DRRun) -> str | None:
    """The pair as it was before the drill; what was done, or None (and the system degraded)."""
    try:
        first = rebuild(primary, replica, ways[primary.data], run)
        _switch_back(primary, replica, run)
        second = rebuild(replica, primary, ways[replica.data], run)
    except Exception as exc:  # noqa: BLE001 - whatever stopped it, the pair is not as it was
        run.degraded.append("postgres")
        run.step(f"postgres: could not put the pair back: {exc}; {roles(primary, replica)}")
        return None
    run.step(f"postgres: roles back as they were: {primary.data} primary, {replica.data} streaming from it")
    return (
        f"put back: old primary rebuilt by {first} as the promoted server's replica, switched back, replica rebuilt "
        f"by {second}; {replica.data} streams from {primary.data} again"
    )


def rebuild(server: LocalServer, source: LocalServer, how: str, run: DRRun) -> str:
    """`server` (stopped) as `source`'s streaming replica, started and caught up; the way it was done. With
    "auto", a pg_rewind that fails (or gives a server that does not follow) is replaced by a base backup."""
    if how in ("auto", "pg_rewind"):
        try:
            server.rewind_from(source)
            _follows(server, source)
        except (ServerError, WaitTimeout) as exc:
            if how == "pg_rewind":
                raise
            run.step(f"postgres: pg_rewind did not give {server.data} back as a replica ({exc}); a base backup")
            if server.running():
                server.stop("fast")
        else:
            run.step(f"postgres: {server.data} rebuilt by pg_rewind as the replica of {source.data}, caught up")
            return "pg_rewind"
    server.basebackup_from(source)
    _follows(server, source)
    run.step(f"postgres: {server.data} rebuilt by basebackup as the replica of {source.data}, caught up")
    return "basebackup"


def _follows(server: LocalServer, source: LocalServer) -> None:
    """Start `server` and wait until it streams from `source` and has replayed what `source` had written."""
    server.start()
    lsn = one_value(source.url, "SELECT pg_current_wal_lsn()::text")
    replayed = "SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn"
    caught_up = lambda: streaming(server.url) and one_value(server.url, replayed, lsn)  # noqa: E731
    seconds_until(caught_up, time.monotonic(), f"{server.data} to stream and replay up to {lsn}", server.timeout)


def _switch_back(primary: LocalServer, replica: LocalServer, run: DRRun) -> None:
    """A clean switchover: the promoted replica stopped cleanly (its WAL all sent), the old primary (now its
    replica) promoted, and a marker written just before the stop found on it."""
    prefix = f"dr-switchback-{time.time_ns()}"
    written = write_markers(replica.url, 1, prefix)
    lsn = one_value(replica.url, "SELECT pg_current_wal_lsn()::text")
    caught_up = lambda: one_value(primary.url, "SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", lsn)  # noqa: E731
    seconds_until(caught_up, time.monotonic(), f"{primary.data} to replay up to {lsn}", primary.timeout)
    replica.stop("fast")
    run.step(f"postgres: switching back: {replica.data} stopped cleanly (pg_ctl stop -m fast)")
    promote(primary)
    writable = lambda: accepts_write(primary.url, prefix)  # noqa: E731 - the condition of one wait
    seconds_until(writable, time.monotonic(), "a write on the primary", primary.timeout)
    loss = data_loss(primary.url, written)
    if loss.lost:
        raise ServerError(f"the switchover lost a write: {loss.describe(str(primary.data))}")
    forget(primary.url, prefix)
    run.step(f"postgres: {primary.data} promoted again and accepts writes; no write lost in the switchover")


def roles(*servers: LocalServer) -> str:
    """What each server is now, for the log of a drill that could not finish: primary, replica or down."""
    import psycopg

    said = []
    for s in servers:
        try:
            said.append(f"{s.name} URL ({s.data}): {'replica' if in_recovery(s.url) else 'PRIMARY'}")
        except psycopg.OperationalError:
            said.append(f"{s.name} URL ({s.data}): not running")
    return "roles now: " + "; ".join(said)
