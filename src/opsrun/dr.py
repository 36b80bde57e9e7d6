"""The monthly DR test: checks that gather evidence, drills that are timed, a report that compares the
measured numbers with the RTO/RPO targets and with earlier months.

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

import calendar
import datetime as dt
import glob
import os
import subprocess
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from opsrun.errors import ConfigError, WaitTimeout
from opsrun.inventory import Inventory
from opsrun.waiting import poll_until

PASS, FAIL, SKIP = "PASS", "FAIL", "SKIP"
DEFAULT_RTO_MINUTES, DEFAULT_RPO_MINUTES = 15.0, 5.0
WAIT = 60.0


@dataclass
class Check:
    system: str
    name: str
    status: str
    evidence: list[str] = field(default_factory=list)
    source: str = ""  # the query, command or API call that produced the evidence
    measured: dict[str, float] = field(default_factory=dict)  # rto_seconds, rpo_seconds, lag_seconds, ...
    severity: str = "high"  # of the issue a FAIL becomes


@dataclass
class DRRun:
    inventory: str
    month: str
    started: str
    who: str
    version: str
    revision: str | None
    targets: dict[str, dict[str, float]]
    checks: list[Check] = field(default_factory=list)
    log: list[str] = field(default_factory=list)  # timestamped drill steps
    degraded: list[str] = field(default_factory=list)  # systems a drill could not put back as they were
    trend: list[dict[str, Any]] = field(default_factory=list)  # earlier months, oldest first
    seconds: float = 0.0
    run_id: int | None = None

    def step(self, text: str) -> None:
        self.log.append(f"{dt.datetime.now(dt.UTC).strftime('%H:%M:%S.%f')[:-3]} {text}")

    @property
    def status(self) -> str:
        return "failed" if self.degraded or any(c.status == FAIL for c in self.checks) else "passed"

    @property
    def exit_code(self) -> int:
        return 0 if self.status == "passed" else 1

    def systems(self) -> list[dict[str, Any]]:
        """Per system: targets, the measured RTO and RPO (worst of its checks), pass/fail."""
        out = []
        for name, target in self.targets.items():
            mine = [c for c in self.checks if c.system == name]
            rto = max((c.measured["rto_seconds"] for c in mine if "rto_seconds" in c.measured), default=None)
            rpo = max((c.measured["rpo_seconds"] for c in mine if "rpo_seconds" in c.measured), default=None)
            ok = all(c.status != FAIL for c in mine)
            ok = ok and (rto is None or rto <= target["rto_minutes"] * 60)
            ok = ok and (rpo is None or rpo <= target["rpo_minutes"] * 60)
            out.append(
                {
                    "system": name,
                    "rto_target_seconds": target["rto_minutes"] * 60,
                    "rpo_target_seconds": target["rpo_minutes"] * 60,
                    "rto_seconds": rto,
                    "rpo_seconds": rpo,
                    "result": PASS if ok and mine else (SKIP if not mine else FAIL),
                }
            )
        return out

    def issues(self) -> list[dict[str, str]]:
        found = [{"severity": "critical", "issue": f"{s} left degraded by a drill"} for s in self.degraded]
        found += [
            {"severity": c.severity, "issue": f"{c.system}: {c.name}: {c.evidence[0] if c.evidence else 'failed'}"}
            for c in self.checks
            if c.status == FAIL
        ]
        for s in self.systems():
            for what in ("rto", "rpo"):
                got, want = s[f"{what}_seconds"], s[f"{what}_target_seconds"]
                if got is not None and got > want:
                    found.append(
                        {
                            "severity": "high",
                            "issue": f"{s['system']}: measured {what.upper()} {got:.1f}s > {want:.0f}s",
                        }
                    )
        return found

    def next_test(self) -> str:
        start = dt.date.fromisoformat(self.started[:10])
        if self.status != "passed":
            return (start + dt.timedelta(days=30)).isoformat() + " (re-test: this one failed)"
        year, month = (start.year + start.month // 12, start.month % 12 + 1)
        return dt.date(year, month, min(start.day, calendar.monthrange(year, month)[1])).isoformat()

    def to_dict(self) -> dict[str, Any]:
        systems = self.systems()
        issues = self.issues()
        return {
            "kind": "dr-test",
            "run_id": self.run_id,
            "status": self.status,
            "inventory": self.inventory,
            "month": self.month,
            "started": self.started,
            "who": self.who,
            "opsrun_version": self.version,
            "revision": self.revision,
            "seconds": round(self.seconds, 3),
            "first_line": (
                f"DEGRADED: {', '.join(self.degraded)} could not be put back after the drill"
                if self.degraded
                else f"DR test {self.month} on {self.inventory}: {self.status.upper()}"
            ),
            "summary": {
                "checks": len(self.checks),
                "passed": sum(c.status == PASS for c in self.checks),
                "failed": sum(c.status == FAIL for c in self.checks),
                "skipped": sum(c.status == SKIP for c in self.checks),
                "issues": len(issues),
            },
            "systems": systems,
            "checks": [asdict(c) for c in self.checks],
            "drill_log": self.log,
            "issues": issues,
            "action_items": [f"fix and re-test: {i['issue']}" for i in issues],
            "next_test": self.next_test(),
            "degraded": self.degraded,
            "trend": self.trend,
        }


# ------------------------------------------------------------------------------------------------ settings


def settings(inv: Inventory, hosts: list[str]) -> dict[str, Any]:
    dr = inv.hosts[hosts[0]].data.get("dr") if hosts else None
    if not isinstance(dr, dict):
        raise ConfigError(
            inv.path,
            "no `dr` settings for these hosts.",
            field="dr",
            fix='add dr = {"backups": [...], "postgres": {...}, "redis": True} to group_data/all.py',
        )
    return dr


def targets(dr: dict[str, Any], systems: list[str]) -> dict[str, dict[str, float]]:
    base = {"rto_minutes": DEFAULT_RTO_MINUTES, "rpo_minutes": DEFAULT_RPO_MINUTES, **dr.get("targets", {})}
    return {s: {**base, **dr.get("systems", {}).get(s, {})} for s in systems}


# ------------------------------------------------------------------------------------------------ backups


def _age_check(name: str, newest: dt.datetime | None, what: str, max_age_hours: float, source: str) -> Check:
    now = dt.datetime.now(dt.UTC)
    if newest is None:
        return Check("backups", name, FAIL, [f"no backup found ({what})"], source)
    age = (now - newest).total_seconds() / 3600
    status = PASS if age <= max_age_hours else FAIL
    evidence = [f"newest {what} at {newest.isoformat(timespec='seconds')}, {age:.1f} h old (allowed {max_age_hours} h)"]
    return Check("backups", name, status, evidence, source, {"age_hours": round(age, 2)})


def backup_check(spec: dict[str, Any]) -> Check:
    name, max_age = spec.get("name", "backup"), float(spec.get("max_age_hours", 26))
    if "s3" in spec:
        import boto3

        bucket, _, prefix = spec["s3"].removeprefix("s3://").partition("/")
        newest = None
        key = ""
        for page in boto3.client("s3").get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                if newest is None or obj["LastModified"] > newest:
                    newest, key = obj["LastModified"], obj["Key"]
        return _age_check(
            name, newest, f"object s3://{bucket}/{key}" if key else "object", max_age, f"s3 ListObjectsV2 {spec['s3']}"
        )
    if "rds" in spec:
        import boto3

        snaps = boto3.client("rds").describe_db_snapshots(DBInstanceIdentifier=spec["rds"])["DBSnapshots"]
        done = [s for s in snaps if s.get("SnapshotCreateTime")]
        newest = max(done, key=lambda s: s["SnapshotCreateTime"]) if done else None
        return _age_check(
            name,
            newest["SnapshotCreateTime"] if newest else None,
            f"snapshot {newest['DBSnapshotIdentifier']}" if newest else "snapshot",
            max_age,
            f"rds DescribeDBSnapshots DBInstanceIdentifier={spec['rds']}",
        )
    if "files" in spec:
        paths = sorted(glob.glob(spec["files"]), key=os.path.getmtime)
        newest = dt.datetime.fromtimestamp(os.path.getmtime(paths[-1]), dt.UTC) if paths else None
        return _age_check(name, newest, f"file {paths[-1]}" if paths else "file", max_age, f"newest of {spec['files']}")
    raise ConfigError("dr.backups", f"{spec!r} names no s3, rds or files.", field="dr.backups", fix="add one of them")


# ------------------------------------------------------------------------------------------------ postgres


def _pg(url: str) -> Any:
    import psycopg

    return psycopg.connect(url, autocommit=True, connect_timeout=5)


def _counts(url: str, tables: list[str]) -> dict[str, int]:
    from psycopg import sql

    with _pg(url) as conn:
        return {
            t: int(conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(t))).fetchone()[0])
            for t in tables
        }


def postgres_checks(pg: dict[str, Any], run: DRRun) -> list[Check]:
    urls = {k: os.environ[v] for k, v in pg.get("secret_env", {}).items()}
    tables = list(pg.get("tables", []))
    primary, replica = urls["primary"], urls.get("replica")
    checks = [_one("postgres", "streaming replication", lambda: replication_check(primary, replica, pg))]
    if replica:
        checks.append(_one("postgres", "row counts primary vs replica", lambda: counts_check(primary, replica, tables)))
        checks.append(_one("postgres", "RPO probe", lambda: pg_rpo_probe(primary, replica, run)))
    if pg.get("dumps") and urls.get("scratch"):
        scratch = urls["scratch"]
        checks.append(
            _one("postgres", "restore drill", lambda: restore_drill(pg["dumps"], primary, scratch, tables, run))
        )
    return checks


def _one(system: str, name: str, fn: Callable[[], Check]) -> Check:
    """One check; an error reaching its system is that check's FAIL, with the error as its evidence."""
    try:
        return fn()
    except ConfigError:
        raise
    except Exception as exc:  # noqa: BLE001 - every failure is evidence in the report
        return Check(system, name, FAIL, [f"{type(exc).__name__}: {exc}"])


