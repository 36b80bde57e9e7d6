"""Cloud-side checks of an inventory's AWS resources, from group_data `aws_checks`:

    aws_checks = {
        "target_groups": ["production-web"],          # every registered target healthy (names)
        "rds": {"instances": ["production-orders"], "max_snapshot_age_hours": 26},
        "elasticache": {"replication_groups": ["production-sessions"]},
        "sqs": {"dead_letter_queues": ["production-orders-dlq"]},   # queue names: empty
        "tls": {"endpoints": ["https://shop.example.com/"], "warn_days": 30, "fail_days": 14,
                "ca_file": None},                    # None: the system's CA store
    }

Region, credentials and endpoint the usual AWS way (AWS_REGION, AWS_ENDPOINT_URL...), as the inventory.
"""

import json
import os

import pytest

from opsrun.aws import client

opsrun_scope = "controller"  # run once from the controller, not on each host (opsrun.verification.controller)
opsrun_settings = "aws_checks"  # drift and dr-test run this suite for inventories that set it


def _settings():
    path = os.environ.get("OPSRUN_VERIFY_INVENTORY")
    if not path:
        return {}
    with open(path, encoding="utf-8") as f:
        return json.load(f)["data"].get("aws_checks", {})


PARAMS = {
    "target_group": lambda s: s.get("target_groups", []),
    "rds_instance": lambda s: s.get("rds", {}).get("instances", []),
    "replication_group": lambda s: s.get("elasticache", {}).get("replication_groups", []),
    "dead_letter_queue": lambda s: s.get("sqs", {}).get("dead_letter_queues", []),
    "endpoint": lambda s: s.get("tls", {}).get("endpoints", []),
}


def pytest_generate_tests(metafunc):
    settings = _settings()
    for name, values in PARAMS.items():
        if name in metafunc.fixturenames:
            metafunc.parametrize(name, values(settings))


@pytest.fixture(scope="session")
def aws_checks():
    return _settings()


@pytest.fixture(scope="session")
def aws():
    return client  # opsrun's retry mode and bounded attempts, as every client opsrun makes
