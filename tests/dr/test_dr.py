"""`opsrun dr-test` against real parts that run here: a PostgreSQL primary with a streaming replica (two
clusters on loopback), pg_dump files and a real pg_restore into a scratch database, S3 and RDS on moto's
server. The Redis failover drill runs against the lab's cluster (tests/lab/test_dr_drill.py).

Shows: every check PASS with measured numbers on a healthy setup; a paused replica FAILs replication with
the lag it saw and lands in the issues; stale backups FAIL with their age; a restore whose counts differ
FAILs naming the table; two months give a trend, and the HTML renders in headless Chromium with its chart;
no password or AWS key in any output, report or the state store."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import boto3
import psycopg
import pytest

from opsrun.support.waiting import poll_until
from tests.conftest import REGION, CommandLineWatch, PgCluster, chromium_dom, copy_ops

PASSWORD = "pg-" + secrets.token_hex(10)
AWS_SECRET = "aws-" + secrets.token_hex(16)
BUCKET = "opsrun-backups"

DR = """
dr = {
    "targets": {"rto_minutes": 15, "rpo_minutes": 5},
    "backups": [
        {"name": "pg dumps in S3", "s3": "s3://opsrun-backups/pg/", "max_age_hours": 26},
        {"name": "RDS snapshots", "rds": "orders-db", "max_age_hours": 26},
        {"name": "pg_dump files", "files": "%(dumps)s/*.dump", "max_age_hours": 26},
    ],
    "postgres": {
        "secret_env": {"primary": "DR_PG_PRIMARY", "replica": "DR_PG_REPLICA", "scratch": "DR_PG_SCRATCH"},
        "tables": ["users", "orders"],
        "max_lag_seconds": 30,
        "max_lag_bytes": 1048576,
        "dumps": "%(dumps)s/*.dump",
    },
}
"""


@pytest.fixture(scope="module")
def pg():
    base = Path(tempfile.mkdtemp(prefix="opsrun-dr-pg-"))  # not under pytest's 700 folder: postgres reads it
    base.chmod(0o755)
    primary = PgCluster.create(base / "primary", PASSWORD)
    primary.start()
    with psycopg.connect(primary.url(PASSWORD), autocommit=True) as conn:
        conn.execute("CREATE TABLE users (id serial PRIMARY KEY, name text)")
        conn.execute("CREATE TABLE orders (id serial PRIMARY KEY, total int)")
        conn.execute("INSERT INTO users (name) SELECT 'u' || g FROM generate_series(1, 120) g")
        conn.execute("INSERT INTO orders (total) SELECT g FROM generate_series(1, 45) g")
    replica = PgCluster.replica_of(primary, base / "replica", PASSWORD)
    replica.start()
    yield primary, replica
    replica.stop()
    primary.stop()
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module")
def aws(moto_url):
    env = {"AWS_ENDPOINT_URL": moto_url, "AWS_ACCESS_KEY_ID": "AKIAOPSRUNTEST", "AWS_SECRET_ACCESS_KEY": AWS_SECRET}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    os.environ["AWS_DEFAULT_REGION"] = REGION
    s3, rds = boto3.client("s3", region_name=REGION), boto3.client("rds", region_name=REGION)
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key="pg/2026-11-23.dump", Body=b"dump")
    rds.create_db_instance(DBInstanceIdentifier="orders-db", DBInstanceClass="db.t3.micro", Engine="postgres")
    rds.create_db_snapshot(DBInstanceIdentifier="orders-db", DBSnapshotIdentifier="orders-db-today")
    yield env
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


def backdate_s3(key: str, days: float) -> None:
    """moto has no API to set LastModified: set it on moto's own object (the server runs in this process)."""
    from moto.backends import get_backend

    bucket = get_backend("s3")["123456789012"]["global"].buckets[BUCKET]
    bucket.keys[key].last_modified = dt.datetime.now(dt.UTC).replace(tzinfo=None) - dt.timedelta(days=days)


