"""secret_env: checked before any host is touched, never taken from group_data, masked in every output."""

from __future__ import annotations

from pathlib import Path

import pytest

from opsrun import secrets
from opsrun.errors import ConfigError
from opsrun.inventory import Host, Inventory

GROUP_DATA = Path("/ops/group_data/web.py")


def inventory(apps: list[dict]) -> Inventory:
    hosts = {h: Host(h, ("web",), {"pm2_apps": apps}) for h in ("web1", "web2")}
    return Inventory(
        "prod", Path("/ops/inventories/prod.py"), list(hosts), {}, {"web": (list(hosts), {})}, hosts,
        {"web": {"pm2_apps": GROUP_DATA}},
    )  # fmt: skip


def test_values_come_from_the_environment_and_are_masked_afterwards():
    inv = inventory([{"name": "demo", "env": {"PORT": 3001}, "secret_env": {"API_TOKEN": "DEMO_TOKEN"}}])
    found = secrets.require(inv, ["web1", "web2"], ["pm2"], environ={"DEMO_TOKEN": "hunter2-very-secret"})
    assert found == {"DEMO_TOKEN": "hunter2-very-secret"}
    assert secrets.redact('{"cmd": "echo hunter2-very-secret"}') == '{"cmd": "echo ***"}'


def test_a_missing_variable_names_file_field_and_fix():
    inv = inventory([{"name": "demo", "secret_env": {"API_TOKEN": "DEMO_TOKEN"}}])
    with pytest.raises(ConfigError) as err:
        secrets.require(inv, ["web1"], ["pm2"], environ={})
    assert err.value.path == str(GROUP_DATA)
    assert err.value.field == "pm2_apps[0].secret_env.API_TOKEN"
    assert "DEMO_TOKEN" in err.value.problem and "export DEMO_TOKEN=" in (err.value.fix or "")


@pytest.mark.parametrize(
    ("app", "field"),
    [
        ({"name": "demo", "env": {"DB_PASSWORD": "plain"}}, "pm2_apps[0].env.DB_PASSWORD"),
        ({"name": "demo", "secret_env": {"API_TOKEN": "s3cr3t value!"}}, "pm2_apps[0].secret_env.API_TOKEN"),
    ],
)
def test_a_secret_written_in_group_data_is_refused(app, field):
    with pytest.raises(ConfigError) as err:
        secrets.require(inventory([app]), ["web1"], ["pm2"], environ={})
    assert err.value.field == field


def test_only_the_settings_of_the_deploy_that_runs_are_required():
    inv = inventory([{"name": "demo", "secret_env": {"API_TOKEN": "DEMO_TOKEN"}}])
    assert secrets.require(inv, ["web1"], ["nginx"], environ={}) == {}


def test_secret_looking_environment_variables_are_masked(monkeypatch):
    monkeypatch.setenv("PGPASSWORD", "pg-pass-123")
    assert secrets.redact("postgresql://ops:pg-pass-123@db/ops") == "postgresql://ops:***@db/ops"
