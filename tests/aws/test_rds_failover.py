"""The RDS Multi-AZ failover drill (dr.postgres.rds_failover) against moto's server on loopback, the database
behind the "endpoint" a real PostgreSQL on a free loopback port.

What moto simulates: DescribeDBInstances (MultiAZ, status, zone) and RebootDBInstance, which it accepts
(ForceFailover included) and answers `available` with nothing moved. So on plain moto the drill must say it
saw no failover, never pass. A failover acted out on moto's own instance in this process (the way
tests/aws does for ELB draining): the status `rebooting`, the database stopped as a crash, then back in the
other zone after a while; there the drill measures RTO and RPO through the CLI. Not checked against real
RDS: how long a failover takes, the endpoint's DNS moving to the standby, the statuses RDS goes through."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import boto3
import psycopg
import pytest

from opsrun.dr import rds_failover
from opsrun.dr.model import DRRun
from opsrun.settings.dr_models import RdsFailover
from tests.conftest import REGION, PgCluster, copy_ops

PASSWORD = "rds-" + secrets.token_hex(10)
FAILOVER_SECONDS = 1.5  # how long the acted-out failover keeps the database away


@pytest.fixture(scope="module")
def database():
    """The database behind the endpoint: a real PostgreSQL on loopback."""
    base = Path(tempfile.mkdtemp(prefix="opsrun-rds-pg-"))
    base.chmod(0o755)
    cluster = PgCluster.create(base / "db", PASSWORD)
    cluster.start()
    yield cluster
    cluster.stop()
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def rds(moto_env):
    client = boto3.client("rds", region_name=REGION)
    for name, multi_az in (("orders-db", True), ("single-db", False)):
        client.create_db_instance(
            DBInstanceIdentifier=name, DBInstanceClass="db.t3.micro", Engine="postgres", MultiAZ=multi_az,
            AllocatedStorage=20,
        )  # fmt: skip
    return client


@pytest.fixture
def reboots(monkeypatch):
    """Every RebootDBInstance moto answers, with its parameters."""
    from moto.rds.responses import RDSResponse

    seen: list[dict] = []
    answer = RDSResponse.reboot_db_instance

    def recorded(self):
        seen.append(dict(self.params))  # moto names them in snake case: force_failover
        return answer(self)

    monkeypatch.setattr(RDSResponse, "reboot_db_instance", recorded)
    return seen


@pytest.fixture
def acted_out_failover(monkeypatch, database):
    """moto's RebootDBInstance acting out a Multi-AZ failover: `rebooting`, the database down (a crash), and
    FAILOVER_SECONDS later the database up again and the instance `available` in the other zone."""
    from moto.rds.models import RDSBackend

    reboot = RDSBackend.reboot_db_instance
    timers: list[threading.Timer] = []

    def failover(self, db_instance_identifier):
        db = reboot(self, db_instance_identifier)
        db.status = "rebooting"
        database.run(str(database.bindir / "pg_ctl"), "-D", str(database.data), "-m", "immediate", "-w", "stop")

        def done():
            database.start()
            db.availability_zone = f"{REGION}b"
            db.status = "available"

        timers.append(threading.Timer(FAILOVER_SECONDS, done))
        timers[-1].start()
        return db

    monkeypatch.setattr(RDSBackend, "reboot_db_instance", failover)
    yield
    for t in timers:
        t.join(timeout=60)


def drill(database, name: str = "orders-db", timeout: float = 30) -> tuple:
    run = DRRun("prod", "2026-12", "2026-12-02T03:00:00Z", "ops", "0", None, {})
    spec = RdsFailover(instance=name, markers=40, timeout_seconds=timeout)
    return rds_failover.rds_failover_drill(spec, database.url(PASSWORD), run), run


def test_on_plain_moto_the_drill_says_it_saw_no_failover(rds, reboots, database, monkeypatch):
    monkeypatch.setattr(rds_failover, "POLL_SECONDS", 0.1)
    check, run = drill(database, timeout=2)
    assert check.status == "FAIL" and check.measured == {}
    assert check.evidence == [
        f"RDS showed no completed failover within 2 s: statuses available, zone {REGION}a -> {REGION}a"
    ]
    assert [r.get("force_failover") for r in reboots] == [True]
    assert any("RebootDBInstance orders-db ForceFailover=True" in line for line in run.log)


def test_an_instance_without_a_standby_is_refused_before_any_call(rds, reboots, database):
    check, _run = drill(database, name="single-db")
    assert check.status == "FAIL" and reboots == []
    assert check.evidence == [
        "not started, nothing was touched: single-db is not Multi-AZ: there is no standby to fail over to "
        "(a forced failover needs one)"
    ]


DR = """
dr = {
    "production": True,
    "postgres": {
        "secret_env": {"primary": "ORDERS_DB_URL"},
        "rds_failover": {"instance": "orders-db", "markers": 40, "timeout_seconds": 60, "allow_in_production": %s},
    },
}
"""


def dr_test(tmp_path: Path, database, allow: bool) -> subprocess.CompletedProcess:
    ops = copy_ops(tmp_path / "ops")
    (ops / "group_data" / "production.py").unlink()  # the shipped example's hosts and cloud checks: not these
    (ops / "inventories" / "prod.py").write_text('all = (["db1"], {"ssh_hostname": "127.0.0.1"})\n')
    (ops / "group_data" / "all.py").write_text(DR % allow)
    env = {**os.environ, "ORDERS_DB_URL": database.url(PASSWORD)}
    return subprocess.run(
        [sys.executable, "-m", "opsrun", "--project", str(ops), "dr-test", "prod", "--drill", "--format", "json"],
        capture_output=True, text=True, env=env, timeout=300, check=False,
    )  # fmt: skip


def test_a_failover_acted_out_on_moto_is_measured_through_the_cli(rds, reboots, acted_out_failover, database, tmp_path):
    proc = dr_test(tmp_path, database, allow=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    doc = json.loads(proc.stdout)
    [check] = [c for c in doc["checks"] if c["name"] == "RDS failover drill"]
    rto = check["measured"]["rto_seconds"]
    assert FAILOVER_SECONDS <= rto < 30 and check["measured"]["markers_lost"] == 0
    assert check["evidence"][1] == "RPO 0 s: all 40 markers acknowledged before the failure are on orders-db"
    assert f"zone {REGION}a -> {REGION}b" in check["evidence"][2] and "rebooting" in check["evidence"][2]
    [postgres] = [s for s in doc["systems"] if s["system"] == "postgres"]
    assert (postgres["rto_seconds"], postgres["rpo_seconds"], postgres["result"]) == (rto, 0.0, "PASS")
    assert [r.get("force_failover") for r in reboots] == [True]
    assert PASSWORD not in proc.stdout + proc.stderr
    with psycopg.connect(database.url(PASSWORD), autocommit=True) as conn:
        left = conn.execute("SELECT count(*) FROM opsrun_dr_marker WHERE marker LIKE 'dr-rds-failover-%'").fetchone()
    assert left == (0,)


def test_refused_in_production_unless_allowed_with_no_call_to_rds(rds, reboots, database, tmp_path):
    proc = dr_test(tmp_path, database, allow=False)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "dr.postgres.rds_failover.allow_in_production" in proc.stderr
    assert reboots == []
    [instance] = rds.describe_db_instances(DBInstanceIdentifier="orders-db")["DBInstances"]
    assert instance["DBInstanceStatus"] == "available"
