"""The DR drills, timed: restore the newest PostgreSQL dump into a scratch database, fail a Redis master over
to its replica, step a MongoDB primary down. A drill puts back the roles it moved; when it cannot, the run
records the system as degraded (the report's first line)."""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from typing import Any

from opsrun.dr.model import FAIL, PASS, Check, DRRun
from opsrun.dr.postgres import connect, counts
from opsrun.dr.redis_cluster import lines, node_id, replication, role, serving_ok
from opsrun.dr.timing import WAIT, seconds_until
from opsrun.errors import WaitTimeout
from opsrun.support.waiting import poll_until


def restore_drill(pattern: str, source: str, scratch_url: str, tables: list[str], run: DRRun) -> Check:
    """pg_restore the newest dump into a fresh scratch database and compare row counts with the source."""
    from psycopg import sql

    dumps = sorted(glob.glob(pattern), key=os.path.getmtime)
    if not dumps:
        return Check("postgres", "restore drill", FAIL, [f"no dump matches {pattern}"])
    dump = dumps[-1]
    scratch = f"opsrun_dr_restore_{int(time.time())}"
    with connect(scratch_url) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(scratch)))
    target = _with_database(scratch_url, scratch)
    try:
        run.step(f"postgres: restoring {dump} into scratch database {scratch}")
        start = time.monotonic()
        with libpq_client(target) as conninfo:  # the password in a 600 file, never in argv
            proc = subprocess.run(
                ["pg_restore", "--no-owner", "--no-privileges", "--exit-on-error", "-d", conninfo, dump],
                capture_output=True,
                text=True,
                timeout=3600,
                check=False,
            )
        took = time.monotonic() - start
        if proc.returncode != 0:
            return Check("postgres", "restore drill", FAIL, [f"pg_restore failed: {proc.stderr.strip()[-500:]}"])
        restored, live = counts(target, tables), counts(source, tables)
        run.step(f"postgres: restored in {took:.1f} s; comparing {', '.join(tables)}")
    finally:
        with connect(scratch_url) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(scratch)))
    differ = [t for t in tables if restored[t] != live[t]]
    evidence = [f"{t}: restored {restored[t]}, source {live[t]}" for t in tables]
    if differ:
        evidence.insert(0, f"row counts differ after restore: {', '.join(differ)}")
    return Check(
        "postgres",
        "restore drill",
        PASS if not differ else FAIL,
        [f"dump {dump}", *evidence],
        f"pg_restore {os.path.basename(dump)} into a scratch database; SELECT count(*) per table",
        {"restore_seconds": round(took, 3)},
    )


def _with_database(url: str, name: str) -> str:
    from psycopg.conninfo import make_conninfo

    return make_conninfo(url, dbname=name)


def redis_failover_drill(cluster: Any, password: str | None, run: DRRun) -> Check:
    """CLUSTER FAILOVER on a replica; RTO = until the cluster is ok and writes to the moved slots succeed.
    Then the original roles are restored with a second failover, and checked."""
    import redis

    key = f"opsrun:dr:drill:{time.time_ns()}"
    old_master = cluster.get_node_from_key(key)
    old_id = node_id(cluster, old_master)
    line = lines(cluster.get_redis_connection(old_master).execute_command("CLUSTER", "REPLICAS", old_id))[0].split()
    replica_id, (host, port) = line[0], line[1].split("@")[0].rsplit(":", 1)
    with (
        redis.Redis(host, int(port), password=password, socket_timeout=2) as replica,
        redis.Redis(old_master.host, old_master.port, password=password, socket_timeout=2) as original,
    ):
        run.step(f"redis: CLUSTER FAILOVER on replica {host}:{port} of {old_master.host}:{old_master.port}")
        start = time.monotonic()
        replica.execute_command("CLUSTER", "FAILOVER")

        def serving() -> bool:
            try:
                if role(replica) != "master":
                    return False
                state = replica.execute_command("CLUSTER", "INFO").decode()
                if "cluster_state:ok" not in state:
                    return False
                replica.set(key, "1", ex=3600)
                return True
            except redis.RedisError:
                return False

        try:
            rto = seconds_until(serving, start, "a write on the new master")
        except WaitTimeout:
            return Check("redis", "failover drill", FAIL, [f"no write on the new master within {WAIT:.0f} s"])
        run.step(f"redis: {host}:{port} is master, cluster ok, writes to the moved slots succeed after {rto:.3f} s")
        run.step(f"redis: restoring roles: CLUSTER FAILOVER on {old_master.host}:{old_master.port}")
        try:
            seconds_until(
                lambda: replication(original).get("master_link_status") == "up", time.monotonic(), "the link up"
            )
            seconds_until(lambda: _fail_back(original), time.monotonic(), "the original master back")
            seconds_until(lambda: _roles_seen(cluster, old_id, replica_id), time.monotonic(), "every node to see it")
            run.step("redis: original roles restored, cluster ok")
        except (WaitTimeout, redis.RedisError) as exc:
            run.degraded.append("redis")
            run.step(f"redis: could not restore the original roles: {exc}")
        return Check(
            "redis",
            "failover drill",
            PASS,
            [f"measured RTO {rto:.3f} s (failover until cluster ok and a write to the moved slots succeeded)"],
            f"CLUSTER FAILOVER on {host}:{port}; poll role, CLUSTER INFO, SET",
            {"rto_seconds": round(rto, 3)},
        )


