"""Load balancers, built from the validated `balancer` setting (settings.models.Balancer: its `type` picks
HAProxyBalancer, NginxBalancer or ELBv2Balancer, whose fields are the implementation's arguments).
Implementations are imported lazily, so boto3 is only imported for elbv2."""

from __future__ import annotations

import importlib
from typing import Any

from opsrun import settings
from opsrun.balancers.base import Balancer, ServerState, wait_drained, wait_healthy
from opsrun.errors import ConfigError
from opsrun.settings import models

__all__ = ["BALANCERS", "Balancer", "ServerState", "make", "server_name", "validate", "wait_drained", "wait_healthy"]

# type -> (module, class)
BALANCERS: dict[str, tuple[str, str]] = {
    "haproxy": ("opsrun.balancers.haproxy", "HAProxy"),
    "elbv2": ("opsrun.balancers.elbv2", "ELBv2"),
    "nginx": ("opsrun.balancers.nginx", "NginxLB"),
}


def validate(
    setting: Any, *, where: str, key: str = "balancer", context: dict[str, Any] | None = None
) -> models.Balancer:
    """group_data's `balancer` (or `DEPLOY_balancer`, `key`) checked by its schema: the validated model.
    `context` (the host, its data, the inventory's hosts) lets the schema check `server` and nginx's `host`."""
    if setting is None:
        raise ConfigError(where, "no balancer.", field=key, fix='write balancer = {"type": "haproxy", ...}')
    validated: models.Balancer = settings.validate_key(
        models.BalancerSetting, key, setting, where=where, context=context
    )
    return validated


def make(setting: models.Balancer, *, where: str, inventory: Any = None) -> Balancer:
    """Build the balancer that the validated `setting` describes (`where`: the file that set it)."""
    module, cls = BALANCERS[setting.type]
    impl = getattr(importlib.import_module(module), cls)
    args = setting.model_dump(exclude={"type", "server"})
    if getattr(impl, "needs_inventory", False):  # it reaches its LB host with the inventory's SSH settings
        if inventory is None:
            raise ConfigError(where, f"a {setting.type} balancer needs the inventory of its host.", field="balancer")
        args["inventory"] = inventory
    if getattr(impl, "takes_where", False):  # its own ConfigErrors name the group_data file
        args["where"] = where
    balancer: Balancer = impl(**args)
    return balancer


def server_name(setting: models.Balancer | None, host: str, data: dict[str, Any]) -> str:
    """The host's name in the balancer: the setting's `server` (a template of {host} and the host's data keys,
    checked by the schema for every host before anything connects; its default the host name, for elbv2 the
    instance id that opsrun.aws.ec2_hosts sets), or the host name when there is no setting."""
    template = setting.server if setting is not None else "{host}"
    usable = {k: v for k, v in data.items() if isinstance(v, str | int) and not isinstance(v, bool)}
    try:
        return template.format(**{**usable, "host": host})
    except KeyError as exc:
        raise ConfigError(
            "group_data balancer",
            f"host {host} has no {exc.args[0]!r} for the server template {template!r}.",
            field="balancer.server",
            fix="give the host that data (opsrun.aws.ec2_hosts sets ec2_instance_id), or change server",
        ) from exc