REPLICATION_QUERY = (
    "SELECT application_name, state, pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)::bigint, "
    "COALESCE(EXTRACT(EPOCH FROM replay_lag), 0)::float FROM pg_stat_replication"
)


def replication_check(primary: str, replica: str | None, pg: dict[str, Any]) -> Check:
    max_bytes, max_seconds = int(pg.get("max_lag_bytes", 16 * 1024 * 1024)), float(pg.get("max_lag_seconds", 30))
    with _pg(primary) as conn:
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
        with _pg(replica) as conn:
            paused = conn.execute("SELECT pg_is_wal_replay_paused()").fetchone()[0]
        if paused:
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
    a, b = _counts(primary, tables), _counts(replica, tables)
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
    with _pg(primary) as conn:
        conn.execute(f"CREATE TABLE IF NOT EXISTS {MARKER_TABLE} (marker text PRIMARY KEY, at timestamptz)")
        run.step(f"postgres: wrote marker {marker} on the primary")
        start = time.monotonic()
        conn.execute(f"INSERT INTO {MARKER_TABLE} VALUES (%s, now())", (marker,))  # noqa: S608 - a constant name
    with _pg(replica) as conn:
        source = f"INSERT INTO {MARKER_TABLE} on the primary; SELECT on the replica until found"
        return _rpo("postgres", "the replica", lambda: _marker_on(conn, marker), start, run, source)


