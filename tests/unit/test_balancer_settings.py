"""Balancers are built from the validated `balancer` setting (settings.models): its fields are the
implementation's arguments, its defaults the ones used, and its `server` names each host."""

import importlib
import inspect
from pathlib import Path

import pytest

from opsrun import balancers
from opsrun.errors import ConfigError
from opsrun.model.inventory import Host, Inventory
from opsrun.settings import models

WHERE = "group_data/web.py"
SETTINGS = {
    "haproxy": {"type": "haproxy", "socket": "/run/haproxy/admin.sock", "backend": "web"},
    "nginx": {"type": "nginx", "host": "lb1", "upstream": "app", "config": "/etc/nginx/conf.d/app.conf"},
    "elbv2": {"type": "elbv2", "target_group": "web", "region": "eu-west-1"},
}
INVENTORY = Inventory("lab", Path("/ops/inventories/lab.py"), ["lb1"], {}, {}, {"lb1": Host("lb1", (), {})})


@pytest.mark.parametrize("kind", sorted(balancers.BALANCERS))
def test_every_field_of_a_balancers_schema_is_an_argument_of_its_class(kind):
    """`make` passes the validated fields as they are: a field its class does not take would fail there."""
    module, cls = balancers.BALANCERS[kind]
    impl = getattr(importlib.import_module(module), cls)
    schema = type(balancers.validate(SETTINGS[kind], where=WHERE))
    fields = set(schema.model_fields) - {"type", "server"}
    assert fields <= set(inspect.signature(impl).parameters), fields - set(inspect.signature(impl).parameters)


@pytest.mark.parametrize("kind", sorted(balancers.BALANCERS))
def test_make_builds_each_balancer_with_the_schemas_defaults(kind):
    setting = balancers.validate(SETTINGS[kind], where=WHERE)
    balancer = balancers.make(setting, where=WHERE, inventory=INVENTORY)
    if kind == "haproxy":
        assert (balancer.socket_path, balancer.backend, balancer.timeout, balancer.where) == (
            "/run/haproxy/admin.sock",
            "web",
            models.HAProxyBalancer.model_fields["timeout"].default,
            WHERE,
        )
    elif kind == "elbv2":
        assert (balancer.poll_interval, balancer.poll_jitter) == (3.0, 0.2)
        assert balancer.name == "elbv2 target group web"
    else:
        assert (balancer.host, balancer.upstream, balancer.remote.timeout) == ("lb1", "app", 30.0)


def test_validate_gives_the_model_and_names_the_file_for_a_missing_balancer():
    assert isinstance(balancers.validate(SETTINGS["haproxy"], where=WHERE), models.HAProxyBalancer)
    with pytest.raises(ConfigError) as err:
        balancers.validate(None, where=WHERE, key="app_balancer")
    assert str(err.value).startswith(f"{WHERE}: app_balancer: no balancer. Fix: ")


@pytest.mark.parametrize(
    ("setting", "name"),
    [
        (SETTINGS["haproxy"], "web1"),  # the default: the host's name
        (SETTINGS["elbv2"], "i-0abc"),  # elbv2's default: the instance id
        ({**SETTINGS["haproxy"], "server": "{ssh_hostname}:3001"}, "10.0.0.11:3001"),
        (None, "web1"),  # no balancer setting (a balancer given to the rollout directly)
    ],
)
def test_the_server_name_is_the_settings_template_over_the_hosts_data(setting, name):
    data = {"ssh_hostname": "10.0.0.11", "ec2_instance_id": "i-0abc"}
    validated = balancers.validate(setting, where=WHERE) if setting is not None else None
    assert balancers.server_name(validated, "web1", data) == name