def _fail_back(node: Any) -> bool:
    """Ask `node` (a replica that is in sync) to take over again; True once it is master and the cluster
    is ok. A request that has not taken after a few seconds is sent again."""
    if role(node) == "master":
        return serving_ok(node)
    node.execute_command("CLUSTER", "FAILOVER")
    try:
        poll_until(lambda: role(node) == "master", timeout=5, interval=0.05, what="the failover to take")
    except WaitTimeout:
        return False
    return serving_ok(node)


def _roles_seen(cluster: Any, master_id: str, replica_id: str) -> bool:
    """Whether every node's CLUSTER NODES has `master_id` as a master and `replica_id` as its replica (a
    failover reaches the other nodes by gossip, a moment after the two it moved)."""
    for node in cluster.get_nodes():
        seen = lines(cluster.get_redis_connection(node).execute_command("CLUSTER", "NODES"))
        flags = {fields[0]: set(fields[2].split(",")) for fields in (line.split() for line in seen)}
        if "master" not in flags.get(master_id, set()) or "slave" not in flags.get(replica_id, set()):
            return False
    return True


def mongo_stepdown_drill(client: Any, run: DRRun) -> Check:
    from pymongo import MongoClient
    from pymongo.errors import PyMongoError

    old = client.admin.command("hello")["primary"]
    host, port = old.rsplit(":", 1)
    run.step(f"mongo: replSetStepDown on {old}")
    start = time.monotonic()
    direct: MongoClient[dict[str, Any]] = MongoClient(host, int(port), directConnection=True)
    with direct:
        direct.admin.command("replSetStepDown", 30)

    def accepts() -> bool:
        try:
            client.opsrun_dr.markers.insert_one({"drill": time.time()})
            return bool(client.admin.command("hello").get("primary") != old)
        except PyMongoError:
            return False

    try:
        rto = seconds_until(accepts, start, "a new primary that accepts writes")
    except WaitTimeout:
        return Check("mongo", "stepdown drill", FAIL, [f"no new primary accepted writes within {WAIT:.0f} s"])
    new = client.admin.command("hello")["primary"]
    run.step(f"mongo: {new} is primary and accepts writes after {rto:.3f} s")
    return Check(
        "mongo",
        "stepdown drill",
        PASS,
        [f"measured RTO {rto:.3f} s (stepdown of {old} until {new} accepted a write)"],
        f"replSetStepDown on {old}; insert until acknowledged",
        {"rto_seconds": round(rto, 3)},
    )


@contextlib.contextmanager
def libpq_client(url: str) -> Iterator[str]:
    """`url` as a conninfo for a libpq program (pg_restore, pg_dump, psql) without its password: the password
    goes to a passfile of mode 600 in a folder of mode 700 of its own, removed when the block ends. A
    password in argv is visible to every user of the machine (`ps`, /proc/PID/cmdline)."""
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    params = conninfo_to_dict(url)
    password = params.pop("password", None)
    if password is None:
        yield make_conninfo("", **params)  # the operator's own PGPASSWORD, PGPASSFILE or ~/.pgpass applies
        return
    folder = tempfile.mkdtemp(prefix="opsrun-pgpass-")  # mode 700
    passfile = os.path.join(folder, "pgpass")
    try:
        fd = os.open(passfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        escaped = str(password).replace("\\", "\\\\").replace(":", "\\:")
        with os.fdopen(fd, "w") as f:
            f.write(f"*:*:*:*:{escaped}\n")
        yield make_conninfo("", **params, passfile=passfile)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
