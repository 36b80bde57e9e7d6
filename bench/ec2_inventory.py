"""Load time of inventories/production.py (opsrun.aws.ec2_hosts) over N EC2 instances in moto's server on
loopback, reached through environment variables only. Usage: python bench/ec2_inventory.py [N] [RUNS]

It measures opsrun's side (paging DescribeInstances, building groups, group_data) against a local server;
real EC2 adds its own latency per page (up to 1000 instances a page).
"""

from __future__ import annotations

import os
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

import boto3
from moto.server import ThreadedMotoServer

from opsrun.model import inventory
from opsrun.model.project import Project

REPO = Path(__file__).resolve().parents[1]


def main(count: int, runs: int) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    empty = Path(tempfile.mkstemp(prefix="opsrun-aws-")[1])
    os.environ.update(
        AWS_ENDPOINT_URL=f"http://127.0.0.1:{port}", AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION="us-east-1", AWS_CONFIG_FILE=str(empty), AWS_SHARED_CREDENTIALS_FILE=str(empty),
        AWS_EC2_METADATA_DISABLED="true",
    )  # fmt: skip
    try:
        ec2 = boto3.client("ec2")
        image = ec2.describe_images()["Images"][0]["ImageId"]
        for start in range(0, count, 100):
            n = min(100, count - start)
            tags = [{"Key": "Env", "Value": "production"}, {"Key": "Role", "Value": "web"}]
            ec2.run_instances(
                ImageId=image, MinCount=n, MaxCount=n,
                TagSpecifications=[{"ResourceType": "instance", "Tags": tags}],
            )  # fmt: skip
        times = []
        for _ in range(runs):
            started = time.perf_counter()
            inv = inventory.load(Project(REPO), "production")
            times.append(time.perf_counter() - started)
        assert len(inv.hosts) == count, len(inv.hosts)
        print(
            f"inventories/production.py over {count} moto instances: median {statistics.median(times):.2f}s, "
            f"min {min(times):.2f}s over {runs} loads ({len(inv.groups)} groups)"
        )
    finally:
        server.stop()
        empty.unlink()


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 500, int(sys.argv[2]) if len(sys.argv) > 2 else 5)