def _marker_on(conn: Any, marker: str) -> bool:
    """Whether the replica can read the marker yet (its table may not have been replayed yet either)."""
    import psycopg

    try:
        return conn.execute(f"SELECT 1 FROM {MARKER_TABLE} WHERE marker = %s", (marker,)).fetchone() is not None  # noqa: S608
    except psycopg.errors.UndefinedTable:
        return False


def restore_drill(pattern: str, source: str, scratch_url: str, tables: list[str], run: DRRun) -> Check:
    """pg_restore the newest dump into a fresh scratch database and compare row counts with the source."""
    from psycopg import sql

    dumps = sorted(glob.glob(pattern), key=os.path.getmtime)
    if not dumps:
        return Check("postgres", "restore drill", FAIL, [f"no dump matches {pattern}"])
    dump = dumps[-1]
    scratch = f"opsrun_dr_restore_{int(time.time())}"
    with _pg(scratch_url) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(scratch)))
    target = _with_database(scratch_url, scratch)
    try:
        run.step(f"postgres: restoring {dump} into scratch database {scratch}")
        start = time.monotonic()
        proc = subprocess.run(
            ["pg_restore", "--no-owner", "--no-privileges", "--exit-on-error", "-d", target, dump],
            capture_output=True,
            text=True,
            timeout=3600,
            check=False,
        )
        took = time.monotonic() - start
        if proc.returncode != 0:
            return Check("postgres", "restore drill", FAIL, [f"pg_restore failed: {proc.stderr.strip()[-500:]}"])
        restored, live = _counts(target, tables), _counts(source, tables)
        run.step(f"postgres: restored in {took:.1f} s; comparing {', '.join(tables)}")
    finally:
        with _pg(scratch_url) as conn:
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


