"""`opsrun dr-test lab --drill` against the lab's real Redis Cluster and the MongoDB replica set (the mongod
stand-in): every check PASS with measured numbers, the Redis failover drill's measured RTO, the original
roles restored (verify passes afterwards), and the Mongo stepdown drill timed until a new primary accepts
writes; the PostgreSQL failover drill on the pair of `opsrun lab postgres`, put back and replicating after.
PostgreSQL, S3 and RDS checks are shown in tests/dr/test_dr.py, the failover drill on throwaway servers in
tests/dr/test_pg_failover.py."""

from __future__ import annotations

import json
import os

import pytest
import redis

from tests.conftest import CommandLineWatch, copy_ops, opsrun, opsrun_json
from tests.lab.conftest import install_mongod

pytestmark = pytest.mark.lab
HOSTS = ["web1", "web2", "web3"]
PORTS = [7000, 7001, 7002, 7003, 7004, 7005]


@pytest.fixture(scope="module")
def data_tier(lab, on_host):
    code, doc = opsrun_json("apply", "lab", "redis_cluster")
    assert code == 0, doc
    install_mongod(on_host, HOSTS)
    code, doc = opsrun_json("apply", "lab", "mongo_replicaset")
    assert code == 0, doc


@pytest.fixture
def dr_project(tmp_path):
    ops = copy_ops(tmp_path / "ops")
    (ops / "group_data" / "all.py").write_text(
        'dr = {"targets": {"rto_minutes": 15, "rpo_minutes": 5}, "systems": {"redis": {"rto_minutes": 1}},\n'
        '      "redis": True, "mongo": True}\n'
    )
    return ops


