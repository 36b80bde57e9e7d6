"""A plain `pyinfra INVENTORY deploys/X.py` run refuses a bad setting with opsrun's own message (file, field,
fix), while the deploy file loads: the deploys read their settings through opsrun.settings.for_host.

pyinfra's own CLI runs here with `--dry` on `@fake` hosts (pyinfra's connector that runs nothing), in a copy
of the ops content; nothing connects anywhere, and the SSH guard would refuse it if it did (in this process).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import copy_ops

PYINFRA = Path(sys.executable).with_name("pyinfra")
FAKE_INVENTORY = 'web = ["@fake/web1"]\nredis = ["@fake/web1"]\nmongo = ["@fake/web1"]\n'

CASES = [
    ("pm2", "group_data/web.py", 'pm2_apps[0]["instances"] = "x"', "pm2_apps[0].instances"),
    ("pm2", "group_data/web.py", 'pm2_apps[0]["name"] = "demo; touch /tmp/opsrun-x"', "pm2_apps[0].name"),
    ("pm2", "group_data/web.py", 'pm2_apps[0]["env"]["DB_PASS"] = "plain"', "pm2_apps[0].env.DB_PASS"),
    ("nginx", "group_data/web.py", 'nginx_upstream_servers = ["; touch /tmp/opsrun-x"]', "nginx_upstream_servers[0]"),
    ("nginx", "group_data/web.py", "nginx_listen_port = 70000", "nginx_listen_port"),
    ("patching", "group_data/web.py", 'patching_hold = ["a; touch /tmp/opsrun-x"]', "patching_hold[0]"),
    ("patching", "group_data/web.py", 'patching_upgrade = "everything"', "patching_upgrade"),
    ("redis_cluster", "group_data/redis.py", 'redis_cluster_settings["save"] = "1\\nx"', "redis_cluster_settings.save"),
    ("redis_cluster", "group_data/redis.py", "redis_cluster_replicas = -1", "redis_cluster_replicas"),
    ("mongo_replicaset", "group_data/mongo.py", "mongo_replicaset_port = 70000", "mongo_replicaset_port"),
    ("mongo_replicaset", "group_data/mongo.py", 'mongo_replicaset_name = "rs0; x"', "mongo_replicaset_name"),
]


@pytest.mark.parametrize(("deploy", "path", "line", "field"), CASES, ids=[f"{c[0]}:{c[3]}" for c in CASES])
def test_plain_pyinfra_refuses_a_bad_setting_naming_file_field_and_fix(deploy, path, line, field, tmp_path):
    ops = copy_ops(tmp_path / "ops")
    (ops / "inventories" / "fake.py").write_text(FAKE_INVENTORY)
    target = ops / path
    target.write_text(target.read_text() + "\n" + line + "\n")
    env = {**os.environ, "PYINFRA_FAKE_DELAY": "0", "PYINFRA_FAKE_DELAY_JITTER": "0"}
    env.setdefault("OPSRUN_REDIS_PASSWORD", "redis-password")
    env.setdefault("OPSRUN_MONGO_KEYFILE", "mongo-keyfile")
    proc = subprocess.run(
        [str(PYINFRA), "inventories/fake.py", f"deploys/{deploy}.py", "--dry", "-y"],
        cwd=ops,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0, output
    assert f"ConfigError: {target}: {field}: " in output and " Fix: " in output, output[-3000:]


def test_numbers_keep_the_type_they_were_written_with():
    """mongod.conf says `cacheSizeGB: 2` as the deploy always wrote it, not 2.0 (strict float would convert)."""
    from opsrun.settings.models import MongoSettings

    mongo = MongoSettings.model_validate({"cache_size_gb": 2, "priority": 1, "lag_threshold_seconds": 2.5})
    assert (repr(mongo.cache_size_gb), repr(mongo.priority), repr(mongo.lag_threshold_seconds)) == ("2", "1", "2.5")