def _poll(found: Callable[[], Any], start: float, what: str, timeout: float = WAIT) -> float:
    """Seconds from `start` until `found` holds; WaitTimeout once `timeout` has passed since `start`. An
    exception from `found` is not "not yet": it reaches the caller (the check's FAIL, or the drill's)."""
    poll_until(found, timeout=max(0.0, start + timeout - time.monotonic()), interval=0.01, what=what)
    return time.monotonic() - start


# ------------------------------------------------------------------------------------------------ redis


def redis_nodes(inv: Inventory) -> list[tuple[str, int]]:
    return [
        (str(inv.hosts[h].data.get("ssh_hostname") or h), int(p))
        for h in inv.select("redis")
        for p in inv.hosts[h].data.get("redis_cluster_ports", [])
    ]


def _redis_password(inv: Inventory) -> str | None:
    hosts = inv.select("redis")
    name = ((inv.hosts[hosts[0]].data.get("redis_cluster_auth") or {}).get("secret_env") or {}).get("requirepass")
    return os.environ.get(name) if name else None


def redis_checks(inv: Inventory, run: DRRun, drill: bool) -> list[Check]:
    import redis
    from redis.cluster import ClusterNode, RedisCluster

    nodes = redis_nodes(inv)
    password = _redis_password(inv)
    with redis.Redis(nodes[0][0], nodes[0][1], password=password, socket_timeout=2) as one:
        info = one.execute_command("CLUSTER", "INFO").decode()
        listed = _lines(one.execute_command("CLUSTER", "NODES"))
    fields = dict(line.split(":", 1) for line in info.split() if ":" in line)
    masters = [line.split() for line in listed if " master " in f" {line.split()[2].replace(',', ' ')} "]
    replicas = [line.split() for line in listed if "slave" in line.split()[2]]
    lonely = [m[1] for m in masters if not any(r[3] == m[0] and r[7] == "connected" for r in replicas)]
    ok = fields.get("cluster_state") == "ok" and fields.get("cluster_slots_ok") == "16384" and not lonely
    health = Check(
        "redis",
        "cluster health",
        PASS if ok else FAIL,
        [
            f"cluster_state {fields.get('cluster_state')}, slots ok {fields.get('cluster_slots_ok')}/16384",
            f"{len(masters)} masters, {len(replicas)} replicas"
            + (f"; masters without a connected replica: {', '.join(lonely)}" if lonely else ""),
        ],
        f"CLUSTER INFO; CLUSTER NODES on {nodes[0][0]}:{nodes[0][1]}",
    )
    checks = [health]
    cluster = RedisCluster(startup_nodes=[ClusterNode(h, p) for h, p in nodes], password=password, socket_timeout=2)
    try:
        checks.append(redis_rpo_probe(cluster, password, run))
        if drill and ok:
            checks.append(redis_failover_drill(cluster, password, run))
    finally:
        cluster.close()
    return checks


