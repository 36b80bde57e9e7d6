"""Load balancers, picked by `balancer["type"]` in group_data. Implementations are imported lazily, so
boto3 is only imported for elbv2."""

from __future__ import annotations

import importlib
from typing import Any

from opsrun.balancers.base import Balancer, ServerState, wait_drained, wait_healthy
from opsrun.errors import ConfigError

__all__ = ["BALANCERS", "Balancer", "ServerState", "make", "validate", "wait_drained", "wait_healthy"]

# type -> (module, class, required settings; "a|b": one of them)
BALANCERS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "haproxy": ("opsrun.balancers.haproxy", "HAProxy", ("socket", "backend")),
    "elbv2": ("opsrun.balancers.elbv2", "ELBv2", ("target_group|target_group_tags|target_group_arn",)),
    "nginx": ("opsrun.balancers.nginx", "NginxLB", ("host", "upstream", "config")),
}


def validate(settings: Any, *, where: str, key: str = "balancer") -> tuple[str, str, tuple[str, ...]]:
    """Check `settings` (group_data `balancer`) against its schema (opsrun.settings.models): a known type
    with its required settings, each of the characters its sink allows."""
    from opsrun import settings as schemas
    from opsrun.settings import models

    if settings is None:
        raise ConfigError(where, "no balancer.", field=key, fix='write balancer = {"type": "haproxy", ...}')
    schemas.validate_key(models.BalancerSetting, key, settings, where=where)
    return BALANCERS[settings["type"]]


def make(settings: Any, *, where: str, inventory: Any = None) -> Balancer:
    """Build the balancer that `settings` (group_data `balancer`) describes."""
    module, cls, required = validate(settings, where=where)
    kind = settings["type"]
    args = {k: v for k, v in settings.items() if k not in ("type", "server")}
    impl = getattr(importlib.import_module(module), cls)
    if getattr(impl, "needs_inventory", False):  # it reaches its LB host with the inventory's SSH settings
        if inventory is None:
            raise ConfigError(where, f"a {kind} balancer needs the inventory of its host.", field="balancer")
        args["inventory"] = inventory
    if getattr(impl, "takes_where", False):  # its own ConfigErrors name the group_data file
        args["where"] = where
    try:
        balancer: Balancer = impl(**args)
    except TypeError as exc:
        raise ConfigError(
            where,
            f"bad settings for a {kind} balancer: {exc}.",
            field="balancer",
            fix=f"use: {', '.join(required)} (and the optional settings of {cls})",
        ) from exc
    return balancer


# the `server` template when group_data gives none: the host name, or for elbv2 the instance id
DEFAULT_SERVER = {"elbv2": "{ec2_instance_id}"}


def server_name(settings: dict[str, Any], host: str, data: dict[str, Any]) -> str:
    """The host's name in the balancer: `server` (a template of {host} and the host's data keys, checked by
    the schema for every host before anything connects) or its default (the host name; elbv2: the
    instance id that opsrun.aws.ec2_hosts sets)."""
    template = str(settings.get("server", DEFAULT_SERVER.get(str(settings.get("type")), "{host}")))
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