def roles(addresses) -> dict[tuple[str, int], str]:
    out = {}
    for i, port in enumerate(PORTS):
        address = addresses[HOSTS[i // 2]]
        with redis.Redis(address, port, password=os.environ["OPSRUN_REDIS_PASSWORD"], socket_timeout=2) as node:
            out[(address, port)] = node.info("replication")["role"]
    return out


def test_drills_measure_rto_and_put_the_roles_back(data_tier, dr_project, addresses):
    before = roles(addresses)
    code, doc = opsrun_json("dr-test", "lab", "--drill", project=dr_project)
    assert code == 0, doc
    checks = {f"{c['system']}: {c['name']}": c for c in doc["checks"]}
    assert set(checks) == {
        "redis: cluster health",
        "redis: RPO probe",
        "redis: failover drill",
        "mongo: replica set health",
        "mongo: RPO probe",
        "mongo: stepdown drill",
    }
    assert all(c["status"] == "PASS" for c in checks.values()), checks
    rto = checks["redis: failover drill"]["measured"]["rto_seconds"]
    assert 0 < rto < 60
    assert 0 <= checks["redis: RPO probe"]["measured"]["rpo_seconds"] < 5
    assert 0 < checks["mongo: stepdown drill"]["measured"]["rto_seconds"] < 60
    assert 0 <= checks["mongo: RPO probe"]["measured"]["rpo_seconds"] < 5
    [redis_system] = [s for s in doc["systems"] if s["system"] == "redis"]
    assert (redis_system["rto_seconds"], redis_system["rto_target_seconds"], redis_system["result"]) == (
        rto,
        60,
        "PASS",
    )
    assert any("original roles restored" in line for line in doc["drill_log"])
    assert doc["degraded"] == [] and doc["first_line"] == "DR test " + doc["month"] + " on lab: PASSED"
    assert roles(addresses) == before
    code, verified = opsrun_json("verify", "lab", "redis_cluster")
    assert code == 0, verified


@pytest.fixture
def lab_postgres(lab):
    """The lab's PostgreSQL primary and replica (`opsrun lab postgres`) with this session's URLs, stopped after."""
    from opsrun.lab import demo, postgres

    env = demo.demo_env(None)
    for name in ("OPSRUN_PG_PRIMARY_URL", "OPSRUN_PG_REPLICA_URL"):
        os.environ.setdefault(name, env[name])
    proc = opsrun("lab", "postgres")
    assert proc.returncode == 0, proc.stderr
    try:
        yield os.environ["OPSRUN_PG_PRIMARY_URL"]
    finally:
        postgres.stop(lab.cfg)


def test_the_restore_drill_shows_no_password_in_any_process_list(lab_postgres, tmp_path):
    """Issue 11, item 6: pg_restore got the database password in its argv. Every process's command line is
    sampled while `opsrun dr-test lab` restores the lab's nightly dump (tests/dr/test_dr.py records
    pg_restore's own argv too)."""
    from urllib.parse import urlsplit

    password = urlsplit(lab_postgres).password
    assert password
    ops = copy_ops(tmp_path / "ops")
    text = (ops / "group_data" / "all.py").read_text()
    (ops / "group_data" / "all.py").write_text(
        text.replace('"redis": True,', '"redis": False,').replace('"mongo": True,', '"mongo": False,')
    )
    with CommandLineWatch(password) as watch:
        proc = opsrun("dr-test", "lab", "--format", "json", project=ops)
    doc = json.loads(proc.stdout)
    checks = {f"{c['system']}: {c['name']}": c for c in doc["checks"]}
    assert checks["postgres: restore drill"]["status"] == "PASS", checks
    assert watch.leaks == []
    assert password not in proc.stdout + proc.stderr


def in_recovery(url: str) -> bool:
    import psycopg

    with psycopg.connect(url, autocommit=True, connect_timeout=5) as conn:
        return bool(conn.execute("SELECT pg_is_in_recovery()").fetchone()[0])


def test_the_postgres_failover_drill_on_the_lab_pair_measures_rto_and_puts_it_back(lab_postgres, tmp_path):
    """The shipped dr.postgres.failover on `opsrun lab postgres`'s primary and replica: RTO and RPO measured,
    the pair rebuilt and switched back, then replicating again as the replication check sees it."""
    ops = copy_ops(tmp_path / "ops")
    text = (ops / "group_data" / "all.py").read_text()
    (ops / "group_data" / "all.py").write_text(
        text.replace('"redis": True,', '"redis": False,').replace('"mongo": True,', '"mongo": False,')
    )
    code, doc = opsrun_json("dr-test", "lab", "--drill", project=ops)
    checks = {f"{c['system']}: {c['name']}": c for c in doc["checks"]}
    drill = checks["postgres: failover drill"]
    assert code == 0 and drill["status"] == "PASS", (drill, doc["drill_log"])
    assert 0 < drill["measured"]["rto_seconds"] < 60 and drill["measured"]["rpo_seconds"] >= 0
    assert drill["evidence"][2].startswith("put back:"), drill["evidence"]
    [postgres] = [s for s in doc["systems"] if s["system"] == "postgres"]
    assert postgres["rto_seconds"] == drill["measured"]["rto_seconds"] and postgres["result"] == "PASS"
    [backups] = [s for s in doc["systems"] if s["system"] == "backups"]
    assert backups["rto_seconds"] is not None and backups["rpo_seconds"] is not None  # restore time, dump age
    assert doc["degraded"] == [] and any("roles back as they were" in line for line in doc["drill_log"])

    assert not in_recovery(os.environ["OPSRUN_PG_PRIMARY_URL"])
    assert in_recovery(os.environ["OPSRUN_PG_REPLICA_URL"])
    code, after = opsrun_json("dr-test", "lab", project=ops)
    checks = {f"{c['system']}: {c['name']}": c for c in after["checks"]}
    assert code == 0, after["issues"]
    assert checks["postgres: streaming replication"]["status"] == "PASS"
    assert checks["postgres: RPO probe"]["status"] == "PASS"


def test_the_drills_as_admin_behind_the_bastion_need_no_root_login(data_tier, bastion, tmp_path, behind_bastion):
    """dr-test --drill with the fleet's access (root refused, SSH only from the bastion): its checks and drills
    speak each system's own protocol, and nothing of it needs a root login or a way around the bastion."""
    from tests.lab.conftest import fleet_project

    ops = fleet_project(tmp_path / "ops", bastion)
    (ops / "group_data" / "all.py").write_text(
        'dr = {"targets": {"rto_minutes": 15, "rpo_minutes": 5}, "redis": True, "mongo": True}\n'
    )
    code, doc = opsrun_json("dr-test", "lab", "--drill", project=ops)
    assert code == 0, doc
    assert {c["status"] for c in doc["checks"]} == {"PASS"} and len(doc["checks"]) == 6, doc["checks"]
    assert doc["degraded"] == []
