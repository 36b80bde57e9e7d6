"""DR checks of backups: the newest object in S3, RDS snapshot or dump file, and whether it is recent enough."""

from __future__ import annotations

import datetime as dt
import glob
import os

from opsrun.dr.model import FAIL, PASS, Check
from opsrun.settings.dr_models import BackupSpec


def _age_check(name: str, newest: dt.datetime | None, what: str, max_age_hours: float, source: str) -> Check:
    now = dt.datetime.now(dt.UTC)
    if newest is None:
        return Check("backups", name, FAIL, [f"no backup found ({what})"], source)
    age = (now - newest).total_seconds() / 3600
    status = PASS if age <= max_age_hours else FAIL
    evidence = [f"newest {what} at {newest.isoformat(timespec='seconds')}, {age:.1f} h old (allowed {max_age_hours} h)"]
    measured = {"age_hours": round(age, 2), "rpo_seconds": round(age * 3600.0)}  # restoring it loses that much
    return Check("backups", name, status, evidence, source, measured)


def backup_check(spec: BackupSpec) -> Check:
    """The age of the newest backup of `spec` (exactly one of s3, rds, files: its schema says so)."""
    name, max_age = spec.name, spec.max_age_hours
    if spec.s3 is not None:
        from opsrun.aws import client

        bucket, _, prefix = spec.s3.removeprefix("s3://").partition("/")
        newest = None
        key = ""
        for page in client("s3").get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                if newest is None or obj["LastModified"] > newest:
                    newest, key = obj["LastModified"], obj["Key"]
        return _age_check(
            name, newest, f"object s3://{bucket}/{key}" if key else "object", max_age, f"s3 ListObjectsV2 {spec.s3}"
        )
    if spec.rds is not None:
        from opsrun.aws import client

        snaps = client("rds").describe_db_snapshots(DBInstanceIdentifier=spec.rds)["DBSnapshots"]
        done = [s for s in snaps if s.get("SnapshotCreateTime")]
        newest = max(done, key=lambda s: s["SnapshotCreateTime"]) if done else None
        return _age_check(
            name,
            newest["SnapshotCreateTime"] if newest else None,
            f"snapshot {newest['DBSnapshotIdentifier']}" if newest else "snapshot",
            max_age,
            f"rds DescribeDBSnapshots DBInstanceIdentifier={spec.rds}",
        )
    assert spec.files is not None  # BackupSpec: exactly one source
    paths = sorted(glob.glob(spec.files), key=os.path.getmtime)
    newest = dt.datetime.fromtimestamp(os.path.getmtime(paths[-1]), dt.UTC) if paths else None
    return _age_check(name, newest, f"file {paths[-1]}" if paths else "file", max_age, f"newest of {spec.files}")
