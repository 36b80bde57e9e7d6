"""verify/aws: the cloud-side checks that run once from the controller (`opsrun verify production aws`),
and their place in `opsrun drift` and `opsrun dr-test`: against moto's server on loopback (reached through
environment variables only) and a loopback HTTPS endpoint with certificates from a throwaway CA. The RDS
instance and its automated snapshot are made three days in the past with freezegun (the server runs in
this process, so its clock moves too)."""

from __future__ import annotations

import datetime as dt

import boto3
import pytest
from freezegun import freeze_time

from tests.aws.conftest import REGION, Fleet
from tests.aws.tls import TLSEndpoint
from tests.conftest import copy_ops, opsrun, opsrun_json


@pytest.fixture
def endpoint():
    with TLSEndpoint() as tls:
        tls.serve("shop.test", days=90)
        yield tls


@pytest.fixture
def cloud(moto_env, endpoint, tmp_path):
    """One web host, its target group, an RDS instance (automated backups on) made 3 days ago plus a fresh
    manual snapshot, an ElastiCache replication group, an empty dead-letter queue, and the project's
    group_data/production.py pointed at them (a copy of this repo's ops content)."""
    fleet = Fleet(moto_env, cidr="127.0.0.0/24")  # loopback: a drift dry run is refused at once
    iid = fleet.launch("127.0.0.11", Name="web1", Env="production", Role="web", PatchGroup="wave1")
    fleet.target_group("production-web", [iid])
    clients = {s: boto3.client(s, region_name=REGION) for s in ("rds", "elasticache", "sqs")}
    with freeze_time(dt.datetime.now(dt.UTC) - dt.timedelta(days=3)):
        clients["rds"].create_db_instance(
            DBInstanceIdentifier="production-orders", DBInstanceClass="db.t3.micro", Engine="postgres",
            MasterUsername="opsrun", MasterUserPassword="not-a-secret-0", AllocatedStorage=20,
            BackupRetentionPeriod=7,
        )  # fmt: skip
    clients["rds"].create_db_snapshot(DBInstanceIdentifier="production-orders", DBSnapshotIdentifier="nightly")
    clients["elasticache"].create_replication_group(
        ReplicationGroupId="production-sessions", ReplicationGroupDescription="sessions", Engine="redis",
        CacheNodeType="cache.t3.micro", NumCacheClusters=2,
    )  # fmt: skip
    clients["sqs"].create_queue(QueueName="production-orders-dlq")
    ops = copy_ops(tmp_path / "ops")
    gd = ops / "group_data" / "production.py"
    gd.write_text(
        gd.read_text() + f'\naws_checks["tls"] = {{"endpoints": ["{endpoint.url}"], "warn_days": 30, "fail_days": 14, '
        f'"ca_file": "{endpoint.ca_file}"}}\n'
        + 'dr = {"backups": [{"name": "RDS snapshots", "rds": "production-orders", "max_age_hours": 26}]}\n'
    )
    return ops, clients


def outcomes(doc):
    return {t["test"]: (t["outcome"], t["message"]) for t in doc["hosts"]["controller"]["tests"]}


def test_cloud_checks_pass_then_fail_naming_certificate_snapshot_and_queue(cloud, endpoint):
    ops, clients = cloud
    code, doc = opsrun_json("verify", "production", "aws", project=ops)
    assert code == 0, doc
    assert list(doc["hosts"]) == ["controller"]
    got = outcomes(doc)
    assert len(got) == 6 and all(o == "passed" for o, _m in got.values()), got

    endpoint.serve("shop.test", days=5)  # renewal forgotten
    clients["rds"].delete_db_snapshot(DBSnapshotIdentifier="nightly")  # the backup job stopped 3 days ago
    url = clients["sqs"].get_queue_url(QueueName="production-orders-dlq")["QueueUrl"]
    clients["sqs"].send_message(QueueUrl=url, MessageBody='{"order": 42}')

    code, doc = opsrun_json("verify", "production", "aws", project=ops)
    assert code == 1, doc
    failed = {t: m for t, (o, m) in outcomes(doc).items() if o == "failed"}
    assert set(failed) == {
        f"test_tls_certificate_is_valid_long_enough[{endpoint.url}]",
        "test_rds_newest_snapshot_is_fresh[production-orders]",
        "test_dead_letter_queue_is_empty[production-orders-dlq]",
    }, failed
    messages = "\n".join(failed.values())
    assert f"certificate of {endpoint.url} (CN=shop.test) expires in 5.0 days" in messages
    assert "RDS production-orders: newest snapshot rds:production-orders-" in messages
    assert "h old" in messages and "allowed 26 h" in messages
    assert "dead-letter queue production-orders-dlq holds 1 message(s)" in messages


def test_a_certificate_under_the_warning_threshold_passes_with_a_warning(cloud, endpoint):
    ops, _clients = cloud
    endpoint.serve("shop.test", days=20)
    code, doc = opsrun_json("verify", "production", "aws", project=ops)
    assert code == 0, doc
    outcome, message = outcomes(doc)[f"test_tls_certificate_is_valid_long_enough[{endpoint.url}]"]
    assert outcome == "passed" and message.startswith(f"WARN: certificate of {endpoint.url} (CN=shop.test) expires")


def test_drift_and_dr_test_include_the_cloud_side_checks(cloud):
    ops, clients = cloud
    url = clients["sqs"].get_queue_url(QueueName="production-orders-dlq")["QueueUrl"]
    clients["sqs"].send_message(QueueUrl=url, MessageBody="poison")

    code, doc = opsrun_json("drift", "production", "patching", project=ops)
    assert code == 1, doc  # no host could be reached here: a drift that saw no host is an error (exit 1)
    found = [f for f in doc["findings"] if f["host"] == "controller"]
    assert [(f["deploy"], f["operation"], f["verdict"]) for f in found] == [
        ("aws", "test_dead_letter_queue_is_empty[production-orders-dlq]", "verify_failed")
    ]
    assert "web1" in doc["unreachable"] or any(f["host"] == "web1" for f in doc["findings"]), doc

    proc = opsrun("dr-test", "production", "--format", "json", project=ops)
    assert proc.returncode == 1, proc.stderr
    import json

    report = json.loads(proc.stdout)
    by_name = {(c["system"], c["name"]): c["status"] for c in report["checks"]}
    assert by_name[("backups", "RDS snapshots")] == "PASS"  # the manual snapshot is fresh
    assert by_name[("aws", "test_dead_letter_queue_is_empty[production-orders-dlq]")] == "FAIL"
    assert by_name[("aws", "test_rds_newest_snapshot_is_fresh[production-orders]")] == "PASS"
    assert any("dead-letter queue production-orders-dlq holds 1 message(s)" in i["issue"] for i in report["issues"])
