"""secret_env entries kept in AWS Secrets Manager and SSM Parameter Store, read from moto's server on
loopback through the environment only (AWS_ENDPOINT_URL), as an operator's shell would point boto3."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import boto3
import pytest

from opsrun.errors import ConfigError
from opsrun.model import secret_sources, secrets
from tests.aws.conftest import REGION
from tests.conftest import copy_ops, opsrun

TOKEN = "sm-token-5f1c0e9b7a"


@pytest.fixture
def aws(moto_env):
    secret_sources.forget()
    kw = {"region_name": REGION, "endpoint_url": moto_env}
    yield boto3.client("secretsmanager", **kw), boto3.client("ssm", **kw)
    secret_sources.forget()


def test_a_secrets_manager_string_is_read_and_masked(aws):
    sm, _ssm = aws
    sm.create_secret(Name="prod/redis", SecretString=TOKEN)
    assert secret_sources.read({"secretsmanager": "prod/redis"}) == TOKEN
    assert secrets.redact(f"redis-cli -a {TOKEN}") == "redis-cli -a ***"


def test_a_key_of_a_json_secret_is_read(aws):
    sm, _ssm = aws
    sm.create_secret(Name="prod/app", SecretString=json.dumps({"user": "app", "password": TOKEN}))
    assert secret_sources.read({"secretsmanager": "prod/app", "key": "password"}) == TOKEN
    assert secrets.redact(TOKEN) == "***"


def test_an_ssm_securestring_is_read_decrypted(aws):
    _sm, ssm = aws
    ssm.put_parameter(Name="/prod/redis/password", Value=TOKEN, Type="SecureString")
    assert secret_sources.read({"ssm": "/prod/redis/password"}) == TOKEN


def test_each_reference_is_read_once_per_process(aws):
    sm, _ssm = aws
    sm.create_secret(Name="prod/redis", SecretString=TOKEN)
    assert secret_sources.read({"secretsmanager": "prod/redis"}) == TOKEN
    sm.put_secret_value(SecretId="prod/redis", SecretString="rotated-meanwhile")
    assert secret_sources.read({"secretsmanager": "prod/redis"}) == TOKEN  # the run's value, not a new one
    assert secret_sources.loaded() == {"secretsmanager:prod/redis": TOKEN}


@pytest.mark.parametrize(
    ("ref", "problem"),
    [
        ({"secretsmanager": "prod/none"}, "the Secrets Manager secret prod/none does not exist"),
        ({"secretsmanager": "prod/app", "key": "token"}, "the Secrets Manager secret prod/app has no key token"),
        ({"secretsmanager": "prod/plain", "key": "password"}, "prod/plain is not a JSON object"),
        ({"ssm": "/prod/none"}, "the SSM parameter /prod/none does not exist"),
        ({"ssm": "/prod/plain"}, "the SSM parameter /prod/plain is a String parameter"),
    ],
)
def test_an_unreadable_secret_names_the_reference_never_a_value(aws, ref, problem):
    sm, ssm = aws
    sm.create_secret(Name="prod/app", SecretString=json.dumps({"password": TOKEN}))
    sm.create_secret(Name="prod/plain", SecretString=TOKEN)
    ssm.put_parameter(Name="/prod/plain", Value=TOKEN, Type="String")
    with pytest.raises(ConfigError) as err:
        secret_sources.read(ref, "group_data/redis.py", "redis_cluster_auth.secret_env.requirepass")
    assert problem in str(err.value)
    assert "redis_cluster_auth.secret_env.requirepass" in str(err.value)
    assert TOKEN not in str(err.value)


# ------------------------------------------------------------------------------- through the real CLI


@pytest.fixture
def ops_with_aws_secret(tmp_path, no_ssh):
    """The ops content with an inventory `loopback` of two web hosts whose SSH is the `no_ssh` listener
    (a connection there means a host was touched), and the demo app's API_TOKEN kept in Secrets Manager."""
    port, seen = no_ssh
    ops = copy_ops(tmp_path / "ops")
    (ops / "inventories" / "loopback.py").write_text(
        f'web = [(name, {{"ssh_hostname": "127.0.0.1", "ssh_port": {port}}}) for name in ("web1", "web2")]\n'
    )
    web = ops / "group_data" / "web.py"
    before = '"secret_env": {"API_TOKEN": "OPSRUN_DEMO_API_TOKEN"}'
    assert before in web.read_text()
    ref = '"secret_env": {"API_TOKEN": {"secretsmanager": "opsrun/demo", "key": "api_token"}}'
    web.write_text(web.read_text().replace(before, ref) + "\ndel rolling  # no balancer: straight to the hosts\n")
    return ops, seen


def files_under(folder: Path) -> str:
    return "\n".join(p.read_text(errors="replace") for p in folder.rglob("*") if p.is_file())


def test_a_missing_secret_exits_2_before_any_host_is_touched(aws, ops_with_aws_secret):
    ops, seen = ops_with_aws_secret
    proc = opsrun("apply", "loopback", "pm2", "--dry-run", project=ops)
    assert proc.returncode == 2, proc.stderr
    assert "pm2_apps[0].secret_env.API_TOKEN" in proc.stderr
    assert "the Secrets Manager secret opsrun/demo does not exist; nothing was touched" in proc.stderr
    assert seen == []


def test_a_secret_read_from_aws_is_in_no_output_or_file(aws, ops_with_aws_secret):
    ops, seen = ops_with_aws_secret
    sm, _ssm = aws
    sm.create_secret(Name="opsrun/demo", SecretString=json.dumps({"api_token": TOKEN}))
    proc = opsrun("apply", "loopback", "pm2", "--dry-run", "--format", "json", project=ops)
    assert proc.returncode != 2, proc.stderr  # read: the run went on to the hosts
    assert seen, proc.stdout + proc.stderr
    assert TOKEN not in proc.stdout + proc.stderr
    saved = files_under(ops / ".opsrun") if (ops / ".opsrun").exists() else ""
    assert TOKEN not in saved


# ------------------------------------------------------------------------ a plain pyinfra run, the same way

PYINFRA = Path(sys.executable).with_name("pyinfra")


def plain_pyinfra(ops: Path, deploy: str) -> subprocess.CompletedProcess[str]:
    """pyinfra's own CLI, `--dry` on an `@fake` host (its connector runs nothing), in `ops`."""
    (ops / "inventories" / "fake.py").write_text('web = ["@fake/web1"]\n')
    env = {**os.environ, "PYINFRA_FAKE_DELAY": "0", "PYINFRA_FAKE_DELAY_JITTER": "0"}
    return subprocess.run(
        [str(PYINFRA), "inventories/fake.py", f"deploys/{deploy}.py", "--dry", "-y"],
        cwd=ops, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def test_a_plain_pyinfra_run_reads_the_same_reference(aws, ops_with_aws_secret):
    ops, _seen = ops_with_aws_secret
    missing = plain_pyinfra(ops, "pm2")
    output = missing.stdout + missing.stderr
    assert missing.returncode != 0
    assert "pm2_apps[0].secret_env.API_TOKEN: the Secrets Manager secret opsrun/demo does not exist" in output, output[
        -3000:
    ]
    sm, _ssm = aws
    sm.create_secret(Name="opsrun/demo", SecretString=json.dumps({"api_token": TOKEN}))
    found = plain_pyinfra(ops, "pm2")
    output = found.stdout + found.stderr
    # read: no ConfigError (the fake connector's empty facts stop the deploy later, past the secrets)
    assert "ConfigError" not in output, output[-3000:]
    assert TOKEN not in output