@pytest.fixture
def project(tmp_path, pg):
    dumps = tmp_path / "dumps"
    dumps.mkdir()
    dumps.chmod(0o777)
    primary, _replica = pg
    dump(primary, dumps / "pg-now.dump")
    ops = copy_ops(tmp_path / "ops")
    (ops / "inventories" / "drtest.py").write_text('all = (["db1"], {"ssh_hostname": "127.0.0.1"})\n')
    (ops / "group_data" / "all.py").write_text(DR % {"dumps": dumps})
    return ops, dumps


def dump(cluster: PgCluster, path: Path) -> None:
    """pg_dump with the password in its environment: never in argv (test_no_password_in_any_process_list)."""
    subprocess.run(
        ["pg_dump", "-Fc", "-f", str(path), cluster.url(PASSWORD).replace(f":{PASSWORD}@", "@")],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, "PGPASSWORD": PASSWORD},
    )


def dr_test(
    ops: Path, pg, aws, *args: str, out: Path | None = None, path: str | None = None, replica_is_primary: bool = False
) -> tuple[int, dict, str]:
    primary, replica = pg
    env = {
        **os.environ,
        **aws,
        "DR_PG_PRIMARY": primary.url(PASSWORD),
        "DR_PG_REPLICA": (primary if replica_is_primary else replica).url(PASSWORD),
        "DR_PG_SCRATCH": primary.url(PASSWORD),
    }
    if path is not None:
        env["PATH"] = f"{path}:{env['PATH']}"
    extra = ["--out", str(out)] if out else []
    proc = subprocess.run(
        [sys.executable, "-m", "opsrun", "--project", str(ops), "dr-test", "drtest", "--format", "json", *extra, *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
    )
    try:
        return proc.returncode, json.loads(proc.stdout), proc.stdout + proc.stderr
    except json.JSONDecodeError:
        pytest.fail(f"no JSON from dr-test (exit {proc.returncode}): {proc.stdout}\n{proc.stderr}")


def by_name(doc: dict) -> dict[str, dict]:
    return {f"{c['system']}: {c['name']}": c for c in doc["checks"]}


def test_a_healthy_setup_passes_every_check_with_measured_numbers(project, pg, aws):
    ops, _dumps = project
    code, doc, _ = dr_test(ops, pg, aws)
    assert code == 0, json.dumps(doc["checks"], indent=1)
    checks = by_name(doc)
    assert set(checks) == {
        "backups: pg dumps in S3",
        "backups: RDS snapshots",
        "backups: pg_dump files",
        "postgres: streaming replication",
        "postgres: row counts primary vs replica",
        "postgres: RPO probe",
        "postgres: restore drill",
    }
    assert all(c["status"] == "PASS" for c in checks.values())
    assert checks["backups: pg dumps in S3"]["measured"]["age_hours"] < 1
    assert "streaming" in checks["postgres: streaming replication"]["evidence"][0]
    assert "users: primary 120, replica 120" in checks["postgres: row counts primary vs replica"]["evidence"]
    assert 0 <= checks["postgres: RPO probe"]["measured"]["rpo_seconds"] < 60
    assert "users: restored 120, source 120" in checks["postgres: restore drill"]["evidence"]
    [postgres] = [s for s in doc["systems"] if s["system"] == "postgres"]
    assert (
        postgres["result"] == "PASS" and postgres["rpo_seconds"] is not None and postgres["rpo_target_seconds"] == 300
    )
    assert doc["issues"] == [] and doc["first_line"].endswith("PASSED")
    assert doc["next_test"] > doc["started"][:10]


def test_a_paused_replica_fails_replication_with_the_lag_it_saw(project, pg, aws):
    ops, _dumps = project
    primary, replica = pg
    with psycopg.connect(replica.url(PASSWORD), autocommit=True) as conn:
        conn.execute("SELECT pg_wal_replay_pause()")
    try:
        with psycopg.connect(primary.url(PASSWORD), autocommit=True) as conn:
            conn.execute("INSERT INTO orders (total) SELECT g FROM generate_series(1, 20000) g")
            written = conn.execute("SELECT pg_current_wal_lsn()").fetchone()[0]
        # the replica has received (but not replayed) that WAL: the lag is what is measured
        with psycopg.connect(replica.url(PASSWORD), autocommit=True) as conn:
            received = "SELECT pg_last_wal_receive_lsn() >= %s::pg_lsn"
            poll_until(
                lambda: conn.execute(received, (written,)).fetchone()[0],
                timeout=30,
                interval=0.05,
                what="the replica to receive the insert's WAL",
            )
        code, doc, _ = dr_test(ops, pg, aws)
    finally:
        with psycopg.connect(replica.url(PASSWORD), autocommit=True) as conn:
            conn.execute("SELECT pg_wal_replay_resume()")
    assert code == 1
    replication = by_name(doc)["postgres: streaming replication"]
    assert replication["status"] == "FAIL"
    assert replication["measured"]["lag_bytes"] > 0
    assert "WAL replay is paused on the replica" in replication["evidence"]
    assert by_name(doc)["postgres: row counts primary vs replica"]["status"] == "FAIL"
    rpo = by_name(doc)["postgres: RPO probe"]  # failed at once: a paused replay never shows the marker
    assert rpo["status"] == "FAIL" and rpo["evidence"] == ["marker not readable on the replica: WAL replay is paused"]
    assert any(i["issue"].startswith("postgres: streaming replication: ") for i in doc["issues"])
    assert doc["next_test"].endswith("(re-test: this one failed)")


def test_a_replica_that_is_no_standby_fails_replication_and_the_rpo_probe_saying_so(project, pg, aws):
    """DR_PG_REPLICA naming a server not in recovery (a replica promoted by an earlier drill, a typo for the
    primary): the checks say so, and none fails on pg_is_wal_replay_paused()'s error."""
    ops, _dumps = project
    code, doc, _ = dr_test(ops, pg, aws, replica_is_primary=True)
    assert code == 1
    checks = by_name(doc)
    assert checks["postgres: RPO probe"]["status"] == "FAIL"
    assert checks["postgres: RPO probe"]["evidence"] == [
        "marker not readable on the replica: it is not a standby (not in recovery: promoted?)"
    ]
    replication = checks["postgres: streaming replication"]
    assert (
        replication["status"] == "FAIL" and "the replica is not a standby (not in recovery)" in replication["evidence"]
    )


def test_stale_backups_fail_with_their_age(project, pg, aws):
    ops, dumps = project
    old = time.time() - 3 * 86400
    os.utime(dumps / "pg-now.dump", (old, old))
    backdate_s3("pg/2026-11-23.dump", days=3)
    try:
        code, doc, _ = dr_test(ops, pg, aws)
    finally:
        backdate_s3("pg/2026-11-23.dump", days=0)
    assert code == 1
    checks = by_name(doc)
    for name in ("backups: pg dumps in S3", "backups: pg_dump files"):
        assert checks[name]["status"] == "FAIL"
        assert re.search(r"7[12]\.\d h old \(allowed 26\.0 h\)", checks[name]["evidence"][0]), checks[name]
    assert checks["backups: RDS snapshots"]["status"] == "PASS"


def test_a_restore_with_different_counts_fails_naming_the_table(project, pg, aws):
    ops, _dumps = project
    primary, _replica = pg
    with psycopg.connect(primary.url(PASSWORD), autocommit=True) as conn:
        conn.execute("INSERT INTO users (name) VALUES ('after the dump')")
    try:
        code, doc, _ = dr_test(ops, pg, aws)
    finally:
        with psycopg.connect(primary.url(PASSWORD), autocommit=True) as conn:
            conn.execute("DELETE FROM users WHERE name = 'after the dump'")
    restore = by_name(doc)["postgres: restore drill"]
    assert code == 1 and restore["status"] == "FAIL"
    assert restore["evidence"][1] == "row counts differ after restore: users"
    with psycopg.connect(primary.url(PASSWORD), autocommit=True) as conn:
        left = conn.execute("SELECT count(*) FROM pg_database WHERE datname LIKE 'opsrun_dr_restore_%'").fetchone()
    assert left == (0,), "the scratch database was left behind"


def test_two_months_give_a_trend_the_html_renders_and_nothing_secret_leaks(project, pg, aws, tmp_path):
    ops, _dumps = project
    out = tmp_path / "reports"
    code, october, _ = dr_test(ops, pg, aws, "--month", "2026-10", out=out)
    assert code == 0
    code, november, text = dr_test(ops, pg, aws, "--month", "2026-11", out=out)
    assert code == 0
    assert [t["month"] for t in november["trend"]][-1] == "2026-10"
    assert sorted(p.name for p in out.iterdir())[-4:] == [
        "dr-test-drtest-2026-11.html",
        "dr-test-drtest-2026-11.json",
        "dr-test-drtest-2026-11.md",
        "dr-test-drtest-2026-11.xml",
    ]
    html = out / "dr-test-drtest-2026-11.html"
    dom = chromium_dom(html)
    failed_checks = re.search(r'<svg[^>]*data-key="trend".*?</svg>', dom, flags=re.S).group(0)
    assert failed_checks.count("<rect") == len(november["trend"]) >= 1
    for chart in ("rto-backups", "rpo-backups", "rto-postgres", "rpo-postgres"):  # a month each: October, November
        svg = re.search(rf'<svg[^>]*data-key="{chart}".*?</svg>', dom, flags=re.S).group(0)
        assert re.findall(r'class="label">([^<]*)<', svg) == ["2026-10", "2026-11"], chart
    assert "RTO and RPO: targets against measured" in dom and "Drill log" in dom
    history = subprocess.run(
        [sys.executable, "-m", "opsrun", "--project", str(ops), "dr-test", "drtest", "--history"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert re.search(r"2026-10\s+passed", history.stdout) and re.search(r"2026-11\s+passed", history.stdout)

    everything = [text, history.stdout, json.dumps(october)]
    everything += [p.read_text() for p in out.iterdir()]
    everything += [p.read_bytes().decode("latin-1") for p in (ops / ".opsrun").rglob("*") if p.is_file()]
    for secret in (PASSWORD, AWS_SECRET):
        assert not any(secret in blob for blob in everything)


# A stand-in for pg_restore first on PATH: it writes down its argv and the mode of the passfile it was given,
# then runs the real one. Argv is what `ps` shows every user of the machine.
PG_RESTORE_SHIM = """#!%(python)s
import json, os, re, stat, sys
passfile = re.search(r"passfile=(\\S+)", " ".join(sys.argv))
mode = stat.S_IMODE(os.stat(passfile.group(1)).st_mode) if passfile else None
with open(%(log)r, "a") as f:
    f.write(json.dumps({"argv": sys.argv, "passfile_mode": mode}) + "\\n")
os.execv(%(real)r, [%(real)r, *sys.argv[1:]])
"""


def test_no_password_in_any_process_list_while_the_drill_runs(project, pg, aws, tmp_path):
    """Issue 11: the restore drill put the database password in pg_restore's argv. Every process's command
    line is sampled while dr-test runs, and pg_restore's own argv is recorded by a stand-in."""
    ops, _dumps = project
    shim_dir, log = tmp_path / "bin", tmp_path / "pg_restore.jsonl"
    shim_dir.mkdir()
    real = shutil.which("pg_restore")
    assert real, "pg_restore is not installed"
    shim = shim_dir / "pg_restore"
    shim.write_text(PG_RESTORE_SHIM % {"python": sys.executable, "log": str(log), "real": real})
    shim.chmod(0o755)

    with CommandLineWatch(PASSWORD) as watch:
        code, doc, text = dr_test(ops, pg, aws, path=str(shim_dir))
    assert code == 0, json.dumps(doc["checks"], indent=1)
    assert by_name(doc)["postgres: restore drill"]["status"] == "PASS"
    assert watch.sampled > 0 and watch.leaks == [], watch.leaks
    [call] = [json.loads(line) for line in log.read_text().splitlines()]
    assert not [a for a in call["argv"] if PASSWORD in a], call["argv"]
    assert call["passfile_mode"] == 0o600, call
    assert PASSWORD not in text