def redis_rpo_probe(cluster: Any, password: str | None, run: DRRun) -> Check:
    import redis

    key = f"opsrun:dr:marker:{time.time_ns()}"
    master = cluster.get_node_from_key(key)
    listed = cluster.get_redis_connection(master).execute_command("CLUSTER", "REPLICAS", _node_id(cluster, master))
    replica_line = _lines(listed)[0].split()
    host, port = replica_line[1].split("@")[0].rsplit(":", 1)
    with redis.Redis(host, int(port), password=password, socket_timeout=2) as replica:
        replica.execute_command("READONLY")
        start = time.monotonic()
        cluster.set(key, "1", ex=3600)
        run.step(f"redis: wrote {key} on master {master.host}:{master.port}")
        source = "SET on the master; READONLY + GET on its replica until found"
        return _rpo("redis", f"replica {host}:{port}", lambda: replica.get(key), start, run, source)


def _rpo(system: str, where: str, found: Callable[[], Any], start: float, run: DRRun, source: str) -> Check:
    """The RPO probe's result: the time from the marker's write until `found` sees it on `where`."""
    try:
        seconds = _poll(found, start, f"the {system} marker on {where}")
    except WaitTimeout:
        return Check(system, "RPO probe", FAIL, [f"marker not readable on {where} after {WAIT:.0f} s"], source)
    run.step(f"{system}: marker readable on {where} after {seconds:.3f} s")
    evidence = [f"marker visible on {where} {seconds:.3f} s after the write"]
    return Check(system, "RPO probe", PASS, evidence, source, {"rpo_seconds": round(seconds, 3)})


def _lines(reply: Any) -> list[str]:
    """CLUSTER NODES (one bulk string) or CLUSTER REPLICAS (an array of them) as text lines."""
    items = reply if isinstance(reply, list) else [reply]
    text = "\n".join(i.decode() if isinstance(i, bytes) else str(i) for i in items)
    return [line for line in text.splitlines() if line.strip()]


def _node_id(cluster: Any, node: Any) -> str:
    return str(cluster.get_redis_connection(node).execute_command("CLUSTER", "MYID").decode())


def redis_failover_drill(cluster: Any, password: str | None, run: DRRun) -> Check:
    """CLUSTER FAILOVER on a replica; RTO = until the cluster is ok and writes to the moved slots succeed.
    Then the original roles are restored with a second failover, and checked."""
    import redis

    key = f"opsrun:dr:drill:{time.time_ns()}"
    old_master = cluster.get_node_from_key(key)
    old_id = _node_id(cluster, old_master)
    line = _lines(cluster.get_redis_connection(old_master).execute_command("CLUSTER", "REPLICAS", old_id))[0].split()
    host, port = line[1].split("@")[0].rsplit(":", 1)
    with (
        redis.Redis(host, int(port), password=password, socket_timeout=2) as replica,
        redis.Redis(old_master.host, old_master.port, password=password, socket_timeout=2) as original,
    ):
        run.step(f"redis: CLUSTER FAILOVER on replica {host}:{port} of {old_master.host}:{old_master.port}")
        start = time.monotonic()
        replica.execute_command("CLUSTER", "FAILOVER")

        def serving() -> bool:
            try:
                if _role(replica) != "master":
                    return False
                state = replica.execute_command("CLUSTER", "INFO").decode()
                if "cluster_state:ok" not in state:
                    return False
                replica.set(key, "1", ex=3600)
                return True
            except redis.RedisError:
                return False

        try:
            rto = _poll(serving, start, "a write on the new master")
        except WaitTimeout:
            return Check("redis", "failover drill", FAIL, [f"no write on the new master within {WAIT:.0f} s"])
        run.step(f"redis: {host}:{port} is master, cluster ok, writes to the moved slots succeed after {rto:.3f} s")
        run.step(f"redis: restoring roles: CLUSTER FAILOVER on {old_master.host}:{old_master.port}")
        try:
            _poll(lambda: _replication(original).get("master_link_status") == "up", time.monotonic(), "the link up")
            _poll(lambda: _fail_back(original), time.monotonic(), "the original master back")
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


