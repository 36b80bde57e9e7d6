"""Load balancers, picked by `balancer["type"]` in group_data. Implementations are imported lazily, so
boto3 is only imported for elbv2."""

from __future__ import annotations

import importlib
from typing import Any

from opsrun.balancers.base import Balancer, ServerState, wait_drained, wait_healthy
from opsrun.errors import ConfigError

__all__ = ["BALANCERS", "Balancer", "ServerState", "make", "validate", "wait_drained", "wait_healthy"]

# type -> (module, class, required settings)
BALANCERS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "haproxy": ("opsrun.balancers.haproxy", "HAProxy", ("socket", "backend")),
    "elbv2": ("opsrun.balancers.elbv2", "ELBv2", ("target_group_arn",)),
    "nginx": ("opsrun.balancers.nginx", "NginxLB", ("host", "upstream", "config")),
}


def validate(settings: Any, *, where: str) -> tuple[str, str, tuple[str, ...]]:
    """Check `settings` (group_data `balancer`) names a known type with its required settings."""
    if not isinstance(settings, dict):
        raise ConfigError(
            where,
            f"expected a dict, got {type(settings).__name__}.",
            field="balancer",
            fix='write balancer = {"type": "haproxy", ...}',
        )
    kind = settings.get("type")
    if kind not in BALANCERS:
        raise ConfigError(
            where, f"unknown balancer type {kind!r}.", field="balancer.type", fix=f"use one of: {', '.join(BALANCERS)}"
        )
    module, cls, required = BALANCERS[kind]
    missing = [k for k in required if not settings.get(k)]
    if missing:
        raise ConfigError(
            where,
            f"missing {', '.join(missing)} for a {kind} balancer.",
            field=f"balancer.{missing[0]}",
            fix=f"set {', '.join(missing)}",
        )
    return module, cls, required


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


def server_name(settings: dict[str, Any], host: str, data: dict[str, Any]) -> str:
    """The host's name in the balancer: `server` (a template with {host}) or the host name."""
    template = str(settings.get("server", "{host}"))
    return template.format(host=host, **{k: v for k, v in data.items() if isinstance(v, str | int)})
