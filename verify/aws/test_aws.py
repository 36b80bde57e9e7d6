"""What "healthy" means for the cloud side of an inventory: target groups, RDS, ElastiCache, SQS
dead-letter queues and TLS certificates (settings: group_data aws_checks, see conftest.py)."""

import datetime as dt
import socket
import ssl
from urllib.parse import urlsplit

from cryptography import x509


def test_every_target_of_the_target_group_is_healthy(aws, target_group):
    elb = aws("elbv2")
    arn = elb.describe_target_groups(Names=[target_group])["TargetGroups"][0]["TargetGroupArn"]
    health = elb.describe_target_health(TargetGroupArn=arn)["TargetHealthDescriptions"]
    states = {d["Target"]["Id"]: d["TargetHealth"]["State"] for d in health}
    assert states, f"target group {target_group} has no registered target"
    bad = {t: s for t, s in states.items() if s != "healthy"}
    assert not bad, f"target group {target_group}: not healthy: {bad}"


def test_rds_instance_is_available_with_automated_backups(aws, rds_instance):
    db = aws("rds").describe_db_instances(DBInstanceIdentifier=rds_instance)["DBInstances"][0]
    assert db["DBInstanceStatus"] == "available", f"RDS {rds_instance} is {db['DBInstanceStatus']}"
    assert db.get("BackupRetentionPeriod", 0) > 0, f"RDS {rds_instance} has automated backups off (retention 0)"


def test_rds_newest_snapshot_is_fresh(aws, aws_checks, rds_instance):
    limit = float(aws_checks.get("rds", {}).get("max_snapshot_age_hours", 26))
    pages = aws("rds").get_paginator("describe_db_snapshots").paginate(DBInstanceIdentifier=rds_instance)
    snaps = [s for page in pages for s in page["DBSnapshots"] if s.get("SnapshotCreateTime")]
    assert snaps, f"RDS {rds_instance} has no snapshot"
    newest = max(snaps, key=lambda s: s["SnapshotCreateTime"])
    age = (dt.datetime.now(dt.UTC) - newest["SnapshotCreateTime"]).total_seconds() / 3600
    assert age <= limit, (
        f"RDS {rds_instance}: newest snapshot {newest['DBSnapshotIdentifier']} is {age:.1f} h old "
        f"(taken {newest['SnapshotCreateTime'].isoformat(timespec='seconds')}; allowed {limit:g} h)"
    )


def test_elasticache_replication_group_is_available(aws, replication_group):
    group = aws("elasticache").describe_replication_groups(ReplicationGroupId=replication_group)
    status = group["ReplicationGroups"][0]["Status"]
    assert status == "available", f"ElastiCache {replication_group} is {status}"


def test_dead_letter_queue_is_empty(aws, dead_letter_queue):
    sqs = aws("sqs")
    url = sqs.get_queue_url(QueueName=dead_letter_queue)["QueueUrl"]
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
    waiting = sum(int(attrs.get(n, 0)) for n in names)
    assert waiting == 0, f"dead-letter queue {dead_letter_queue} holds {waiting} message(s)"


def test_tls_certificate_is_valid_long_enough(aws_checks, endpoint, record_property):
    tls = aws_checks.get("tls", {})
    warn_days, fail_days = float(tls.get("warn_days", 30)), float(tls.get("fail_days", 14))
    url = urlsplit(endpoint)
    context = ssl.create_default_context(cafile=tls.get("ca_file"))
    with socket.create_connection((url.hostname, url.port or 443), timeout=10) as raw:
        with context.wrap_socket(raw, server_hostname=url.hostname) as conn:  # verifies chain and name
            der = conn.getpeercert(binary_form=True)
    cert = x509.load_der_x509_certificate(der)
    days = (cert.not_valid_after_utc - dt.datetime.now(dt.UTC)).total_seconds() / 86400
    subject = cert.subject.rfc4514_string()
    ends = cert.not_valid_after_utc.isoformat(timespec="seconds")
    assert days >= fail_days, (
        f"certificate of {endpoint} ({subject}) expires in {days:.1f} days, on {ends} (fail below {fail_days:g})"
    )
    if days < warn_days:
        record_property(
            "opsrun_warning",
            f"WARN: certificate of {endpoint} ({subject}) expires in {days:.1f} days (warn below {warn_days:g})",
        )
