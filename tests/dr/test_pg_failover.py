"""`opsrun dr-test --drill` fails a real PostgreSQL primary over to its streaming replica (two throwaway clusters
on free loopback ports): RTO from the crash of the primary until the promoted replica accepts a write, RPO from
the markers it lacks, and the pair put back as it was (rebuilt by pg_basebackup, or by pg_rewind where the
servers allow it), replicating again, which the replication check then confirms. Refused, touching nothing,
in an environment marked production and on servers that are not the ones named. No password in any argv.
The same drill on the lab's pair: tests/lab/test_dr_drill.py."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import psycopg
import pytest

from tests.conftest import CommandLineWatch, PgCluster, copy_ops

PASSWORD = "pg-" + secrets.token_hex(10)

DR = """
dr = {
    "production": %(production)s,
    "targets": {"rto_minutes": 15, "rpo_minutes": 5},
    "postgres": {
        "secret_env": {"primary": "DR_PG_PRIMARY", "replica": "DR_PG_REPLICA"},
        "tables": ["users"],
        "failover": {"primary_data": "%(primary)s", "replica_data": "%(replica)s", "markers": 300},
    },
}
"""


def make_pair(rewindable: bool):
    """A primary and its streaming replica; `rewindable`: set up for pg_rewind (wal_log_hints, and WAL kept
    for it to read back to the last common checkpoint)."""
    base = Path(tempfile.mkdtemp(prefix="opsrun-dr-failover-"))  # not under pytest's 700 folder: postgres reads it
    base.chmod(0o755)
    primary = PgCluster.create(base / "primary", PASSWORD)
    primary.start()
    with psycopg.connect(primary.url(PASSWORD), autocommit=True) as conn:
        conn.execute("CREATE TABLE users (id serial PRIMARY KEY, name text)")
        conn.execute("INSERT INTO users (name) SELECT 'u' || g FROM generate_series(1, 50) g")
        if rewindable:
            conn.execute("ALTER SYSTEM SET wal_log_hints = on")
            conn.execute("ALTER SYSTEM SET wal_keep_size = '256MB'")
    if rewindable:
        primary.stop()
        primary.start()
    replica = PgCluster.replica_of(primary, base / "replica", PASSWORD)
    replica.start()
    return base, primary, replica


@pytest.fixture(scope="module")
def pair():
    base, primary, replica = make_pair(rewindable=False)
    yield primary, replica
    replica.stop()
    primary.stop()
    shutil.rmtree(base, ignore_errors=True)


def project(tmp_path: Path, primary: PgCluster, replica: PgCluster, *, name="drtest", production="None") -> Path:
    ops = copy_ops(tmp_path / "ops")
    (ops / "group_data" / "production.py").unlink()  # the shipped example's hosts and cloud checks: not these
    (ops / "inventories" / f"{name}.py").write_text('all = (["db1"], {"ssh_hostname": "127.0.0.1"})\n')
    settings = {"production": production, "primary": primary.data, "replica": replica.data}
    (ops / "group_data" / "all.py").write_text(DR % settings)
    return ops


def dr_test(ops: Path, primary, replica, *args: str, inventory: str = "drtest") -> tuple[int, dict | None, str]:
    env = {**os.environ, "DR_PG_PRIMARY": primary.url(PASSWORD), "DR_PG_REPLICA": replica.url(PASSWORD)}
    proc = subprocess.run(
        [sys.executable, "-m", "opsrun", "--project", str(ops), "dr-test", inventory, "--format", "json", *args],
        capture_output=True, text=True, env=env, timeout=600, check=False,
    )  # fmt: skip
    try:
        doc = json.loads(proc.stdout)
    except json.JSONDecodeError:
        doc = None
    return proc.returncode, doc, proc.stdout + proc.stderr


def checks_of(doc: dict) -> dict[str, dict]:
    return {f"{c['system']}: {c['name']}": c for c in doc["checks"]}


def one(url: str, query: str, *args):
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute(query, args or None).fetchone()


def assert_replicating(primary: PgCluster, replica: PgCluster) -> None:
    """The pair as before the drill: the primary's URL a primary, the replica's a streaming replica that
    reads a row written on the primary."""
    assert one(primary.url(PASSWORD), "SELECT pg_is_in_recovery()") == (False,)
    assert one(replica.url(PASSWORD), "SELECT pg_is_in_recovery()") == (True,)
    assert one(replica.url(PASSWORD), "SELECT status FROM pg_stat_wal_receiver") == ("streaming",)
    one(primary.url(PASSWORD), "INSERT INTO users (name) VALUES ('after the drill') RETURNING id")
    from opsrun.support.waiting import poll_until

    poll_until(
        lambda: one(replica.url(PASSWORD), "SELECT count(*) FROM users WHERE name = 'after the drill'")[0] > 0,
        timeout=30, interval=0.05, what="the replica to read a row written on the primary",
    )  # fmt: skip
    one(primary.url(PASSWORD), "DELETE FROM users WHERE name = 'after the drill' RETURNING id")


def run_drill(tmp_path, primary, replica) -> tuple[dict, CommandLineWatch]:
    ops = project(tmp_path, primary, replica)
    with CommandLineWatch(PASSWORD) as watch:
        code, doc, text = dr_test(ops, primary, replica, "--drill")
    assert doc is not None, text
    assert code == 0, json.dumps(doc["checks"], indent=1) + "\n".join(doc["drill_log"])
    assert PASSWORD not in text
    return doc, watch


def test_the_failover_drill_measures_rto_and_rpo_and_puts_the_pair_back(pair, tmp_path):
    primary, replica = pair
    doc, watch = run_drill(tmp_path, primary, replica)
    drill = checks_of(doc)["postgres: failover drill"]
    assert drill["status"] == "PASS"
    rto, rpo = drill["measured"]["rto_seconds"], drill["measured"]["rpo_seconds"]
    assert 0 < rto < 60 and 0 <= rpo < 60
    assert drill["evidence"][0].startswith(f"measured RTO {rto:.3f} s (primary stopped as a crash")
    assert "markers acknowledged before the failure" in drill["evidence"][1]
    assert drill["evidence"][2].startswith("put back: old primary rebuilt by basebackup")
    [postgres] = [s for s in doc["systems"] if s["system"] == "postgres"]
    assert (postgres["rto_seconds"], postgres["rto_note"], postgres["result"]) == (rto, None, "PASS")
    log = "\n".join(doc["drill_log"])
    for said in ("primary stopped as a crash", "replica promoted", "accepted a write", "rebuilt by basebackup",
                 "no write lost in the switchover", "roles back as they were"):  # fmt: skip
        assert said in log, log
    assert doc["degraded"] == [] and doc["status"] == "passed"
    assert watch.sampled > 0 and watch.leaks == [], watch.leaks  # pg_basebackup got it in PGPASSWORD

    assert_replicating(primary, replica)
    code, after, text = dr_test(project(tmp_path / "after", primary, replica), primary, replica)
    assert code == 0 and checks_of(after)["postgres: streaming replication"]["status"] == "PASS", text
    assert one(primary.url(PASSWORD), "SELECT count(*) FROM opsrun_dr_marker WHERE marker LIKE 'dr-failover-%'") == (0,)
    assert not list(Path(primary.data).parent.glob("data.opsrun-drill-*")), "an old data directory was left"


def test_the_pair_is_rebuilt_by_pg_rewind_where_the_servers_allow_it(tmp_path):
    base, primary, replica = make_pair(rewindable=True)
    try:
        doc, _watch = run_drill(tmp_path, primary, replica)
        drill = checks_of(doc)["postgres: failover drill"]
        assert drill["evidence"][2].startswith("put back: old primary rebuilt by pg_rewind"), drill["evidence"]
        assert "replica rebuilt by pg_rewind" in drill["evidence"][2]
        assert_replicating(primary, replica)
    finally:
        replica.stop()
        primary.stop()
        shutil.rmtree(base, ignore_errors=True)


def postmaster_pids(*clusters: PgCluster) -> list[str]:
    return [(Path(c.data) / "postmaster.pid").read_text().split()[0] for c in clusters]


@pytest.mark.parametrize(
    ("inventory", "production"), [("drtest", "True"), ("production", "None")], ids=["marked", "named production"]
)
def test_refused_in_production_unless_allowed_touching_nothing(pair, tmp_path, inventory, production):
    primary, replica = pair
    before = postmaster_pids(primary, replica)
    ops = project(tmp_path, primary, replica, name=inventory, production=production)
    code, doc, text = dr_test(ops, primary, replica, "--drill", inventory=inventory)
    assert code == 2 and doc is None, text
    assert "dr.postgres.failover.allow_in_production" in text and "all.py" in text
    assert postmaster_pids(primary, replica) == before
    assert_replicating(primary, replica)
    code, doc, text = dr_test(ops, primary, replica, inventory=inventory)  # without --drill: the checks run
    assert code == 0, text
    [postgres] = [s for s in doc["systems"] if s["system"] == "postgres"]
    assert postgres["rto_note"] == "not drilled (enable with dr-test --drill)"


def test_servers_that_are_not_the_ones_named_are_refused_touching_nothing(pair, tmp_path):
    primary, replica = pair
    before = postmaster_pids(primary, replica)
    swapped = project(tmp_path, replica, primary)  # primary_data names the replica's directory
    code, doc, text = dr_test(swapped, primary, replica, "--drill")
    assert code == 1, text
    drill = checks_of(doc)["postgres: failover drill"]
    assert drill["status"] == "FAIL" and drill["evidence"][0].startswith("not started, nothing was touched: primary")
    assert doc["degraded"] == [] and postmaster_pids(primary, replica) == before
    assert_replicating(primary, replica)