def _replication(node: Any) -> dict[str, Any]:
    info: dict[str, Any] = node.info("replication")
    return info


def _role(node: Any) -> str:
    return str(_replication(node)["role"])


def _fail_back(node: Any) -> bool:
    """Ask `node` (a replica that is in sync) to take over again; True once it is master and the cluster
    is ok. A request that has not taken after a few seconds is sent again."""
    if _role(node) == "master":
        return serving_ok(node)
    node.execute_command("CLUSTER", "FAILOVER")
    try:
        poll_until(lambda: _role(node) == "master", timeout=5, interval=0.05, what="the failover to take")
    except WaitTimeout:
        return False
    return serving_ok(node)


def serving_ok(node: Any) -> bool:
    return "cluster_state:ok" in node.execute_command("CLUSTER", "INFO").decode()


# ------------------------------------------------------------------------------------------------ mongo


def mongo_checks(inv: Inventory, run: DRRun, drill: bool) -> list[Check]:
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
            checks.append(_one("mongo", "RPO probe", lambda: mongo_rpo_probe(client, secondary, run)))
        if drill and ok:
            checks.append(mongo_stepdown_drill(client, run))
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
        return _rpo("mongo", f"secondary {secondary}", found, start, run, "insert on the primary; find on a secondary")


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
        rto = _poll(accepts, start, "a new primary that accepts writes")
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


def run_dr_test(inv: Inventory, hosts: list[str], run: DRRun, drill: bool) -> DRRun:
    dr = settings(inv, hosts)
    started = time.monotonic()
    for spec in dr.get("backups", []):
        run.checks.append(_guard("backups", spec.get("name", "backup"), _backup(spec)))
    if dr.get("postgres"):
        run.checks += _guard("postgres", "checks", lambda: postgres_checks(dr["postgres"], run))
    if dr.get("redis"):
        run.checks += _guard("redis", "checks", lambda: redis_checks(inv, run, drill))
    if dr.get("mongo"):
        run.checks += _guard("mongo", "checks", lambda: mongo_checks(inv, run, drill))
    run.seconds = time.monotonic() - started
    return run


def _backup(spec: dict[str, Any]) -> Callable[[], list[Check]]:
    return lambda: [backup_check(spec)]


def _guard(system: str, name: str, fn: Callable[[], list[Check]]) -> Any:
    """A system that cannot be reached is a FAIL with the error as evidence, not a crash of the report."""
    try:
        result = fn()
    except ConfigError:
        raise
    except Exception as exc:  # noqa: BLE001 - every failure is evidence in the report
        result = [Check(system, name, FAIL, [f"{type(exc).__name__}: {exc}"])]
    return result[0] if system == "backups" else result


def month_of(value: str | None) -> str:
    if value is None:
        return dt.date.today().strftime("%Y-%m")
    try:
        parsed = dt.datetime.strptime(value, "%Y-%m")
    except ValueError:
        parsed = None
    if parsed is None or parsed.strftime("%Y-%m") != value:
        raise ConfigError("--month", f"{value!r} is not a month.", field="--month", fix="use YYYY-MM, e.g. 2026-11")
    return value


def systems_of(dr: dict[str, Any]) -> list[str]:
    return [s for s in ("backups", "postgres", "redis", "mongo") if dr.get(s)]
